"""Tests for the Google provider at the wire level (provider-apis.md §4), behind a MockTransport."""

from __future__ import annotations

import base64
import datetime
import logging
from decimal import Decimal
from types import SimpleNamespace

import pytest

import imagegen
from imagegen import catalog
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
from imagegen.providers import google
from imagegen.providers.google import GoogleProvider, usage_from
from imagegen.types import ImageRequest
from tests.conftest import media_files, png_bytes
from tests.providers.support import PROMPT, Harness

# Shaped like a real key, so the key-like pattern scrubbing is exercised too.
KEY = "AIzaSyTEST-0123456789abcdefghijklmnopqr"
ROOT = "https://generativelanguage.googleapis.com/v1beta"
GOOGLE = Harness(GoogleProvider, "google", key=KEY)
fixture, make, run = GOOGLE.fixture, GOOGLE.make, GOOGLE.run


def image_of(payload: dict, index: int = 0) -> bytes:
    part = payload["candidates"][0]["content"]["parts"][index]
    return base64.b64decode(part["inlineData"]["data"])


# Gemini: the request ------------------------------------------------------------------------


def test_identity() -> None:
    provider = GoogleProvider(alias="google", api_key=KEY)
    assert (provider.catalog_key, provider.display_name) == ("google", "Google")
    # Google's changelog, 2026-10-06: the successor of the deprecated gemini-3.1-flash-image.
    assert provider.model == "gemini-nano-banana-2.1"
    assert not provider.model_info().deprecated
    assert provider.base_url == ROOT
    assert provider.api_key_env == "GEMINI_API_KEY"
    assert KEY not in repr(provider)


def test_image_size_option_is_validated() -> None:
    with pytest.raises(InvalidProviderError, match="image_size"):
        GoogleProvider(alias="google", api_key=KEY, image_size="8K")


def test_gemini_request_on_the_wire(mock_api) -> None:
    mock_api.reply(json=fixture("generate.json"))
    run(make(mock_api), width=1536, height=864, aspect_ratio="16:9")
    sent = mock_api.last
    assert sent.method == "POST"
    assert str(sent.url) == f"{ROOT}/models/gemini-nano-banana-2.1:generateContent"
    assert sent.url.query == b""
    assert KEY not in str(sent.url)
    assert sent.headers["x-goog-api-key"] == KEY
    assert "authorization" not in sent.headers
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["user-agent"] == f"imagegen/{imagegen.__version__}"
    assert mock_api.last_json() == {
        "contents": [{"parts": [{"text": PROMPT}]}],
        "generationConfig": {
            "responseModalities": ["IMAGE"],
            "imageConfig": {"aspectRatio": "16:9"},
        },
    }


@pytest.mark.parametrize(
    ("model", "option", "quality", "sent"),
    [
        ("gemini-3.1-flash-image", "2K", None, "2K"),
        ("gemini-3.1-flash-image", "2K", "4K", "4K"),  # the request's size wins
        ("gemini-3-pro-image", None, "1K", "1K"),
        ("gemini-3-pro-image", "4K", "high", "4K"),  # not a size: the option applies
        ("gemini-2.5-flash-image", "2K", "4K", None),  # 1K only: imageSize is never sent
    ],
)
def test_image_size_comes_from_the_request_or_the_option(
    mock_api, model, option, quality, sent
) -> None:
    mock_api.reply(json=fixture("generate.json"))
    run(make(mock_api, image_size=option), model=model, quality=quality, aspect_ratio="1:1")
    config = mock_api.last_json()["generationConfig"]["imageConfig"]
    assert config == {"aspectRatio": "1:1", **({"imageSize": sent} if sent else {})}
    assert mock_api.last.url.path == f"/v1beta/models/{model}:generateContent"


def test_without_an_aspect_ratio_the_api_default_applies(mock_api) -> None:
    # The pipeline always sends one: the catalog fits every request to the model's ratios.
    mock_api.reply(json=fixture("generate.json"))
    run(make(mock_api), width=1024, height=1536)
    assert mock_api.last_json()["generationConfig"]["imageConfig"] == {}


def test_extra_is_merged_into_the_body(mock_api) -> None:
    mock_api.reply(json=fixture("generate.json"))
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}]
    extra = {
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"]},
        "safetySettings": safety,
    }
    run(make(mock_api, image_size="2K"), aspect_ratio="3:2", extra=extra)
    assert mock_api.last_json()["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "3:2", "imageSize": "2K"},
    }
    assert mock_api.last_json()["safetySettings"] == safety


