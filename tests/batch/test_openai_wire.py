"""OpenAI's Batch API at the wire: the JSONL upload, the batch, its statuses and result files."""

from __future__ import annotations

import base64
import io
import json
from decimal import Decimal

import pytest
from PIL import Image

from imagegen.exceptions import UnsupportedRequest
from imagegen.providers.batching import BatchItem, BatchProvider
from imagegen.providers.openai import OpenAIProvider
from imagegen.testing import multipart_parts, png_bytes
from imagegen.testing.openai_batch import FakeOpenAIBatches
from imagegen.types import ImageRequest


def make(fake: FakeOpenAIBatches) -> OpenAIProvider:
    return OpenAIProvider(alias="openai", api_key="sk-test", transport=fake.transport)


def items(count: int, **fields) -> list[BatchItem]:
    return [
        BatchItem(custom_id=str(n), request=ImageRequest(prompt=f"product {n}", **fields))
        for n in range(1, count + 1)
    ]


def test_the_provider_speaks_the_batch_protocol() -> None:
    provider = make(FakeOpenAIBatches())
    assert isinstance(provider, BatchProvider)
    assert provider.batch_max_requests == 50_000
    assert provider.batch_max_bytes == 200 * 1024 * 1024


def test_submit_uploads_jsonl_then_creates_a_24h_batch_labelled_with_the_key() -> None:
    fake = FakeOpenAIBatches()
    seen: list[str] = []
    state = make(fake).batch_submit(items(3), key="k-1", on_created=seen.append)

    upload, create = fake.requests
    assert upload.url.path == "/v1/files"
    parts = {part.name: part for part in multipart_parts(upload)}
    assert parts["purpose"].text == "batch"
    lines = [json.loads(line) for line in parts["file"].content.splitlines()]
    assert [line["custom_id"] for line in lines] == ["1", "2", "3"]
    assert lines[0]["method"] == "POST"
    assert lines[0]["url"] == "/v1/images/generations"
    assert lines[0]["body"]["prompt"] == "product 1"
    assert lines[0]["body"]["model"] == "gpt-image-2"
    body = json.loads(create.content)
    assert body["endpoint"] == "/v1/images/generations"
    assert body["completion_window"] == "24h"
    assert body["metadata"]["imagegen_key"] == "k-1"
    assert seen == [state.batch_id]
    assert state.status == "validating"
    assert state.total == 3


def test_an_edit_batch_sends_json_edits_with_data_urls() -> None:
    fake = FakeOpenAIBatches()
    source, mask = png_bytes(8, 8), png_bytes(8, 8, (0, 0, 0))
    batch = items(1, operation="inpaint", source_images=(source,), mask=mask)
    state = make(fake).batch_submit(batch, key="k-edit")
    (line,) = fake.lines(state.batch_id)
    assert line["url"] == "/v1/images/edits"
    assert json.loads(fake.requests[1].content)["endpoint"] == "/v1/images/edits"
    assert line["body"]["images"][0]["image_url"].startswith("data:image/png;base64,")
    assert line["body"]["mask"]["image_url"].startswith("data:image/png;base64,")
    # The mask goes as OpenAI wants it: an alpha PNG, transparent where the image changes.
    sent_mask = base64.b64decode(line["body"]["mask"]["image_url"].partition(",")[2])
    assert Image.open(io.BytesIO(sent_mask)).mode == "RGBA"


def test_generations_and_edits_never_share_a_batch() -> None:
    mixed = [*items(1), *items(1, operation="edit", source_images=(png_bytes(8, 8),))]
    with pytest.raises(UnsupportedRequest, match="generations or edits"):
        make(FakeOpenAIBatches()).batch_submit(mixed, key="k")


@pytest.mark.parametrize(
    "status", ["validating", "in_progress", "finalizing", "cancelling", "cancelled", "failed"]
)
def test_poll_maps_every_status(status: str) -> None:
    fake = FakeOpenAIBatches()
    provider = make(fake)
    batch_id = provider.batch_submit(items(2), key="k").batch_id
    fake.advance(batch_id, status)
    state = provider.batch_poll(batch_id)
    assert (state.status, state.provider_status) == (status, status)
    assert state.done == (status in ("cancelled", "failed"))


def test_a_failed_batch_reports_the_providers_errors() -> None:
    fake = FakeOpenAIBatches()
    provider = make(fake)
    batch_id = provider.batch_submit(items(1), key="k").batch_id
    fake.finish(batch_id, status="failed", only=0, errors=["Line 1: size is not supported"])
    state = provider.batch_poll(batch_id)
    assert state.status == "failed"
    assert "size is not supported" in state.error


def test_results_map_images_refusals_and_errors_by_custom_id() -> None:
    fake = FakeOpenAIBatches()
    provider = make(fake)
    batch_id = provider.batch_submit(items(4), key="k").batch_id
    fake.finish(batch_id, refuse={"2"}, fail={"3": "Invalid size"}, lost={"4": "Server error"})
    state = provider.batch_poll(batch_id)
    assert (state.status, state.completed, state.failed) == ("completed", 1, 3)
    outcomes = {outcome.custom_id: outcome for outcome in provider.batch_results(state)}
    assert outcomes["1"].result is not None
    assert len(outcomes["1"].result.images) == 1
    assert outcomes["1"].result.usage["image_output_tokens"] == 1056
    assert outcomes["2"].refused and "safety" in outcomes["2"].error
    assert "Invalid size" in outcomes["3"].error and not outcomes["3"].refused
    assert "Server error" in outcomes["4"].error


def test_result_cost_is_the_usage_at_half_the_synchronous_price() -> None:
    fake = FakeOpenAIBatches()
    provider = make(fake)
    batch_id = provider.batch_submit(items(1), key="k").batch_id
    fake.finish(batch_id)
    (outcome,) = provider.batch_results(provider.batch_poll(batch_id))
    request = ImageRequest(prompt="x", model="gpt-image-2")
    full = provider.model_info("gpt-image-2").price.actual(request, outcome.result.usage, 1)
    assert outcome.result.cost == (full / 2).quantize(Decimal("0.000001"))
    assert outcome.result.cost > 0


def test_an_expired_batch_returns_the_work_it_finished() -> None:
    fake = FakeOpenAIBatches()
    provider = make(fake)
    batch_id = provider.batch_submit(items(3), key="k").batch_id
    fake.finish(batch_id, status="expired", only=1)
    state = provider.batch_poll(batch_id)
    assert state.status == "expired"
    assert [outcome.custom_id for outcome in provider.batch_results(state)] == ["1"]


def test_cancel_posts_to_the_batch_and_reports_cancelling() -> None:
    fake = FakeOpenAIBatches()
    provider = make(fake)
    batch_id = provider.batch_submit(items(1), key="k").batch_id
    state = provider.batch_cancel(batch_id)
    assert fake.requests[-1].url.path == f"/v1/batches/{batch_id}/cancel"
    assert state.status == "cancelling"


def test_find_lists_batches_until_it_finds_the_key() -> None:
    fake = FakeOpenAIBatches()
    provider = make(fake)
    wanted = provider.batch_submit(items(1), key="wanted").batch_id
    for n in range(150):  # newer batches push it onto the second page
        provider.batch_submit(items(1), key=f"other-{n}")
    found = provider.batch_find("wanted")
    assert found is not None and found.batch_id == wanted
    assert provider.batch_find("never-submitted") is None
    pages = [r for r in fake.requests if r.method == "GET" and r.url.path == "/v1/batches"]
    assert any("after" in str(r.url) for r in pages)
