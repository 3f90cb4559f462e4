"""Tests for Gemini Batch Mode at the wire level, against the fake in imagegen.testing."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from decimal import Decimal

import pytest

from imagegen.exceptions import (
    InvalidResponse,
    ModelUnavailable,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnsupportedRequest,
)
from imagegen.pricing import money
from imagegen.providers.batching import FINAL_STATES, STATES, BatchItem, BatchProvider
from imagegen.providers.google import GoogleProvider
from imagegen.providers.google_batch import STATE_MAP
from imagegen.testing.google_batch_responses import (
    GeminiBatchAPI,
    blocked_entry,
    error_entry,
    image_entry,
    safety_entry,
)
from imagegen.types import ImageRequest
from tests.conftest import png_bytes

# Shaped like a real key, so the key-like pattern scrubbing is exercised too.
KEY = "AIzaSyTEST-0123456789abcdefghijklmnopqr"
MODEL = "gemini-nano-banana-2.1"
ROOT = "https://generativelanguage.googleapis.com"
# gemini-nano-banana-2.1: 10 text tokens at $1.50/M and 1120 image tokens at $30/M make
# $0.033615 synchronously; Batch Mode charges half, $0.0168075, rounded to micro-dollars.
HALF_PRICE = Decimal("0.016808")


def make(api: GeminiBatchAPI, *, streaming: bool = False, **options) -> GoogleProvider:
    transport = api.streaming if streaming else api.transport
    return GoogleProvider(alias="google", api_key=KEY, transport=transport, **options)


def items(count: int, **fields) -> list[BatchItem]:
    return [
        BatchItem(custom_id=f"row-{n}", request=ImageRequest(prompt=f"a lighthouse {n}", **fields))
        for n in range(1, count + 1)
    ]


def submit(api: GeminiBatchAPI, count: int = 3, **fields):
    provider = make(api)
    return provider, provider.batch_submit(items(count, **fields), key="imagegen-run-7")


@pytest.fixture
def api() -> GeminiBatchAPI:
    return GeminiBatchAPI(key=KEY)


def test_google_provider_is_a_batch_provider() -> None:
    provider = GoogleProvider(alias="google", api_key=KEY)
    assert isinstance(provider, BatchProvider)
    # The guide: an input file is at most 2 GB.
    assert provider.batch_max_bytes == 2 * 1000**3


# Submitting ---------------------------------------------------------------------------------


def test_a_small_batch_is_sent_inline_as_one_request(api: GeminiBatchAPI) -> None:
    # Two 2K results (16 MiB each at worst) fit in half the 64 MiB answer cap.
    provider, state = submit(api, 2, aspect_ratio="16:9", quality="2K")
    (create,) = api.requests
    assert create.method == "POST"
    assert str(create.url) == f"{ROOT}/v1beta/models/{MODEL}:batchGenerateContent"
    assert create.headers["x-goog-api-key"] == KEY
    expected = [
        {
            "request": provider.gemini_body(item.request, MODEL),
            "metadata": {"key": item.custom_id},
        }
        for item in items(2, aspect_ratio="16:9", quality="2K")
    ]
    assert json.loads(create.content) == {
        "batch": {
            "displayName": "imagegen-run-7",
            "inputConfig": {"requests": {"requests": expected}},
        }
    }
    # The same body as a synchronous call: text, then the image config.
    first = expected[0]["request"]
    assert first["contents"] == [{"parts": [{"text": "a lighthouse 1"}]}]
    assert first["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    assert state.batch_id == "batches/000000000001"
    assert (state.status, state.provider_status, state.total) == (
        "validating",
        "BATCH_STATE_PENDING",
        2,
    )
    assert state.output["input"] == "inline"
    assert state.output["model"] == MODEL


def test_on_created_gets_the_batch_name_before_the_first_poll(api: GeminiBatchAPI) -> None:
    provider, seen = make(api), []
    state = provider.batch_submit(
        items(2),
        key="imagegen-run-7",
        on_created=lambda name: seen.append((name, len(api.requests))),
    )
    assert seen == [(state.batch_id, 1)]
    provider.batch_poll(state.batch_id)
    assert str(api.requests[-1].url) == f"{ROOT}/v1beta/{state.batch_id}"


def test_a_larger_batch_is_uploaded_through_the_files_api(api: GeminiBatchAPI) -> None:
    # Nine 1K results could exceed half the 64 MiB answer cap inline, so a file is used.
    provider = make(api)
    state = provider.batch_submit(items(9), key="imagegen-run-7")
    start, upload, create = api.requests
    assert str(start.url) == f"{ROOT}/upload/v1beta/files"
    assert {name: start.headers[name] for name in (
        "x-goog-api-key", "x-goog-upload-protocol", "x-goog-upload-command",
        "x-goog-upload-header-content-length", "x-goog-upload-header-content-type",
    )} == {
        "x-goog-api-key": KEY,
        "x-goog-upload-protocol": "resumable",
        "x-goog-upload-command": "start",
        "x-goog-upload-header-content-length": str(len(upload.content)),
        "x-goog-upload-header-content-type": "application/jsonl",
    }  # fmt: skip
    assert json.loads(start.content) == {"file": {"displayName": "imagegen-run-7"}}
    assert upload.url.params["upload_protocol"] == "resumable"
    assert upload.headers["x-goog-upload-command"] == "upload, finalize"
    assert upload.headers["x-goog-upload-offset"] == "0"
    lines = [json.loads(line) for line in upload.content.splitlines()]
    assert lines == [
        {"key": item.custom_id, "request": provider.gemini_body(item.request, MODEL)}
        for item in items(9)
    ]
    file_name = state.output["inputFile"]
    assert json.loads(create.content) == {
        "batch": {"displayName": "imagegen-run-7", "inputConfig": {"fileName": file_name}}
    }
    assert state.output["input"] == "file"
    assert api.batches[state.batch_id].requests[8][0] == "row-9"


def test_the_upload_is_streamed_in_chunks_and_pieces(api: GeminiBatchAPI) -> None:
    provider = make(api, streaming=True)
    provider.batch_upload_chunk_bytes = 256 * 1024  # the granularity; production sends 8 MB
    produced = []

    def generate() -> Iterator[BatchItem]:
        for n in range(1, 1001):
            produced.append(n)
            yield BatchItem(custom_id=f"row-{n}", request=ImageRequest(prompt=f"sketch {n} " * 20))

    state = provider.batch_submit(generate(), key="imagegen-run-8")
    uploads = [r for r in api.requests if "upload_id" in str(r.url)]
    size = sum(len(r.content) for r in uploads)
    assert len(uploads) >= 2
    assert [r.headers["x-goog-upload-command"] for r in uploads] == ["upload"] * (
        len(uploads) - 1
    ) + ["upload, finalize"]
    offsets = [int(r.headers["x-goog-upload-offset"]) for r in uploads]
    assert offsets == [sum(len(r.content) for r in uploads[:i]) for i in range(len(uploads))]
    # Each chunk reached the transport in pieces of at most 64 KiB, never as one bytes object.
    chunk_pieces = [p for r, p in zip(api.requests, api.streaming.pieces, strict=True)
                    if "upload_id" in str(r.url)]  # fmt: skip
    assert [sum(p) for p in chunk_pieces] == [len(r.content) for r in uploads]
    assert all(len(p) >= 2 and max(p) <= 64 * 1024 for p in chunk_pieces[:-1])
    assert max(max(p) for p in chunk_pieces) <= 64 * 1024 < 256 * 1024 < size
    assert len(api.uploaded_lines(state.output["inputFile"])) == 1000
    assert produced[-1] == 1000


def test_requests_a_batch_cannot_take_are_refused_before_sending(api: GeminiBatchAPI) -> None:
    provider = make(api)
    with pytest.raises(UnsupportedRequest, match="no Batch Mode"):
        provider.batch_submit(items(1, model="imagen-4.0-generate-001"), key="k")
    mixed = [*items(1), *items(1, model="gemini-3-pro-image")]
    mixed[1] = BatchItem(custom_id="row-2", request=mixed[1].request)
    with pytest.raises(UnsupportedRequest, match="one model"):
        provider.batch_submit(mixed, key="k")
    with pytest.raises(UnsupportedRequest, match="share the key"):
        provider.batch_submit([*items(1), *items(1)], key="k")
    with pytest.raises(UnsupportedRequest, match="at least one"):
        provider.batch_submit([], key="k")
    with pytest.raises(UnsupportedRequest, match="at most 2,000 requests"):
        provider.batch_submit(items(2001), key="k")
    assert api.requests == []


# Polling ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "status"), sorted(STATE_MAP.items()))
def test_every_google_state_is_mapped(api: GeminiBatchAPI, raw: str, status: str) -> None:
    provider, state = submit(api, 1)
    api.advance(state.batch_id, raw)
    polled = provider.batch_poll(state.batch_id)
    assert (polled.status, polled.provider_status) == (status, raw)
    assert polled.status in STATES


def test_the_documented_states_cover_every_final_state() -> None:
    for prefix in ("BATCH_STATE_", "JOB_STATE_"):
        for word in ("PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"):
            assert f"{prefix}{word}" in STATE_MAP
    final = ("SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED")
    assert {STATE_MAP[f"BATCH_STATE_{word}"] for word in final} == FINAL_STATES


def test_a_poll_reports_the_batch_stats(api: GeminiBatchAPI) -> None:
    provider, state = submit(api, 3)
    api.finish(state.batch_id, {"row-2": error_entry()})
    polled = provider.batch_poll(state.batch_id)
    assert (polled.status, polled.total, polled.completed, polled.failed) == ("completed", 3, 2, 1)
    assert polled.done


def test_a_failed_batch_says_why(api: GeminiBatchAPI) -> None:
    provider, state = submit(api, 2)
    error = {"code": 13, "message": "Internal error while running the batch."}
    api.finish(state.batch_id, state="FAILED", missing=("row-1", "row-2"), error=error)
    polled = provider.batch_poll(state.batch_id)
    assert polled.status == "failed"
    assert "Internal error while running the batch" in polled.error
    assert list(provider.batch_results(polled)) == []


# Results ------------------------------------------------------------------------------------


def test_inline_results_become_outcomes_at_half_price(api: GeminiBatchAPI) -> None:
    provider, state = submit(api, 2)
    picture = png_bytes(32, 32)
    api.finish(state.batch_id, {"row-1": image_entry([picture])})
    outcomes = {o.custom_id: o for o in provider.batch_results(provider.batch_poll(state.batch_id))}
    assert set(outcomes) == {"row-1", "row-2"}
    result = outcomes["row-1"].result
    assert result is not None and result.images[0].content == picture
    assert result.model == MODEL
    assert result.usage["image_output_tokens"] == 1120
    assert result.cost == HALF_PRICE
    # The synchronous price of the same usage is twice that (before rounding).
    sync = provider.model_info(MODEL).price.actual(ImageRequest(prompt=""), result.usage, 1)
    assert result.cost == money(sync / 2)
    assert not outcomes["row-1"].error and not outcomes["row-1"].refused


@pytest.mark.parametrize("output_in", ["response", "metadata"])
def test_results_are_read_where_either_the_guide_or_the_sdk_finds_them(output_in: str) -> None:
    api = GeminiBatchAPI(key=KEY, output_in=output_in)
    provider, state = submit(api, 1)
    api.finish(state.batch_id)
    (outcome,) = provider.batch_results(provider.batch_poll(state.batch_id))
    assert outcome.custom_id == "row-1" and outcome.result is not None


def test_file_results_are_downloaded_and_read_line_by_line(api: GeminiBatchAPI) -> None:
    provider, state = submit(api, 12)
    api.finish(state.batch_id, {"row-3": error_entry(429, "Quota exceeded.")})
    polled = provider.batch_poll(state.batch_id)
    file_name = polled.output["responsesFile"]
    outcomes = list(provider.batch_results(polled))
    download = api.requests[-1]
    assert str(download.url) == f"{ROOT}/download/v1beta/{file_name}:download?alt=media"
    assert download.headers["x-goog-api-key"] == KEY
    assert [o.custom_id for o in outcomes] == [f"row-{n}" for n in range(1, 13)]
    assert all(o.result and o.result.cost == HALF_PRICE for o in outcomes if o.custom_id != "row-3")
    failed = outcomes[2]
    assert failed.result is None and not failed.refused
    assert failed.error == "Google could not run this request (RESOURCE_EXHAUSTED): Quota exceeded."


def test_refusals_and_errors_are_per_request(api: GeminiBatchAPI) -> None:
    provider, state = submit(api, 4)
    said = "The prompt was blocked because it may violate the usage policy."
    api.finish(
        state.batch_id,
        {
            "row-1": blocked_entry("PROHIBITED_CONTENT", said),
            "row-2": safety_entry("IMAGE_SAFETY", "The image was withheld."),
            "row-3": error_entry(400, "Request contains an invalid argument."),
        },
    )
    outcomes = {o.custom_id: o for o in provider.batch_results(provider.batch_poll(state.batch_id))}
    blocked, withheld, invalid, drawn = (outcomes[f"row-{n}"] for n in range(1, 5))
    assert blocked.refused and said in blocked.error and "PROHIBITED_CONTENT" in blocked.error
    assert withheld.refused and "IMAGE_SAFETY" in withheld.error
    assert "The image was withheld" in withheld.error
    # A refusal that reported usage keeps its charge at the batch price: 10 prompt tokens at
    # $1.50/M are $0.000015, half of it $0.0000075, rounded up to a micro-dollar.
    assert blocked.result is not None and blocked.result.images == ()
    assert blocked.result.filtered and blocked.result.cost == Decimal("0.000008")
    assert not invalid.refused and invalid.result is None
    assert "INVALID_ARGUMENT" in invalid.error and "invalid argument" in invalid.error
    assert drawn.result is not None and not drawn.error


def test_an_expired_batch_yields_the_results_it_has(api: GeminiBatchAPI) -> None:
    provider, state = submit(api, 3)
    api.finish(state.batch_id, state="EXPIRED", missing=("row-3",))
    polled = provider.batch_poll(state.batch_id)
    assert polled.status == "expired" and "48 hours" in polled.error
    assert [o.custom_id for o in provider.batch_results(polled)] == ["row-1", "row-2"]


# Cancelling and finding ---------------------------------------------------------------------


def test_cancel(api: GeminiBatchAPI) -> None:
    provider, state = submit(api, 2)
    api.advance(state.batch_id, "RUNNING")
    cancelled = provider.batch_cancel(state.batch_id)
    cancel = api.requests[-2]
    assert (cancel.method, str(cancel.url)) == ("POST", f"{ROOT}/v1beta/{state.batch_id}:cancel")
    assert cancel.headers["x-goog-api-key"] == KEY
    assert cancelled.status == "cancelled" and cancelled.done
    assert cancelled.provider_status == "BATCH_STATE_CANCELLED"


def test_cancelling_a_finished_batch_returns_its_state(api: GeminiBatchAPI) -> None:
    provider, state = submit(api, 1)
    api.finish(state.batch_id)
    assert provider.batch_cancel(state.batch_id).status == "completed"


def test_a_batch_is_found_again_by_its_display_name(api: GeminiBatchAPI) -> None:
    api.page_size = 2
    provider = make(api)
    names = {
        key: provider.batch_submit(items(1), key=key).batch_id
        for key in ("imagegen-run-1", "imagegen-run-2", "imagegen-run-3", "imagegen-run-4")
    }
    found = provider.batch_find("imagegen-run-1")
    assert found is not None and found.batch_id == names["imagegen-run-1"]
    assert found.status == "validating"
    lists = [r for r in api.requests if r.url.path == "/v1beta/batches"]
    assert [r.url.params.get("pageToken") for r in lists] == [None, "2"]
    assert provider.batch_find("imagegen-run-99") is None


# Errors and the key -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (400, ProviderError, "invalid_request"),
        (403, ProviderError, "authentication_failed"),
        (404, ModelUnavailable, "model_unavailable"),
        (429, RateLimited, "rate_limited"),
        (500, ProviderUnavailable, "provider_unavailable"),
    ],
)
def test_api_errors_are_mapped_without_the_key(
    api: GeminiBatchAPI, caplog, status: int, kind: type, code: str
) -> None:
    caplog.set_level(logging.DEBUG)
    api.fail_next("POST", ":batchGenerateContent", status, f"Refused for key {KEY}.")
    with pytest.raises(kind) as raised:
        submit(api, 1)
    assert raised.value.code == code
    assert KEY not in str(raised.value) and "Refused for key" in str(raised.value)
    assert KEY not in caplog.text


def test_errors_while_polling_uploading_and_downloading(api: GeminiBatchAPI, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    provider, state = submit(api, 1)
    api.fail_next("GET", "/batches/", 429, "Slow down.", retry_delay=30)
    with pytest.raises(RateLimited) as raised:
        provider.batch_poll(state.batch_id)
    assert raised.value.retry_after == 30
    with pytest.raises(ModelUnavailable):
        provider.batch_poll("batches/unknown")
    api.fail_next("POST", "/upload/v1beta/files", 403, f"Key {KEY} may not upload.",
                  rpc_status="PERMISSION_DENIED")  # fmt: skip
    with pytest.raises(ProviderError) as denied:
        provider.batch_submit(items(9), key="k")
    assert denied.value.code == "authentication_failed" and KEY not in str(denied.value)
    provider, state = submit(api, 9)
    api.finish(state.batch_id)
    api.fail_next("GET", "/download/", 500, f"Backend error for {KEY}.")
    with pytest.raises(ProviderUnavailable) as broken:
        list(provider.batch_results(provider.batch_poll(state.batch_id)))
    assert KEY not in str(broken.value)
    assert KEY not in caplog.text


def test_a_wrong_key_is_reported_as_such(api: GeminiBatchAPI) -> None:
    provider = GoogleProvider(alias="google", api_key="AIzaSyWRONG-0123456789abcdefghijklmnop",
                              transport=api.transport)  # fmt: skip
    with pytest.raises(ProviderError) as raised:
        provider.batch_submit(items(1), key="k")
    assert raised.value.code == "authentication_failed"
    assert "AIzaSyWRONG" not in str(raised.value)


def test_google_text_quoted_in_outcomes_and_states_is_scrubbed(api: GeminiBatchAPI) -> None:
    provider, state = submit(api, 2)
    error = {"code": 13, "message": f"Internal error for key {KEY}."}
    api.finish(state.batch_id, {"row-1": error_entry(403, f"Key {KEY} is suspended.")},
               state="FAILED", error=error)  # fmt: skip
    polled = provider.batch_poll(state.batch_id)
    assert "Internal error for key [redacted]" in polled.error and KEY not in polled.error
    outcome = next(o for o in provider.batch_results(polled) if o.custom_id == "row-1")
    assert outcome.error == (
        "Google could not run this request (PERMISSION_DENIED): Key [redacted] is suspended."
    )


def test_a_result_line_over_the_response_cap_is_refused(api: GeminiBatchAPI) -> None:
    provider = make(api, max_response_bytes=50_000)
    state = provider.batch_submit(items(2), key="imagegen-run-9")
    noise = bytes(range(256)) * 400  # 100 kB that no PNG encoder could shrink
    api.finish(state.batch_id, {"row-2": {"response": {"candidates": [{"content": {"parts": [
        {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(noise).decode()}},
    ]}}]}}})  # fmt: skip
    results = provider.batch_results(provider.batch_poll(state.batch_id))
    assert next(results).custom_id == "row-1"
    with pytest.raises(InvalidResponse) as raised:
        next(results)
    assert raised.value.code == "response_too_large"


def test_inline_results_without_their_metadata_are_matched_by_order() -> None:
    api = GeminiBatchAPI(key=KEY, echo_metadata=False)
    provider, state = submit(api, 3)
    assert state.output["keys"] == ["row-1", "row-2", "row-3"]
    api.finish(state.batch_id, {"row-2": error_entry()})
    outcomes = list(provider.batch_results(state))
    assert [(o.custom_id, bool(o.error)) for o in outcomes] == [
        ("row-1", False),
        ("row-2", True),
        ("row-3", False),
    ]