def test_edit_sends_the_source_images_as_inline_data(mock_api) -> None:
    mock_api.reply(json=fixture("edit.json"))
    first, second = png_bytes(), png_bytes(fmt="JPEG")
    result = run(
        make(mock_api), operation="edit", source_images=(first, second), aspect_ratio="4:3"
    )
    parts = mock_api.last_json()["contents"][0]["parts"]
    assert parts == [
        {"text": PROMPT},
        {"inline_data": {"mime_type": "image/png", "data": base64.b64encode(first).decode()}},
        {"inline_data": {"mime_type": "image/jpeg", "data": base64.b64encode(second).decode()}},
    ]
    assert result.usage["image_input_tokens"] == 1120
    # 20 text-in and 1120 image-in tokens at $1.50, 1120 image-out at $30, per million.
    assert result.cost == Decimal("0.035310")
    assert result.job_id == "resp-edit-2"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"operation": "edit"}, "at least one source image"),
        ({"operation": "edit", "source_images": (b"GIF89a....",)}, "PNG, JPEG or WebP"),
        ({"operation": "edit", "model": "imagen-4.0-generate-001"}, "cannot edit"),
    ],
)
def test_impossible_edits_are_refused_before_sending(mock_api, fields, message) -> None:
    with pytest.raises(UnsupportedRequest, match=message):
        run(make(mock_api), **fields)
    assert mock_api.requests == []


def test_imagen_edits_are_refused_when_planning() -> None:
    provider = GoogleProvider(alias="google", api_key=KEY, model="imagen-4.0-generate-001")
    with pytest.raises(UnsupportedRequest, match="cannot edit"):
        provider.prepare(ImageRequest(prompt=PROMPT, operation="edit", source_images=(b"x",)))
    with pytest.raises(UnsupportedRequest):
        provider.prepare(ImageRequest(prompt=PROMPT, operation="upscale"))


# Gemini: the answer -------------------------------------------------------------------------


def test_gemini_answer_is_parsed(mock_api) -> None:
    payload = fixture("generate.json")
    mock_api.reply(json=payload)
    result = run(make(mock_api))
    assert [image.content for image in result.images] == [image_of(payload)]
    assert result.images[0].mime_type == "image/png"
    assert result.model == "gemini-nano-banana-2.1"
    assert result.job_id == "resp-7f3a9c"
    assert result.usage == {
        "text_input_tokens": 12,
        "image_input_tokens": 0,
        "image_output_tokens": 1120,
        "text_output_tokens": 0,
        "prompt_tokens": 12,
        "candidates_tokens": 1120,
        "thoughts_tokens": 0,
        "total_tokens": 1132,
    }
    assert result.warnings == ()
    assert not result.filtered


@pytest.mark.parametrize(
    ("model", "cost"),
    [
        # 12 text-in and 1120 image-out tokens at the catalog's per-million prices.
        ("gemini-3.1-flash-image", "0.067206"),  # 12*0.50 + 1120*60
        ("gemini-3-pro-image", "0.134424"),  # 12*2 + 1120*120
        ("gemini-nano-banana-2.1", "0.033618"),  # 12*1.50 + 1120*30
        ("gemini-2.5-flash-image", "0.033604"),  # 12*0.30 + 1120*30
    ],
)
def test_cost_comes_from_usage_at_the_model_token_prices(mock_api, model: str, cost: str) -> None:
    mock_api.reply(json=fixture("generate.json"))
    assert run(make(mock_api), model=model).cost == Decimal(cost)


def test_reference_example_gemini_2_5_flash_image(mock_api) -> None:
    # §4.6: "about $0.039/image (1290 tokens x $30/1M)".
    payload = fixture("generate.json")
    payload["usageMetadata"] = {"candidatesTokenCount": 1290, "totalTokenCount": 1290}
    mock_api.reply(json=payload)
    result = run(make(mock_api), model="gemini-2.5-flash-image")
    assert result.usage["image_output_tokens"] == 1290
    assert result.cost == Decimal("0.038700")


def test_thinking_drafts_are_skipped_and_thoughts_billed_as_text_output(mock_api) -> None:
    payload = fixture("generate_thinking.json")
    mock_api.reply(json=payload)
    result = run(make(mock_api), model="gemini-3-pro-image")
    # Only the final image: the thought-marked draft before it is not the answer.
    assert [image.content for image in result.images] == [image_of(payload, 3)]
    assert result.images[0].mime_type == "image/jpeg"
    assert (result.usage["text_output_tokens"], result.usage["thoughts_tokens"]) == (310, 250)
    # 15*2 + 1120*120 + (60 + 250)*12 = 138150 micro-dollars
    assert result.cost == Decimal("0.138150")


