"""Tests for the Replicate provider at the wire level (provider-apis.md §3), mocked HTTP.

The API and the delivery host are two :class:`MockAPI` instances; DNS for the delivery host is
faked, and time runs on a :class:`ManualClock`, so nothing reaches the network or sleeps.
"""

from __future__ import annotations

import base64
import copy
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

import imagegen
from imagegen import catalog
from imagegen.catalog import replicate as replicate_catalog
from imagegen.exceptions import (
    ContentRejected,
    InvalidProviderError,
    InvalidResponse,
    ModelUnavailable,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnsupportedRequest,
)
from imagegen.models import Generation, Status
from imagegen.pricing import MegapixelTiers
from imagegen.providers import get_provider
from imagegen.providers.replicate import ReplicateProvider, output_urls
from imagegen.services import run_generation
from imagegen.testing import fake_provider_settings
from imagegen.types import CallContext, ImageRequest
from tests.conftest import png_bytes
from tests.providers.conftest import MockAPI
from tests.providers.support import PollingHarness, body_of, wire

BACKEND = "imagegen.providers.replicate.ReplicateProvider"
KEY = "r8_Test0123456789abcdefSECRETtoken"
API = "https://api.replicate.com/v1"
ID = "gm3qorzdhgbfurvjtvhg6dckhu"
SCHNELL = "black-forest-labs/flux-schnell"
CREATE = "/v1/models/black-forest-labs/flux-schnell/predictions"
GET = f"/v1/predictions/{ID}"
OUT = "https://replicate.delivery/xezq/abc123/out-{}.webp"
PNG = png_bytes()
PROMPT = "a red bicycle leaning on a wall"
REPLICATE = PollingHarness(ReplicateProvider, "flux", key=KEY, prompt=PROMPT, fixtures="replicate")
fixture, make, run = REPLICATE.fixture, REPLICATE.make, REPLICATE.run


def prediction(status: str = "succeeded", output: Any = None, **changes: Any) -> dict[str, Any]:
    """Return a prediction object in ``status``; ``output`` defaults to one schnell URL."""
    names = {
        "starting": "prediction_starting.json",
        "processing": "prediction_processing.json",
        "succeeded": "prediction_schnell_succeeded.json",
        "canceled": "prediction_canceled.json",
        "failed": "prediction_failed.json",
    }
    body = copy.deepcopy(fixture(names[status]))
    if status == "succeeded":
        body["output"] = [OUT.format(0)] if output is None else output
    body.update(changes)
    return body


def calls(api: MockAPI) -> list[tuple[str, str]]:
    return [(r.method, r.url.path) for r in api.requests]


# Identity and options ----------------------------------------------------------------------


def test_identity_and_defaults(monkeypatch) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", KEY)
    provider = ReplicateProvider(alias="flux")
    assert (provider.catalog_key, provider.display_name) == ("replicate", "Replicate")
    assert provider.model == SCHNELL
    assert provider.base_url == API
    assert provider.api_key() == KEY
    hosts = provider.downloader.hosts
    assert hosts.allows("replicate.delivery") and hosts.allows("pbxt.replicate.delivery")
    assert not hosts.allows("replicate.delivery.evil.example")
    assert "edit" in provider.operations


