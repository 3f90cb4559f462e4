"""Gemini Batch Mode through the whole pipeline: rows, submission, polling, results, costs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from imagegen import services
from imagegen.models import BatchStatus, Generation, Status
from imagegen.testing import GOOGLE
from imagegen.testing.google_batch_responses import GeminiBatchAPI, blocked_entry
from tests.batch.support import products

pytestmark = pytest.mark.django_db


@pytest.fixture
def gemini(settings) -> GeminiBatchAPI:
    api = GeminiBatchAPI()
    settings.IMAGEGEN = {
        "DEFAULT_PROVIDER": "gemini",
        "PROVIDERS": {
            "gemini": {
                "BACKEND": GOOGLE,
                "OPTIONS": {
                    "api_key": "test-key",
                    "transport": api.transport,
                    "model": "gemini-2.5-flash-image",
                },
            }
        },
        "DERIVATIVE_WIDTHS": [],
        "BUDGETS": {"SITE_MONTHLY": "100"},
    }
    return api


def test_a_gemini_batch_run_ends_with_stored_images_at_half_the_price(
    gemini, django_capture_on_commit_callbacks
):
    items = products(3)
    now = services.estimate(target=items[0], field="photo")
    assert services.estimate(target=items[0], field="photo", mode="batch") == (now / 2).quantize(
        Decimal("0.000001")
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = services.generate_many(items, "photo", mode="batch")
    (batch,) = result.provider_batches
    batch.refresh_from_db()
    assert batch.batch_id in gemini.batches
    rows = list(Generation.objects.order_by("pk"))
    keys = [key for key, _ in gemini.batches[batch.batch_id].requests]
    assert keys == [str(row.pk) for row in rows]

    gemini.advance(batch.batch_id)
    services.poll_batches()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.IN_PROGRESS

    gemini.finish(batch.batch_id, {keys[1]: blocked_entry(message="Blocked by policy.")})
    services.poll_batches()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    first, blocked, last = (Generation.objects.get(pk=row.pk) for row in rows)
    assert (first.status, last.status) == (Status.SUCCEEDED, Status.SUCCEEDED)
    assert first.is_batch and first.cost is not None and first.cost > 0
    assert first.target.photo.name == first.images.get().file.name
    assert blocked.status == Status.FILTERED  # refused by the provider, its charge kept
    assert "Blocked by policy." in blocked.error_message
    assert batch.cost == sum((row.cost or Decimal(0) for row in (first, blocked, last)), Decimal(0))