def test_usage_from_tolerates_missing_pieces() -> None:
    assert usage_from(None) == {}
    assert usage_from({}) == {}
    assert usage_from({"promptTokenCount": 7, "candidatesTokenCount": 1290}) == {
        "text_input_tokens": 7,
        "image_input_tokens": 0,
        "image_output_tokens": 1290,
        "text_output_tokens": 0,
        "prompt_tokens": 7,
        "candidates_tokens": 1290,
        "thoughts_tokens": 0,
        "total_tokens": 1297,
    }


@pytest.mark.parametrize(("image_size", "cost"), [(None, "0.033750"), ("2K", "0.050550")])
def test_missing_usage_bills_the_estimate_with_a_warning(mock_api, image_size, cost) -> None:
    payload = fixture("generate.json")
    del payload["usageMetadata"]
    mock_api.reply(json=payload)
    result = run(make(mock_api, image_size=image_size))
    # 100 estimated prompt tokens at $1.50 + 1120 (1K) or 1680 (2K) tokens at $30, per million.
    assert result.cost == Decimal(cost)
    assert result.usage == {}
    assert "no token usage" in result.warnings[0]


# Gemini: safety and unusable answers --------------------------------------------------------


@pytest.mark.parametrize(
    "reason",
    [
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "IMAGE_RECITATION",
        "NO_IMAGE",
        "IMAGE_OTHER",
    ],
)
def test_finish_reasons_without_an_image_are_content_rejected(mock_api, reason: str) -> None:
    payload = fixture("finish_image_safety.json")
    payload["candidates"][0]["finishReason"] = reason
    mock_api.reply(json=payload)
    with pytest.raises(ContentRejected) as caught:
        run(make(mock_api))
    error = caught.value
    assert (error.code, error.retryable, error.provider) == ("content_rejected", False, "google")
    assert f"({reason})" in str(error)
    assert "it may violate the usage policy" in str(error)
    assert str(error).endswith("the same request will be refused again.")


@pytest.mark.parametrize(
    "reason", ["SAFETY", "PROHIBITED_CONTENT", "IMAGE_SAFETY", "BLOCKLIST", "OTHER"]
)
def test_block_reasons_are_content_rejected(mock_api, reason: str) -> None:
    payload = fixture("blocked_prompt.json")
    payload["promptFeedback"]["blockReason"] = reason
    mock_api.reply(json=payload)
    with pytest.raises(ContentRejected) as caught:
        run(make(mock_api))
    assert str(caught.value).startswith(f"Google blocked the prompt ({reason}): The prompt was")


def test_answer_without_image_or_safety_reason_is_an_invalid_response(mock_api) -> None:
    mock_api.reply(json=fixture("no_image.json"))
    with pytest.raises(InvalidResponse) as caught:
        run(make(mock_api))
    assert caught.value.code == "no_images"
    assert str(caught.value) == (
        "Google answered without an image (finish reason STOP): "
        "I can describe a lighthouse, if you like."
    )


@pytest.mark.parametrize("payload", [{}, {"candidates": []}, {"candidates": [{}]}])
def test_empty_answers_are_invalid_responses(mock_api, payload) -> None:
    mock_api.reply(json=payload)
    with pytest.raises(InvalidResponse) as caught:
        run(make(mock_api))
    assert caught.value.code == "no_images"


@pytest.mark.parametrize("data", ["not base64!", 12, ""])
def test_bad_base64_is_an_invalid_response(mock_api, data) -> None:
    payload = fixture("generate.json")
    payload["candidates"][0]["content"]["parts"][0]["inlineData"]["data"] = data
    mock_api.reply(json=payload)
    with pytest.raises(InvalidResponse) as caught:
        run(make(mock_api))
    assert caught.value.code == "bad_base64"


def test_non_json_success_is_an_invalid_response(mock_api) -> None:
    mock_api.reply(content=b"<html>gateway</html>")
    with pytest.raises(InvalidResponse) as caught:
        run(make(mock_api))
    assert caught.value.code == "invalid_json"


# Imagen 4 (legacy :predict) -----------------------------------------------------------------