@pytest.mark.parametrize(
    "options",
    [
        {"wait": 61},
        {"wait": -1},
        {"wait": True},
        {"wait": 2.5},
        {"output_quality": 101},
        {"megapixels": "2"},
        {"resolution": "3 MP"},
        {"webhook_url": "http://example.com/imagegen/webhooks/replicate/"},
        {"poll_interval": 0},
        {"colour": "red"},
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidProviderError, match="flux"):
        ReplicateProvider(alias="flux", api_key=KEY, **options)


def test_the_api_token_never_shows_in_a_repr() -> None:
    provider = ReplicateProvider(alias="flux", api_key=KEY, webhook_secret="whsec_c2VjcmV0")
    assert KEY not in repr(provider.__dict__)
    assert "c2VjcmV0" not in repr(provider.__dict__)


# Creating a prediction ---------------------------------------------------------------------


def test_schnell_request_is_exact_and_a_finished_prediction_is_downloaded_at_once() -> None:
    api = MockAPI().reply(201, json=prediction(output=[OUT.format(0), OUT.format(1)]))
    cdn = MockAPI().reply(content=PNG).reply(content=PNG)
    provider = make(api, cdn)
    accepted: list[str] = []
    result = run(
        provider,
        CallContext(on_job_accepted=accepted.append),
        aspect_ratio="16:9",
        count=2,
        seed=7,
        output_format="webp",
    )
    assert calls(api) == [("POST", CREATE)]
    sent = api.last
    assert str(sent.url) == f"{API}/models/black-forest-labs/flux-schnell/predictions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["prefer"] == "wait"
    assert sent.headers["content-type"] == "application/json"
    assert body_of(sent) == {
        "input": {
            "prompt": PROMPT,
            "aspect_ratio": "16:9",
            "seed": 7,
            "num_outputs": 2,
            "output_format": "webp",
        }
    }
    assert accepted == [ID]
    assert [r.url.path for r in cdn.requests] == [
        "/xezq/abc123/out-0.webp",
        "/xezq/abc123/out-1.webp",
    ]
    assert all(r.headers["host"] == "replicate.delivery" for r in cdn.requests)
    assert all("authorization" not in r.headers for r in cdn.requests)  # the token stays home
    assert [image.content for image in result.images] == [PNG, PNG]
    assert result.images[0].mime_type == "image/png"  # read from the bytes, not the format
    assert result.job_id == ID and result.model == SCHNELL
    assert result.cost == Decimal("0.006000")
    assert result.usage == {"output_images": 2, "predict_time": 1.15}


def test_options_are_sent_only_to_models_that_take_them() -> None:
    api = (
        MockAPI()
        .reply(201, json=prediction())
        .reply(201, json=fixture("prediction_pro_succeeded.json"))
    )
    cdn = MockAPI().reply(content=PNG, times=2)
    provider = make(
        api, cdn, output_quality=90, go_fast=False, megapixels="0.25", safety_tolerance=5
    )
    run(provider, aspect_ratio="1:1", output_format="jpeg")
    assert body_of(api.requests[0])["input"] == {
        "prompt": PROMPT,
        "aspect_ratio": "1:1",
        "num_outputs": 1,
        "output_format": "jpg",  # §3.5: Replicate says jpg
        "output_quality": 90,
        "go_fast": False,
        "megapixels": "0.25",
    }
    run(provider, model="black-forest-labs/flux-1.1-pro", aspect_ratio="3:2", output_format="png")
    assert api.requests[1].url.path == "/v1/models/black-forest-labs/flux-1.1-pro/predictions"
    assert body_of(api.requests[1])["input"] == {
        "prompt": PROMPT,
        "aspect_ratio": "3:2",
        "output_format": "png",  # no output_quality for png, no num_outputs for 1.1 pro
        "safety_tolerance": 5,
    }


def test_flux_dev_takes_num_outputs_and_is_billed_per_image() -> None:
    api = MockAPI().reply(201, json=prediction(output=[OUT.format(i) for i in range(3)]))
    cdn = MockAPI().reply(content=PNG, times=3)
    provider = make(api, cdn, model="black-forest-labs/flux-dev")
    result = run(provider, aspect_ratio="21:9", count=3, output_format="png")
    assert api.last.url.path == "/v1/models/black-forest-labs/flux-dev/predictions"
    assert body_of(api.last)["input"] == {
        "prompt": PROMPT,
        "aspect_ratio": "21:9",
        "num_outputs": 3,
        "output_format": "png",
    }
    assert result.cost == Decimal("0.075000")


def test_a_single_url_output_is_normalised_and_billed_as_one_image() -> None:
    api = MockAPI().reply(201, json=fixture("prediction_pro_succeeded.json"))
    cdn = MockAPI().reply(content=PNG)
    result = run(make(api, cdn, model="black-forest-labs/flux-1.1-pro"))
    assert cdn.last.url.path == "/czjl/def456/tmpabc.webp"
    assert len(result.images) == 1
    assert result.cost == Decimal("0.040000")


def test_output_normalisation() -> None:
    assert output_urls("https://replicate.delivery/a.png") == ["https://replicate.delivery/a.png"]
    assert output_urls(["u1", None, "", 3, "u2"]) == ["u1", "u2"]
    assert output_urls(None) == output_urls("") == output_urls({"url": "x"}) == []


def test_flux_2_pro_sends_resolution_and_input_images_as_data_urls_and_bills_megapixels() -> None:
    source = png_bytes(1200, 1000)  # 1.2M pixels: billed as 2 MP of input
    api = MockAPI().reply(201, json=fixture("prediction_pro_succeeded.json"))
    cdn = MockAPI().reply(content=PNG)
    provider = make(api, cdn, model="black-forest-labs/flux-2-pro")
    request = ImageRequest(
        prompt=PROMPT, width=1920, height=1088, aspect_ratio="16:9", operation="edit",
        source_images=(source,), output_format="webp", seed=3,
    )  # fmt: skip
    [call], warnings = provider.prepare(request)
    assert call.quality == "2 MP" and warnings == []
    result = provider.generate(call)
    assert api.last.url.path == "/v1/models/black-forest-labs/flux-2-pro/predictions"
    sent = body_of(api.last)["input"]
    data_url = "data:image/png;base64," + base64.b64encode(source).decode()
    assert sent == {
        "prompt": PROMPT,
        "aspect_ratio": "16:9",
        "seed": 3,
        "output_format": "webp",
        "resolution": "2 MP",
        "input_images": [data_url],
    }
    # $0.015 per output megapixel (2) and per input megapixel (2): $0.06.
    assert result.usage["output_megapixels"] == 2 and result.usage["input_megapixels"] == 2
    assert result.cost == Decimal("0.060000")
    assert result.images[0].seed == 3


def test_flux_2_edit_limits() -> None:
    provider = make(MockAPI(), model="black-forest-labs/flux-2-dev")
    too_many = ImageRequest(prompt="x", operation="edit", source_images=(PNG,) * 5)
    with pytest.raises(UnsupportedRequest, match="at most 4"):
        provider.generate(too_many)
    big = ImageRequest(prompt="x", operation="edit", source_images=(PNG + b"\0" * 300_000,))
    with pytest.raises(UnsupportedRequest, match="256 KB"):
        provider.generate(big)
    with pytest.raises(UnsupportedRequest, match="cannot edit"):
        make(MockAPI()).prepare(ImageRequest(prompt="x", operation="edit", source_images=(PNG,)))
    api = MockAPI()
    with pytest.raises(UnsupportedRequest, match="where someone/model takes source images"):
        make(api, model="someone/model").generate(
            ImageRequest(prompt="x", operation="edit", source_images=(PNG,))
        )
    assert api.requests == []


def test_flux_dev_image_to_image_sends_one_image_field() -> None:
    api = MockAPI().reply(201, json=prediction())
    provider = make(api, MockAPI().reply(content=PNG), model="black-forest-labs/flux-dev")
    run(provider, operation="edit", source_images=(PNG,), aspect_ratio="1:1")
    assert body_of(api.last)["input"]["image"] == "data:image/png;base64," + base64.b64encode(
        PNG
    ).decode("ascii")


def test_wait_option_and_the_deadline_shorten_the_hold() -> None:
    api = MockAPI().reply(201, json=prediction(), times=3)
    cdn = MockAPI().reply(content=PNG, times=3)
    run(make(api, cdn, wait=10))
    assert api.requests[0].headers["prefer"] == "wait=10"
    provider = make(api, cdn)
    run(provider, CallContext(deadline=time.monotonic() + 30.9))
    # 30 s left, 5 s kept for the answer to arrive.
    assert api.requests[1].headers["prefer"] in ("wait=25", "wait=24")
    run(make(api, cdn, wait=0))
    assert "prefer" not in api.requests[2].headers


def test_webhook_fields_are_sent_when_a_webhook_url_is_configured() -> None:
    api = MockAPI().reply(201, json=prediction())
    url = "https://www.example.com/imagegen/webhooks/replicate/"
    run(make(api, MockAPI().reply(content=PNG), webhook_url=url))
    body = body_of(api.last)
    assert body["webhook"] == url
    assert body["webhook_events_filter"] == ["completed"]


def test_extra_adds_fields_but_may_not_set_the_prompt_or_count() -> None:
    api = MockAPI().reply(201, json=prediction())
    run(make(api, MockAPI().reply(content=PNG)), extra={"num_inference_steps": 2})
    assert body_of(api.last)["input"]["num_inference_steps"] == 2
    for field in ("prompt", "num_outputs"):
        with pytest.raises(UnsupportedRequest, match=field):
            run(make(MockAPI()), extra={field: 1})


def test_a_pinned_version_is_created_through_the_predictions_endpoint() -> None:
    version = "c846a69991daf4c0e5d016514849d14ee5b2e6846ce6b9d6f21369e564cfe51e"
    api = MockAPI().reply(201, json=prediction())
    provider = make(api, MockAPI().reply(content=PNG), model=f"{SCHNELL}:{version}")
    result = run(provider, aspect_ratio="1:1")
    assert api.last.url.path == "/v1/predictions"
    body = body_of(api.last)
    assert body["version"] == version and body["input"]["num_outputs"] == 1
    assert result.cost == Decimal("0.003000")  # priced as its model


def test_an_uncatalogued_model_gets_the_common_fields_and_a_price_warning() -> None:
    api = MockAPI().reply(201, json=prediction())
    provider = make(api, MockAPI().reply(content=PNG), model="someone/pixel-art")
    result = run(provider, aspect_ratio="1:1", seed=1)
    assert body_of(api.last) == {"input": {"prompt": PROMPT, "aspect_ratio": "1:1", "seed": 1}}
    assert result.cost == Decimal(0)
    assert "not in imagegen's catalog" in result.warnings[0]


def test_a_malformed_model_id_is_a_configuration_error() -> None:
    api = MockAPI()
    with pytest.raises(InvalidProviderError, match="model id"):
        run(make(api, model="../../admin"))
    assert api.requests == []


# Polling -----------------------------------------------------------------------------------


def test_a_pending_prediction_is_polled_at_urls_get_until_it_succeeds() -> None:
    api = MockAPI().reply(201, json=prediction("starting"))
    api.reply(json=prediction("processing")).reply(json=prediction("processing"))
    api.reply(json=prediction())
    cdn = MockAPI().reply(content=PNG)
    provider = make(api, cdn)
    events: list[str] = []
    result = run(provider, CallContext(on_job_accepted=lambda job: events.append(job)))
    assert calls(api) == [("POST", CREATE), ("GET", GET), ("GET", GET), ("GET", GET)]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in api.requests)
    assert provider.clock.sleeps == [1.0, 1.5]
    assert events == [ID]  # recorded once, before the first poll
    assert result.images[0].content == PNG and result.job_id == ID


