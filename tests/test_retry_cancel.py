"""Retry and cancel of ledger rows: the same row runs again, fenced, budgeted and dispatched."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

import imagegen
from imagegen import services
from imagegen.exceptions import BudgetExceeded, ProviderError
from imagegen.models import Generation, Status
from imagegen.providers.locmem import LocmemProvider
from imagegen.runners import QueuedRunner
from imagegen.runners.worker import work
from imagegen.services import run_generation
from imagegen.signals import generation_finished
from imagegen.tasks import run_generation_task

pytestmark = pytest.mark.django_db


class Recorder(QueuedRunner):
    """A queued runner that records the primary keys it dispatches on commit."""

    sent: list[int] = []

    def dispatch(self, jobs: list[tuple[int, str]]) -> None:
        type(self).sent.extend(pk for pk, _alias in jobs)


@pytest.fixture
def queued(settings, locmem):
    """Use :class:`Recorder` as the task runner; return the dispatched primary keys."""
    settings.IMAGEGEN = {**settings.IMAGEGEN, "TASK_RUNNER": f"{__name__}.Recorder"}
    Recorder.sent = []
    return Recorder.sent


@pytest.fixture
def editor(db):
    return get_user_model().objects.create_user("editor")


def failed_row(message: str = "The provider fell over.") -> Generation:
    """Return a row that failed at the provider (the immediate runner, scripted)."""
    LocmemProvider.script(ProviderError(message))
    generation = imagegen.generate(prompt="A lighthouse at dawn", provider="test")
    assert generation.status == Status.FAILED
    return generation


def row(status: str, **fields) -> Generation:
    fields.setdefault("params", {"width": 64, "height": 48})
    return Generation.objects.create(provider="test", prompt="A lighthouse", status=status,
                                     estimated_cost=Decimal("0.04"), **fields)  # fmt: skip


# Retry ------------------------------------------------------------------------------------------


def test_retry_runs_a_failed_row_again_and_keeps_its_error_in_the_warnings(locmem, editor):
    generation = failed_row()

    retried = services.retry(generation, user=editor)

    assert retried.pk == generation.pk  # the same row, not a new one
    retried.refresh_from_db()
    assert retried.status == Status.SUCCEEDED
    assert retried.images.count() == 1
    assert (retried.error_code, retried.error_message) == ("", "")
    assert retried.finished_at is not None and retried.started_at is not None
    assert "Retried by editor after: The provider fell over." in retried.warnings
    assert retried.attempts == 2  # the fencing token only goes up
    assert len(locmem) == 2
    assert Generation.objects.count() == 1


def test_retry_runs_a_canceled_row(locmem):
    generation = row(Status.CANCELED, error_code="canceled", error_message="Canceled.")

    retried = services.retry(generation)

    assert retried.status == Status.SUCCEEDED
    assert retried.images.count() == 1
    assert retried.warnings == ["Retried after: Canceled."]


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING, Status.SUCCEEDED])
def test_only_failed_or_canceled_rows_can_be_retried(locmem, status):
    generation = row(status)

    with pytest.raises(services.NotRetryable):
        services.retry(generation)

    generation.refresh_from_db()
    assert generation.status == status and generation.warnings == []
    assert locmem == []


def test_of_two_retries_of_the_same_failure_only_one_runs(locmem):
    generation = failed_row()
    stale = Generation.objects.get(pk=generation.pk)  # a second editor read it too
    LocmemProvider.script(ProviderError("Still down."))

    services.retry(generation)  # runs and fails again: failed once more, but a later attempt
    assert generation.status == Status.FAILED

    with pytest.raises(services.NotRetryable):
        services.retry(stale)
    assert len(locmem) == 2  # the first run and one retry; the stale retry called nothing
    generation.refresh_from_db()
    assert generation.error_message == "Still down."


def test_retry_checks_the_budget_first(settings, locmem, editor):
    generation = failed_row()
    Generation.objects.filter(pk=generation.pk).update(estimated_cost=Decimal("0.04"))
    generation.refresh_from_db()
    row(Status.SUCCEEDED, cost=Decimal("0.03"))
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"SITE_MONTHLY": "0.05"}}

    with pytest.raises(BudgetExceeded, match="monthly budget"):
        services.retry(generation, user=editor)

    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert generation.error_message == "The provider fell over."
    assert len(locmem) == 1  # only the original call


def test_retry_in_warn_mode_records_the_budget_warning(settings, locmem):
    generation = failed_row()
    Generation.objects.filter(pk=generation.pk).update(estimated_cost=Decimal("0.04"))
    generation.refresh_from_db()
    settings.IMAGEGEN = {**settings.IMAGEGEN,
                         "BUDGETS": {"SITE_MONTHLY": "0.01", "ACTION": "warn"}}  # fmt: skip

    retried = services.retry(generation)

    assert retried.status == Status.SUCCEEDED
    assert any("monthly budget" in warning for warning in retried.warnings)


def test_with_a_queued_runner_retry_dispatches_on_commit(
    queued, django_capture_on_commit_callbacks
):
    generation = row(Status.FAILED, error_code="provider_error", error_message="Down.")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        retried = services.retry(generation)
    assert retried.status == Status.QUEUED
    assert Generation.objects.get(pk=generation.pk).status == Status.QUEUED
    assert queued == []  # nothing is sent before the transaction commits
    for callback in callbacks:
        callback()
    assert queued == [generation.pk]


def test_a_retried_row_past_max_attempts_still_runs(queued, settings):
    generation = row(Status.FAILED, attempts=5, error_code="worker_lost", error_message="Lost.")
    settings.IMAGEGEN = {**settings.IMAGEGEN, "TASK_OPTIONS": {"MAX_ATTEMPTS": 5}}

    services.retry(generation)
    outcome = work(generation.pk)

    assert outcome.state == "done"
    generation.refresh_from_db()
    assert generation.status == Status.SUCCEEDED
    assert generation.attempts == 6


@pytest.mark.parametrize(("code", "kept"), [("timeout", "job-1"), ("provider_error", "")])
def test_retry_resumes_a_provider_job_only_when_it_may_still_finish(queued, code, kept):
    generation = row(Status.FAILED, error_code=code, error_message="x", provider_job_id="job-1")

    services.retry(generation)

    generation.refresh_from_db()
    assert generation.provider_job_id == kept
    assert ("resumes provider job job-1" in generation.warnings[-1]) == bool(kept)


def test_retry_keeps_the_cost_of_a_charged_failure_in_the_warnings(queued):
    generation = row(Status.FAILED, cost=Decimal("0.04"), error_code="storage_error",
                     error_message="The image could not be saved.")  # fmt: skip

    services.retry(generation)

    assert generation.warnings == [
        "Retried after: The image could not be saved (that run cost $0.04)."
    ]


# Cancel -----------------------------------------------------------------------------------------


def test_cancel_cancels_a_queued_row_and_announces_it(queued, editor):
    generation = row(Status.QUEUED)
    finished = []

    def receiver(sender, generation, **kwargs):
        finished.append(generation.status)

    generation_finished.connect(receiver)
    try:
        assert services.cancel(generation, user=editor) is True
    finally:
        generation_finished.disconnect(receiver)

    generation.refresh_from_db()
    assert generation.status == Status.CANCELED
    assert generation.error_code == "canceled"
    assert generation.error_message == "Canceled by editor before it ran."
    assert generation.finished_at is not None
    assert finished == [Status.CANCELED]


@pytest.mark.parametrize("status", [Status.RUNNING, Status.SUCCEEDED, Status.FAILED])
def test_cancel_leaves_running_and_finished_rows_alone(queued, status):
    generation = row(status)

    assert services.cancel(generation) is False

    generation.refresh_from_db()
    assert generation.status == status and generation.error_code == ""


def test_cancel_loses_to_a_worker_that_claimed_the_row(queued):
    generation = row(Status.QUEUED)
    stale = Generation.objects.get(pk=generation.pk)
    work(generation.pk)  # a worker claims and runs it

    assert services.cancel(stale) is False
    assert Generation.objects.get(pk=generation.pk).status == Status.SUCCEEDED


def test_a_task_delivered_for_a_canceled_row_does_nothing(queued, locmem):
    generation = row(Status.QUEUED)
    assert services.cancel(generation)

    assert run_generation(generation.pk).status == Status.CANCELED
    assert work(generation.pk).state == "done"
    run_generation_task(generation.pk)  # the Celery task's body

    assert locmem == []  # the provider was never called
    generation.refresh_from_db()
    assert generation.status == Status.CANCELED
    assert generation.attempts == 0 and generation.images.count() == 0


def test_a_retried_charged_failure_adds_the_new_charge_to_the_row(locmem):
    """The ledger totals what the provider billed: the failed run's charge is not lost."""
    generation = Generation.objects.create(
        provider="paid",
        prompt="A lighthouse",
        status=Status.FAILED,
        params={"width": 64, "height": 48},
        estimated_cost=Decimal("0.04"),
        cost=Decimal("0.04"),
        error_code="storage_error",
        error_message="The image could not be saved.",
    )

    services.retry(generation)

    generation.refresh_from_db()
    assert generation.status == Status.SUCCEEDED
    assert generation.cost == Decimal("0.08")
    assert Generation.objects.total_cost() == Decimal("0.08")


def test_the_old_control_module_still_works_with_a_deprecation_warning(locmem):
    import importlib
    import sys

    sys.modules.pop("imagegen.control", None)
    with pytest.warns(DeprecationWarning, match=r"imagegen\.services\.retry"):
        control = importlib.import_module("imagegen.control")
    assert control.retry is services.retry and control.cancel is services.cancel
    assert control.NotRetryable is services.NotRetryable