def test_imagen_request_and_answer(mock_api) -> None:
    payload = fixture("imagen_predict.json")
    mock_api.reply(json=payload)
    provider = make(mock_api, model="imagen-4.0-generate-001", image_size="2K")
    calls, warnings = provider.prepare(
        ImageRequest(prompt=PROMPT, width=1536, height=864, count=3, output_format="jpeg")
    )
    assert (len(calls), warnings) == (1, [])
    result = provider.generate(calls[0])
    sent = mock_api.last
    assert str(sent.url) == f"{ROOT}/models/imagen-4.0-generate-001:predict"
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.headers["content-type"] == "application/json"
    assert mock_api.last_json() == {
        "instances": [{"prompt": PROMPT}],
        "parameters": {
            "sampleCount": 3,
            "aspectRatio": "16:9",
            "includeRaiReason": True,
            "outputOptions": {"mimeType": "image/jpeg"},
            "sampleImageSize": "2K",
        },
    }
    first, third = payload["predictions"][0], payload["predictions"][2]
    assert [i.content for i in result.images] == [
        base64.b64decode(first["bytesBase64Encoded"]),
        base64.b64decode(third["bytesBase64Encoded"]),
    ]
    assert [i.mime_type for i in result.images] == ["image/png", "image/jpeg"]
    # §4.5: filtered images are not billed: 2 x $0.04.
    assert result.cost == Decimal("0.080000")
    assert result.warnings == (
        "Google's safety filters withheld 1 of 3 images: An image was filtered out because it "
        "may contain a depiction of a real person.",
    )


@pytest.mark.parametrize(
    ("model", "cost"),
    [
        ("imagen-4.0-fast-generate-001", "0.040000"),
        ("imagen-4.0-generate-001", "0.080000"),
        ("imagen-4.0-ultra-generate-001", "0.120000"),
    ],
)
def test_imagen_is_priced_per_returned_image(mock_api, model: str, cost: str) -> None:
    mock_api.reply(json=fixture("imagen_predict.json"))
    assert run(make(mock_api), model=model, count=3).cost == Decimal(cost)


def test_imagen_fast_has_no_2k(mock_api) -> None:
    mock_api.reply(json=fixture("imagen_predict.json"))
    provider = make(mock_api, model="imagen-4.0-fast-generate-001", image_size="2K")
    calls, warnings = provider.prepare(ImageRequest(prompt=PROMPT, count=2))
    assert warnings == [
        "imagen-4.0-fast-generate-001 does not offer image size 2K; using its default."
    ]
    provider.generate(calls[0])
    assert "sampleImageSize" not in mock_api.last_json()["parameters"]
    assert mock_api.last_json()["parameters"]["aspectRatio"] == "1:1"


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ({"predictions": [{"raiFilteredReason": "Unsafe content."}]}, "every image: Unsafe"),
        ({}, "Imagen leaves out images its filters block"),
    ],
)
def test_imagen_without_images_is_content_rejected(mock_api, payload, text) -> None:
    mock_api.reply(json=payload)
    with pytest.raises(ContentRejected) as caught:
        run(make(mock_api), model="imagen-4.0-ultra-generate-001")
    assert text in str(caught.value)


@pytest.mark.parametrize("prediction", [{"bytesBase64Encoded": "%%%"}, {"mimeType": "image/png"}])
def test_imagen_unusable_predictions_are_invalid_responses(mock_api, prediction) -> None:
    mock_api.reply(json={"predictions": [prediction]})
    with pytest.raises(InvalidResponse):
        run(make(mock_api), model="imagen-4.0-generate-001")


# Errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name", "cls", "code", "retryable", "text"),
    [
        (400, "error_invalid_argument.json", ProviderError, "invalid_request", False,
         "Google refused the request: Invalid value at "
         "'generation_config.image_config.aspect_ratio': 5:7 is not supported."),
        (400, "error_api_key_invalid.json", ProviderError, "authentication_failed", False,
         "GEMINI_API_KEY"),
        (403, "error_permission_denied.json", ProviderError, "authentication_failed", False,
         "(PERMISSION_DENIED)"),
        (401, "error_unauthenticated.json", ProviderError, "authentication_failed", False,
         "(UNAUTHENTICATED)"),
        (429, "error_resource_exhausted.json", RateLimited, "rate_limited", True,
         "Try again in 27 s."),
        (503, "error_unavailable.json", ProviderUnavailable, "provider_unavailable", True,
         "The model is overloaded"),
        (500, "error_internal.json", ProviderUnavailable, "provider_unavailable", True,
         "temporary failure"),
    ],
)  # fmt: skip
def test_error_shapes_map_to_the_error_tree(
    mock_api, status, name, cls, code, retryable, text
) -> None:
    GOOGLE.check_error(mock_api, status, fixture(name), cls, code, retryable=retryable, text=text)