def test_urls_get_on_another_host_is_not_followed_with_the_token() -> None:
    evil = prediction("starting")
    evil["urls"]["get"] = "https://collector.evil.example/v1/predictions/" + ID
    api = MockAPI().reply(201, json=evil).reply(json=prediction())
    run(make(api, MockAPI().reply(content=PNG)))
    assert [str(r.url) for r in api.requests][1] == f"{API}/predictions/{ID}"


def test_a_gateway_base_url_keeps_polls_on_the_gateway() -> None:
    api = MockAPI().reply(201, json=prediction("starting")).reply(json=prediction())
    base = "https://gateway.example.com/replicate/v1"
    run(make(api, MockAPI().reply(content=PNG), base_url=base))
    assert str(api.requests[0].url) == f"{base}/models/black-forest-labs/flux-schnell/predictions"
    assert str(api.requests[1].url) == f"{base}/predictions/{ID}"
    assert api.requests[1].headers["authorization"] == f"Bearer {KEY}"


def test_a_temporary_poll_failure_is_waited_out() -> None:
    api = MockAPI().reply(201, json=prediction("starting"))
    api.reply(429, json=fixture("error_throttled.json"), headers={"retry-after": "7"})
    api.reply(json=prediction())
    provider = make(api, MockAPI().reply(content=PNG))
    run(provider)
    assert provider.clock.sleeps == [7.0]


