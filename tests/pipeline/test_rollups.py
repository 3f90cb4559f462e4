"""The spend rollups: kept by the pipeline's writes, equal to a rebuild from the ledger."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

import imagegen
from imagegen import services
from imagegen.exceptions import ProviderError
from imagegen.models import Generation, ObjectSpend, SpendDay, Status
from imagegen.pipeline import rollups
from imagegen.providers.locmem import LocmemProvider
from imagegen.runners import QueuedRunner
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db

FIELDS = ("generations", "images", "failed", "filtered", "canceled", "estimated", "cost",
          "unconfirmed")  # fmt: skip


def snapshot() -> tuple[set, set]:
    """Return both rollups as sets of plain tuples, to compare with a rebuild."""
    days = {
        (
            row.day,
            row.provider,
            row.model,
            row.preset,
            row.user_id,
            row.currency,
            *(getattr(row, f) for f in FIELDS),
        )
        for row in SpendDay.objects.all()
        if any(getattr(row, f) for f in FIELDS)
    }
    objects = {
        (
            row.content_type_id,
            row.object_id,
            row.generations,
            row.estimated,
            row.cost,
            row.unconfirmed,
        )
        for row in ObjectSpend.objects.all()
    }
    return days, objects


def test_generations_are_counted_as_they_are_recorded_and_finish(locmem):
    editor = get_user_model().objects.create_user("editor")
    article = Article.objects.create(title="Lighthouse")
    imagegen.generate(prompt="A lighthouse", provider="paid", target=article, field="hero",
                      user=editor, count=2)  # fmt: skip
    LocmemProvider.script(ProviderError("Down."))
    imagegen.generate(prompt="A harbour", provider="paid", target=article, field="hero")

    day = SpendDay.objects.get(provider="paid", user_id=editor.pk)
    assert (day.generations, day.images, day.failed) == (1, 2, 0)
    assert day.estimated == day.cost == Decimal("0.08")
    other = SpendDay.objects.get(provider="paid", user_id=0)
    assert (other.generations, other.images, other.failed, other.cost) == (1, 0, 1, 0)
    spend = ObjectSpend.objects.get(object_id=str(article.pk))
    assert (spend.generations, spend.cost, spend.estimated) == (2, Decimal("0.08"),
                                                                 Decimal("0.12"))  # fmt: skip
    assert snapshot() == (rebuilt := _rebuilt()), rebuilt


def _rebuilt() -> tuple[set, set]:
    live = snapshot()
    rollups.rebuild()
    rebuilt = snapshot()
    assert live == rebuilt
    return rebuilt


def test_a_retry_adds_its_charge_and_a_cancel_counts_once(locmem, settings):
    LocmemProvider.script(ProviderError("Down."))
    failed = imagegen.generate(prompt="A lighthouse", provider="paid")
    services.retry(failed)
    failed.refresh_from_db()
    assert failed.status == Status.SUCCEEDED

    day = SpendDay.objects.get()
    # One row, one failed run then a success: the cost is the row's, counted once.
    assert (day.generations, day.failed, day.images, day.cost) == (1, 1, 1, Decimal("0.04"))

    queued = Generation.objects.create(provider="paid", model="locmem", prompt="x",
                                       estimated_cost=Decimal("0.04"))  # fmt: skip
    assert services.cancel(queued)
    assert not services.cancel(queued)  # already canceled: nothing more is counted
    day = SpendDay.objects.get()
    # The row written by hand was never counted as recorded; its cancel is.
    assert (day.generations, day.canceled, day.cost) == (1, 1, Decimal("0.04"))


class Idle(QueuedRunner):
    """A queued runner that dispatches nothing: the rows stay queued."""

    def dispatch(self, jobs: list[tuple[int, str]]) -> None:
        pass


def test_a_batch_is_counted_with_a_few_queries(locmem, settings):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "TASK_RUNNER": f"{__name__}.Idle"}
    articles = Article.objects.bulk_create(Article(title=f"A{i}") for i in range(300))
    with CaptureQueriesContext(connection) as queries:
        outcomes = services.generate_many(articles, "hero", prompt="A lighthouse",
                                          provider="paid")  # fmt: skip
    assert len(outcomes.generations) == 300
    upserts = [q for q in queries.captured_queries if "imagegen_objectspend" in q["sql"]]
    assert 1 <= len(upserts) <= 2  # 300 new keys, in chunks of 500, not one query each
    assert ObjectSpend.objects.count() == 300
    assert SpendDay.objects.get().generations == 300


def test_rebuild_counts_rows_written_by_hand_and_the_command_says_so(db):
    from io import StringIO

    from django.core.management import call_command

    Generation.objects.create(provider="p", model="m", prompt="x", cost=Decimal("0.5"),
                              status=Status.SUCCEEDED)  # fmt: skip
    out = StringIO()
    call_command("imagegen_rollups", stdout=out)
    assert out.getvalue().strip() == "Rebuilt the rollups: 1 day rows, 0 object rows."
    assert SpendDay.objects.get().cost == Decimal("0.5")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_charges_are_all_counted(db):
    """Twenty threads charge rows of the same key at once: no increment is lost."""
    from django.db import connection

    if connection.vendor != "postgresql":
        # SQLite's in-memory test database takes one writer at a time; the PostgreSQL pass of
        # make test runs this (and tests/pipeline/test_budgets_sqlite_load.py covers SQLite).
        pytest.skip("concurrent writers need PostgreSQL: pytest -m postgres --ds=...postgres")
    rows = [
        Generation.objects.create(
            provider="p",
            model="m",
            prompt="x",
            status=Status.RUNNING,
            estimated_cost=Decimal("0.01"),
        )
        for _ in range(20)
    ]
    barrier = threading.Barrier(len(rows))

    def finish(generation: Generation) -> None:
        try:
            barrier.wait()
            rollups.transition(generation, Status.FAILED, cost=Decimal("0.01"))
        finally:
            connection.close()

    threads = [threading.Thread(target=finish, args=(row,)) for row in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    day = SpendDay.objects.get()
    assert (day.failed, day.cost) == (20, Decimal("0.2"))


def test_a_lost_worker_that_used_up_its_attempts_counts_a_failed_run(db):
    from imagegen.pipeline.leases import recover_lost

    generation = Generation.objects.create(provider="p", model="m", prompt="x",
                                           status=Status.RUNNING, attempts=3)  # fmt: skip
    assert not recover_lost(generation, max_attempts=3)
    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert SpendDay.objects.get().failed == 1
    # A second sweep finds the row failed already and counts nothing.
    assert not recover_lost(Generation.objects.get(pk=generation.pk), max_attempts=3)
    assert SpendDay.objects.get().failed == 1
