"""Tests for the Stability AI provider at the wire level (provider-apis.md §1), mocked HTTP."""

from __future__ import annotations

import base64
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

import imagegen
from imagegen import catalog
from imagegen.exceptions import (
    ContentRejected,
    InvalidProviderError,
    InvalidResponse,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
    UnsupportedRequest,
)
from imagegen.providers.stability import StabilityProvider
from imagegen.types import CallContext, ImageRequest
from tests.conftest import media_files, png_bytes
from tests.providers.conftest import MockAPI, multipart_parts
from tests.providers.support import PROMPT, Harness

KEY = "sk-test-SECRET-0123456789abcdef"
BASE = "https://api.stability.ai/v2beta/stable-image"
JOB = "a6dc6c6e20acda010fe14d71f180658f2896ed9b4ec25aa99a6ff06c796987c4"
PNG = png_bytes()
# §1.1: the dummy part that makes a request without files multipart.
DUMMY = [("none", "none", "application/octet-stream", b"")]
FAST = {"upscaler": "fast"}


STABILITY = Harness(StabilityProvider, "stability", key=KEY, options={"poll_interval": 0})
fixture, make, run = STABILITY.fixture, STABILITY.make, STABILITY.run


def reply_image(
    mock_api: MockAPI, content: bytes = PNG, *, reason: str = "SUCCESS", mime: str = "image/png"
) -> MockAPI:
    headers = {"content-type": mime, "finish-reason": reason, "seed": "343940597"}
    return mock_api.reply(content=content, headers={**headers, "x-request-id": "req-7f3a"})


def form(request) -> tuple[dict[str, str], list[tuple[str, str, str, bytes]]]:
    """Return a multipart request's text fields and its file parts."""
    parts = multipart_parts(request)
    fields = {p.name: p.text for p in parts if p.filename is None}
    assert len(fields) == len([p for p in parts if p.filename is None]), "repeated field"
    return fields, [(p.name, p.filename, p.content_type, p.content) for p in parts if p.filename]


def b64_of(payload: dict) -> bytes:
    return base64.b64decode(payload["image"])


# Identity and options ----------------------------------------------------------------------


def test_identity() -> None:
    provider = StabilityProvider(alias="stability", api_key=KEY)
    assert (provider.catalog_key, provider.display_name) == ("stability", "Stability AI")
    assert provider.model == "core"
    assert provider.base_url == "https://api.stability.ai"
    assert provider.api_key_env == "STABILITY_API_KEY"
    assert provider.timeout == 180.0  # §1.5: sync endpoints answer only when the image is ready
    assert KEY not in repr(provider)


@pytest.mark.parametrize(
    ("options", "text"),
    [({"accept": "xml"}, "accept"), ({"style_preset": "vaporwave"}, "style_preset")],
)
def test_options_are_validated(options: dict, text: str) -> None:
    with pytest.raises(InvalidProviderError, match=text):
        StabilityProvider(alias="stability", api_key=KEY, **options)


def test_unknown_options_are_refused() -> None:
    with pytest.raises(InvalidProviderError, match="quality"):
        StabilityProvider(alias="stability", api_key=KEY, quality="high")


# Generate: the request ---------------------------------------------------------------------


def test_core_request_on_the_wire(mock_api) -> None:
    reply_image(mock_api)
    run(make(mock_api), negative_prompt="text, watermark", aspect_ratio="16:9", seed=42)
    sent = mock_api.last
    assert sent.method == "POST"
    assert str(sent.url) == f"{BASE}/generate/core"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["accept"] == "image/*"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.headers["user-agent"] == f"imagegen/{imagegen.__version__}"
    fields, files = form(sent)
    assert fields == {
        "prompt": PROMPT,
        "negative_prompt": "text, watermark",
        "aspect_ratio": "16:9",
        "seed": "42",
        "output_format": "png",
    }
    assert files == DUMMY


