"""A real Celery worker (prefork, Redis broker, PostgreSQL) runs generations: at scale, when
killed mid-job, behind a 429, delivered twice, and under a limit shared by its processes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from unittest import mock

import pytest

import imagegen
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.tasks import CeleryRunner, run_generation_task
from tests.conftest import media_files
from tests.integration.provider import PRICE
from tests.testapp.models import Article

pytestmark = pytest.mark.postgres


def wait_for(condition: Callable[[], bool], timeout: float, what: str, worker=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    log = worker.output()[-6000:] if worker is not None else ""
    statuses = list(Generation.objects.values_list("pk", "status", "attempts", "error_code"))
    pytest.fail(f"Timed out after {timeout} s waiting for {what}; rows: {statuses}\n{log}")


def all_finished(rows: list[Generation]) -> Callable[[], bool]:
    pks = [row.pk for row in rows]
    return lambda: (
        not Generation.objects.filter(
            pk__in=pks, status__in=[Status.QUEUED, Status.RUNNING]
        ).exists()
    )


def counter(redis_client, run_id: str, name: str, job: str) -> int:
    return int(redis_client.get(f"it:{run_id}:{name}:{job}") or 0)


def make_jobs(count: int, prefix: str, provider: str = "it", **extra) -> list[Generation]:
    """Generate for ``count`` new articles; each job's provider behaviour is in ``extra``."""
    rows = []
    for index in range(count):
        article = Article.objects.create(title=f"{prefix} {index}")
        rows.append(
            imagegen.generate(
                target=article,
                field="hero",
                provider=provider,
                width=64,
                height=36,
                extra={"key": f"{prefix}{index}", **extra},
            )
        )
    return rows


def assert_exactly_once(rows: list[Generation], settings, redis_client, run_id: str) -> None:
    """Every job succeeded once: one image, attached, billed and recorded once, no orphan."""
    referenced = set()
    for row in rows:
        row.refresh_from_db()
        job = row.params["extra"]["key"]
        assert row.status == Status.SUCCEEDED, (row.pk, row.error_code, row.error_message)
        assert row.cost == PRICE
        assert counter(redis_client, run_id, "billed", job) == 1, job
        image = GeneratedImage.objects.get(generation=row)
        assert image.selected
        article = Article.objects.get(pk=row.object_id)
        assert article.hero.name == image.file.name
        referenced.add(image.file.name)
    assert set(media_files(settings)) == referenced  # no orphan file


def test_fifty_jobs_complete(worker_factory, settings, redis_client, run_id):
    worker = worker_factory(concurrency=2)
    rows = make_jobs(50, "bulk", latency=0.02)
    wait_for(all_finished(rows), 90, "50 jobs", worker)
    assert_exactly_once(rows, settings, redis_client, run_id)
    assert sum(row.attempts for row in rows) == 50


def test_a_worker_killed_mid_job_is_redelivered_and_every_job_succeeds_once(
    worker_factory, settings, redis_client, run_id
):
    worker = worker_factory(concurrency=2)
    rows = make_jobs(6, "kill", latency=2.5)

    def busy() -> bool:
        running = Generation.objects.filter(status=Status.RUNNING)
        # Both pool processes are inside an accepted provider job.
        return running.count() == 2 and not running.filter(provider_job_id="").exists()

    wait_for(busy, 30, "two running jobs", worker)
    killed = set(Generation.objects.filter(status=Status.RUNNING).values_list("pk", flat=True))
    worker.kill()
    assert Generation.objects.filter(pk__in=killed, status=Status.RUNNING).count() == 2

    worker.start()  # Celery gets the unacknowledged jobs back after the visibility timeout
    wait_for(all_finished(rows), 90, "every job after the restart", worker)
    assert_exactly_once(rows, settings, redis_client, run_id)
    for row in rows:
        job = row.params["extra"]["key"]
        if row.pk in killed:
            # Taken over once its lease lapsed, resuming the accepted job: polled, not paid again.
            assert row.attempts == 2
            assert counter(redis_client, run_id, "resumes", job) >= 1
            assert any("lost its worker" in warning for warning in row.warnings)
        else:
            assert row.attempts == 1


def test_a_provider_answering_429_then_200_is_retried_with_backoff_and_charged_once(
    worker_factory, settings, redis_client, run_id
):
    worker = worker_factory(concurrency=2)
    rows = make_jobs(1, "refused", refuse_first=True, retry_after=1.5)
    wait_for(all_finished(rows), 30, "the rate-limited job", worker)
    assert_exactly_once(rows, settings, redis_client, run_id)
    row = rows[0]
    assert counter(redis_client, run_id, "calls", "refused0") == 2
    first, second = (float(t) for t in redis_client.lrange(f"it:{run_id}:times:refused0", 0, -1))
    assert second - first >= 1.5  # the provider's Retry-After was honoured
    assert (row.attempts, row.error_code) == (2, "")


def test_the_same_task_delivered_twice_makes_one_provider_call(
    worker_factory, settings, redis_client, run_id
):
    with mock.patch.object(CeleryRunner, "dispatch"):  # the test delivers it itself
        rows = make_jobs(1, "twice", latency=1.5)
    worker = worker_factory(concurrency=2)
    task_id = str(uuid.uuid4())
    for _ in range(2):
        run_generation_task.apply_async((rows[0].pk,), task_id=task_id)
    wait_for(all_finished(rows), 30, "the job", worker)
    # The duplicate waits for the live job's lease (3 s), then finds it done: give it the time.
    time.sleep(5)
    assert_exactly_once(rows, settings, redis_client, run_id)
    assert counter(redis_client, run_id, "calls", "twice0") == 1
    rows[0].refresh_from_db()
    assert rows[0].attempts == 1
    assert "imagegen.run_generation" in worker.output()


def test_the_concurrency_limit_is_shared_by_worker_processes(
    worker_factory, settings, redis_client, run_id
):
    worker = worker_factory(concurrency=2)
    rows = make_jobs(4, "cap", provider="limited", latency=0.8)
    wait_for(all_finished(rows), 60, "the limited jobs", worker)
    assert_exactly_once(rows, settings, redis_client, run_id)
    assert int(redis_client.get(f"it:{run_id}:peak")) == 1  # never two calls at once
