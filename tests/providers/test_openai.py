"""Tests for the OpenAI provider at the wire level (provider-apis.md §2), behind a MockTransport."""

from __future__ import annotations

import base64
import copy
import datetime
import io
import re
import time
from decimal import Decimal
from typing import Any

import pytest
from PIL import Image, ImageDraw

import imagegen
from imagegen import catalog
from imagegen.exceptions import (
    ContentRejected,
    InvalidProviderError,
    InvalidResponse,
    ModelUnavailable,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
    UnsupportedRequest,
)
from imagegen.models import Generation
from imagegen.providers.openai import OpenAIProvider, usage_from
from imagegen.providers.stability import StabilityProvider
from imagegen.services import plan
from imagegen.types import CallContext, ImageRequest
from tests.conftest import media_files, png_bytes
from tests.providers.conftest import multipart_parts
from tests.providers.support import PROMPT, Harness

# The key the invalid_api_key fixture echoes back, as OpenAI's 401 message does.
KEY = "sk-test-SECRET-0123456789abcdef"
OPENAI = Harness(OpenAIProvider, "openai", key=KEY)
fixture, make, run = OPENAI.fixture, OPENAI.make, OPENAI.run


def b64_of(payload: dict, index: int = 0) -> bytes:
    return base64.b64decode(payload["data"][index]["b64_json"])


# Generations: the request ------------------------------------------------------------------


def test_identity() -> None:
    provider = OpenAIProvider(alias="openai", api_key=KEY)
    assert (provider.catalog_key, provider.display_name) == ("openai", "OpenAI")
    assert provider.model == "gpt-image-2"
    assert provider.base_url == "https://api.openai.com/v1"
    assert provider.api_key_env == "OPENAI_API_KEY"
    assert KEY not in repr(provider)


def test_generation_request_on_the_wire(mock_api) -> None:
    mock_api.reply(json=fixture("generation.json"))
    run(make(mock_api), width=1536, height=1024)
    sent = mock_api.last
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.openai.com/v1/images/generations"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["user-agent"] == f"imagegen/{imagegen.__version__}"
    assert sent.headers["content-type"] == "application/json"
    assert "openai-organization" not in sent.headers
    # Only what was asked: the API's own defaults apply to everything else.
    assert mock_api.last_json() == {
        "model": "gpt-image-2",
        "prompt": PROMPT,
        "n": 1,
        "size": "1536x1024",
        "output_format": "png",
    }


def test_options_are_defaults_and_the_request_and_extra_override_them(mock_api) -> None:
    mock_api.reply(json=fixture("generation.json"))
    provider = make(
        mock_api,
        model="gpt-image-1.5",
        quality="medium",
        background="opaque",
        moderation="low",
        output_compression=80,
        organization="org-123",
        project="proj_456",
    )
    run(
        provider,
        quality="high",
        count=3,
        output_format="webp",
        width=1024,
        height=1536,
        extra={"moderation": "auto", "user": "u-5f2a"},
    )
    assert mock_api.last_json() == {
        "model": "gpt-image-1.5",
        "prompt": PROMPT,
        "n": 3,
        "size": "1024x1536",
        "output_format": "webp",
        "quality": "high",
        "background": "opaque",
        "output_compression": 80,
        "moderation": "auto",
        "user": "u-5f2a",
    }
    assert mock_api.last.headers["openai-organization"] == "org-123"
    assert mock_api.last.headers["openai-project"] == "proj_456"


def test_request_model_wins_and_output_compression_is_only_sent_for_lossy_formats(
    mock_api,
) -> None:
    mock_api.reply(json=fixture("generation.json")).reply(json=fixture("generation.json"))
    provider = make(mock_api, output_compression=50, quality="low")
    run(provider, model="gpt-image-2.6-flare", output_format="png")
    body = mock_api.last_json()
    assert (body["model"], body["quality"]) == ("gpt-image-2.6-flare", "low")
    assert "output_compression" not in body
    run(provider, output_format="jpg")
    assert mock_api.last_json()["output_format"] == "jpeg"
    assert mock_api.last_json()["output_compression"] == 50


@pytest.mark.parametrize("field", ["stream", "model", "prompt", "n", "image[]"])
def test_extra_may_not_set_what_imagegen_sets(mock_api, field: str) -> None:
    with pytest.raises(UnsupportedRequest, match=re.escape(field)):
        run(make(mock_api), extra={field: True})
    assert mock_api.requests == []