@pytest.mark.parametrize(
    ("model", "path", "more"),
    [
        ("ultra", "generate/ultra", {}),
        ("sd3.5-large", "generate/sd3", {"model": "sd3.5-large"}),
        ("sd3.5-large-turbo", "generate/sd3", {"model": "sd3.5-large-turbo"}),
        ("sd3.5-medium", "generate/sd3", {"model": "sd3.5-medium"}),
        ("sd3.5-flash", "generate/sd3", {"model": "sd3.5-flash"}),
    ],
)
def test_model_picks_the_endpoint(mock_api, model: str, path: str, more: dict) -> None:
    reply_image(mock_api)
    run(make(mock_api, model=model), output_format="jpg", width=1536, height=1024)
    assert str(mock_api.last.url) == f"{BASE}/{path}"
    fields, files = form(mock_api.last)
    # No ratio given: the nearest one to 1536x1024 is sent; only what was asked, nothing empty.
    assert fields == {"prompt": PROMPT, "aspect_ratio": "3:2", "output_format": "jpeg", **more}
    assert files == DUMMY


def test_request_model_wins_and_style_preset_option_and_extra(mock_api) -> None:
    reply_image(mock_api)
    provider = make(mock_api, style_preset="cinematic")
    run(
        provider,
        model="sd3.5-large-turbo",
        aspect_ratio="9:16",
        output_format="webp",
        extra={"cfg_scale": 1.5, "style_preset": "anime"},
    )
    fields, _ = form(mock_api.last)
    assert fields == {
        "prompt": PROMPT,
        "aspect_ratio": "9:16",
        "style_preset": "anime",
        "model": "sd3.5-large-turbo",
        "output_format": "webp",
        "cfg_scale": "1.5",
    }


@pytest.mark.parametrize("model", ["ultra", "sd3.5-medium"])
def test_image_to_image(mock_api, model: str) -> None:
    reply_image(mock_api)
    source = png_bytes(fmt="JPEG")
    provider = make(mock_api, model=model)
    extra = {"strength": 0.5}
    run(provider, source_images=(source,), aspect_ratio="16:9", seed=5, extra=extra)
    fields, files = form(mock_api.last)
    # §1.5: strength (required) only with an image; no aspect_ratio in image-to-image (SD3
    # rejects it). Without strength the image would be a style reference (control/style).
    expected = {"prompt": PROMPT, "seed": "5", "output_format": "png", "strength": "0.5"}
    if model != "ultra":
        expected.update(model=model, mode="image-to-image")
    assert fields == expected
    assert files == [("image", "image.jpeg", "image/jpeg", source)]


def test_image_to_image_strength_from_extra(mock_api) -> None:
    reply_image(mock_api)
    run(make(mock_api, model="ultra"), source_images=(PNG,), extra={"strength": 0.8})
    assert form(mock_api.last)[0]["strength"] == "0.8"


@pytest.mark.parametrize(
    ("options", "fields", "message"),
    [
        ({}, {"source_images": (PNG,), "extra": {"strength": 0.5}},
         "Core does not take a source image"),
        ({"model": "ultra"}, {"extra": {"strength": 0.5}}, "needs a source image"),
        ({"model": "ultra"}, {"source_images": (PNG, PNG)}, "one source image"),
        ({"model": "ultra"}, {"mask": PNG}, "does not take a mask"),
        ({"model": "dall-e-3"}, {}, "no model 'dall-e-3'"),
        ({}, {"extra": {"image": "x"}}, "extra may not set image"),
        ({}, {"extra": {"model": "ultra"}}, "extra may not set model"),
        ({}, {"count": 2}, "one image per call"),
        ({}, {"prompt": "  "}, "needs a prompt"),
    ],
)  # fmt: skip
def test_impossible_generations_are_refused_before_sending(mock_api, options, fields, message):
    with pytest.raises(UnsupportedRequest, match=message):
        run(make(mock_api, **options), **fields)
    assert mock_api.requests == []


# Generate: the answer ----------------------------------------------------------------------