def test_resume_polls_the_stored_prediction_and_never_creates_another() -> None:
    api = MockAPI().reply(json=prediction())
    cdn = MockAPI().reply(content=PNG)
    accepted: list[str] = []
    context = CallContext(resume_job_id=ID, on_job_accepted=accepted.append)
    result = run(make(api, cdn), context)
    assert calls(api) == [("GET", GET)]
    assert accepted == [] and result.job_id == ID


def test_a_deadline_cancels_the_prediction_and_raises_a_retryable_timeout() -> None:
    api = MockAPI().reply(201, json=prediction("starting"))
    api.reply(json=prediction("processing"), times=5)
    api.reply(json=prediction("canceled"))  # the cancel call's answer
    provider = make(api, poll_timeout=5)
    with pytest.raises(ProviderUnavailable) as caught:
        run(provider)
    error = caught.value
    assert (error.code, error.retryable) == ("timeout", True)
    assert ID in error.message and "cancel" in error.message
    assert api.last.method == "POST" and api.last.url.path == f"{GET}/cancel"
    assert api.last.headers["authorization"] == f"Bearer {KEY}"
    assert calls(api).count(("GET", GET)) == 5


# Failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["prediction_failed_nsfw.json", "prediction_failed_sensitive.json"]
)
def test_a_safety_failure_is_content_rejected(name: str) -> None:
    api = MockAPI().reply(201, json=fixture(name))
    cdn = MockAPI()
    with pytest.raises(ContentRejected) as caught:
        run(make(api, cdn))
    error = caught.value
    assert error.code == "content_rejected" and not error.retryable
    assert fixture(name)["error"].split(".")[0] in error.message
    assert cdn.requests == []


def test_another_failure_is_a_provider_error_quoting_replicate() -> None:
    api = MockAPI().reply(201, json=prediction("starting")).reply(json=prediction("failed"))
    with pytest.raises(ProviderError) as caught:
        run(make(api))
    error = caught.value
    assert type(error) is ProviderError and error.code == "prediction_failed"
    assert error.message == (
        f"Replicate prediction {ID} failed: CUDA out of memory. Tried to allocate 2.00 GiB."
    )


