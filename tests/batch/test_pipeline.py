"""Bulk runs through provider batches: grouping, submitting once, polling, ingesting, costs."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imagegen import services
from imagegen.exceptions import BudgetExceeded, ProviderUnavailable, UnsupportedRequest
from imagegen.models import BatchStatus, BudgetUse, Generation, ProviderBatch, Status
from imagegen.pipeline import batches
from imagegen.providers.openai import OpenAIProvider
from imagegen.runners.sweeper import sweep_jobs
from imagegen.testing.openai_batch import FakeOpenAIBatches
from tests.batch.support import products

pytestmark = pytest.mark.django_db


@pytest.fixture
def bulk(django_capture_on_commit_callbacks):
    """Return generate_many(mode="batch"), its batches submitted as on a commit."""

    def run(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return services.generate_many(*args, mode="batch", **kwargs)

    return run


def creates(fake: FakeOpenAIBatches) -> int:
    return sum(1 for r in fake.requests if r.method == "POST" and r.url.path == "/v1/batches")


def site() -> BudgetUse:
    return BudgetUse.objects.get(cap="site::month")


def test_a_batch_run_writes_rows_and_submits_one_batch_at_half_the_estimate(bulk, fake):
    items = products(3)
    now = services.estimate(target=items[0], field="photo")
    batch_price = services.estimate(target=items[0], field="photo", mode="batch")
    assert batch_price == (now / 2).quantize(Decimal("0.000001"))

    result = bulk(items, "photo")

    (batch,) = result.provider_batches
    batch.refresh_from_db()
    assert batch.batch_id in fake.batches
    assert batch.status == BatchStatus.VALIDATING
    assert batch.total == 3
    assert batch.estimated_cost == batch_price * 3
    rows = Generation.objects.order_by("pk")
    assert [row.status for row in rows] == [Status.RUNNING] * 3
    assert all(row.provider_batch_id == batch.pk and row.is_batch for row in rows)
    assert [line["custom_id"] for line in fake.lines(batch.batch_id)] == [
        str(row.pk) for row in rows
    ]
    # The budget holds the batch's estimate from the moment it is written.
    assert site().reserved == batch_price * 3


def test_an_alias_without_a_batch_api_is_refused_clearly(bulk, fake):
    (item,) = products(1)
    with pytest.raises(UnsupportedRequest, match="no batch API"):
        services.estimate(target=item, field="photo", provider="placeholder", mode="batch")
    result = bulk([item], "photo", provider="placeholder")
    assert not result.generations
    ((_, error),) = result.errors
    assert "no batch API" in str(error)
    assert not fake.requests


def test_batches_are_split_at_the_providers_request_limit(bulk, fake, monkeypatch):
    monkeypatch.setattr(OpenAIProvider, "batch_max_requests", 2)
    result = bulk(products(5), "photo", batch_size=2)
    assert [b.total for b in result.provider_batches] == [2, 2, 1]
    assert creates(fake) == 3
    assert sorted(len(fake.lines(b)) for b in fake.batches) == [1, 2, 2]


def test_batches_are_split_at_the_providers_byte_limit(bulk, fake, monkeypatch):
    monkeypatch.setattr(batches, "request_size", lambda row: 1000)
    monkeypatch.setattr(OpenAIProvider, "batch_max_bytes", 2300)  # filled to 90%: 2 requests
    result = bulk(products(3), "photo")
    assert [b.total for b in result.provider_batches] == [2, 1]


def test_polling_stores_images_and_settles_costs_at_the_batch_price(bulk, fake):
    result = bulk(products(2), "photo")
    (batch,) = result.provider_batches
    batch.refresh_from_db()

    fake.advance(batch.batch_id, "in_progress")
    tally = services.poll_batches()
    assert tally.polled == 1
    batch.refresh_from_db()
    assert batch.status == BatchStatus.IN_PROGRESS
    assert Generation.objects.filter(status=Status.RUNNING).count() == 2

    fake.finish(batch.batch_id)
    services.poll_batches()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert (batch.completed, batch.failed, batch.pending) == (2, 0, 0)
    rows = list(Generation.objects.order_by("pk"))
    assert [row.status for row in rows] == [Status.SUCCEEDED] * 2
    # 10 text tokens at $5/M and 1056 image tokens at $30/M, half price.
    each = ((Decimal(10) * 5 + Decimal(1056) * 30) / 1_000_000 / 2).quantize(Decimal("0.000001"))
    assert [row.cost for row in rows] == [each, each]
    assert batch.cost == each * 2
    assert all(row.images.count() == 1 for row in rows)
    assert all(row.target.photo.name == row.images.get().file.name for row in rows)
    usage = site()
    assert (usage.reserved, usage.spent) == (Decimal(0), each * 2)
    # Polling again changes nothing: the batch is closed.
    assert services.poll_batches().polled == 0


def test_requests_failed_inside_the_batch_fail_their_rows_with_the_providers_message(bulk, fake):
    result = bulk(products(3), "photo")
    (batch,) = result.provider_batches
    batch.refresh_from_db()
    first, second, third = Generation.objects.order_by("pk")
    fake.finish(batch.batch_id, refuse={str(second.pk)}, fail={str(third.pk): "Invalid size."})
    services.poll_batches()
    first.refresh_from_db(), second.refresh_from_db(), third.refresh_from_db()
    assert first.status == Status.SUCCEEDED
    assert (second.status, second.error_code) == (Status.FAILED, "content_rejected")
    assert "safety system" in second.error_message
    assert (third.status, third.error_code) == (Status.FAILED, "batch_request_failed")
    assert "Invalid size." in third.error_message
    assert second.cost is None and third.cost is None
    assert site().reserved == Decimal(0)


def test_an_expired_batch_fails_the_unfinished_rows_and_keeps_the_finished_ones_charge(bulk, fake):
    result = bulk(products(3), "photo")
    (batch,) = result.provider_batches
    batch.refresh_from_db()
    fake.finish(batch.batch_id, status="expired", only=1)
    services.poll_batches()
    rows = list(Generation.objects.order_by("pk"))
    assert [row.status for row in rows] == [Status.SUCCEEDED, Status.FAILED, Status.FAILED]
    assert rows[0].cost > 0
    assert rows[1].error_code == "batch_expired"
    assert "expired" in rows[1].error_message and "not charged" in rows[1].error_message
    batch.refresh_from_db()
    assert batch.status == BatchStatus.EXPIRED
    assert batch.cost == rows[0].cost
    assert site().spent == rows[0].cost
    assert site().reserved == Decimal(0)


def test_a_failed_batch_fails_every_row_with_the_providers_reason(bulk, fake):
    result = bulk(products(2), "photo")
    (batch,) = result.provider_batches
    batch.refresh_from_db()
    fake.finish(batch.batch_id, status="failed", only=0, errors=["Line 1: bad model"])
    services.poll_batches()
    rows = list(Generation.objects.all())
    assert {row.status for row in rows} == {Status.FAILED}
    assert all("bad model" in row.error_message for row in rows)


def test_cancel_cancels_the_providers_batch_and_the_next_poll_closes_it(bulk, fake):
    result = bulk(products(2), "photo")
    (batch,) = result.provider_batches
    batch.refresh_from_db()
    batch = services.cancel_batch(batch)
    assert fake.batches[batch.batch_id]["status"] == "cancelling"
    assert batch.status == BatchStatus.CANCELLING
    fake.finish(batch.batch_id, status="cancelled", only=1)
    services.poll_batches()
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    statuses = list(Generation.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == [Status.SUCCEEDED, Status.FAILED]


def test_a_crash_between_creating_the_batch_and_recording_its_id_never_submits_twice(
    bulk, fake, monkeypatch
):
    def killed(batch, batch_id):
        raise SystemExit("worker killed")

    monkeypatch.setattr(batches, "_record_id", killed)
    with pytest.raises(SystemExit):
        bulk(products(2), "photo")
    monkeypatch.undo()
    batch = ProviderBatch.objects.get()
    assert batch.batch_id is None and batch.submitted_at is not None
    assert creates(fake) == 1

    # Too early: the submission may still be under way; nothing happens.
    services.poll_batches()
    assert creates(fake) == 1
    # Later, the sweeper finds the batch by its key instead of creating another.
    ProviderBatch.objects.update(submitted_at=batch.submitted_at - _minutes(30))
    services.poll_batches()
    batch.refresh_from_db()
    assert creates(fake) == 1
    assert batch.batch_id == next(iter(fake.batches))
    assert set(Generation.objects.values_list("status", flat=True)) == {Status.RUNNING}


def test_a_batch_the_provider_never_received_is_submitted_by_the_sweeper(bulk, fake, monkeypatch):
    def refused(*args, **kwargs):
        raise ProviderUnavailable("down", code="connection_failed", retryable=True)

    monkeypatch.setattr(OpenAIProvider, "batch_submit", refused)
    bulk(products(1), "photo")
    monkeypatch.undo()
    batch = ProviderBatch.objects.get()
    assert batch.status == BatchStatus.PENDING and batch.batch_id is None
    ProviderBatch.objects.update(submitted_at=batch.submitted_at - _minutes(30))
    services.poll_batches()
    batch.refresh_from_db()
    assert batch.batch_id and creates(fake) == 1


def test_ingesting_the_same_results_twice_changes_nothing(bulk, fake):
    result = bulk(products(2), "photo")
    (batch,) = result.provider_batches
    batch.refresh_from_db()
    fake.finish(batch.batch_id)
    provider = batches.batch_provider("openai")
    state = provider.batch_poll(batch.batch_id)
    batches.ingest(batch, provider, provider.batch_results(state))
    spent = site().spent
    tally = batches.BatchSweep()
    batches.ingest(batch, provider, provider.batch_results(state), tally)
    assert (tally.succeeded, tally.failed) == (0, 0)
    assert site().spent == spent
    assert sum(row.images.count() for row in Generation.objects.all()) == 2


def test_the_job_sweeper_leaves_batched_rows_alone(bulk, fake):
    bulk(products(2), "photo")
    tally = sweep_jobs(queued_after=0, running_after=0)
    assert (tally.redispatched, tally.resumed, tally.failed) == (0, 0, 0)
    assert set(Generation.objects.values_list("status", flat=True)) == {Status.RUNNING}


def _minutes(n: int) -> datetime.timedelta:
    return datetime.timedelta(minutes=n)


def expired_row(bulk, fake) -> Generation:
    """Return the failed row of a one-product batch that expired before doing it."""
    (batch,) = bulk(products(1), "photo").provider_batches
    batch.refresh_from_db()
    fake.finish(batch.batch_id, status="expired", only=0)
    services.poll_batches()
    row = Generation.objects.get()
    assert row.status == Status.FAILED and not row.cost
    return row


def run_openai_on_locmem(settings) -> None:
    settings.IMAGEGEN = {**settings.IMAGEGEN, "PROVIDERS": {
        **settings.IMAGEGEN["PROVIDERS"],
        "openai": {"BACKEND": "imagegen.providers.locmem.LocmemProvider"},
    }}  # fmt: skip


def test_a_retried_batch_row_runs_as_an_ordinary_call(bulk, fake, settings):
    row = expired_row(bulk, fake)
    run_openai_on_locmem(settings)
    services.retry(row)
    row.refresh_from_db()
    assert row.status == Status.SUCCEEDED
    assert row.provider_batch is None and not row.is_batch
    assert any("provider batch" in warning for warning in row.warnings)


def test_a_retried_batch_row_holds_the_synchronous_price_on_the_caps(bulk, fake, settings):
    row = expired_row(bulk, fake)
    batch_id = row.provider_batch_id
    synchronous = (row.estimated_cost * 2).quantize(Decimal("0.000001"))  # OpenAI: half price
    # A cap the batch price fits under, and the synchronous price does not.
    limit = (row.estimated_cost + synchronous) / 2
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"SITE_MONTHLY": str(limit)}}

    with pytest.raises(BudgetExceeded):
        services.retry(row)
    row.refresh_from_db()
    assert row.status == Status.FAILED and row.provider_batch_id == batch_id  # unchanged

    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"SITE_MONTHLY": str(synchronous)}}
    run_openai_on_locmem(settings)
    services.retry(row)
    row.refresh_from_db()
    assert row.status == Status.SUCCEEDED


def test_queries_per_row_stay_constant_when_submitting_and_ingesting(bulk, fake):
    def run(n: int) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as submitting:
            (batch,) = bulk(products(n), "photo").provider_batches
        batch.refresh_from_db()
        fake.finish(batch.batch_id)
        with CaptureQueriesContext(connection) as ingesting:
            services.poll_batches()
        return len(submitting), len(ingesting)

    few_submit, few_ingest = run(10)
    many_submit, many_ingest = run(40)
    assert many_submit <= few_submit + 40  # the rows' few statements per chunk, not per row
    assert many_ingest <= 4 * few_ingest + 10
    assert Generation.objects.filter(status=Status.SUCCEEDED).count() == 50