def test_output_compression_option_is_validated() -> None:
    with pytest.raises(InvalidProviderError, match="output_compression"):
        OpenAIProvider(alias="openai", api_key=KEY, output_compression=101)


# Generations: the answer -------------------------------------------------------------------


def test_generation_answer_is_parsed(mock_api) -> None:
    payload = fixture("generation.json")
    mock_api.reply(json=payload, headers={"x-request-id": "req_abc123"})
    result = run(make(mock_api))
    assert [image.content for image in result.images] == [b64_of(payload)]
    assert result.images[0].mime_type == "image/png"
    assert result.images[0].seed is None
    assert result.model == "gpt-image-2"
    assert result.job_id == "req_abc123"
    assert result.usage == {
        "text_input_tokens": 10,
        "image_input_tokens": 40,
        "image_output_tokens": 4160,
        "text_output_tokens": 0,
        "input_tokens": 50,
        "output_tokens": 4160,
        "total_tokens": 4210,
    }
    assert result.warnings == ()


@pytest.mark.parametrize(
    ("model", "cost"),
    [
        # 10 text-in, 40 image-in, 4160 image-out tokens at §2.7's per-million prices.
        ("gpt-image-2", "0.125170"),  # 10*5 + 40*8 + 4160*30
        ("gpt-image-2.5-sunburst", "0.125170"),
        ("gpt-image-2.6-flare", "0.125170"),
        ("gpt-image-1.5", "0.133490"),  # 10*5 + 40*8 + 4160*32
        ("gpt-image-1-mini", "0.033400"),  # 10*2 + 40*2.5 + 4160*8
        ("gpt-image-1", "0.166850"),  # 10*5 + 40*10 + 4160*40
        ("gpt-image-2-2026-04-21", "0.125170"),  # a dated snapshot bills as its model
    ],
)
def test_cost_comes_from_usage_at_the_model_token_prices(mock_api, model: str, cost: str) -> None:
    mock_api.reply(json=fixture("generation.json"))
    assert run(make(mock_api), model=model).cost == Decimal(cost)


def test_reference_example_output_only(mock_api) -> None:
    # §2.7: "4160 x $40/1M = $0.1664" for gpt-image-1 high 1024x1024.
    payload = fixture("generation.json")
    payload["usage"] = {"input_tokens": 0, "output_tokens": 4160, "total_tokens": 4160}
    mock_api.reply(json=payload)
    assert run(make(mock_api), model="gpt-image-1").cost == Decimal("0.166400")


def test_two_webp_images_and_usage_without_output_details(mock_api) -> None:
    payload = fixture("generation_two_webp.json")
    mock_api.reply(json=payload)
    result = run(make(mock_api), count=2, output_format="webp", width=1536, height=1024)
    assert [i.content for i in result.images] == [b64_of(payload, 0), b64_of(payload, 1)]
    assert {i.mime_type for i in result.images} == {"image/webp"}
    assert result.usage["image_output_tokens"] == 3136
    assert result.cost == Decimal("0.094140")  # 12*5 + 3136*30


def test_text_output_tokens_are_billed_at_the_text_rate() -> None:
    raw = {
        "input_tokens": 20,
        "input_tokens_details": {"text_tokens": 20, "image_tokens": 0},
        "output_tokens": 4300,
        "output_tokens_details": {"image_tokens": 4160, "text_tokens": 140},
        "total_tokens": 4320,
    }
    usage = usage_from(raw)
    assert (usage["image_output_tokens"], usage["text_output_tokens"]) == (4160, 140)
    price = catalog.get_model("openai", "gpt-image-1.5").price
    request = ImageRequest(prompt=PROMPT)
    # 20*5 + 4160*32 + 140*10 = 134620 micro-dollars
    assert price.actual(request, usage, 1) == Decimal("0.134620")


def test_usage_from_tolerates_missing_pieces() -> None:
    assert usage_from(None) == {}
    assert usage_from({"input_tokens": 7, "output_tokens": 9}) == {
        "text_input_tokens": 7,
        "image_input_tokens": 0,
        "image_output_tokens": 9,
        "text_output_tokens": 0,
        "input_tokens": 7,
        "output_tokens": 9,
        "total_tokens": 16,
    }