def test_rate_limit_prefers_the_retry_after_header(mock_api) -> None:
    body = fixture("error_resource_exhausted.json")
    mock_api.reply(429, json=body, headers={"retry-after": "5"}).reply(429, json=body)
    provider = make(mock_api)
    with pytest.raises(RateLimited) as caught:
        run(provider)
    assert caught.value.retry_after == 5.0
    with pytest.raises(RateLimited) as caught:
        run(provider)
    assert caught.value.retry_after == 27.0


def test_shut_down_imagen_model_names_its_successor(mock_api) -> None:
    mock_api.reply(404, json=fixture("error_not_found.json"))
    with pytest.raises(ModelUnavailable) as caught:
        run(make(mock_api), model="imagen-4.0-generate-001")
    error = caught.value
    assert error.successor == "gemini-nano-banana-2.1"
    assert (error.code, error.retryable, error.status_code) == ("model_unavailable", False, 404)
    assert str(error) == (
        "Google shut down the model imagen-4.0-generate-001 on 2026-08-17. "
        'Use gemini-nano-banana-2.1 instead (OPTIONS["model"]).'
    )


@pytest.mark.parametrize(
    ("model", "successor"),
    [
        ("imagen-4.0-ultra-generate-001", "gemini-3-pro-image"),
        ("imagen-4.0-fast-generate-001", "gemini-nano-banana-2.1"),
        ("gemini-2.5-flash-image", "gemini-nano-banana-2.1"),
        ("gemini-3.1-flash-image-preview", "gemini-nano-banana-2.1"),
        ("gemini-3-pro-image-preview", "gemini-3-pro-image"),
        ("gemini-9-image", None),
    ],
)
def test_unavailable_models_name_the_catalog_successor(mock_api, model, successor) -> None:
    body = fixture("error_not_found.json")
    body["error"]["message"] = f"models/{model} is not found for API version v1beta."
    mock_api.reply(404, json=body)
    with pytest.raises(ModelUnavailable) as caught:
        run(make(mock_api), model=model)
    assert caught.value.successor == successor
    if successor:
        assert f'Use {successor} instead (OPTIONS["model"]).' in str(caught.value)
    else:
        assert model in str(caught.value)


def test_gemini_model_past_its_shutdown_date_names_its_successor(mock_api, monkeypatch) -> None:
    class AfterShutdown(datetime.date):
        @classmethod
        def today(cls) -> datetime.date:
            return cls(2027, 3, 16)

    # Only the provider module's view of the date moves, not the datetime module itself.
    monkeypatch.setattr(google, "datetime", SimpleNamespace(date=AfterShutdown))
    mock_api.reply(404, json=fixture("error_not_found.json"))
    with pytest.raises(ModelUnavailable) as caught:
        run(make(mock_api), model="gemini-2.5-flash-image")
    assert caught.value.successor == "gemini-nano-banana-2.1"
    assert str(caught.value) == (
        "Google shut down the model gemini-2.5-flash-image on 2026-10-02. "
        'Use gemini-nano-banana-2.1 instead (OPTIONS["model"]).'
    )


def test_the_key_never_reaches_urls_logs_or_messages(mock_api, caplog) -> None:
    other = "AIzaSyOTHER-abcdefghijklmnopqrstuvwxyz0"
    body = {"error": {"code": 400, "message": f"Keys {KEY} and {other} are invalid.",
                      "status": "INVALID_ARGUMENT"}}  # fmt: skip
    mock_api.reply(json=fixture("generate.json")).reply(400, json=body)
    provider = make(mock_api)
    with caplog.at_level(logging.DEBUG):
        run(provider)
        with pytest.raises(ProviderError) as caught:
            run(provider)
    assert KEY not in str(caught.value) and other not in str(caught.value)
    assert "[redacted]" in str(caught.value)
    assert all(KEY not in str(request.url) for request in mock_api.requests)
    assert KEY not in caplog.text


# Catalog and estimates ----------------------------------------------------------------------


