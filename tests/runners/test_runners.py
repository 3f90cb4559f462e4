"""Queued runners: dispatch on commit, idempotent claims, leases and takeovers, retries, limits.

These drive the worker side (:func:`imagegen.runners.worker.work`, the Celery task's body)
in-process on SQLite. tests/integration/ runs the same code in a real Celery worker on Redis and
PostgreSQL, killed mid-job.
"""

from __future__ import annotations

import datetime
import threading
import time
from decimal import Decimal
from unittest import mock

import pytest
from celery.exceptions import Retry, SoftTimeLimitExceeded
from django.core.cache import cache
from django.utils import timezone

import imagegen
from imagegen import services
from imagegen.checks import check_settings
from imagegen.exceptions import (
    ContentRejected,
    ImagegenError,
    ProviderUnavailable,
    RateLimited,
)
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.pipeline import leases
from imagegen.pipeline.leases import Lease, recover_lost
from imagegen.pipeline.storing import Store
from imagegen.providers import locmem as locmem_module
from imagegen.providers.locmem import LocmemProvider
from imagegen.runners import BaseRunner, ratelimit
from imagegen.runners import options as runner_options
from imagegen.runners.options import retry_delay
from imagegen.runners.worker import monotonic_deadline, work
from imagegen.services import run_generation
from imagegen.tasks import CeleryRunner, run_generation_task, sweep_jobs_task
from imagegen.types import CallContext, ImageRequest, ImageResult
from tests.conftest import media_files
from tests.testapp.models import Article

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LOCMEM = "imagegen.providers.locmem.LocmemProvider"


class QueueOnly(BaseRunner):
    """Leave rows queued, for driving the worker side by hand."""

    def enqueue(self, generation: Generation) -> Generation:
        return generation


class JobProvider(LocmemProvider):
    """An asynchronous provider: a new call is accepted as a job; a resumed one only polls."""

    contexts: list[CallContext] = []
    #: Called after the job was accepted, before the result comes back.
    during: list = []

    def _generate(self, request: ImageRequest, context: CallContext) -> ImageResult:
        type(self).contexts.append(context)
        if not context.resume_job_id and context.on_job_accepted is not None:
            context.on_job_accepted(f"job-{len(self.contexts)}")
        for hook in type(self).during:
            hook()
        result = super()._generate(request, context)
        return ImageResult(
            images=result.images,
            model=result.model,
            cost=Decimal("0.05"),
            job_id=context.resume_job_id or f"job-{len(self.contexts)}",
        )


@pytest.fixture
def queued(settings):
    """A "test" locmem alias charging $0.04 per image, behind a runner that leaves rows queued."""
    settings.IMAGEGEN = {
        "DEFAULT_PROVIDER": "test",
        "PROVIDERS": {
            "test": {"BACKEND": LOCMEM, "OPTIONS": {"cost": "0.04"}},
            "jobs": {"BACKEND": f"{__name__}.JobProvider"},
            "other": {"BACKEND": LOCMEM},
        },
        "PRICES": {"locmem": {"per_image": "0.04"}},
        "DERIVATIVE_WIDTHS": [],
        "TASK_RUNNER": f"{__name__}.QueueOnly",
        "TASK_OPTIONS": {"RETRY_BACKOFF": 1, "RETRY_BACKOFF_MAX": 8, "LEASE": 30},
    }
    JobProvider.contexts, JobProvider.during = [], []
    cache.clear()
    yield settings
    cache.clear()


def options(settings, **changes):
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "TASK_OPTIONS": {**settings.IMAGEGEN.get("TASK_OPTIONS", {}), **changes},
    }


def make(**kwargs) -> Generation:
    kwargs.setdefault("prompt", "a lighthouse")
    kwargs.setdefault("provider", "test")
    return imagegen.generate(**kwargs)


def age(generation: Generation, seconds: float) -> Generation:
    """Date the row's last heartbeat ``seconds`` back, as if its worker stopped then."""
    then = timezone.now() - datetime.timedelta(seconds=seconds)
    Generation.objects.filter(pk=generation.pk).update(updated_at=then)
    generation.refresh_from_db()
    return generation


def claim(generation: Generation) -> Generation:
    """Mark the row as claimed by a worker (attempt 1, running, heartbeat now)."""
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.RUNNING, attempts=generation.attempts + 1, started_at=timezone.now(),
        updated_at=timezone.now(),
    )  # fmt: skip
    generation.refresh_from_db()
    return generation


# Dispatch -----------------------------------------------------------------------------------


