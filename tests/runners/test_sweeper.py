"""The stuck-job sweeper: imagegen.runners.sweeper, ``imagegen_sweep --jobs`` and the beat task."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

import imagegen
from imagegen.models import Generation, Status
from imagegen.pipeline.leases import recover_lost
from imagegen.providers import locmem as locmem_module
from imagegen.runners import BaseRunner, sweeper
from imagegen.runners.sweeper import running_timeout, sweep_jobs
from imagegen.tasks import sweep_jobs_task

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LOCMEM = "imagegen.providers.locmem.LocmemProvider"


class Recorder(BaseRunner):
    """A queued runner that records what it was asked to dispatch."""

    sent: list[int] = []

    def enqueue(self, generation: Generation) -> Generation:
        type(self).sent.append(generation.pk)
        return generation


@pytest.fixture
def recorder(settings):
    settings.IMAGEGEN = {
        "DEFAULT_PROVIDER": "test",
        "PROVIDERS": {"test": {"BACKEND": LOCMEM}},
        "DERIVATIVE_WIDTHS": [],
        "TASK_RUNNER": f"{__name__}.Recorder",
        "TASK_OPTIONS": {"QUEUED_TIMEOUT": 600, "LEASE": 60, "TIME_LIMIT": 300,
                         "SOFT_TIME_LIMIT": 240, "MAX_ATTEMPTS": 3},
    }  # fmt: skip
    Recorder.sent = []
    return Recorder.sent


def row(status: str = Status.QUEUED, *, seconds_ago: float = 0, **fields) -> Generation:
    """Create a row whose last change was ``seconds_ago`` seconds back."""
    generation = Generation.objects.create(provider="test", prompt="x", status=status,
                                           params={"width": 8, "height": 8}, **fields)  # fmt: skip
    then = timezone.now() - datetime.timedelta(seconds=seconds_ago)
    Generation.objects.filter(pk=generation.pk).update(updated_at=then)
    generation.refresh_from_db()
    return generation


def test_running_timeout_outlasts_the_hard_time_limit():
    assert running_timeout({"LEASE": 60, "TIME_LIMIT": 660}) == 720
    assert running_timeout({"LEASE": 60, "TIME_LIMIT": None}) == 60


def test_queued_rows_left_behind_are_dispatched_again(recorder):
    old, fresh = row(seconds_ago=900), row(seconds_ago=100)
    tally = sweep_jobs()
    assert recorder == [old.pk]
    assert (tally.redispatched, tally.resumed, tally.failed) == (1, 0, 0)
    old.refresh_from_db()
    assert old.status == Status.QUEUED
    assert (timezone.now() - old.updated_at).total_seconds() < 5  # its timeout starts again
    assert sweep_jobs().redispatched == 0  # the next sweep leaves it to the queue
    fresh.refresh_from_db()
    assert fresh.status == Status.QUEUED


def test_running_rows_of_dead_workers_are_resumed(recorder):
    dead = row(Status.RUNNING, seconds_ago=400, attempts=1, provider_job_id="job-9")
    live = row(Status.RUNNING, seconds_ago=30, attempts=1)
    tally = sweep_jobs()
    assert (tally.resumed, tally.redispatched) == (1, 0)
    assert recorder == [dead.pk]
    dead.refresh_from_db()
    assert (dead.status, dead.attempts, dead.provider_job_id) == (Status.QUEUED, 1, "job-9")
    assert "attempt 2 resumes provider job job-9" in dead.warnings[-1]
    live.refresh_from_db()
    assert live.status == Status.RUNNING


def test_dead_workers_rows_out_of_attempts_fail(recorder):
    spent = row(Status.RUNNING, seconds_ago=400, attempts=3)
    tally = sweep_jobs()
    assert (tally.failed, tally.resumed) == (1, 0)
    assert recorder == []
    spent.refresh_from_db()
    assert (spent.status, spent.error_code) == (Status.FAILED, "worker_lost")
    assert spent.finished_at is not None


def test_a_row_whose_heartbeat_comes_back_is_left_alone(recorder):
    generation = row(Status.RUNNING, seconds_ago=400, attempts=1)
    # The worker renews its lease between the sweeper's read and its update.
    Generation.objects.filter(pk=generation.pk).update(updated_at=timezone.now())
    assert recover_lost(generation) is False
    generation.refresh_from_db()
    assert generation.status == Status.RUNNING


def test_finished_rows_are_never_touched(recorder):
    for status in (Status.SUCCEEDED, Status.FAILED, Status.FILTERED, Status.CANCELED):
        row(status, seconds_ago=10_000)
    assert sweep_jobs().as_dict() == {"redispatched": 0, "resumed": 0, "failed": 0, "derived": 0}
    assert recorder == []


def test_a_dry_run_changes_nothing(recorder):
    queued = row(seconds_ago=900)
    running = row(Status.RUNNING, seconds_ago=400, attempts=1)
    spent = row(Status.RUNNING, seconds_ago=400, attempts=3)
    tally = sweep_jobs(dry_run=True)
    assert (tally.redispatched, tally.resumed, tally.failed) == (1, 1, 1)
    assert recorder == []
    assert any(f"Would dispatch generation {queued.pk} again" in line for line in tally.lines)
    assert any(f"Would resume generation {running.pk}" in line for line in tally.lines)
    assert any(f"Would fail generation {spent.pk}" in line for line in tally.lines)
    statuses = dict(Generation.objects.values_list("pk", "status"))
    assert statuses == {queued.pk: "queued", running.pk: "running", spent.pk: "running"}


def test_thresholds_can_be_given(recorder):
    queued = row(seconds_ago=120)
    assert sweep_jobs(queued_after=60).redispatched == 1
    assert recorder == [queued.pk]


def test_many_rows_are_swept_in_batches(recorder, django_assert_max_num_queries, monkeypatch):
    monkeypatch.setattr(sweeper, "BATCH", 10)
    rows = [row(seconds_ago=900) for _ in range(25)]
    # Per batch of queued rows: one read and one update; plus the empty page at the end of each
    # scan (and of the scan for images still waiting for their derived files), whatever the
    # number of rows.
    with django_assert_max_num_queries(2 * 3 + 3):
        assert sweep_jobs().redispatched == 25
    assert sorted(recorder) == [r.pk for r in rows]


def test_with_the_immediate_runner_the_sweep_runs_the_jobs(settings):
    settings.IMAGEGEN = {"DEFAULT_PROVIDER": "test", "PROVIDERS": {"test": {"BACKEND": LOCMEM}},
                         "DERIVATIVE_WIDTHS": []}  # fmt: skip
    stuck = row(Status.RUNNING, seconds_ago=3600, attempts=1)
    assert sweep_jobs().resumed == 1
    stuck.refresh_from_db()
    assert (stuck.status, stuck.attempts) == (Status.SUCCEEDED, 2)
    assert len(locmem_module.requests) == 1


def test_the_beat_task_sweeps(recorder):
    row(seconds_ago=900)
    batches = ("polled", "submitted", "succeeded", "failed", "finished", "errors")
    assert sweep_jobs_task() == {
        "redispatched": 1,
        "resumed": 0,
        "failed": 0,
        "derived": 0,
        # The same beat task polls the provider batches (none here).
        **{f"batches_{key}": 0 for key in batches},
    }


def sweep(*args: str) -> str:
    out = io.StringIO()
    call_command("imagegen_sweep", *args, stdout=out)
    return out.getvalue()


def test_the_command_sweeps_jobs(recorder):
    queued = row(seconds_ago=900)
    row(Status.RUNNING, seconds_ago=400, attempts=1)
    output = sweep("--jobs", "--dry-run")
    assert f"Would dispatch generation {queued.pk} again" in output
    assert (
        "1 stuck in the queue would be dispatched again; 1 of lost workers would be "
        "resumed, 0 would be failed." in output
    )
    assert recorder == []
    output = sweep("--jobs")
    assert "1 stuck in the queue were dispatched again; 1 of lost workers were resumed" in output
    assert len(recorder) == 2


def test_the_command_takes_thresholds_only_with_jobs(recorder):
    with pytest.raises(CommandError, match="go with --jobs"):
        sweep("--queued-after", "5")
    with pytest.raises(CommandError, match="0 or more"):
        sweep("--jobs", "--running-after", "-1")
    queued = row(seconds_ago=30)
    assert "1 stuck in the queue were" in sweep("--jobs", "--queued-after", "10")
    assert recorder == [queued.pk]


def test_generate_then_sweep_end_to_end(recorder):
    generation = imagegen.generate(prompt="lost at sea")
    assert generation.status == Status.QUEUED
    Generation.objects.filter(pk=generation.pk).update(
        updated_at=timezone.now() - datetime.timedelta(hours=1)
    )
    recorder.clear()
    sweep_jobs()
    assert recorder == [generation.pk]