def test_a_canceled_prediction_is_a_provider_error() -> None:
    api = MockAPI().reply(201, json=prediction("starting")).reply(json=prediction("canceled"))
    with pytest.raises(ProviderError) as caught:
        run(make(api))
    assert caught.value.code == "prediction_canceled" and not caught.value.retryable


def test_an_aborted_prediction_says_it_stopped_before_it_started() -> None:
    # Replicate's lifecycle page: "aborted" means the deadline passed before the prediction ran.
    aborted = {**prediction("canceled"), "status": "aborted", "started_at": None}
    api = MockAPI().reply(201, json=prediction("starting")).reply(json=aborted)
    with pytest.raises(ProviderError) as caught:
        run(make(api))
    error = caught.value
    assert error.code == "prediction_canceled" and not error.retryable
    assert "stopped before it started" in error.message
    assert "before it finished" not in error.message


def test_a_problem_whose_detail_repeats_its_title_says_it_once() -> None:
    problem = {"title": "Service Unavailable", "detail": "Service Unavailable", "status": 503}
    api = MockAPI().reply(503, json=problem, times=10)
    with pytest.raises(ProviderError) as caught:
        run(make(api))
    message = caught.value.message
    assert "Service Unavailable" in message
    assert "Service Unavailable: Service Unavailable" not in message


@pytest.mark.parametrize("status", [404, 410])
def test_an_expired_output_url_is_download_expired(status: int) -> None:
    api = MockAPI().reply(201, json=prediction())
    cdn = MockAPI().reply(status)
    with pytest.raises(ProviderError) as caught:
        run(make(api, cdn))
    assert caught.value.code == "download_expired"
    assert "expired" in caught.value.message


def test_outputs_already_removed_are_download_expired() -> None:
    api = MockAPI().reply(json=fixture("prediction_removed.json"))
    with pytest.raises(ProviderError) as caught:
        run(make(api), CallContext(resume_job_id=ID))
    assert caught.value.code == "download_expired"


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.evil.example/out-0.webp",
        "https://replicate.delivery.evil.example/out-0.webp",
        "http://replicate.delivery/out-0.webp",
        "https://169.254.169.254/latest/meta-data",
    ],
)
def test_an_output_url_off_the_delivery_host_is_refused(url: str) -> None:
    api = MockAPI().reply(201, json=prediction(output=[url]))
    cdn = MockAPI()
    with pytest.raises(InvalidResponse) as caught:
        run(make(api, cdn))
    assert caught.value.code in ("download_host_not_allowed", "download_not_https")
    assert cdn.requests == []


def test_a_succeeded_prediction_without_output_is_invalid() -> None:
    api = MockAPI().reply(201, json=prediction(output=[]))
    with pytest.raises(InvalidResponse) as caught:
        run(make(api))
    assert caught.value.code == "no_images"


@pytest.mark.parametrize(
    "body",
    [{"status": "succeeded"}, {"id": "../../x", "status": "starting"}, {"id": ID}, ["not", "a"]],
)
def test_an_answer_that_is_not_a_prediction_is_invalid(body: Any) -> None:
    api = MockAPI().reply(201, json=body)
    with pytest.raises(InvalidResponse):
        run(make(api))


def test_input_validation_errors_quote_the_problem_detail() -> None:
    api = MockAPI().reply(422, json=fixture("error_invalid_input.json"))
    with pytest.raises(ProviderError) as caught:
        run(make(api))
    error = caught.value
    assert (error.code, error.status_code, error.retryable) == ("invalid_request", 422, False)
    assert "Input validation failed" in error.message
    assert "aspect_ratio must be one of" in error.message


def test_an_unknown_model_is_model_unavailable() -> None:
    api = MockAPI().reply(404, json=fixture("error_model_not_found.json"))
    with pytest.raises(ModelUnavailable) as caught:
        run(make(api, model="black-forest-labs/flux-9"))
    assert "flux-9" in caught.value.message and 'OPTIONS["model"]' in caught.value.message


def test_a_forgotten_prediction_is_not_found_and_not_retried() -> None:
    api = MockAPI().reply(404, json=fixture("error_model_not_found.json"))
    with pytest.raises(ProviderError) as caught:
        run(make(api), CallContext(resume_job_id=ID))
    assert caught.value.code == "prediction_not_found" and not caught.value.retryable


def test_a_bad_token_is_authentication_failed_without_the_token() -> None:
    api = MockAPI().reply(401, json={"title": "Unauthenticated", "detail": f"bad token {KEY}"})
    with pytest.raises(ProviderError) as caught:
        run(make(api))
    assert caught.value.code == "authentication_failed"
    assert KEY not in str(caught.value) and "REPLICATE_API_TOKEN" in str(caught.value)