def test_image_answer_is_parsed(mock_api) -> None:
    jpeg = png_bytes(fmt="JPEG")
    reply_image(mock_api, jpeg, mime="image/jpeg")
    result = run(make(mock_api, model="ultra"), output_format="jpeg")
    assert [image.content for image in result.images] == [jpeg]
    assert result.images[0].mime_type == "image/jpeg"
    assert result.images[0].seed == 343940597
    assert (result.model, result.job_id, result.filtered) == ("ultra", "req-7f3a", False)
    assert result.cost == Decimal("0.080000")
    assert result.usage == {"credits": 8}
    assert result.warnings == ()


def test_json_answer_is_parsed(mock_api) -> None:
    payload = fixture("image.json")
    mock_api.reply(json=payload, headers={"content-type": "application/json; type=image/png"})
    result = run(make(mock_api, accept="json", model="sd3.5-large"))
    assert mock_api.last.headers["accept"] == "application/json"
    assert result.images[0].content == b64_of(payload)
    assert (result.images[0].mime_type, result.images[0].seed) == ("image/png", 343940597)
    assert result.cost == Decimal("0.065000")
    assert result.usage == {"credits": 6.5}


def test_missing_seed_and_finish_reason_headers_are_tolerated(mock_api) -> None:
    mock_api.reply(content=PNG, headers={"content-type": "image/png", "seed": "n/a"})
    result = run(make(mock_api))
    assert result.images[0].content == PNG
    assert result.images[0].seed is None


@pytest.mark.parametrize("accept", ["image", "json"])
def test_content_filtered_is_charged_without_an_image(mock_api, accept: str) -> None:
    if accept == "json":
        mock_api.reply(json=fixture("image_filtered.json"))
    else:
        reply_image(mock_api, png_bytes(color=(128, 128, 128)), reason="CONTENT_FILTERED")
    result = run(make(mock_api, accept=accept, model="ultra"))
    assert result.filtered is True
    assert result.images == ()
    # §1.4: the blurred output is billed at the list price.
    assert result.cost == Decimal("0.080000")
    assert result.usage == {"credits": 8}
    assert "CONTENT_FILTERED" in result.warnings[0]


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ({"json": {"image": "not base64!", "finish_reason": "SUCCESS"}}, "bad_base64"),
        ({"json": {"image": 12, "finish_reason": "SUCCESS"}}, "bad_base64"),
        ({"json": {"finish_reason": "SUCCESS", "seed": 1}}, "no_images"),
        ({"json": {"id": JOB}}, "no_images"),
        ({"json": ["not", "an", "object"]}, "invalid_json"),
        ({"content": b"", "headers": {"content-type": "image/png"}}, "no_images"),
        ({"content": b"<html>gateway</html>", "headers": {"content-type": "text/html"}},
         "not_an_image"),
        ({"content": PNG, "headers": {"content-type": "image/png", "finish-reason": "ERROR"}},
         "generation_failed"),
    ],
)  # fmt: skip
def test_unusable_answers_are_invalid_responses(mock_api, reply: dict, code: str) -> None:
    mock_api.reply(**reply)
    with pytest.raises(InvalidResponse) as caught:
        run(make(mock_api))
    assert caught.value.code == code
    assert not caught.value.retryable


def test_non_image_bytes_labelled_as_an_image_are_left_to_the_pipeline(mock_api) -> None:
    # The pipeline decodes every image with Pillow; the provider only reports what it got.
    reply_image(mock_api, b"definitely not a png")
    result = run(make(mock_api))
    assert result.images[0].mime_type == "image/png"


# Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name", "cls", "code", "retryable", "text"),
    [
        (400, "error_bad_request.json", ProviderError, "invalid_request", False,
         "Stability AI refused the request's parameters (HTTP 400): prompt: is required; "
         "aspect_ratio: must be one of"),
        (401, "error_unauthorized.json", ProviderError, "authentication_failed", False,
         "STABILITY_API_KEY"),
        (402, "error_payment_required.json", QuotaExceeded, "quota_exceeded", False,
         "out of credits (HTTP 402): You lack sufficient credits"),
        (403, "error_content_moderation.json", ContentRejected, "content_rejected", False,
         "flagged the prompt or image (HTTP 403)"),
        (404, "error_generation_not_found.json", ProviderError, "job_not_found", False,
         "kept for 24 hours"),
        (413, "error_payload_too_large.json", ProviderError, "request_too_large", False,
         "Send smaller source images."),
        (422, "error_invalid_language.json", ProviderError, "invalid_language", False,
         "only understands English prompts"),
        (422, "error_public_figure.json", ContentRejected, "content_rejected", False,
         "public figures"),
        (429, "error_rate_limit.json", RateLimited, "rate_limited", True, "Try again in 60 s."),
        (500, "error_internal.json", ProviderUnavailable, "provider_unavailable", True,
         "temporary failure (HTTP 500): An unexpected server error"),
    ],
)  # fmt: skip
def test_error_shapes_map_to_the_error_tree(
    mock_api, status, name, cls, code, retryable, text
) -> None:
    STABILITY.check_error(
        mock_api, status, fixture(name), cls, code, retryable=retryable, text=text
    )


def test_content_moderation_says_nothing_was_charged(mock_api) -> None:
    mock_api.reply(403, json=fixture("error_content_moderation.json"))
    with pytest.raises(ContentRejected, match="Nothing was charged"):
        run(make(mock_api))


def test_a_bare_402_is_out_of_credits(mock_api) -> None:
    mock_api.reply(402, content=b"Payment Required", headers={"content-type": "text/plain"})
    with pytest.raises(QuotaExceeded) as caught:
        run(make(mock_api))
    assert not caught.value.retryable
    assert "platform.stability.ai" in str(caught.value)


@pytest.mark.parametrize(("headers", "wait"), [({"retry-after": "12"}, 12.0), ({}, 60.0)])
def test_rate_limit_carries_retry_after(mock_api, headers: dict, wait: float) -> None:
    # §1.1: a 429 locks the key out for 60 s, the wait when no header says otherwise.
    mock_api.reply(429, json=fixture("error_rate_limit.json"), headers=headers)
    with pytest.raises(RateLimited) as caught:
        run(make(mock_api))
    assert caught.value.retry_after == wait
    assert caught.value.retryable


def test_key_like_strings_are_redacted(mock_api) -> None:
    other = "sk-abcdefghijklmnopqrstuvwxyz0123"
    body = {"id": "x", "name": "unauthorized", "errors": [f"key {other} and {KEY} revoked"]}
    mock_api.reply(403, json=body)
    with pytest.raises(ProviderError) as caught:
        run(make(mock_api))
    assert other not in str(caught.value) and KEY not in str(caught.value)
    assert caught.value.code == "permission_denied"


def test_past_deadline_sends_nothing(mock_api) -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        run(make(mock_api), CallContext(deadline=time.monotonic() - 1))
    assert caught.value.code == "timeout"
    assert mock_api.requests == []


# Catalog, prices and estimates -------------------------------------------------------------


def test_catalog_lists_the_generation_models() -> None:
    models = {info.id: info for info in catalog.models_for("stability")}
    assert list(models) == [
        "ultra",
        "core",
        "sd3.5-large",
        "sd3.5-large-turbo",
        "sd3.5-medium",
        "sd3.5-flash",
    ]
    for info in models.values():
        caps = info.capabilities
        assert caps.aspect_ratios == (
            *("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21"),
        )
        assert (caps.max_count, caps.seed, caps.negative_prompt) == (1, True, True)
        assert caps.output_formats == ("png", "jpeg", "webp")
        assert caps.edit is (info.id != "core")  # image-to-image on Ultra and SD3 only
        assert info.status() == "active"


@pytest.mark.parametrize(
    ("model", "cost"),
    [
        # §1.6: credits x $0.01.
        ("ultra", "0.080000"),
        ("core", "0.030000"),
        ("sd3.5-large", "0.065000"),
        ("sd3.5-large-turbo", "0.040000"),
        ("sd3.5-medium", "0.035000"),
        ("sd3.5-flash", "0.025000"),
    ],
)
def test_generation_prices(mock_api, model: str, cost: str) -> None:
    provider = make(mock_api, model=model)
    assert provider.estimate_cost(ImageRequest(prompt=PROMPT)) == Decimal(cost)
    reply_image(mock_api)
    result = run(provider)
    assert result.cost == Decimal(cost)
    assert Decimal(str(result.usage["credits"])) / 100 == Decimal(cost)


