"""imagegen.testing: the public fakes answer like the real APIs, and the docs example runs."""

from __future__ import annotations

import ast
import base64
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import imagegen
from imagegen.exceptions import (
    ContentRejected,
    ModelUnavailable,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from imagegen.providers.google import GoogleProvider
from imagegen.providers.openai import OpenAIProvider
from imagegen.providers.stability import StabilityProvider
from imagegen.testing import (
    GOOGLE,
    OPENAI,
    STABILITY,
    MockAPI,
    fake_provider_settings,
    gemini_blocked_response,
    gemini_image_response,
    google_error,
    multipart_parts,
    openai_error,
    openai_image_response,
    png_bytes,
    stability_error,
    stability_image_response,
)
from imagegen.types import CallContext, ImageRequest, ImageResult

DOCS = Path(__file__).resolve().parent.parent / "docs" / "testing.md"
PNG = png_bytes(8, 8, (10, 20, 30))


def run(cls: type, api: MockAPI, **options: Any) -> ImageResult:
    provider = cls(alias="fake", api_key="test-key", transport=api.transport, **options)
    return provider.generate(ImageRequest(prompt="a red bicycle"), context=CallContext())


# The example in docs/testing.md ("Faking an HTTP provider"), verbatim -------------------------


@pytest.fixture
def openai_api(settings):
    api = MockAPI()
    settings.IMAGEGEN = {"PROVIDERS": {"default": fake_provider_settings(OPENAI, api)}}
    return api


@pytest.mark.django_db
def test_a_generation_is_stored_and_costed(openai_api):
    image = png_bytes(64, 64)
    openai_api.reply(openai_image_response([image]))

    generation = imagegen.generate(prompt="a red bicycle", provider="default")

    assert generation.status == "succeeded"
    assert generation.images.get().file.read() == image
    # 10 text input tokens at $5 and 1056 image output tokens at $30 per million.
    assert generation.cost == Decimal("0.031730")
    assert "a red bicycle" in openai_api.last_json()["prompt"]


@pytest.mark.django_db
def test_a_refused_prompt_fails_the_generation(openai_api):
    openai_api.reply(openai_error(400, "moderation_blocked", "Rejected by the safety system."))

    generation = imagegen.generate(prompt="something refused", provider="default")

    assert generation.status == "failed"
    assert generation.error_code == "content_rejected"
    assert not generation.images.exists()


def docs_example() -> str:
    match = re.search(r"```python\n# tests/test_generation\.py\n(.*?)```", DOCS.read_text(), re.S)
    assert match, "docs/testing.md lost its tests/test_generation.py example"
    return match.group(1)


def test_the_docs_example_is_the_code_above() -> None:
    ours = ast.parse(Path(__file__).read_text()).body
    imported = {
        (getattr(node, "module", None), alias.name)
        for node in ours
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    definitions = {ast.dump(node) for node in ours}
    for node in ast.parse(docs_example()).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                assert (getattr(node, "module", None), alias.name) in imported
        else:
            assert ast.dump(node) in definitions, ast.unparse(node)[:80]


# The module itself --------------------------------------------------------------------------


def test_importable_without_pytest_or_django_settings() -> None:
    code = (
        "import sys, imagegen.testing\n"
        "assert 'pytest' not in sys.modules and 'django.conf' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_fake_provider_settings() -> None:
    api = MockAPI()
    assert fake_provider_settings(STABILITY, api, accept="json") == {
        "BACKEND": "imagegen.providers.stability.StabilityProvider",
        "OPTIONS": {"api_key": "test-key", "transport": api.transport, "accept": "json"},
    }
    assert fake_provider_settings(GOOGLE, api)["BACKEND"].endswith(".GoogleProvider")
    assert fake_provider_settings(OPENAI, api, api_key="sk-x")["OPTIONS"]["api_key"] == "sk-x"


def test_mock_api_replays_a_built_response_and_records_requests() -> None:
    api = MockAPI().reply(openai_image_response([PNG]), times=2)
    with httpx.Client(transport=api.transport, base_url="https://x.test") as client:
        first = client.post("/a", json={"n": 1})
        second = client.post("/b", json={"n": 2})
        missing = client.get("/c")
    assert first.json() == second.json() and first.status_code == 200
    assert missing.status_code == 599
    assert [r.url.path for r in api.requests] == ["/a", "/b", "/c"]
    assert api.requests[1].content == b'{"n":2}'


def test_multipart_parts_refuses_other_bodies() -> None:
    with pytest.raises(ValueError, match="multipart"):
        multipart_parts(httpx.Request("POST", "https://x.test", json={}))


def test_png_bytes() -> None:
    assert PNG.startswith(b"\x89PNG\r\n\x1a\n")
    assert png_bytes() != PNG


# Success builders parse as the real providers read them -------------------------------------


def test_openai_image_response() -> None:
    api = MockAPI().reply(openai_image_response([PNG, PNG], revised_prompt="a bike"))
    result = run(OpenAIProvider, api)
    assert [(i.content, i.mime_type, i.revised_prompt) for i in result.images] == [
        (PNG, "image/png", "a bike")
    ] * 2
    assert result.usage["image_output_tokens"] == 2112
    assert result.cost == Decimal("0.063410")  # 10*5 + 2112*30 per million
    assert (result.job_id, result.warnings) == ("req_test", ())


def test_openai_usage_as_given_or_left_out() -> None:
    api = MockAPI().reply(openai_image_response(usage={"input_tokens": 10, "output_tokens": 4160}))
    assert run(OpenAIProvider, api, model="gpt-image-1").cost == Decimal("0.166450")
    api.reply(openai_image_response(usage=False))
    result = run(OpenAIProvider, api)
    assert result.usage == {}
    assert "catalog estimate" in result.warnings[0]


@pytest.mark.parametrize("accept", ["json", "image"])
def test_stability_image_response(accept: str) -> None:
    api = MockAPI().reply(stability_image_response(PNG, seed=7, accept=accept))
    result = run(StabilityProvider, api, accept="json", model="sd3.5-large")
    assert [(i.content, i.mime_type, i.seed) for i in result.images] == [(PNG, "image/png", 7)]
    assert (result.cost, result.usage) == (Decimal("0.065000"), {"credits": 6.5})
    assert result.job_id == "req-test"


def test_stability_filtered_response_is_charged_without_an_image() -> None:
    api = MockAPI().reply(stability_image_response(finish_reason="CONTENT_FILTERED"))
    result = run(StabilityProvider, api)
    assert (result.images, result.filtered, result.cost) == ((), True, Decimal("0.030000"))


def test_gemini_image_response() -> None:
    api = MockAPI().reply(gemini_image_response([PNG], text="Here is your bicycle."))
    result = run(GoogleProvider, api)
    assert [(i.content, i.mime_type) for i in result.images] == [(PNG, "image/png")]
    # The default model, gemini-nano-banana-2.1: 10*1.50 + 1120*30 per million.
    assert result.cost == Decimal("0.033615")
    assert (result.job_id, result.warnings) == ("resp-test", ())
    api.reply(gemini_image_response(usage=False))
    assert "catalog estimate" in run(GoogleProvider, api).warnings[0]


@pytest.mark.parametrize(
    "response",
    [gemini_blocked_response(), gemini_image_response([], finish_reason="IMAGE_SAFETY")],
)
def test_gemini_refusals(response: httpx.Response) -> None:
    with pytest.raises(ContentRejected):
        run(GoogleProvider, MockAPI().reply(response))


def test_builders_encode_base64_images() -> None:
    body = openai_image_response([PNG]).json()
    assert base64.b64decode(body["data"][0]["b64_json"]) == PNG


# Error builders map to the right exceptions -------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "response", "error", "code", "retry_after"),
    [
        (OpenAIProvider, openai_error(400, "moderation_blocked"), ContentRejected,
         "content_rejected", None),
        (OpenAIProvider, openai_error(429, "rate_limit_exceeded", retry_after=12), RateLimited,
         "rate_limited", 12.0),
        (OpenAIProvider, openai_error(429, "insufficient_quota"), QuotaExceeded,
         "quota_exceeded", None),
        (OpenAIProvider, openai_error(401, "invalid_api_key"), ProviderError,
         "authentication_failed", None),
        (OpenAIProvider, openai_error(500), ProviderUnavailable, "provider_unavailable", None),
        (StabilityProvider, stability_error(403), ContentRejected, "content_rejected", None),
        (StabilityProvider, stability_error(422, "public_figure"), ContentRejected,
         "content_rejected", None),
        (StabilityProvider, stability_error(429), RateLimited, "rate_limited", 60.0),
        (StabilityProvider, stability_error(402), QuotaExceeded, "quota_exceeded", None),
        (StabilityProvider, stability_error(500), ProviderUnavailable, "provider_unavailable",
         None),
        (GoogleProvider, google_error(429, retry_delay=27), RateLimited, "rate_limited", 27.0),
        (GoogleProvider, google_error(400, reason="API_KEY_INVALID"), ProviderError,
         "authentication_failed", None),
        (GoogleProvider, google_error(400), ProviderError, "invalid_request", None),
        (GoogleProvider, google_error(404), ModelUnavailable, "model_unavailable", None),
        (GoogleProvider, google_error(503), ProviderUnavailable, "provider_unavailable", None),
    ],
)  # fmt: skip
def test_error_builders(cls, response, error, code, retry_after) -> None:
    with pytest.raises(error) as caught:
        run(cls, MockAPI().reply(response))
    assert type(caught.value) is error
    assert caught.value.code == code
    assert getattr(caught.value, "retry_after", None) == retry_after