def test_throttled_create_is_rate_limited_and_not_resent() -> None:
    api = MockAPI().reply(429, json=fixture("error_throttled.json"), headers={"retry-after": "7"})
    with pytest.raises(RateLimited) as caught:
        run(make(api))
    assert caught.value.retry_after == 7
    assert len(api.requests) == 1


# Catalog and prices ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "price"),
    [
        ("black-forest-labs/flux-schnell", "0.003"),
        ("black-forest-labs/flux-dev", "0.025"),
        ("black-forest-labs/flux-1.1-pro", "0.04"),
        ("black-forest-labs/flux-pro", "0.055"),
    ],
)
def test_per_image_prices_follow_the_reference(model: str, price: str) -> None:
    provider = ReplicateProvider(alias="flux", api_key=KEY, model=model)
    info = catalog.get_model("replicate", model)
    assert info is not None and info.price.describe() == f"${price} per image"
    one = ImageRequest(prompt="x", aspect_ratio="1:1")
    assert provider.estimate_cost(one) == Decimal(price).quantize(Decimal("0.000001"))
    four = provider.estimate_cost(ImageRequest(prompt="x", count=4))
    assert four == (Decimal(price) * 4).quantize(Decimal("0.000001"))


@pytest.mark.parametrize(
    ("size", "resolution", "cost"),
    [
        ((1024, 1024), "1 MP", "0.015"),
        ((1920, 1088), "2 MP", "0.030"),
        ((512, 512), "0.5 MP", "0.015"),  # rounded up to one megapixel
        ((2048, 2048), "4 MP", "0.060"),
    ],
)
def test_flux_2_pro_estimate_follows_the_resolution(size, resolution, cost) -> None:
    provider = ReplicateProvider(alias="flux", api_key=KEY, model="black-forest-labs/flux-2-pro")
    request = ImageRequest(prompt="x", width=size[0], height=size[1])
    [call], _ = provider.prepare(request)
    assert call.quality == resolution
    assert provider.estimate_cost(request) == Decimal(cost)


def test_megapixel_tiers_price_the_first_megapixel_separately() -> None:
    rule = MegapixelTiers(
        first=Decimal("0.03"), price=Decimal("0.015"), input_price=Decimal("0.015")
    )
    # Two 2 MP images and 3 MP of input: 2 x 0.03 + 2 x 0.015 + 3 x 0.015.
    assert rule.cost(4, 2, 3) == Decimal("0.135000")
    usage = {"output_megapixels": 4, "input_megapixels": 3}
    assert rule.actual(ImageRequest(prompt="x"), usage, 2) == Decimal("0.135000")
    assert rule.describe() == (
        "$0.03 for the first megapixel, $0.015 for each further one, $0.015 per input megapixel"
    )


def test_resolution_option_and_request_quality() -> None:
    provider = ReplicateProvider(
        alias="flux", api_key=KEY, model="black-forest-labs/flux-2-pro", resolution="0.5 MP"
    )
    [call], _ = provider.prepare(ImageRequest(prompt="x", width=2048, height=2048))
    assert call.quality == "0.5 MP"
    [call], _ = provider.prepare(ImageRequest(prompt="x", quality="4 MP"))
    assert call.quality == "4 MP"
    schnell = ReplicateProvider(alias="flux", api_key=KEY)
    [call], warnings = schnell.prepare(ImageRequest(prompt="x", quality="high"))
    assert call.quality is None and "no quality tiers" in warnings[0]


def test_catalog_fits_ratios_and_splits_counts_per_model() -> None:
    dev = ReplicateProvider(alias="flux", api_key=KEY, model="black-forest-labs/flux-dev")
    [call], warnings = dev.prepare(
        ImageRequest(prompt="x", width=1024, height=768, aspect_ratio="4:3")
    )
    assert call.aspect_ratio in ("3:2", "5:4") and "4:3" in warnings[0]  # dev has no 4:3
    schnell = ReplicateProvider(alias="flux", api_key=KEY)
    requests, _ = schnell.prepare(ImageRequest(prompt="x", count=6))
    assert [r.count for r in requests] == [4, 2]
    ultra = catalog.get_model("replicate", "black-forest-labs/flux-1.1-pro-ultra")
    assert ultra is not None and "webp" not in ultra.capabilities.output_formats


def test_every_catalogued_model_has_an_input_schema_and_a_price() -> None:
    for info in catalog.models_for("replicate"):
        assert replicate_catalog.schema_for(info.id) is not None, info.id
        assert info.price.kind != "free", info.id
        # Every model that takes an aspect ratio is fitted to its named ones.
        takes_ratio = "aspect_ratio" in replicate_catalog.schema_for(info.id).fields
        assert bool(info.capabilities.aspect_ratios) == takes_ratio, info.id