def test_missing_usage_bills_the_estimate_with_a_warning(mock_api) -> None:
    payload = fixture("generation.json")
    del payload["usage"]
    mock_api.reply(json=payload)
    result = run(make(mock_api), model="gpt-image-1.5", quality="medium")
    # 100 estimated prompt tokens * $5 + 1056 medium tokens * $32, per million.
    assert result.cost == Decimal("0.034292")
    assert result.usage == {}
    assert "no token usage" in result.warnings[0]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ([], "no_images"),
        (None, "no_images"),
        ([{"url": "https://example.com/x.png"}], "no_images"),
        ([{"b64_json": "not base64!"}], "bad_base64"),
        ([{"b64_json": 12}], "bad_base64"),
    ],
)
def test_unusable_answers_are_invalid_responses(mock_api, data: Any, code: str) -> None:
    payload = fixture("generation.json")
    payload["data"] = data
    mock_api.reply(json=payload)
    with pytest.raises(InvalidResponse) as caught:
        run(make(mock_api))
    assert caught.value.code == code
    assert not caught.value.retryable


def test_non_json_success_is_an_invalid_response(mock_api) -> None:
    mock_api.reply(content=b"<html>gateway</html>")
    with pytest.raises(InvalidResponse) as caught:
        run(make(mock_api))
    assert caught.value.code == "invalid_json"


# Edits -------------------------------------------------------------------------------------


def test_edit_is_multipart_with_several_images_and_a_mask(mock_api) -> None:
    payload = fixture("edit.json")
    mock_api.reply(json=payload)
    first, second, mask = png_bytes(), png_bytes(fmt="JPEG"), png_bytes(color=(0, 0, 0))
    provider = make(mock_api, moderation="low", input_fidelity="high", quality="medium")
    result = run(
        provider,
        operation="edit",
        source_images=(first, second),
        mask=mask,
        width=1024,
        height=1024,
        count=2,
    )
    sent = mock_api.last
    assert str(sent.url) == "https://api.openai.com/v1/images/edits"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    parts = multipart_parts(sent)
    fields = {p.name: p.text for p in parts if p.filename is None}
    assert fields == {
        "model": "gpt-image-2",
        "prompt": PROMPT,
        "n": "2",
        "size": "1024x1024",
        "output_format": "png",
        "quality": "medium",
        "input_fidelity": "high",
    }
    files = [(p.name, p.filename, p.content_type, p.content) for p in parts if p.filename]
    assert files[:2] == [
        ("image[]", "image-1.png", "image/png", first),
        ("image[]", "image-2.jpeg", "image/jpeg", second),
    ]
    assert files[2][:3] == ("mask", "mask.png", "image/png")
    # An all-black mask keeps everything: OpenAI's form of it is opaque everywhere.
    sent_mask = Image.open(io.BytesIO(files[2][3]))
    assert sent_mask.mode == "RGBA" and sent_mask.size == (64, 48)
    assert sent_mask.getchannel("A").getextrema() == (255, 255)
    assert result.images[0].content == b64_of(payload)
    # 25*5 + 1323*8 + 1056*30 = 42389 micro-dollars
    assert result.cost == Decimal("0.042389")


def test_single_image_edit_without_mask(mock_api) -> None:
    mock_api.reply(json=fixture("edit.json"))
    run(make(mock_api), operation="edit", source_images=(png_bytes(fmt="WEBP"),))
    parts = multipart_parts(mock_api.last)
    assert [(p.name, p.filename) for p in parts if p.filename] == [("image[]", "image-1.webp")]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"operation": "edit"}, "at least one source image"),
        ({"operation": "inpaint", "source_images": (b"\x89PNG\r\n\x1a\n",)}, "needs a mask"),
        ({"operation": "edit", "source_images": (b"x",) * 17}, "at most 16"),
    ],
)
def test_impossible_edits_are_refused_before_sending(mock_api, fields, message) -> None:
    with pytest.raises(UnsupportedRequest, match=message):
        run(make(mock_api), **fields)
    assert mock_api.requests == []


def test_upscale_is_not_an_openai_operation(mock_api) -> None:
    with pytest.raises(UnsupportedRequest):
        make(mock_api).prepare(ImageRequest(prompt=PROMPT, operation="upscale"))


# Errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name", "headers", "cls", "code", "retryable", "text"),
    [
        (400, "error_moderation_blocked.json", {}, ContentRejected, "content_rejected", False,
         "safety system"),
        (429, "error_insufficient_quota.json", {"retry-after": "1"}, QuotaExceeded,
         "quota_exceeded", False, "out of quota (insufficient_quota)"),
        (429, "error_spend_limit.json", {}, QuotaExceeded, "quota_exceeded", False,
         "spend limit"),
        (429, "error_rate_limit.json", {"retry-after-ms": "12000"}, RateLimited, "rate_limited",
         True, "Try again in 12 s."),
        (401, "error_invalid_api_key.json", {}, ProviderError, "authentication_failed", False,
         "OPENAI_API_KEY"),
        (400, "error_invalid_size.json", {}, ProviderError, "invalid_request", False,
         "OpenAI refused the request (field 'size'): Invalid value: '1000x1000'."),
        (500, "error_server.json", {}, ProviderUnavailable, "provider_unavailable", True,
         "temporary failure"),
    ],
)  # fmt: skip
def test_error_shapes_map_to_the_error_tree(
    mock_api, status, name, headers, cls, code, retryable, text
) -> None:
    OPENAI.check_error(
        mock_api, status, fixture(name), cls, code, headers=headers, retryable=retryable, text=text
    )


def test_rate_limit_carries_retry_after(mock_api) -> None:
    mock_api.reply(429, json=fixture("error_rate_limit.json"), headers={"retry-after-ms": "1500"})
    with pytest.raises(RateLimited) as caught:
        run(make(mock_api))
    assert caught.value.retry_after == 1.5


def test_safety_refusal_without_a_code_is_still_content_rejected(mock_api) -> None:
    body = copy.deepcopy(fixture("error_moderation_blocked.json"))
    body["error"]["code"] = None
    mock_api.reply(400, json=body)
    with pytest.raises(ContentRejected):
        run(make(mock_api))


def test_shut_down_model_names_its_successor(mock_api) -> None:
    mock_api.reply(404, json=fixture("error_model_not_found.json"))
    with pytest.raises(ModelUnavailable) as caught:
        run(make(mock_api), model="gpt-image-1")
    error = caught.value
    assert error.successor == "gpt-image-2.5-sunburst"
    assert error.code == "model_unavailable" and not error.retryable
    assert str(error) == (
        "OpenAI shut down the model gpt-image-1 on 2026-10-23. "
        'Use gpt-image-2.5-sunburst instead (OPTIONS["model"]).'
    )


def test_unknown_model_quotes_the_api(mock_api) -> None:
    body = fixture("error_model_not_found.json")
    body["error"]["message"] = "The model `gpt-image-9` does not exist."
    mock_api.reply(404, json=body)
    with pytest.raises(ModelUnavailable) as caught:
        run(make(mock_api), model="gpt-image-9")
    assert caught.value.successor is None
    assert "gpt-image-9" in str(caught.value)


def test_key_like_strings_from_openai_are_redacted(mock_api) -> None:
    other = "sk-proj-abcdefghijklmnopqrstuvwxyz0123"
    body = {"error": {"message": f"Key {other} was revoked.", "type": "x", "code": None}}
    mock_api.reply(403, json=body)
    with pytest.raises(ProviderError) as caught:
        run(make(mock_api))
    assert other not in str(caught.value)
    assert caught.value.code == "permission_denied"


def test_past_deadline_sends_nothing(mock_api) -> None:
    provider = make(mock_api)
    with pytest.raises(ProviderUnavailable) as caught:
        provider.generate(
            ImageRequest(prompt=PROMPT), context=CallContext(deadline=time.monotonic() - 1)
        )
    assert caught.value.code == "timeout"
    assert mock_api.requests == []


# Catalog and estimates ---------------------------------------------------------------------


