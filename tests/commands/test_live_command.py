"""``imagegen_providers --live``: each provider's model listing, faked at the wire level.

Every provider talks to a :class:`MockAPI`, so nothing reaches the network; the answers follow
the providers' documented shapes (OpenAI ``GET /v1/models`` with ``shutdown_date``, Gemini
``models.list``, Replicate model metadata, Leonardo ``platformModels`` and its pricing
calculator).
"""

from __future__ import annotations

import io
import json
import logging
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from imagegen.providers.leonardo import DEFAULT_MODEL as LIGHTNING_XL
from imagegen.testing import MockAPI, fake_provider_settings

OPENAI = "imagegen.providers.openai.OpenAIProvider"
GOOGLE = "imagegen.providers.google.GoogleProvider"
REPLICATE = "imagegen.providers.replicate.ReplicateProvider"
LEONARDO = "imagegen.providers.leonardo.LeonardoProvider"
BFL = "imagegen.providers.bfl.BFLProvider"
PLACEHOLDER = "imagegen.providers.placeholder.PlaceholderProvider"


def live(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("imagegen_providers", "--live", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def configure(settings, **aliases: dict) -> None:
    settings.IMAGEGEN = {"DEFAULT_PROVIDER": next(iter(aliases)), "PROVIDERS": aliases}


def openai_models(*entries: tuple[str, str | None]) -> dict:
    """Return a ``GET /v1/models`` answer: ``(id, shutdown_date)`` per model."""
    return {
        "object": "list",
        "data": [
            {"id": model, "object": "model", "owned_by": "system", "shutdown_date": date}
            for model, date in entries
        ],
    }


def live_json(*args: str) -> dict:
    return {
        entry["alias"]: entry for entry in json.loads(live("--format", "json", *args)[0])["live"]
    }


def test_openai_listing_reports_shutdown_dates_and_unknown_ids(settings) -> None:
    api = MockAPI().reply(
        json=openai_models(
            ("gpt-image-2", None),
            ("gpt-image-2.6-sunburst", None),
            ("gpt-image-3", None),
            ("gpt-5", "2026-12-11"),  # not an image model: ignored
        )
    )
    configure(settings, openai=fake_provider_settings(OPENAI, api, model="gpt-image-2"))
    report = live_json()["openai"]
    assert [(r.method, r.url.path) for r in api.requests] == [("GET", "/v1/models")]
    assert api.last.headers["authorization"] == "Bearer test-key"
    assert report["served"] is True and report["shutdown"] is None
    assert report["unknown_ids"] == ["gpt-image-3"]
    assert report["problems"] == [
        "openai (gpt-image-2): the provider serves ids the catalog lacks: gpt-image-3."
    ]


def test_an_announced_shutdown_the_catalog_lacks_is_a_problem(settings) -> None:
    api = MockAPI().reply(json=openai_models(("gpt-image-2", "2027-06-01")))
    configure(settings, openai=fake_provider_settings(OPENAI, api, model="gpt-image-2"))
    report = live_json()["openai"]
    assert report["shutdown"] == "2027-06-01" and report["catalog_shutdown"] is None
    assert "announces shutdown on 2027-06-01; the catalog says no date" in report["problems"][0]


def test_a_shutdown_the_catalog_already_has_is_not_a_problem(settings) -> None:
    api = MockAPI().reply(json=openai_models(("gpt-image-1.5", "2026-12-01")))
    configure(settings, openai=fake_provider_settings(OPENAI, api, model="gpt-image-1.5"))
    report = live_json()["openai"]
    assert (report["served"], report["shutdown"]) == (True, "2026-12-01")
    assert report["problems"] == []


def test_a_model_no_longer_listed_is_not_served(settings) -> None:
    api = MockAPI().reply(json=openai_models(("gpt-image-2", None)))
    configure(settings, old=fake_provider_settings(OPENAI, api, model="gpt-image-1"))
    out, _ = live()
    assert "old (gpt-image-1): the provider no longer lists this model." in out
    assert " NO " in out


def test_gemini_models_list_is_read_page_by_page(settings) -> None:
    api = MockAPI()
    api.reply(
        json={
            "models": [
                {"name": "models/gemini-nano-banana-2.1"},
                {"name": "models/gemini-3.8-flash"},  # not an image model
            ],
            "nextPageToken": "page-2",
        }
    )
    api.reply(json={"models": [{"name": "models/gemini-3.5-flash-image"}]})
    google = fake_provider_settings(GOOGLE, api, model="gemini-nano-banana-2.1")
    configure(settings, google=google)
    report = live_json()["google"]
    assert [r.url.path for r in api.requests] == ["/v1beta/models", "/v1beta/models"]
    assert api.requests[1].url.params["pageToken"] == "page-2"
    assert report["served"] is True
    assert report["unknown_ids"] == ["gemini-3.5-flash-image"]


def test_replicate_model_metadata_says_whether_the_model_is_there(settings) -> None:
    api = MockAPI()
    api.reply(json={"owner": "black-forest-labs", "name": "flux-schnell", "latest_version": {}})
    api.reply(404, json={"title": "Not found", "detail": "Not found.", "status": 404})
    configure(
        settings,
        schnell=fake_provider_settings(REPLICATE, api, model="black-forest-labs/flux-schnell"),
        gone=fake_provider_settings(REPLICATE, api, model="black-forest-labs/flux-pro:abc123"),
    )
    reports = live_json()
    paths = [r.url.path for r in api.requests]
    assert paths == [
        "/v1/models/black-forest-labs/flux-schnell",
        "/v1/models/black-forest-labs/flux-pro",
    ]
    assert reports["schnell"]["served"] is True and reports["schnell"]["problems"] == []
    assert reports["gone"]["served"] is False


def test_leonardo_platform_models_and_the_pricing_calculator(settings) -> None:
    api = MockAPI()
    api.reply(
        json={
            "custom_models": [
                {"id": LIGHTNING_XL, "name": "Leonardo Lightning XL"},
                {"id": "7b592283-e8a7-4c5a-9ba6-d18c31f258b9", "name": "Lucid Origin"},
                # A platform model the catalog lacks (a made-up UUID).
                {"id": "00000000-0000-4000-8000-00000000c0de", "name": "Leonardo Vision X"},
            ]
        }
    )
    # Leonardo's calculator: the credits one 1024x1024 Lightning XL image costs with Alchemy.
    api.reply(json={"calculateProductionApiServiceCost": {"cost": 12}})
    configure(settings, leonardo=fake_provider_settings(LEONARDO, api))
    report = live_json()["leonardo"]
    assert [r.url.path for r in api.requests] == [
        "/api/rest/v1/platformModels",
        "/api/rest/v1/pricing-calculator",
    ]
    assert json.loads(api.last.content) == {
        "service": "IMAGE_GENERATION",
        "serviceParams": {
            "IMAGE_GENERATION": {
                "imageWidth": 1024,
                "imageHeight": 1024,
                "numImages": 1,
                "isSDXLLightning": True,
                "alchemyMode": True,
            }
        },
    }
    assert report["served"] is True
    assert report["unknown_ids"] == ["00000000-0000-4000-8000-00000000c0de"]
    # 10 credits estimated against 12 from the calculator, at $0.0015 a credit.
    assert (Decimal(report["estimate"]), Decimal(report["provider_price"])) == (
        Decimal("0.015"),
        Decimal("0.018"),
    )
    assert any("calculator says $0.018000" in problem for problem in report["problems"])


def test_providers_without_a_listing_and_failed_listings_never_fail(settings) -> None:
    down = MockAPI().reply(500, json={"error": {"message": "boom"}}, times=3)
    configure(
        settings,
        bfl=fake_provider_settings(BFL, MockAPI()),
        offline={"BACKEND": PLACEHOLDER},
        openai=fake_provider_settings(OPENAI, down, model="gpt-image-2"),
    )
    reports = live_json()
    assert reports["bfl"]["checkable"] is False and reports["bfl"]["problems"] == []
    assert reports["offline"]["checkable"] is False
    assert reports["openai"]["error"] and reports["openai"]["served"] is None
    out, _ = live()  # no exception: the deploy goes on
    assert "no listing" in out and "the live check failed" in out


def test_strict_exits_non_zero_only_when_something_needs_attention(settings) -> None:
    api = MockAPI().reply(json=openai_models(("gpt-image-2", None)), times=2)
    configure(settings, openai=fake_provider_settings(OPENAI, api, model="gpt-image-2"))
    out, _ = live("--strict")
    assert "Nothing needs attention." in out
    configure(settings, old=fake_provider_settings(OPENAI, api, model="gpt-image-1"))
    with pytest.raises(CommandError) as caught:
        live("--strict")
    assert caught.value.returncode == 1


def test_problems_are_logged_as_warnings_for_periodic_runs(settings, caplog) -> None:
    api = MockAPI().reply(json=openai_models(("gpt-image-2", None)))
    configure(settings, old=fake_provider_settings(OPENAI, api, model="gpt-image-1"))
    with caplog.at_level(logging.WARNING, logger="imagegen.live"):
        live()
    assert [r.getMessage() for r in caplog.records] == [
        "old (gpt-image-1): the provider no longer lists this model."
    ]


def test_the_key_never_appears_in_a_failed_check(settings) -> None:
    api = MockAPI().reply(401, json={"error": {"message": "Incorrect API key: sk-live-abcdef123"}})
    provider = fake_provider_settings(OPENAI, api, model="gpt-image-2", api_key="sk-live-abcdef123")
    configure(settings, openai=provider)
    out, _ = live()
    assert "sk-live-abcdef123" not in out