@pytest.fixture
def celery_runner(queued):
    options(queued, QUEUES={"other": "imagegen-other"}, SOFT_TIME_LIMIT=100, TIME_LIMIT=120)
    queued.IMAGEGEN = {**queued.IMAGEGEN, "TASK_RUNNER": "celery"}
    with mock.patch.object(run_generation_task, "apply_async") as send:
        yield send


def test_celery_dispatches_the_primary_key_on_commit(
    celery_runner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        generation = make()
        assert generation.status == Status.QUEUED
    assert celery_runner.call_count == 0  # nothing is sent before the row is committed
    assert len(callbacks) == 1
    callbacks[0]()
    args, kwargs = celery_runner.call_args
    assert args == ((generation.pk,),)
    assert "queue" not in kwargs  # the default routing
    assert (kwargs["soft_time_limit"], kwargs["time_limit"]) == (100, 120)
    assert kwargs["producer"] is not None


def test_celery_sends_a_provider_to_its_own_queue(
    celery_runner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        generation = make(provider="other")
    assert celery_runner.call_args.args == ((generation.pk,),)
    assert celery_runner.call_args.kwargs["queue"] == "imagegen-other"


def test_celery_sends_a_batch_on_one_connection(celery_runner, django_capture_on_commit_callbacks):
    rows = [Generation.objects.create(provider="test", prompt=f"p{i}") for i in range(5)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        CeleryRunner().enqueue_many(rows)
    assert len(callbacks) == 1
    assert [c.args[0] for c in celery_runner.call_args_list] == [(row.pk,) for row in rows]
    assert len({id(c.kwargs["producer"]) for c in celery_runner.call_args_list}) == 1


def test_the_celery_task_is_configured_for_late_acks_and_limits():
    task = run_generation_task
    assert task.name == "imagegen.run_generation"
    assert task.acks_late is True and task.reject_on_worker_lost is True
    assert task.ignore_result is True
    assert task.soft_time_limit < task.time_limit
    assert sweep_jobs_task.name == "imagegen.sweep_jobs"


# Claims and duplicates --------------------------------------------------------------------------


def test_a_duplicate_delivery_makes_one_provider_call(queued):
    generation = make()
    first, second = work(generation.pk), work(generation.pk)
    assert (first.state, first.retry_in) == ("done", None)
    assert (second.state, second.retry_in) == ("done", None)
    assert len(locmem_module.requests) == 1
    generation.refresh_from_db()
    assert (generation.status, generation.attempts) == (Status.SUCCEEDED, 1)
    assert generation.cost == Decimal("0.04")


def test_a_finished_job_is_never_run_again(queued):
    generation = make()
    work(generation.pk)
    for status in (Status.SUCCEEDED, Status.FAILED, Status.FILTERED, Status.CANCELED):
        Generation.objects.filter(pk=generation.pk).update(
            status=status, updated_at=timezone.now() - datetime.timedelta(days=1)
        )
        assert work(generation.pk).state == "done"
    assert len(locmem_module.requests) == 1


def test_a_concurrent_duplicate_of_a_live_job_waits_without_calling(queued):
    generation = claim(make())  # another worker holds it and its heartbeat is fresh
    outcome = work(generation.pk)
    assert outcome.state == "waiting"
    assert 29 < outcome.retry_in < 32  # until the 30 s lease could have lapsed
    assert locmem_module.requests == []
    generation.refresh_from_db()
    assert (generation.status, generation.attempts) == (Status.RUNNING, 1)


def test_a_missing_row_is_dropped(queued):
    assert work(123456).state == "missing"


def test_two_workers_racing_for_a_queued_row_claim_it_once(queued):
    generation = make()
    stale_copy = Generation.objects.get(pk=generation.pk)
    assert run_generation(generation.pk).status == Status.SUCCEEDED
    # The loser read the row while it was still queued: its conditional claim finds nothing.
    assert run_generation(stale_copy).status == Status.QUEUED
    assert len(locmem_module.requests) == 1


# Leases and takeovers ---------------------------------------------------------------------------


def test_a_job_whose_worker_died_is_taken_over(queued):
    generation = age(claim(make()), 31)
    outcome = work(generation.pk)
    assert outcome.state == "done"
    generation.refresh_from_db()
    assert (generation.status, generation.attempts) == (Status.SUCCEEDED, 2)
    assert len(locmem_module.requests) == 1
    assert generation.images.count() == 1
    assert any("Attempt 1 lost its worker; attempt 2 runs it again" in w
               for w in generation.warnings)  # fmt: skip


def test_a_taken_over_job_resumes_the_accepted_provider_job(queued):
    generation = make(provider="jobs")
    Generation.objects.filter(pk=generation.pk).update(provider_job_id="job-77")
    generation = age(claim(generation), 45)
    assert work(generation.pk).state == "done"
    assert [c.resume_job_id for c in JobProvider.contexts] == ["job-77"]  # polled, not resubmitted
    generation.refresh_from_db()
    assert generation.status == Status.SUCCEEDED
    assert generation.provider_job_id == "job-77"
    assert any("resumes provider job job-77" in w for w in generation.warnings)


def test_a_job_out_of_attempts_fails_instead_of_running_again(queued):
    options(queued, MAX_ATTEMPTS=2)
    generation = make()
    Generation.objects.filter(pk=generation.pk).update(attempts=1)
    generation = age(claim(Generation.objects.get(pk=generation.pk)), 60)
    assert generation.attempts == 2
    finished = []
    with mock.patch("imagegen.signals.generation_finished.send_robust",
                    side_effect=lambda **kw: finished.append(kw) or []):  # fmt: skip
        outcome = work(generation.pk)
    assert outcome.state == "done"
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == (Status.FAILED, "worker_lost")
    assert locmem_module.requests == []
    assert len(finished) == 1


def test_a_worker_that_was_taken_over_stores_nothing(queued, settings):
    """The attempt number fences every write: a zombie's result is rolled back and cleaned."""
    article = Article.objects.create(title="Zombie")
    generation = make(target=article)

    def taken_over():
        # While this worker is in the provider call, it is presumed dead and taken over.
        row = age(Generation.objects.get(pk=generation.pk), 31)
        assert recover_lost(row, to=Status.RUNNING)

    LocmemProvider.script(None)
    with mock.patch.object(LocmemProvider, "_generate", autospec=True,
                           side_effect=_then(taken_over, LocmemProvider._generate)):  # fmt: skip
        result = run_generation(generation.pk, retrying=True, lease=Lease(seconds=30))
    assert result.pk == generation.pk
    row = Generation.objects.get(pk=generation.pk)
    assert (row.status, row.attempts) == (Status.RUNNING, 2)  # the new owner's
    assert row.cost is None and row.images.count() == 0
    assert GeneratedImage.objects.count() == 0
    article.refresh_from_db()
    assert not article.hero
    assert media_files(settings) == []


def _then(hook, original):
    def call(self, *args, **kwargs):
        hook()
        return original(self, *args, **kwargs)

    return call


def test_a_worker_that_was_taken_over_learns_it_when_its_job_is_accepted(queued):
    generation = make(provider="jobs")

    def taken_over():
        row = age(Generation.objects.get(pk=generation.pk), 31)
        recover_lost(row, to=Status.RUNNING)

    original = JobProvider._generate

    def generate(self, request, context):
        taken_over()
        return original(self, request, context)

    with mock.patch.object(JobProvider, "_generate", generate):
        run_generation(generation.pk, retrying=True, lease=Lease(seconds=30))
    row = Generation.objects.get(pk=generation.pk)
    assert row.provider_job_id == ""  # the zombie's job id was not written
    assert (row.status, row.attempts) == (Status.RUNNING, 2)


def test_the_heartbeat_renews_the_lease_until_the_row_is_lost(queued):
    generation = age(claim(make()), 20)
    renewed = []
    beat = leases.Heartbeat(generation, Lease(seconds=30, on_renew=lambda: renewed.append(1)))
    assert beat.renew() is True
    generation.refresh_from_db()
    assert (timezone.now() - generation.updated_at).total_seconds() < 5
    assert renewed == [1]
    Generation.objects.filter(pk=generation.pk).update(attempts=5)  # taken over
    assert beat.renew() is False
    assert renewed == [1]


def test_the_heartbeat_thread_beats_and_stops(queued):
    generation = claim(make())
    beats = threading.Event()
    with mock.patch.object(leases.Heartbeat, "renew", side_effect=lambda: beats.set() or True):
        beat = leases.Heartbeat(generation, Lease(seconds=0.15)).start()
        assert beats.wait(2)
        beat.stop()
    assert not beat._thread.is_alive()


def test_the_heartbeat_gives_up_after_the_hard_time_limit(queued):
    generation = claim(make())
    calls = []
    with mock.patch.object(leases.Heartbeat, "renew", side_effect=lambda: calls.append(1) or True):
        beat = leases.Heartbeat(generation, Lease(seconds=0.15, max_hold=0.2)).start()
        beat._thread.join(2)
    assert not beat._thread.is_alive()  # stopped renewing: a hung job loses its lease
    assert 1 <= len(calls) <= 4


def test_run_generation_keeps_a_heartbeat_only_under_a_lease(queued):
    generation = make()
    with mock.patch.object(leases.Heartbeat, "start", autospec=True,
                           side_effect=lambda self: self) as start:  # fmt: skip
        run_generation(generation.pk)
        assert start.call_count == 0
        second = make()
        run_generation(second.pk, lease=Lease(seconds=30))
        assert start.call_count == 1


# Retries ------------------------------------------------------------------------------------------


def test_a_rate_limited_job_is_retried_after_retry_after_and_charged_once(queued):
    generation = make()
    LocmemProvider.script(RateLimited("busy", retry_after=7))
    first = work(generation.pk)
    assert first.state == "retry"
    assert isinstance(first.error, RateLimited)
    assert 7 <= first.retry_in <= 7.7  # the provider's wish, a little jitter on top
    generation.refresh_from_db()
    assert (generation.status, generation.attempts, generation.error_code) == (
        Status.QUEUED, 1, "rate_limited"
    )  # fmt: skip
    second = work(generation.pk)
    assert second.state == "done"
    generation.refresh_from_db()
    assert (generation.status, generation.attempts) == (Status.SUCCEEDED, 2)
    assert generation.cost == Decimal("0.04")
    assert generation.error_code == "" and generation.error_message == ""
    assert len(locmem_module.requests) == 2


def test_retries_back_off_exponentially_with_jitter(queued):
    opts = {**runner_options.TASK_DEFAULTS, "RETRY_BACKOFF": 2, "RETRY_BACKOFF_MAX": 20}
    for attempt, base in [(1, 2), (2, 4), (3, 8), (4, 16), (5, 20), (9, 20)]:
        delays = [retry_delay(ProviderUnavailable("x"), attempt, opts) for _ in range(50)]
        assert all(base <= d <= base * 1.5 for d in delays), (attempt, delays)
        assert len(set(delays)) > 1  # jitter
    asked = RateLimited("slow down", retry_after=120)
    assert all(120 <= retry_delay(asked, 1, opts) <= 125 for _ in range(20))


def test_a_non_retryable_error_fails_at_once(queued):
    generation = make()
    LocmemProvider.script(ContentRejected("no"))
    outcome = work(generation.pk)
    assert (outcome.state, outcome.retry_in) == ("done", None)
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == (Status.FAILED, "content_rejected")


@pytest.mark.parametrize(
    ("code", "retried"),
    [("connection_failed", True), ("provider_unavailable", True), ("timeout", False),
     ("connection_lost", False)],
)  # fmt: skip
def test_a_request_that_may_have_been_billed_is_not_sent_again(queued, code, retried):
    generation = make()
    LocmemProvider.script(ProviderUnavailable("down", code=code))
    outcome = work(generation.pk)
    generation.refresh_from_db()
    if retried:
        assert (outcome.state, generation.status) == ("retry", Status.QUEUED)
    else:
        assert (outcome.state, generation.status) == ("done", Status.FAILED)
        assert generation.error_code == code


def test_a_timeout_after_the_job_was_accepted_is_retried_to_resume_it(queued):
    generation = make(provider="jobs")
    JobProvider.during = [
        lambda: (_ for _ in ()).throw(ProviderUnavailable("slow", code="timeout"))
    ]
    outcome = work(generation.pk)
    assert outcome.state == "retry"
    generation.refresh_from_db()
    assert (generation.status, generation.provider_job_id) == (Status.QUEUED, "job-1")
    JobProvider.during = []
    assert work(generation.pk).state == "done"
    assert [c.resume_job_id for c in JobProvider.contexts] == [None, "job-1"]
    generation.refresh_from_db()
    assert generation.status == Status.SUCCEEDED and generation.cost == Decimal("0.05")


def test_a_charged_call_is_not_paid_for_again_after_a_storage_failure(queued):
    generation = make()
    failure = ImagegenError("disk full", code="storage_error", retryable=True)
    with mock.patch.object(Store, "store", side_effect=failure):
        outcome = work(generation.pk)
    assert outcome.state == "done"
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == (Status.FAILED, "storage_error")
    assert generation.cost == Decimal("0.04")  # what the provider charged, recorded once


def test_the_last_attempt_fails_instead_of_retrying(queued):
    options(queued, MAX_ATTEMPTS=2)
    generation = make()
    LocmemProvider.script(RateLimited("busy"), RateLimited("still busy"))
    assert work(generation.pk).state == "retry"
    outcome = work(generation.pk)
    assert (outcome.state, outcome.retry_in) == ("done", None)
    generation.refresh_from_db()
    assert (generation.status, generation.attempts) == (Status.FAILED, 2)
    assert generation.error_code == "rate_limited"


def test_a_soft_time_limit_fails_a_call_that_may_have_been_sent(queued):
    generation = make()
    LocmemProvider.script(SoftTimeLimitExceeded())
    outcome = work(generation.pk)
    assert outcome.state == "done"
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == (Status.FAILED, "time_limit")


def test_a_soft_time_limit_while_polling_an_accepted_job_is_retried(queued):
    generation = make(provider="jobs")
    JobProvider.during = [lambda: (_ for _ in ()).throw(SoftTimeLimitExceeded())]
    assert work(generation.pk).state == "retry"
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == (Status.QUEUED, "time_limit")


def test_the_provider_gets_a_deadline_before_the_soft_time_limit(queued):
    generation = make(provider="jobs")
    deadline = monotonic_deadline(100)
    work(generation.pk, deadline=deadline)
    assert JobProvider.contexts[0].deadline == deadline
    assert 90 < deadline - time.monotonic() <= 95
    assert monotonic_deadline(None) is None


# The Celery task --------------------------------------------------------------------------------


def test_the_task_retries_with_the_outcomes_delay(queued):
    generation = make()
    LocmemProvider.script(RateLimited("busy", retry_after=3))
    with (
        mock.patch.object(run_generation_task, "retry", side_effect=Retry()) as retry,
        pytest.raises(Retry),
    ):
        run_generation_task(generation.pk)
    kwargs = retry.call_args.kwargs
    assert 3 <= kwargs["countdown"] <= 3.5
    assert isinstance(kwargs["exc"], RateLimited)
    assert kwargs["max_retries"] is None
    with mock.patch.object(run_generation_task, "retry") as retry:
        run_generation_task(generation.pk)
    assert retry.call_count == 0
    assert Generation.objects.get(pk=generation.pk).status == Status.SUCCEEDED


# Shared limits ------------------------------------------------------------------------------------


def test_parse_rate():
    assert ratelimit.parse_rate("50/m") == (50, 60)
    assert ratelimit.parse_rate("5 / s") == (5, 1)
    assert ratelimit.parse_rate("1000/hour") == (1000, 3600)
    for bad in ("50", "x/m", "5/w", "0/s"):
        with pytest.raises(imagegen.exceptions.ImagegenConfigurationError):
            ratelimit.parse_rate(bad)


def test_concurrency_slots_are_shared_and_released(queued):
    limit = ratelimit.Limit("test", concurrency=2, lease=30)
    first, second = ratelimit.acquire(limit), ratelimit.acquire(limit)
    assert first.granted and second.granted and first.slot != second.slot
    third = ratelimit.acquire(limit)
    assert (third.granted, third.reason) == (False, "concurrency")
    slot = first.slot
    first.release()
    fourth = ratelimit.acquire(limit)
    assert fourth.granted and fourth.slot == slot
    first.release()  # releasing twice does not free another job's slot
    assert not ratelimit.acquire(limit).granted


def test_a_slot_taken_over_after_expiry_is_not_released_by_its_old_holder(queued):
    limit = ratelimit.Limit("test", concurrency=1, lease=30)
    old = ratelimit.acquire(limit)
    cache.delete(old.slot)  # expired
    new = ratelimit.acquire(limit)
    old.release()
    assert cache.get(new.slot) == new.token


def test_rate_windows(queued):
    limit = ratelimit.Limit("test", rate=(2, 60))
    now = 6000.0  # the start of a window
    assert ratelimit.acquire(limit, now=now).granted
    assert ratelimit.acquire(limit, now=now + 1).granted
    refused = ratelimit.acquire(limit, now=now + 15)
    assert (refused.granted, refused.reason) == (False, "rate")
    assert refused.retry_after == pytest.approx(45)
    assert ratelimit.acquire(limit, now=now + 60).granted  # the next window


def test_a_rate_refusal_gives_back_the_concurrency_slot(queued):
    limit = ratelimit.Limit("test", concurrency=1, rate=(1, 60))
    ratelimit.acquire(limit, now=60.0).release()
    assert not ratelimit.acquire(limit, now=61.0).granted
    assert ratelimit.acquire(ratelimit.Limit("test", concurrency=1)).granted


def test_a_job_without_room_waits_without_calling_the_provider(queued):
    options(queued, RATE_LIMITS={"test": {"CONCURRENCY": 1}})
    held = ratelimit.acquire(runner_options.limit_for("test"))
    generation = make()
    outcome = work(generation.pk)
    assert outcome.state == "limited" and 1 <= outcome.retry_in <= 31
    assert locmem_module.requests == []
    generation.refresh_from_db()
    assert (generation.status, generation.attempts) == (Status.QUEUED, 0)  # no attempt used
    later = work(generation.pk, deferrals=8)
    assert later.retry_in > outcome.retry_in  # repeated waits back off
    held.release()
    assert work(generation.pk).state == "done"
    assert len(locmem_module.requests) == 1
    # The job gave its slot back when it finished.
    assert ratelimit.acquire(runner_options.limit_for("test")).granted


def test_a_rate_limit_is_shared_by_jobs(queued):
    options(queued, RATE_LIMITS={"test": {"RATE": "2/h"}})
    rows = [make(prompt=f"p{i}") for i in range(3)]
    states = [work(row.pk).state for row in rows]
    assert states == ["done", "done", "limited"]
    assert len(locmem_module.requests) == 2


def test_the_heartbeat_keeps_the_limiter_slot(queued):
    options(queued, RATE_LIMITS={"test": {"CONCURRENCY": 1}}, LEASE=30)
    generation = make()
    seen = []
    with mock.patch.object(leases.Heartbeat, "start", autospec=True,
                           side_effect=lambda self: seen.append(self) or self):  # fmt: skip
        work(generation.pk)
    assert seen[0].lease.on_renew is not None


# Settings checks ----------------------------------------------------------------------------------


def ids(settings, **task_options):
    settings.IMAGEGEN = {"TASK_RUNNER": "celery", "TASK_OPTIONS": task_options}
    return {m.id: m for m in check_settings()}


def test_task_options_pass_checks(settings):
    found = ids(settings, QUEUES={"default": "imagegen"}, SOFT_TIME_LIMIT=50, TIME_LIMIT=60)
    assert found == {}


@pytest.mark.parametrize(
    "bad",
    [
        {"NOPE": 1},
        {"SOFT_TIME_LIMIT": 60, "TIME_LIMIT": 60},
        {"LEASE": 0},
        {"MAX_ATTEMPTS": "3"},
        {"QUEUES": ["a"]},
        {"RATE_LIMITS": {"default": {"RATE": "fast"}}},
        {"RATE_LIMITS": {"default": {"CONCURRENCY": 0}}},
        {"RATE_LIMITS": {"default": {"BURST": 3}}},
    ],
)
def test_malformed_task_options_fail_checks(settings, bad):
    found = ids(settings, **bad)
    assert "imagegen.E020" in found and found["imagegen.E020"].hint


def test_limits_in_a_per_process_cache_warn(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert "imagegen.W020" in ids(settings, RATE_LIMITS={"default": {"CONCURRENCY": 2}})
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:6379/9"}}  # fmt: skip
    assert ids(settings, RATE_LIMITS={"default": {"CONCURRENCY": 2}}) == {}
    assert "imagegen.E020" in ids(
        settings, RATE_LIMITS={"default": {"CONCURRENCY": 2}}, CACHE="nope"
    )


def test_a_visibility_timeout_shorter_than_the_time_limit_warns(settings):
    from celery import current_app

    conf = {
        "broker_url": "redis://127.0.0.1:6379/0",
        "broker_transport_options": {"visibility_timeout": 300},
    }
    with mock.patch.dict(current_app.conf, conf):
        assert "imagegen.W021" in ids(settings, TIME_LIMIT=600, SOFT_TIME_LIMIT=500)
        assert "imagegen.W021" not in ids(settings, TIME_LIMIT=200, SOFT_TIME_LIMIT=100)


# Bulk enqueue -------------------------------------------------------------------------------------


def many_articles(count: int) -> list[Article]:
    Article.objects.bulk_create(Article(title=f"Story {i}") for i in range(count))
    return list(Article.objects.order_by("pk"))


#: What counting a batch in the rollups adds to its INSERTs, inside a test's transaction: one
#: upsert of the daily rollup and one of the per-object rollup (no savepoint: the caller's
#: transaction holds the rows and their counts).
ROLLUP_QUERIES = 2


def inserts_per_batch(batch: int) -> int:
    """Return the statements recording a batch of ``batch`` rows makes on this database.

    The INSERTs ``bulk_create`` needs, and the rollups' ``ROLLUP_QUERIES``.
    """
    from django.db import connection

    fields = [f for f in Generation._meta.concrete_fields if not f.primary_key]
    per_query = connection.ops.bulk_batch_size(fields, [Generation()] * batch) or batch
    return -(-batch // per_query) + ROLLUP_QUERIES


def test_generate_many_queues_a_thousand_objects_in_constant_queries_per_batch(
    queued, django_assert_num_queries
):
    from django.contrib.contenttypes.models import ContentType

    articles = many_articles(1000)
    per_batch = inserts_per_batch(100)
    ContentType.objects.clear_cache()
    # One batch: its INSERTs and rollups, and the content type the first time this process
    # sees the model.
    with django_assert_num_queries(per_batch + 1):
        first = services.generate_many(articles[:100], "hero", batch_size=100)
    with django_assert_num_queries(9 * per_batch):  # nothing per object
        rest = services.generate_many(articles[100:], "hero", batch_size=100)
    generations = first.generations + rest.generations
    assert len(generations) == 1000 and not first.errors and not rest.errors
    assert all(g.pk and g.status == Status.QUEUED for g in generations)
    assert [g.object_id for g in generations] == [str(a.pk) for a in articles]
    row = Generation.objects.get(pk=generations[0].pk)
    assert (row.field_name, row.preset, row.provider) == ("hero", "hero", "test")
    assert row.prompt.startswith("Story 0")
    assert row.estimated_cost == Decimal("0.04")


def test_generate_many_reads_its_targets_lazily(queued):
    articles = many_articles(30)
    taken = []

    def targets():
        for article in articles:
            taken.append(article.pk)
            yield article

    outcomes = services.iter_generate_many(targets(), "hero", batch_size=10)
    next(outcomes)
    assert len(taken) == 10  # one batch in memory, not the whole selection
    assert len(list(outcomes)) == 29


def test_generate_many_dispatches_each_batch_once_on_commit(
    queued, django_capture_on_commit_callbacks
):
    queued.IMAGEGEN = {**queued.IMAGEGEN, "TASK_RUNNER": "celery"}
    articles = many_articles(25)
    with (
        mock.patch.object(run_generation_task, "apply_async") as send,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        result = services.generate_many(articles, "hero", batch_size=10)
    assert len(callbacks) == 3
    assert [c.args[0] for c in send.call_args_list] == [(g.pk,) for g in result.generations]


def test_generate_many_reports_objects_it_cannot_generate(queued):
    good, blank, other = (
        Article.objects.create(title="Good"),
        Article.objects.create(title="   "),
        Article.objects.create(title="Other"),
    )
    result = services.generate_many([good, blank, other], "hero")
    assert [g.object_id for g in result.generations] == [str(good.pk), str(other.pk)]
    ((target, error),) = result.errors
    assert target == blank and error.code == "unsupported_request"
    assert result.stopped is None


def test_generate_many_stops_at_the_budget(queued, django_assert_max_num_queries):
    queued.IMAGEGEN = {**queued.IMAGEGEN, "BUDGETS": {"SITE_MONTHLY": "0.10"}}
    articles = many_articles(6)
    result = services.generate_many(articles, "hero", batch_size=4)
    assert len(result.generations) == 2  # $0.08 of $0.10
    assert isinstance(result.stopped, imagegen.exceptions.BudgetExceeded)
    assert result.errors[0][0] == articles[2]
    assert Generation.objects.count() == 2


def test_generate_many_warns_over_a_warn_budget(queued):
    queued.IMAGEGEN = {
        **queued.IMAGEGEN,
        "BUDGETS": {"SITE_MONTHLY": "0.05", "ACTION": "warn"},
    }
    result = services.generate_many(many_articles(3), "hero")
    assert len(result.generations) == 3
    warned = [bool(g.warnings) for g in result.generations]
    assert warned == [False, True, True]
    assert "over the $0.05 monthly budget" in result.generations[1].warnings[-1]


def test_generate_many_with_the_immediate_runner_runs_each(queued):
    queued.IMAGEGEN = {**queued.IMAGEGEN, "TASK_RUNNER": "immediate"}
    articles = many_articles(3)
    result = services.generate_many(articles, "hero", batch_size=2)
    assert [g.status for g in result.generations] == [Status.SUCCEEDED] * 3
    for article, generation in zip(articles, result.generations, strict=True):
        assert article.hero.name == generation.images.get().file.name  # the caller's instance


def test_the_generate_command_queues_in_batches(queued, django_assert_max_num_queries):
    import io

    from django.core.management import call_command

    many_articles(1000)
    Article.objects.filter(pk__in=Article.objects.order_by("pk").values("pk")[:10]).update(
        hero="kept.png"
    )
    out = io.StringIO()
    batches = -(-990 // services.BULK_BATCH)
    # A count, the keyset pages of objects (500 each, and the empty last one), and each
    # batch's INSERTs and rollups: nothing per object.
    with django_assert_max_num_queries(1 + 3 + batches * inserts_per_batch(services.BULK_BATCH)):
        call_command("imagegen_generate", "testapp.Article", "hero", "--missing", stdout=out)
    assert "Processing 990 Article objects." in out.getvalue()
    assert "0 failed; 990 queued" in out.getvalue()
    assert Generation.objects.filter(status=Status.QUEUED).count() == 990
    assert locmem_module.requests == []


# Django Tasks -----------------------------------------------------------------------------------


@pytest.fixture
def django_tasks(queued):
    """Switch to the Django Tasks runner; return the backends' module prefix."""
    try:
        import django.tasks  # noqa: F401

        prefix = "django.tasks.backends"
    except ImportError:
        pytest.importorskip("django_tasks", reason="needs Django 6 or django-imagegen[tasks]")
        prefix = "django_tasks.backends"
    queued.IMAGEGEN = {**queued.IMAGEGEN, "TASK_RUNNER": "django"}
    return prefix


def use_backend(settings, prefix: str, name: str, **params) -> None:
    backend = {"immediate": "immediate.ImmediateBackend", "dummy": "dummy.DummyBackend"}[name]
    settings.TASKS = {"default": {"BACKEND": f"{prefix}.{backend}", **params}}


def backend_results():
    from imagegen.django_tasks import run_generation

    return run_generation.get_backend().results


def test_django_tasks_runs_the_job_after_commit(
    django_tasks, settings, django_capture_on_commit_callbacks
):
    use_backend(settings, django_tasks, "immediate")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        generation = make()
    assert generation.status == Status.QUEUED and locmem_module.requests == []
    for callback in callbacks:
        callback()
    generation.refresh_from_db()
    assert (generation.status, generation.attempts) == (Status.SUCCEEDED, 1)


def test_django_tasks_retries_with_run_after_when_the_backend_defers(
    django_tasks, settings, django_capture_on_commit_callbacks
):
    from imagegen.django_tasks import run_generation

    use_backend(settings, django_tasks, "dummy")
    with django_capture_on_commit_callbacks(execute=True):
        generation = make()
    (first,) = backend_results()
    assert first.args == [generation.pk] or list(first.args) == [generation.pk]
    LocmemProvider.script(RateLimited("busy", retry_after=20))
    run_generation.call(generation.pk)
    retry = backend_results()[-1]
    assert list(retry.args) == [generation.pk, 2]
    wait = (retry.task.run_after - timezone.now()).total_seconds()
    assert 18 < wait <= 23
    generation.refresh_from_db()
    assert generation.status == Status.QUEUED
    run_generation.call(generation.pk, 2)
    generation.refresh_from_db()
    assert (generation.status, generation.attempts) == (Status.SUCCEEDED, 2)
    assert len(backend_results()) == 2  # nothing more to run


def test_django_tasks_leaves_a_retry_to_the_sweeper_without_defer(
    django_tasks, settings, caplog, django_capture_on_commit_callbacks
):
    use_backend(settings, django_tasks, "immediate")
    LocmemProvider.script(RateLimited("busy"))
    with django_capture_on_commit_callbacks(execute=True):
        generation = make()
    generation.refresh_from_db()
    assert len(locmem_module.requests) == 1
    assert (generation.status, generation.attempts) == (Status.QUEUED, 1)  # for the sweeper
    assert "cannot defer tasks" in caplog.text


def test_django_tasks_sends_a_provider_to_its_queue(
    django_tasks, settings, django_capture_on_commit_callbacks
):
    use_backend(settings, django_tasks, "dummy", QUEUES=["default", "imagegen-other"])
    options(settings, QUEUES={"other": "imagegen-other"})
    with django_capture_on_commit_callbacks(execute=True):
        make(provider="other")
        make()
    assert [r.task.queue_name for r in backend_results()] == ["imagegen-other", "default"]


def test_django_tasks_duplicate_delivery_calls_once(django_tasks, settings):
    from imagegen.django_tasks import run_generation

    use_backend(settings, django_tasks, "dummy")
    generation = make()
    run_generation.call(generation.pk)
    run_generation.call(generation.pk)
    assert len(locmem_module.requests) == 1


def test_the_django_runner_is_checked_for_its_dependency(django_tasks, settings):
    assert "imagegen.E007" not in {m.id for m in check_settings()}
    with mock.patch.dict("sys.modules", {"imagegen.django_tasks": None}):
        found = {m.id: m for m in check_settings()}
    assert "imagegen.E007" in found