def test_catalog_lists_the_gpt_image_family_with_lifecycles() -> None:
    models = {info.id: info for info in catalog.models_for("openai")}
    assert set(models) == {
        "chatgpt-image-latest",
        "gpt-image-1",
        "gpt-image-1-mini",
        "gpt-image-1.5",
        "gpt-image-1.5-2025-12-16",
        "gpt-image-2",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.6-flare",
        "gpt-image-2.6-sunburst",
    }
    day = datetime.date(2026, 11, 16)
    assert models["gpt-image-1"].status(day) == "shut down"
    assert models["gpt-image-1.5"].status(day) == "deprecated"
    assert models["gpt-image-1.5"].shutdown == datetime.date(2026, 12, 1)
    assert models["gpt-image-1-mini"].successor == "gpt-image-2.6-sunburst"
    assert models["gpt-image-2"].status(day) == "active"
    # OpenAI's deprecations page: notice Jun 2, 2026 and shutdown Dec 1, 2026 for all four.
    for model in ("gpt-image-1.5", "gpt-image-1.5-2025-12-16", "gpt-image-1-mini"):
        assert models[model].deprecated == datetime.date(2026, 6, 2)
    assert models["chatgpt-image-latest"].status(datetime.date(2026, 12, 5)) == "shut down"
    for info in models.values():
        caps = info.capabilities
        assert (caps.max_count, caps.seed, caps.negative_prompt) == (10, False, False)
        assert caps.edit and caps.mask
        assert caps.output_formats == ("png", "jpeg", "webp")


def test_gpt_image_1_family_adapts_to_native_sizes() -> None:
    provider = OpenAIProvider(alias="openai", api_key=KEY, model="gpt-image-1.5")
    calls, warnings = provider.prepare(
        ImageRequest(prompt=PROMPT, width=1536, height=864, seed=7, negative_prompt="text")
    )
    assert (calls[0].width, calls[0].height, calls[0].seed) == (1536, 1024, None)
    assert calls[0].negative_prompt == ""
    assert len(warnings) == 3


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1536, 864), (1536, 864)),  # the hero preset fits as it is
        ((4096, 4096), (2880, 2880)),  # at most 8,294,400 pixels
        ((512, 512), (816, 816)),  # at least 655,360 pixels
        ((4000, 1000), (3456, 1152)),  # at most 3:1
    ],
)
def test_gpt_image_2_takes_free_sizes_within_its_limits(size, expected) -> None:
    provider = OpenAIProvider(alias="openai", api_key=KEY)
    calls, _ = provider.prepare(ImageRequest(prompt=PROMPT, width=size[0], height=size[1]))
    assert (calls[0].width, calls[0].height) == expected


def test_counts_above_ten_are_split() -> None:
    provider = OpenAIProvider(alias="openai", api_key=KEY)
    calls, _ = provider.prepare(ImageRequest(prompt=PROMPT, count=13))
    assert [c.count for c in calls] == [10, 3]


@pytest.mark.parametrize(
    ("model", "quality", "size", "expected"),
    [
        # 100 prompt tokens at the text rate + §2.7's output tokens at the image-out rate.
        ("gpt-image-1.5", "medium", (1024, 1024), "0.034292"),  # 500 + 1056*32
        ("gpt-image-1.5", "high", (1536, 1024), "0.199156"),  # 500 + 6208*32
        ("gpt-image-1", "low", (1024, 1536), "0.016820"),  # 500 + 408*40
        ("gpt-image-1-mini", "low", (1024, 1024), "0.005200"),  # 200 + 625*8
        ("gpt-image-2", "medium", (1024, 1024), "0.053180"),  # 500 + 1756*30
        ("gpt-image-2", None, (1024, 1024), "0.211220"),  # unset quality priced as high
    ],
)
def test_estimates_follow_the_reference(model, quality, size, expected) -> None:
    provider = OpenAIProvider(alias="openai", api_key=KEY, model=model)
    request = ImageRequest(prompt=PROMPT, quality=quality, width=size[0], height=size[1])
    assert provider.estimate_cost(request) == Decimal(expected)


def test_estimate_prices_the_configured_quality() -> None:
    low = OpenAIProvider(alias="openai", api_key=KEY, quality="low")
    assert low.estimate_cost(ImageRequest(prompt=PROMPT)) == Decimal("0.006380")  # 500 + 196*30


# The whole pipeline ------------------------------------------------------------------------


