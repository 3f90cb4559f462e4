"""Two sweepers at once, in two processes on PostgreSQL: every result is ingested once.

Each child process loads the same state of the fake Batch API (the batch finished, its output
file written) and, at the same instant, either runs the whole batch sweep (the per-batch poll
lock lets one of them in) or ingests the batch's results directly, racing row by row (each
row's fenced transition lets one of them finish it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from imagegen import services
from imagegen.models import BudgetUse, GeneratedImage, Generation, ProviderBatch, Status
from imagegen.testing.openai_batch import FakeOpenAIBatches
from tests.batch.support import configure, products

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
ROWS = 40

CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    import django
    django.setup()
    from django.conf import settings
    from imagegen.conf import reset_caches
    from imagegen.testing import OPENAI, fake_provider_settings
    from imagegen.testing.openai_batch import FakeOpenAIBatches

    state, mode, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
    fake = FakeOpenAIBatches.load(state)
    settings.IMAGEGEN = {
        "DEFAULT_PROVIDER": "openai",
        "PROVIDERS": {"openai": fake_provider_settings(OPENAI, fake)},
        "DERIVATIVE_WIDTHS": [],
        "BUDGETS": {"SITE_MONTHLY": "100"},
    }
    reset_caches()
    from imagegen.models import ProviderBatch
    from imagegen.pipeline import batches

    batch = ProviderBatch.objects.get()
    provider = batches.batch_provider("openai")
    time.sleep(max(0.0, start - time.time()))
    tally = batches.BatchSweep()
    if mode == "sweep":
        tally = batches.poll_batches()
    else:
        state = provider.batch_poll(batch.batch_id)
        batches.ingest(batch, provider, provider.batch_results(state), tally)
    print(json.dumps(tally.as_dict()))
    """
)


def run_two(state: Path, mode: str, media: str) -> list[dict[str, int]]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_postgres",
        "IMAGEGEN_PG_NAME": connection.settings_dict["NAME"],
        "IMAGEGEN_TEST_MEDIA": media,
        "PYTHONPATH": str(ROOT),
    }
    start = time.time() + 4
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(state), mode, str(start)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    tallies = []
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err[-3000:]
        tallies.append(json.loads(out.strip().splitlines()[-1]))
    return tallies


@pytest.fixture
def finished_batch(settings, tmp_path, django_capture_on_commit_callbacks):
    if connection.vendor != "postgresql":
        # Two processes need one database they both reach: SQLite's test database is in memory.
        pytest.skip("concurrent sweepers need PostgreSQL: pytest -m postgres --ds=...postgres")
    fake = FakeOpenAIBatches()
    configure(settings, fake)
    with django_capture_on_commit_callbacks(execute=True):
        services.generate_many(products(ROWS), "photo", mode="batch")
    batch = ProviderBatch.objects.get()
    fake.finish(batch.batch_id)
    fake.save(str(tmp_path))
    return tmp_path


def assert_each_result_ingested_once() -> None:
    rows = Generation.objects.all()
    assert rows.filter(status=Status.SUCCEEDED).count() == ROWS
    assert GeneratedImage.objects.count() == ROWS
    total = sum((row.cost for row in rows), Decimal(0))
    site = BudgetUse.objects.get(cap="site::month")
    assert (site.spent, site.reserved) == (total, Decimal(0))
    assert ProviderBatch.objects.get().cost == total


@pytest.mark.parametrize("mode", ["sweep", "ingest"])
def test_two_sweepers_at_once_ingest_each_result_once(finished_batch, settings, mode):
    tallies = run_two(finished_batch, mode, settings.MEDIA_ROOT)
    assert sum(t["succeeded"] for t in tallies) == ROWS, tallies
    assert_each_result_ingested_once()