def test_catalog_lists_gemini_and_imagen_with_lifecycles() -> None:
    models = {info.id: info for info in catalog.models_for("google")}
    assert set(models) == {
        "gemini-3.1-flash-image",
        "gemini-3.1-flash-image-preview",
        "gemini-3.1-flash-lite-image",
        "gemini-3-pro-image",
        "gemini-3-pro-image-preview",
        "gemini-nano-banana-2.1",
        "gemini-2.5-flash-image",
        "imagen-4.0-fast-generate-001",
        "imagen-4.0-generate-001",
        "imagen-4.0-ultra-generate-001",
    }
    day = datetime.date(2026, 12, 5)
    assert {m.id for m in models.values() if m.status(day) == "active"} == {
        "gemini-3.1-flash-lite-image",
        "gemini-3-pro-image",
        "gemini-nano-banana-2.1",
    }
    # Google's changelog, 2026-10-06: deprecated with no shutdown date yet.
    flash = models["gemini-3.1-flash-image"]
    assert (flash.status(day), flash.shutdown) == ("deprecated", None)
    assert flash.successor == "gemini-nano-banana-2.1"
    # Google's deprecations page: shut down 2026-10-02.
    assert models["gemini-2.5-flash-image"].status(day) == "shut down"
    assert models["gemini-2.5-flash-image"].shutdown == datetime.date(2026, 10, 2)
    for model_id in ("gemini-3.1-flash-image-preview", "gemini-3-pro-image-preview"):
        assert models[model_id].shutdown == datetime.date(2026, 6, 25)
    assert "8:1" in models["gemini-nano-banana-2.1"].capabilities.aspect_ratios
    for model_id in ("imagen-4.0-fast-generate-001", "imagen-4.0-generate-001"):
        assert models[model_id].shutdown == datetime.date(2026, 8, 17)
        assert models[model_id].successor == "gemini-nano-banana-2.1"
    assert models["imagen-4.0-ultra-generate-001"].successor == "gemini-3-pro-image"
    for info in models.values():
        caps = info.capabilities
        assert "16:9" in caps.aspect_ratios and not caps.seed and not caps.negative_prompt
        assert caps.max_count == (4 if info.id.startswith("imagen-") else 1)
        assert caps.edit is info.id.startswith("gemini-")


def test_hero_size_becomes_16_9_and_counts_are_split() -> None:
    provider = GoogleProvider(alias="google", api_key=KEY)
    request = ImageRequest(
        prompt=PROMPT, width=1536, height=864, count=3, seed=4, negative_prompt="text"
    )
    calls, warnings = provider.prepare(request)
    assert [c.count for c in calls] == [1, 1, 1]
    assert {(c.aspect_ratio, c.seed, c.negative_prompt, c.quality) for c in calls} == {
        ("16:9", None, "", None)
    }
    assert len(warnings) == 3  # seed, negative prompt, split


def test_a_quality_tier_is_ignored_with_a_warning() -> None:
    provider = GoogleProvider(alias="google", api_key=KEY, image_size="2K")
    calls, warnings = provider.prepare(ImageRequest(prompt=PROMPT, quality="high"))
    assert calls[0].quality == "2K"
    assert warnings == ["Google has no quality tiers; 'high' was ignored."]


@pytest.mark.parametrize(
    ("model", "size", "count", "expected"),
    [
        # 100 prompt tokens at the input rate + the image-size token count at the output rate.
        ("gemini-3.1-flash-image", None, 1, "0.067250"),  # 50 + 1120*60
        ("gemini-3.1-flash-image", "2K", 1, "0.100850"),  # 50 + 1680*60
        ("gemini-3.1-flash-image", "4K", 2, "0.302500"),  # 2 calls of 50 + 2520*60
        ("gemini-3-pro-image", "4K", 1, "0.240200"),  # 200 + 2000*120
        ("gemini-nano-banana-2.1", "1K", 1, "0.033750"),  # 150 + 1120*30
        ("gemini-2.5-flash-image", None, 1, "0.038730"),  # 30 + 1290*30
        ("imagen-4.0-ultra-generate-001", None, 3, "0.180000"),  # 3 x $0.06
    ],
)
def test_estimates_follow_the_catalog(model, size, count, expected) -> None:
    provider = GoogleProvider(alias="google", api_key=KEY, model=model, image_size=size)
    request = ImageRequest(prompt=PROMPT, count=count)
    assert provider.estimate_cost(request) == Decimal(expected)


# The whole pipeline -------------------------------------------------------------------------