@pytest.mark.django_db
def test_pipeline_succeeds_with_cost_from_usage(settings, mock_api) -> None:
    OPENAI.configure(settings, mock_api, api_key="sk-test")
    payload = fixture("generation.json")
    mock_api.reply(json=payload, headers={"x-request-id": "req_pipeline"})
    generation = imagegen.generate(prompt="a red fox", provider="openai")
    generation.refresh_from_db()
    assert generation.status == "succeeded", generation.error_message
    assert generation.model == "gpt-image-2"
    assert generation.cost == Decimal("0.125170")
    assert generation.usage["image_output_tokens"] == 4160
    assert generation.provider_job_id == "req_pipeline"
    image = generation.images.get()
    assert image.mime_type == "image/png"
    assert image.file.read() == b64_of(payload)
    body = mock_api.last_json()
    assert body["model"] == "gpt-image-2" and "a red fox" in body["prompt"]
    assert mock_api.last.headers["authorization"] == "Bearer sk-test"


@pytest.mark.django_db
def test_pipeline_fails_on_a_safety_refusal_without_storing_anything(settings, mock_api) -> None:
    OPENAI.configure(settings, mock_api, api_key="sk-test")
    mock_api.reply(400, json=fixture("error_moderation_blocked.json"))
    generation = imagegen.generate(prompt="something the safety system refuses", provider="openai")
    generation.refresh_from_db()
    assert generation.status == "failed"
    assert generation.error_code == "content_rejected"
    assert "safety system" in generation.error_message
    assert "sk-test" not in generation.error_message
    assert generation.cost is None
    assert not generation.images.exists()
    assert media_files(settings) == []


# Operations ----------------------------------------------------------------------------------


def gray_mask(width: int = 64, height: int = 48, box=(8, 8, 23, 23)) -> bytes:
    """Return imagegen's form of a mask: grayscale, white inside ``box`` (change), black outside."""
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return buffer.getvalue()


def sent_files(request) -> dict[str, list[bytes]]:
    files: dict[str, list[bytes]] = {}
    for part in multipart_parts(request):
        if part.filename:
            files.setdefault(part.name, []).append(part.content)
    return files


def sent_fields(request) -> dict[str, str]:
    return {p.name: p.text for p in multipart_parts(request) if p.filename is None}


def test_inpaint_mask_becomes_transparent_where_the_image_changes(mock_api) -> None:
    mock_api.reply(json=fixture("edit.json"))
    source = png_bytes(64, 48)
    run(make(mock_api), operation="inpaint", source_images=(source,), mask=gray_mask())
    files = sent_files(mock_api.last)
    assert files["image[]"] == [source]
    mask = Image.open(io.BytesIO(files["mask"][0]))
    assert (mask.format, mask.mode, mask.size) == ("PNG", "RGBA", (64, 48))
    alpha = mask.getchannel("A")
    assert alpha.getpixel((15, 15)) == 0  # white in imagegen's mask: transparent, repainted
    assert alpha.getpixel((40, 30)) == 255  # black: opaque, kept
    assert sent_fields(mock_api.last)["prompt"] == PROMPT  # inpaint sends the prompt as it is


def test_a_mask_not_the_size_of_the_first_image_is_refused_before_sending(mock_api) -> None:
    with pytest.raises(UnsupportedRequest, match="size of the first image, 64x48"):
        run(
            make(mock_api),
            operation="inpaint",
            source_images=(png_bytes(64, 48),),
            mask=gray_mask(32, 32),
        )
    assert mock_api.requests == []


@pytest.mark.parametrize(
    ("operation", "search", "references", "prompt"),
    [
        ("replace_background", "", 0,
         "Replace the background with: a beach at noon. Keep the subject exactly as it is: its "
         "shape, edges, colours, lighting and position."),
        ("search_replace", "the blue bottle", 0,
         "Replace the blue bottle with a beach at noon. Change nothing else in the image."),
        ("search_recolor", "the blue bottle", 0,
         "Recolour the blue bottle: a beach at noon. Change nothing else in the image."),
        ("restyle", "", 0,
         "Restyle the image: a beach at noon. Keep its subject and composition."),
        ("restyle", "", 1,
         "Apply the style of the second image to the first image: a beach at noon. Keep the "
         "first image's subject and composition; take only the look (palette, texture, medium) "
         "from the second."),
    ],
)  # fmt: skip
def test_instruction_operations_are_edits_with_a_rewritten_prompt(
    mock_api, operation, search, references, prompt
) -> None:
    mock_api.reply(json=fixture("edit.json"))
    source, reference = png_bytes(), png_bytes(color=(0, 90, 200))
    images = (source, reference)[: 1 + references]
    run(
        make(mock_api),
        prompt="a beach at noon",
        operation=operation,
        search=search,
        source_images=images,
    )
    sent = mock_api.last
    assert sent.url.path == "/v1/images/edits"
    fields = sent_fields(sent)
    assert fields["prompt"] == prompt
    assert "background" not in fields
    assert sent_files(sent) == {"image[]": list(images)}


