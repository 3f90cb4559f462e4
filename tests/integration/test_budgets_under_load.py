"""A cap is a cap under load: 50 callers in five processes against a cap of 10 images.

Each caller is a thread of its own process, on its own PostgreSQL connection, and all of them
are released at the same instant. With the immediate runner each caller also runs its
generation; with the Celery runner the rows go to a real worker. Either way exactly 10 images
are made and the spend equals the cap.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from imagegen.models import BudgetUse, GeneratedImage, Generation, Status
from tests.integration.burst import run_in_processes
from tests.integration.provider import PRICE
from tests.integration.test_celery_worker import all_finished, wait_for

pytestmark = pytest.mark.postgres

PROCESSES, THREADS, IMAGES = 5, 10, 10
CAP = PRICE * IMAGES


def burst(env: dict[str, str]) -> list[dict[str, int]]:
    return run_in_processes(env, PROCESSES, THREADS)


def environment(worker_env: dict[str, str], runner: str) -> dict[str, str]:
    return {**worker_env, "IMAGEGEN_IT_BUDGET": str(CAP), "IMAGEGEN_IT_RUNNER": runner}


def assert_the_cap_held(counts: list[dict[str, int]]) -> None:
    assert sum(c["recorded"] for c in counts) == IMAGES, counts
    assert sum(c["refused"] for c in counts) == PROCESSES * THREADS - IMAGES, counts
    assert sum(c["errors"] for c in counts) == 0, counts
    rows = Generation.objects.all()
    assert rows.filter(status=Status.SUCCEEDED).count() == IMAGES
    assert GeneratedImage.objects.count() == IMAGES
    assert sum(row.cost for row in rows) == CAP
    site = BudgetUse.objects.get(cap="site::month")
    assert (site.spent, site.reserved, site.unconfirmed) == (CAP, Decimal(0), Decimal(0))


def test_fifty_callers_in_five_processes_make_exactly_the_capped_images(
    it_env, redis_client, settings
):
    assert_the_cap_held(burst(environment(it_env, "immediate")))


def test_the_cap_holds_with_the_celery_runner_and_a_real_worker(
    worker_factory, it_env, redis_client, settings
):
    worker = worker_factory(concurrency=2)
    counts = burst(environment(it_env, "celery"))
    wait_for(all_finished(list(Generation.objects.all())), 90, "the capped jobs", worker)
    assert_the_cap_held(counts)