@pytest.mark.django_db
def test_pipeline_hero_succeeds_with_cost_from_usage(settings, mock_api) -> None:
    GOOGLE.configure(settings, mock_api, api_key="k-test")
    payload = fixture("generate.json")
    mock_api.reply(json=payload)
    generation = imagegen.generate(prompt="a red fox", provider="google", preset="hero")
    generation.refresh_from_db()
    assert generation.status == "succeeded", generation.error_message
    assert generation.model == "gemini-nano-banana-2.1"
    assert generation.estimated_cost == Decimal("0.033750")  # 100*1.50 + 1120*30 per million
    assert generation.cost == Decimal("0.033618")  # 12*1.50 + 1120*30 per million
    assert generation.usage["image_output_tokens"] == 1120
    assert generation.provider_job_id == "resp-7f3a9c"
    image = generation.images.get()
    assert image.mime_type == "image/png"
    assert image.file.read() == image_of(payload)
    sent = mock_api.last
    assert str(sent.url) == f"{ROOT}/models/gemini-nano-banana-2.1:generateContent"
    assert sent.headers["x-goog-api-key"] == "k-test"
    body = mock_api.last_json()
    assert body["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
    assert body["contents"][0]["parts"][0]["text"].startswith("a red fox")


@pytest.mark.django_db
def test_pipeline_fails_on_a_safety_refusal_billed_for_the_reported_tokens(
    settings, mock_api
) -> None:
    GOOGLE.configure(settings, mock_api, api_key="k-test")
    mock_api.reply(json=fixture("finish_image_safety.json"))
    generation = imagegen.generate(prompt="something refused", provider="google")
    generation.refresh_from_db()
    assert generation.status == "failed"
    assert generation.error_code == "content_rejected"
    assert "IMAGE_SAFETY" in generation.error_message
    # usageMetadata reports the 14 prompt tokens Google billed, and no output: a tiny charge.
    assert Decimal(0) < generation.cost < Decimal("0.0001")
    assert generation.unconfirmed_cost == 0
    assert not generation.images.exists()
    assert media_files(settings) == []


# Operations ----------------------------------------------------------------------------------


def inline(content: bytes) -> dict:
    return {"inline_data": {"mime_type": "image/png", "data": base64.b64encode(content).decode()}}


@pytest.mark.parametrize(
    ("operation", "search", "references", "text"),
    [
        ("edit", "", 1, "a beach at noon"),
        ("replace_background", "", 0,
         "Using the provided image, replace the background with: a beach at noon. Keep the "
         "subject exactly as it is: its shape, edges, colours, lighting and position."),
        ("search_replace", "the blue bottle", 0,
         "Using the provided image, replace the blue bottle with a beach at noon. Keep "
         "everything else in the image exactly the same."),
        ("search_recolor", "the blue bottle", 0,
         "Using the provided image, change the colour of the blue bottle: a beach at noon. Keep "
         "everything else in the image exactly the same."),
        ("restyle", "", 0,
         "Using the provided image, restyle it: a beach at noon. Keep its subject and "
         "composition."),
        ("restyle", "", 2,
         "Apply the style of the second image to the first image: a beach at noon. Keep the "
         "first image's subject and composition; take only the look (palette, texture, medium) "
         "from the second."),
    ],
)  # fmt: skip
def test_operations_are_instructions_over_the_source_then_the_references(
    mock_api, operation, search, references, text
) -> None:
    mock_api.reply(json=fixture("edit.json"))
    images = (png_bytes(), png_bytes(color=(0, 90, 200)), png_bytes(color=(9, 9, 9)))
    images = images[: 1 + references]
    run(
        make(mock_api),
        prompt="a beach at noon",
        operation=operation,
        search=search,
        source_images=images,
    )
    parts = mock_api.last_json()["contents"][0]["parts"]
    assert parts == [{"text": text}, *(inline(image) for image in images)]


def test_each_model_takes_its_own_number_of_input_images(mock_api) -> None:
    images = (png_bytes(),) * 4
    with pytest.raises(UnsupportedRequest, match="at most 3 input images"):
        run(
            make(mock_api, model="gemini-2.5-flash-image"),
            operation="restyle",
            source_images=images,
        )
    assert mock_api.requests == []
    mock_api.reply(json=fixture("edit.json"))
    run(make(mock_api, model="gemini-3-pro-image"), operation="restyle", source_images=images)
    assert len(mock_api.last_json()["contents"][0]["parts"]) == 5


def test_masks_and_mask_operations_are_refused(mock_api) -> None:
    provider = make(mock_api)
    with pytest.raises(UnsupportedRequest, match="cannot inpaint"):
        provider.prepare(ImageRequest(prompt=PROMPT, operation="inpaint", mask=png_bytes()))
    with pytest.raises(UnsupportedRequest, match="cannot remove background"):
        provider.prepare(ImageRequest(prompt=PROMPT, operation="remove_background"))
    with pytest.raises(UnsupportedRequest, match="takes no mask"):
        run(provider, operation="edit", source_images=(png_bytes(),), mask=png_bytes())
    assert mock_api.requests == []


def test_the_catalog_describes_each_operation() -> None:
    pro = catalog.get_model("google", "gemini-3-pro-image").capabilities
    assert pro.support("restyle").max_references == 13
    assert pro.support("edit").mask == "none"
    assert pro.support("inpaint") is None
    assert (
        catalog.get_model("google", "gemini-2.5-flash-image")
        .capabilities.support("edit")
        .max_references
        == 2
    )
    imagen = catalog.get_model("google", "imagen-4.0-generate-001").capabilities
    assert not imagen.edit


def test_edit_estimate_adds_the_input_image_tokens() -> None:
    provider = GoogleProvider(alias="google", api_key=KEY)
    text = provider.estimate_cost(ImageRequest(prompt=PROMPT))
    edit = provider.estimate_cost(
        ImageRequest(prompt=PROMPT, operation="edit", source_images=(png_bytes(),) * 2)
    )
    assert edit - text == Decimal("0.003360")  # 2 x 1120 image-in tokens at $1.50 per million
    old = GoogleProvider(alias="google", api_key=KEY, model="gemini-2.5-flash-image")
    big = png_bytes(1024, 1024)
    assert old.estimate_cost(
        ImageRequest(prompt=PROMPT, operation="edit", source_images=(big,))
    ) - old.estimate_cost(ImageRequest(prompt=PROMPT)) == Decimal("0.000310")  # 4 tiles x 258


@pytest.mark.django_db
def test_pipeline_search_replace_with_a_reference(settings, mock_api) -> None:
    GOOGLE.configure(settings, mock_api, api_key="k-test")
    first = imagegen.generate(prompt="a kitchen shelf", provider="default").images.get()
    payload = fixture("edit.json")
    mock_api.reply(json=payload)
    reference = png_bytes(color=(0, 90, 200))
    generation = imagegen.generate(
        operation="search_replace",
        provider="google",
        source=first,
        reference=reference,
        search="the red vase",
        prompt="the bottle in the second image",
    )
    generation.refresh_from_db()
    assert generation.status == "succeeded", generation.error_message
    assert generation.estimated_cost > 0
    assert generation.cost == Decimal("0.035310")  # usageMetadata at the model's token prices
    image = generation.images.get()
    assert image.file.read() == image_of(payload)
    assert image.lineage() == [image, first]
    parts = mock_api.last_json()["contents"][0]["parts"]
    assert parts[0]["text"].startswith("Using the provided image, replace the red vase with")
    assert len(parts) == 3  # the text, the source, the reference


@pytest.mark.django_db
def test_pipeline_refused_edit_is_failed_with_its_charge(settings, mock_api) -> None:
    GOOGLE.configure(settings, mock_api, api_key="k-test")
    mock_api.reply(json=fixture("finish_image_safety.json"))
    generation = imagegen.generate(
        operation="replace_background", provider="google", source=png_bytes(), prompt="a street"
    )
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == ("failed", "content_rejected")
    assert "IMAGE_SAFETY" in generation.error_message
    assert Decimal(0) < generation.cost < Decimal("0.0001")
    assert not generation.images.exists()


@pytest.mark.django_db
def test_too_many_references_for_the_model_are_refused_naming_who_can(settings) -> None:
    settings.IMAGEGEN = {
        "PROVIDERS": {
            "default": {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"},
            "banana": {
                "BACKEND": GOOGLE.backend,
                "OPTIONS": {"api_key": "k", "model": "gemini-2.5-flash-image"},
            },
            "pro": {
                "BACKEND": GOOGLE.backend,
                "OPTIONS": {"api_key": "k", "model": "gemini-3-pro-image"},
            },
        }
    }
    with pytest.raises(UnsupportedRequest) as caught:
        imagegen.generate(
            operation="restyle",
            provider="banana",
            source=png_bytes(),
            reference=[png_bytes()] * 3,
            prompt="in ink",
        )
    assert "Google takes at most 2 reference images, not 3" in str(caught.value)
    assert str(caught.value).endswith("Configured providers that can: default, pro.")