def test_remove_background_asks_for_a_transparent_png(mock_api) -> None:
    provider = make(mock_api)
    calls, warnings = provider.prepare(
        ImageRequest(
            prompt="remove background",
            operation="remove_background",
            source_images=(png_bytes(),),
            output_format="jpeg",
        )
    )
    assert calls[0].output_format == "png"
    assert warnings[0].startswith("A transparent background needs png or webp")
    mock_api.reply(json=fixture("edit.json"))
    provider.generate(calls[0])
    fields = sent_fields(mock_api.last)
    assert (fields["background"], fields["output_format"]) == ("transparent", "png")
    assert fields["prompt"].startswith("Remove the background entirely")


def test_remove_background_is_refused_on_a_model_without_transparency(mock_api) -> None:
    provider = make(mock_api, model="gpt-image-2.5-flare")
    request = ImageRequest(
        prompt="remove background", operation="remove_background", source_images=(png_bytes(),)
    )
    with pytest.raises(
        UnsupportedRequest, match=re.escape("gpt-image-2.5-flare cannot remove background")
    ):
        provider.prepare(request)
    assert mock_api.requests == []


def test_a_mask_on_an_instruction_operation_is_refused_before_sending(mock_api) -> None:
    with pytest.raises(UnsupportedRequest, match="no mask for restyle"):
        run(make(mock_api), operation="restyle", source_images=(png_bytes(),), mask=gray_mask())
    assert mock_api.requests == []


def test_the_catalog_describes_each_operation() -> None:
    caps = catalog.get_model("openai", "gpt-image-2").capabilities
    assert caps.support("inpaint").mask == "required"
    assert caps.support("edit").mask == "optional"
    assert caps.support("restyle").max_references == 15
    assert caps.support("remove_background") is not None
    assert caps.support("upscale") is None
    later = catalog.get_model("openai", "gpt-image-2.6-sunburst").capabilities
    assert later.support("remove_background") is None


def test_edit_estimate_adds_the_input_image_tokens() -> None:
    provider = OpenAIProvider(alias="openai", api_key=KEY)
    text = provider.estimate_cost(ImageRequest(prompt=PROMPT))
    source = png_bytes(1024, 1024)
    edit = provider.estimate_cost(
        ImageRequest(prompt=PROMPT, operation="edit", source_images=(source,))
    )
    # 1024x1024 is scaled to 768x768: four 512 px tiles, 85 + 4*170 = 765 tokens at $8/1M.
    assert edit - text == Decimal("0.006120")
    two = provider.estimate_cost(
        ImageRequest(prompt=PROMPT, operation="edit", source_images=(source, png_bytes(64, 48)))
    )
    assert two - edit == Decimal("0.002040")  # a small image is one tile: 255 tokens


# Operations through the pipeline -----------------------------------------------------------


@pytest.mark.django_db
def test_pipeline_replaces_a_background_with_cost_lineage_and_estimate(settings, mock_api) -> None:
    OPENAI.configure(settings, mock_api, api_key="sk-test")
    first = imagegen.generate(prompt="a red vase", provider="default").images.get()
    payload = fixture("edit.json")
    mock_api.reply(json=payload)
    estimate = imagegen.estimate(
        operation="replace_background", provider="openai", source=first, prompt="a marble shelf"
    )
    generation = imagegen.generate(
        operation="replace_background", provider="openai", source=first, prompt="a marble shelf"
    )
    generation.refresh_from_db()
    assert generation.status == "succeeded", generation.error_message
    assert generation.operation == "replace_background"
    assert generation.estimated_cost == estimate > 0
    assert generation.cost == Decimal("0.042389")  # 25*5 + 1323*8 + 1056*30 per 1M
    image = generation.images.get()
    assert image.file.read() == b64_of(payload)
    assert image.lineage() == [image, first]
    assert generation.source_sha256
    fields = sent_fields(mock_api.last)
    assert fields["prompt"].startswith("Replace the background with: a marble shelf")
    assert len(sent_files(mock_api.last)["image[]"]) == 1