# Through the pipeline ----------------------------------------------------------------------


class WorkerDied(BaseException):
    """Stands for a worker process killed while it polls (nothing in the pipeline catches it)."""


def die(request: httpx.Request) -> httpx.Response:
    raise WorkerDied("killed")


@pytest.mark.django_db
def test_an_interrupted_job_resumes_by_polling_and_never_creates_a_second_prediction(settings):
    api = MockAPI().reply(201, json=prediction("starting"))
    api.reply(json=prediction("processing")).then(die)
    settings.IMAGEGEN = {
        "PROVIDERS": {"default": fake_provider_settings(BACKEND, api)},
        "DERIVATIVE_WIDTHS": [],
    }
    cdn = MockAPI()
    wire(get_provider(), cdn)

    with pytest.raises(WorkerDied):
        imagegen.generate(prompt="a red bicycle", preset="product")
    row = Generation.objects.get()
    assert (row.status, row.provider_job_id) == (Status.RUNNING, ID)  # stored before polling

    # The task is redelivered: the row goes back to the queue and runs again.
    assert row.transition(Status.QUEUED)
    api.reply(json=prediction())
    cdn.reply(content=PNG)
    done = run_generation(row.pk)

    assert done.status == Status.SUCCEEDED, done.error_message
    create = "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert calls(api) == [("POST", create), ("GET", GET), ("GET", GET), ("GET", GET)]
    assert done.provider_job_id == ID
    assert done.images.count() == 1
    assert done.cost == Decimal("0.003")
    assert done.attempts == 2


# Operations ----------------------------------------------------------------------------------


KONTEXT = "black-forest-labs/flux-kontext-pro"
FILL = "black-forest-labs/flux-fill-pro"