def test_counts_are_split_into_single_image_calls_and_estimated() -> None:
    provider = StabilityProvider(alias="stability", api_key=KEY, model="ultra")
    request = ImageRequest(prompt=PROMPT, count=3, width=1536, height=864)
    calls, warnings = provider.prepare(request)
    assert [c.count for c in calls] == [1, 1, 1]
    assert calls[0].aspect_ratio == "16:9"
    assert any("at most 1" in w for w in warnings)
    assert provider.estimate_cost(request) == Decimal("0.240000")


# Edits and synchronous upscales -------------------------------------------------------------

EDIT_CASES = [
    # operation, extra, (the request's own fields), path, fields sent
    ("inpaint", {"grow_mask": 10}, "edit/inpaint",
     {"prompt": PROMPT, "negative_prompt": "blur", "seed": "7", "style_preset": "photographic",
      "output_format": "webp", "grow_mask": "10"}),
    ("outpaint", {"left": 256, "up": 0, "creativity": 0.3}, "edit/outpaint",
     {"prompt": PROMPT, "seed": "7", "style_preset": "photographic", "output_format": "webp",
      "left": "256", "up": "0", "creativity": "0.3"}),
    ("erase", {}, "edit/erase", {"seed": "7", "output_format": "webp"}),
    ("edit", {"search_prompt": "the boat"}, "edit/search-and-replace",
     {"prompt": PROMPT, "negative_prompt": "blur", "seed": "7", "style_preset": "photographic",
      "output_format": "webp", "search_prompt": "the boat"}),
    ("edit", {"select_prompt": "the roof"}, "edit/search-and-recolor",
     {"prompt": PROMPT, "negative_prompt": "blur", "seed": "7", "style_preset": "photographic",
      "output_format": "webp", "select_prompt": "the roof"}),
    ("remove_background", {}, "edit/remove-background", {"output_format": "webp"}),
    ("upscale", {}, "upscale/fast", {"output_format": "webp"}),
    ("upscale", {"upscaler": "fast"}, "upscale/fast", {"output_format": "webp"}),
    ("upscale", {"upscaler": "conservative", "creativity": 0.35}, "upscale/conservative",
     {"prompt": PROMPT, "negative_prompt": "blur", "seed": "7", "output_format": "webp",
      "creativity": "0.35"}),
]  # fmt: skip


@pytest.mark.parametrize(("operation", "extra", "path", "expected"), EDIT_CASES)
def test_edit_and_upscale_requests_on_the_wire(mock_api, operation, extra, path, expected):
    reply_image(mock_api, mime="image/webp")
    source = png_bytes(fmt="WEBP")
    provider = make(mock_api, model="ultra", style_preset="photographic")
    request = {"negative_prompt": "blur", "seed": 7, "output_format": "webp", "extra": extra}
    # Twice the source's size, as the pipeline asks an upscale by scale=2.
    request.update(width=128, height=128)
    result = run(provider, operation=operation, source_images=(source,), **request)
    sent = mock_api.last
    assert (sent.method, str(sent.url)) == ("POST", f"{BASE}/{path}")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["accept"] == "image/*"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    fields, files = form(sent)
    # Only the fields the endpoint takes (§1.2); the model and aspect ratio never go along.
    assert fields == expected
    assert files == [("image", "image.webp", "image/webp", source)]
    assert result.model == "ultra"
    assert result.images[0].content == PNG


@pytest.mark.parametrize("operation", ["inpaint", "erase"])
def test_masks_go_to_inpaint_and_erase(mock_api, operation: str) -> None:
    reply_image(mock_api)
    source, mask = png_bytes(), png_bytes(color=(255, 255, 255))
    run(make(mock_api), operation=operation, source_images=(source,), mask=mask)
    assert form(mock_api.last)[1] == [
        ("image", "image.png", "image/png", source),
        ("mask", "mask.png", "image/png", mask),
    ]