@pytest.mark.django_db
def test_pipeline_records_a_refused_edit_as_failed(settings, mock_api) -> None:
    OPENAI.configure(settings, mock_api, api_key="sk-test")
    mock_api.reply(400, json=fixture("error_moderation_blocked.json"))
    generation = imagegen.generate(
        operation="inpaint",
        provider="openai",
        source=png_bytes(64, 48),
        mask=(8, 8, 24, 24),
        prompt="something refused",
    )
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == ("failed", "content_rejected")
    assert "safety system" in generation.error_message
    assert generation.cost is None  # a 400 is not billed (§2.6)
    assert not generation.images.exists()


@pytest.mark.django_db
def test_a_model_that_cannot_is_refused_naming_the_aliases_that_can(settings, mock_api) -> None:
    settings.IMAGEGEN = {
        "PROVIDERS": {
            "default": {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"},
            "flare": {
                "BACKEND": OPENAI.backend,
                "OPTIONS": {"api_key": "k", "model": "gpt-image-2.5-flare"},
            },
            "gpt2": {"BACKEND": OPENAI.backend, "OPTIONS": {"api_key": "k"}},
            "kontext": {
                "BACKEND": "imagegen.providers.bfl.BFLProvider",
                "OPTIONS": {"api_key": "k", "model": "flux-kontext-pro"},
            },
        }
    }
    with pytest.raises(UnsupportedRequest) as caught:
        imagegen.generate(operation="remove_background", provider="flare", source=png_bytes())
    message = str(caught.value)
    assert "OpenAI cannot remove background images" in message
    assert message.endswith("Configured providers that can: default, gpt2.")
    assert mock_api.requests == []
    assert not Generation.objects.exists()


class FailingStability(StabilityProvider):
    """Stability, as a preset lists it for replace_background, with its service down."""

    operations = (*StabilityProvider.operations, "replace_background")

    def _generate(self, request, context):
        raise ProviderUnavailable("Stability AI is down (HTTP 503).", provider=self.alias)


@pytest.mark.django_db
def test_a_preset_falls_back_to_an_openai_edit_for_replace_background(settings, mock_api) -> None:
    settings.IMAGEGEN = {
        "PROVIDERS": {
            "default": {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"},
            "stability": {
                "BACKEND": f"{__name__}.FailingStability",
                "OPTIONS": {"api_key": "sk-stability"},
            },
            # Listed, but FLUX1.1 [pro] cannot edit: never a fallback for this operation.
            "flux": {
                "BACKEND": "imagegen.providers.bfl.BFLProvider",
                "OPTIONS": {"api_key": "k", "model": "flux-pro-1.1"},
            },
            "openai": {
                "BACKEND": OPENAI.backend,
                "OPTIONS": {"api_key": "sk-test", "transport": mock_api.transport},
            },
        },
        "PRESETS": {
            "product": {
                "operation_providers": {"replace_background": ["stability", "flux", "openai"]}
            }
        },
        "DERIVATIVE_WIDTHS": [],
    }
    planned = plan(
        operation="replace_background", source=png_bytes(), preset="product", prompt="a shelf"
    )
    assert (planned.provider.alias, planned.params.fallbacks) == ("stability", ("openai",))
    mock_api.reply(json=fixture("edit.json"))
    generation = imagegen.generate(
        operation="replace_background", source=png_bytes(), preset="product", prompt="a shelf"
    )
    assert generation.provider == "openai"
    assert generation.status == "succeeded", generation.error_message
    failed = generation.fallback_of
    assert (failed.provider, failed.status, failed.error_code) == (
        "stability",
        "failed",
        "provider_unavailable",
    )
    assert failed.source_sha256 == generation.source_sha256
    assert sent_fields(mock_api.last)["prompt"].startswith("Replace the background with: a shelf")


def test_the_rewritten_prompt_does_not_double_the_callers_full_stop(mock_api) -> None:
    mock_api.reply(json=fixture("edit.json"))
    run(
        make(mock_api),
        prompt="  a marble shelf. ",
        operation="replace_background",
        source_images=(png_bytes(),),
    )
    assert sent_fields(mock_api.last)["prompt"].startswith(
        "Replace the background with: a marble shelf. Keep the subject"
    )