def data(content: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(content).decode("ascii")


def single(model: str) -> dict[str, Any]:
    """Return a finished prediction of ``model`` whose output is one URL string."""
    return {**fixture("prediction_pro_succeeded.json"), "model": model}


def test_kontext_edits_one_input_image_from_an_instruction() -> None:
    api = MockAPI().reply(201, json=single(KONTEXT))
    provider = make(api, MockAPI().reply(content=PNG), model=KONTEXT)
    [call], _ = provider.prepare(
        ImageRequest(
            prompt="a beach at dusk",
            operation="replace_background",
            source_images=(PNG,),
            output_format="png",
        )
    )
    result = provider.generate(call)
    assert api.last.url.path == f"/v1/models/{KONTEXT}/predictions"
    assert body_of(api.last)["input"] == {
        "prompt": "Change the background to a beach at dusk. Keep the subject exactly as it is: "
        "its shape, edges, colours, lighting and position.",
        "aspect_ratio": "1:1",
        "output_format": "png",
        "input_image": data(PNG),
    }
    assert result.cost == Decimal("0.040000")


def test_flux_2_restyles_with_a_reference_as_its_second_input_image() -> None:
    api = MockAPI().reply(201, json=single("black-forest-labs/flux-2-pro"))
    reference = png_bytes(color=(0, 90, 200))
    provider = make(api, MockAPI().reply(content=PNG), model="black-forest-labs/flux-2-pro")
    [call], _ = provider.prepare(
        ImageRequest(prompt="in ink", operation="restyle", source_images=(PNG, reference))
    )
    provider.generate(call)
    sent = body_of(api.last)["input"]
    assert sent["input_images"] == [data(PNG), data(reference)]
    assert sent["prompt"].startswith("Apply the style of image 2 to image 1: in ink.")


def test_fill_pro_inpaints_with_the_mask_and_no_aspect_ratio() -> None:
    api = MockAPI().reply(201, json=single(FILL))
    provider = make(api, MockAPI().reply(content=PNG), model=FILL)
    mask = png_bytes(color=(255, 255, 255))
    [call], _ = provider.prepare(
        ImageRequest(
            prompt="a blue flower",
            operation="inpaint",
            source_images=(PNG,),
            mask=mask,
            aspect_ratio="1:1",
            width=64,
            height=48,
            seed=5,
        )
    )
    result = provider.generate(call)
    assert body_of(api.last)["input"] == {
        "prompt": "a blue flower",
        "seed": 5,
        "output_format": "png",
        "image": data(PNG),
        "mask": data(mask),
    }
    assert result.cost == Decimal("0.050000")
    erase = replace(call, operation="erase", prompt="erase")
    api.reply(201, json=single(FILL))
    provider.downloader.transport = MockAPI().reply(content=PNG).transport
    provider.generate(erase)
    assert body_of(api.last)["input"]["prompt"].startswith("Empty background that continues")


@pytest.mark.parametrize(
    ("model", "fields", "message"),
    [
        (KONTEXT, {"operation": "inpaint", "mask": PNG}, "cannot inpaint"),
        ("black-forest-labs/flux-dev", {"operation": "restyle"}, "cannot restyle"),
        (SCHNELL, {"operation": "replace_background"}, "cannot replace background"),
        (FILL, {"operation": "edit"}, "cannot edit"),
    ],
)
def test_each_model_does_only_its_own_operations(model, fields, message) -> None:
    provider = make(MockAPI(), model=model)
    with pytest.raises(UnsupportedRequest, match=message):
        provider.prepare(ImageRequest(prompt="x", source_images=(PNG,), **fields))


def test_a_mask_for_a_model_without_one_is_refused_before_sending() -> None:
    api = MockAPI()
    provider = make(api, model="black-forest-labs/flux-2-pro")
    request = ImageRequest(prompt="x", operation="edit", source_images=(PNG,), mask=PNG)
    with pytest.raises(UnsupportedRequest, match="takes no mask; inpaint with flux-fill-pro"):
        provider.generate(request)
    assert api.requests == []


def test_the_catalog_describes_each_operation() -> None:
    def support(model: str, operation: str):
        return catalog.get_model("replicate", model).capabilities.support(operation)

    assert support("black-forest-labs/flux-2-flex", "restyle").max_references == 9
    assert support("black-forest-labs/flux-2-dev", "edit").max_references == 3
    assert support(KONTEXT, "search_replace").max_references == 0
    assert support(FILL, "inpaint").mask == "required"
    assert support(SCHNELL, "edit") is None
    assert support("black-forest-labs/flux-dev", "edit") is not None


@pytest.mark.django_db
def test_pipeline_inpaints_with_fill_pro_with_cost_and_lineage(settings) -> None:
    api = MockAPI().reply(201, json=single(FILL))
    settings.IMAGEGEN = {
        "PROVIDERS": {
            "default": {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"},
            "fill": fake_provider_settings(BACKEND, api, model=FILL),
        },
        "DERIVATIVE_WIDTHS": [],
    }
    wire(get_provider("fill"), MockAPI().reply(content=PNG))
    first = imagegen.generate(prompt="a vase", provider="default").images.get()
    generation = imagegen.generate(
        operation="inpaint", provider="fill", source=first, mask=(0, 0, 8, 8), prompt="a rose"
    )
    generation.refresh_from_db()
    assert generation.status == "succeeded", generation.error_message
    assert generation.estimated_cost == generation.cost == Decimal("0.050000")
    assert generation.provider_job_id == ID
    image = generation.images.get()
    assert image.lineage() == [image, first]
    sent = body_of(api.requests[0])["input"]
    assert sent["image"].startswith("data:image/png;base64,") and "mask" in sent


@pytest.mark.django_db
def test_pipeline_refused_edit_fails_the_row(settings) -> None:
    api = MockAPI().reply(201, json=fixture("prediction_failed_nsfw.json"))
    settings.IMAGEGEN = {
        "PROVIDERS": {"default": fake_provider_settings(BACKEND, api, model=KONTEXT)},
        "DERIVATIVE_WIDTHS": [],
    }
    generation = imagegen.generate(operation="edit", source=PNG, prompt="something refused")
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == ("failed", "content_rejected")
    assert generation.provider_job_id
    assert not generation.images.exists()


@pytest.mark.django_db
def test_an_interrupted_edit_resumes_by_polling_and_never_creates_a_second_prediction(settings):
    api = MockAPI().reply(201, json=prediction("starting"))
    api.reply(json=prediction("processing")).then(die)
    settings.IMAGEGEN = {
        "PROVIDERS": {"default": fake_provider_settings(BACKEND, api, model=KONTEXT)},
        "DERIVATIVE_WIDTHS": [],
    }
    cdn = MockAPI()
    wire(get_provider(), cdn)
    with pytest.raises(WorkerDied):
        imagegen.generate(operation="restyle", source=PNG, prompt="as a woodcut")
    row = Generation.objects.get()
    assert (row.status, row.provider_job_id, row.operation) == (Status.RUNNING, ID, "restyle")
    assert row.transition(Status.QUEUED)
    api.reply(json=single(KONTEXT))
    cdn.reply(content=PNG)
    done = run_generation(row.pk)
    assert done.status == Status.SUCCEEDED, done.error_message
    assert [method for method, _ in calls(api)].count("POST") == 1
    assert done.cost == Decimal("0.040000") and done.attempts == 2