def test_background_removal_returns_png_or_webp_only(mock_api) -> None:
    reply_image(mock_api)
    result = run(make(mock_api), operation="remove_background", source_images=(PNG,),
                 output_format="jpeg")  # fmt: skip
    assert form(mock_api.last)[0] == {"output_format": "png"}
    assert "png or webp only" in result.warnings[0]


def test_outpaint_prompt_is_optional(mock_api) -> None:
    reply_image(mock_api)
    run(make(mock_api), prompt="", operation="outpaint", source_images=(PNG,),
        extra={"down": 100})  # fmt: skip
    assert form(mock_api.last)[0] == {"output_format": "png", "down": "100"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"operation": "inpaint"}, "edit/inpaint needs a source image"),
        ({"operation": "upscale", "source_images": (PNG,), "mask": PNG}, "does not take a mask"),
        ({"operation": "outpaint", "source_images": (PNG,)}, "Outpainting needs"),
        ({"operation": "outpaint", "source_images": (PNG,), "extra": {"left": 0}},
         "Outpainting needs"),
        ({"operation": "edit", "source_images": (PNG,)}, "search_prompt"),
        ({"operation": "edit", "source_images": (PNG,),
          "extra": {"search_prompt": "a", "select_prompt": "b"}}, "not both"),
        ({"operation": "upscale", "source_images": (PNG,), "extra": {"upscaler": "magic"}},
         "upscaler"),
        ({"operation": "upscale", "source_images": (PNG,), "prompt": "",
          "extra": {"upscaler": "conservative"}}, "upscale/conservative needs a prompt"),
        ({"operation": "inpaint", "source_images": (PNG,), "prompt": " "}, "needs a prompt"),
    ],
)  # fmt: skip
def test_impossible_edits_are_refused_before_sending(mock_api, fields, message) -> None:
    with pytest.raises(UnsupportedRequest, match=message):
        run(make(mock_api), **fields)
    assert mock_api.requests == []


@pytest.mark.parametrize(
    ("operation", "extra", "cost"),
    [
        # §1.6: credits x $0.01, whatever the configured model.
        ("inpaint", {}, "0.050000"),
        ("outpaint", {"left": 64}, "0.040000"),
        ("erase", {}, "0.050000"),
        ("edit", {"search_prompt": "cat"}, "0.050000"),
        ("edit", {"select_prompt": "cat"}, "0.050000"),
        ("remove_background", {}, "0.050000"),
        ("upscale", {"upscaler": "fast"}, "0.020000"),
        ("upscale", {"upscaler": "conservative"}, "0.400000"),
        ("upscale", {"upscaler": "creative"}, "0.600000"),
    ],
)
def test_edit_and_upscale_prices(mock_api, operation: str, extra: dict, cost: str) -> None:
    provider = make(mock_api, model="ultra")
    request = ImageRequest(prompt=PROMPT, operation=operation, source_images=(PNG,), extra=extra)
    assert provider.estimate_cost(request) == Decimal(cost)
    if extra.get("upscaler") == "creative":
        mock_api.reply(json=fixture("async_submit.json"))
    reply_image(mock_api)
    result = provider.generate(request, context=CallContext())
    assert result.cost == Decimal(cost)
    assert result.usage == {"credits": int(Decimal(cost) * 100)}


def test_prices_setting_may_override_an_endpoint(mock_api, settings) -> None:
    settings.IMAGEGEN = {"PRICES": {"upscale/fast": {"per_credit": 3}}}
    reply_image(mock_api)
    result = run(make(mock_api), operation="upscale", source_images=(PNG,), extra=FAST)
    assert (result.cost, result.usage) == (Decimal("0.030000"), {"credits": 3})


# Creative upscale: submit, report the job, poll ----------------------------------------------


def creative(**fields: Any) -> dict[str, Any]:
    extra = {"upscaler": "creative", "creativity": 0.3, **fields.pop("extra", {})}
    return {"operation": "upscale", "source_images": (PNG,), "extra": extra, **fields}


def test_creative_upscale_submits_reports_the_job_then_polls(mock_api) -> None:
    accepted: list[str] = []
    seen_at_first_poll: list[list[str]] = []

    def first_poll(request):
        seen_at_first_poll.append(list(accepted))
        return httpx.Response(202, json=fixture("in_progress.json"))

    mock_api.reply(json=fixture("async_submit.json")).then(first_poll)
    mock_api.reply(202, json=fixture("in_progress.json"))
    reply_image(mock_api, mime="image/webp")
    provider = make(mock_api, style_preset="fantasy-art")
    context = CallContext(on_job_accepted=accepted.append)
    result = run(provider, context, output_format="webp", seed=9, **creative())

    submit, *polls = mock_api.requests
    assert (submit.method, str(submit.url)) == ("POST", f"{BASE}/upscale/creative")
    assert submit.headers["authorization"] == f"Bearer {KEY}"
    assert submit.headers["content-type"].startswith("multipart/form-data; boundary=")
    fields, files = form(submit)
    assert fields == {
        "prompt": PROMPT,
        "seed": "9",
        "style_preset": "fantasy-art",
        "output_format": "webp",
        "creativity": "0.3",
    }
    assert files == [("image", "image.png", "image/png", PNG)]
    # The id is reported before the first poll, so a redelivered task can resume it.
    assert accepted == [JOB] and seen_at_first_poll == [[JOB]]
    assert len(polls) == 3
    for poll in polls:
        assert (poll.method, str(poll.url)) == (
            "GET",
            f"https://api.stability.ai/v2beta/results/{JOB}",
        )
        assert poll.headers["authorization"] == f"Bearer {KEY}"
        assert poll.headers["accept"] == "*/*"  # §1.1: the results endpoint's raw-bytes accept
        assert poll.content == b""
    assert result.job_id == JOB
    assert result.images[0].content == PNG and result.images[0].seed == 343940597
    assert result.cost == Decimal("0.600000")


def test_creative_upscale_with_json_accept(mock_api) -> None:
    payload = fixture("image.json")
    mock_api.reply(json=fixture("async_submit.json")).reply(json=payload)
    result = run(make(mock_api, accept="json"), **creative())
    submit, poll = mock_api.requests
    assert submit.headers["accept"] == poll.headers["accept"] == "application/json"
    assert result.images[0].content == b64_of(payload)


def test_resumed_creative_upscale_polls_without_submitting(mock_api) -> None:
    accepted: list[str] = []
    mock_api.reply(202, json=fixture("in_progress.json"))
    reply_image(mock_api)
    context = CallContext(resume_job_id=JOB, on_job_accepted=accepted.append)
    result = run(make(mock_api), context, **creative())
    assert [r.method for r in mock_api.requests] == ["GET", "GET"]
    assert mock_api.last.url.path == f"/v2beta/results/{JOB}"
    assert accepted == []
    assert (result.job_id, result.cost) == (JOB, Decimal("0.600000"))


def test_creative_upscale_filtered_is_charged(mock_api) -> None:
    mock_api.reply(json=fixture("async_submit.json"))
    reply_image(mock_api, reason="CONTENT_FILTERED")
    result = run(make(mock_api), **creative())
    assert (result.filtered, result.images, result.cost) == (True, (), Decimal("0.600000"))


def test_polling_stops_at_the_deadline(mock_api) -> None:
    for _ in range(50):
        mock_api.reply(202, json=fixture("in_progress.json"))
    context = CallContext(resume_job_id=JOB, deadline=time.monotonic() + 0.3)
    with pytest.raises(ProviderUnavailable) as caught:
        run(make(mock_api, poll_interval=0.1), context, **creative())
    error = caught.value
    assert (error.code, error.retryable) == ("timeout", True)
    assert JOB in str(error) and "retry polls the same job" in str(error)
    assert 1 <= len(mock_api.requests) <= 5
    assert {r.method for r in mock_api.requests} == {"GET"}


def test_polling_without_a_deadline_is_bounded_by_poll_timeout(mock_api) -> None:
    for _ in range(50):
        mock_api.reply(202, json=fixture("in_progress.json"))
    with pytest.raises(ProviderUnavailable, match="time allowed"):
        run(make(mock_api, poll_interval=0.05, poll_timeout=0.2), **creative())
    assert mock_api.requests[0].method == "POST"


def test_synchronous_calls_ignore_a_resume_id(mock_api) -> None:
    # Only the creative upscale has a job to resume; anything else is a fresh (paid) call.
    reply_image(mock_api)
    context = CallContext(resume_job_id=JOB)
    run(make(mock_api), context, operation="upscale", source_images=(PNG,), extra=FAST)
    assert [(r.method, r.url.path) for r in mock_api.requests] == [
        ("POST", "/v2beta/stable-image/upscale/fast")
    ]


def test_expired_job_is_not_found(mock_api) -> None:
    mock_api.reply(404, json=fixture("error_generation_not_found.json"))
    with pytest.raises(ProviderError) as caught:
        run(make(mock_api), CallContext(resume_job_id=JOB), **creative())
    assert caught.value.code == "job_not_found" and not caught.value.retryable


@pytest.mark.parametrize("body", [{}, {"id": "../../v1/user/balance"}, {"id": 7}])
def test_submit_without_a_usable_job_id_is_an_invalid_response(mock_api, body) -> None:
    accepted: list[str] = []
    mock_api.reply(json=body)
    with pytest.raises(InvalidResponse) as caught:
        run(make(mock_api), CallContext(on_job_accepted=accepted.append), **creative())
    assert caught.value.code == "invalid_job_id"
    assert accepted == [] and len(mock_api.requests) == 1


def test_prices_setting_overrides_a_model(mock_api, settings) -> None:
    settings.IMAGEGEN = {"PRICES": {"core": {"per_credit": "2.5"}}}
    reply_image(mock_api, reason="CONTENT_FILTERED")
    result = run(make(mock_api))
    assert result.cost == Decimal("0.025000")
    assert result.usage == {"credits": 2.5}


# The whole pipeline ------------------------------------------------------------------------


@pytest.mark.django_db
def test_pipeline_succeeds_with_cost(settings, mock_api) -> None:
    STABILITY.configure(settings, mock_api, api_key="sk-test", model="ultra")
    reply_image(mock_api)
    generation = imagegen.generate(prompt="a red fox", provider="stability")
    generation.refresh_from_db()
    assert generation.status == "succeeded", generation.error_message
    assert generation.model == "ultra"
    assert generation.estimated_cost == generation.cost == Decimal("0.080000")
    assert generation.usage == {"credits": 8}
    assert generation.provider_job_id == "req-7f3a"
    image = generation.images.get()
    assert (image.mime_type, image.seed) == ("image/png", 343940597)
    assert image.file.read() == PNG
    sent = mock_api.last
    assert str(sent.url) == f"{BASE}/generate/ultra"
    assert sent.headers["authorization"] == "Bearer sk-test"
    fields, _ = form(sent)
    assert "a red fox" in fields["prompt"] and fields["aspect_ratio"] == "1:1"


@pytest.mark.django_db
def test_pipeline_ends_filtered_and_charged_without_a_file(settings, mock_api) -> None:
    STABILITY.configure(settings, mock_api, api_key="sk-test", accept="json")
    mock_api.reply(json=fixture("image_filtered.json"))
    generation = imagegen.generate(prompt="a red fox", provider="stability")
    generation.refresh_from_db()
    assert generation.status == "filtered"
    assert generation.cost == Decimal("0.030000")
    assert generation.usage == {"credits": 3}
    assert not generation.images.exists()
    assert media_files(settings) == []


@pytest.mark.django_db
def test_pipeline_catches_non_image_bytes(settings, mock_api) -> None:
    STABILITY.configure(settings, mock_api, api_key="sk-test")
    reply_image(mock_api, b"<html>not an image</html>")
    generation = imagegen.generate(prompt="a red fox", provider="stability")
    generation.refresh_from_db()
    assert generation.status == "failed"
    assert not generation.images.exists()
    assert media_files(settings) == []
