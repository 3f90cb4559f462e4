"""The batch side of the commands: imagegen_generate --batch, imagegen_sweep --batches and
imagegen_costs' batch spend."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from imagegen.models import BatchStatus, Generation, ProviderBatch, Status
from imagegen.tasks import sweep_jobs_task
from tests.batch.support import products

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_estimate_with_batch_prints_half_the_price(fake):
    products(2)
    now = run("imagegen_generate", "testapp.Product", "photo", "--estimate")
    batch = run("imagegen_generate", "testapp.Product", "photo", "--estimate", "--batch")
    now_total = Decimal(now.split("$")[1].split()[0])
    batch_total = Decimal(batch.split("$")[1].split()[0])
    assert "at the batch price" in batch
    assert batch_total == (now_total / 2).quantize(Decimal("0.000001"))
    assert not fake.requests


def test_generate_batch_submits_a_provider_batch_and_the_sweep_stores_the_images(
    fake, django_capture_on_commit_callbacks
):
    products(3)
    with django_capture_on_commit_callbacks(execute=True):
        out = run("imagegen_generate", "testapp.Product", "photo", "--batch")
    assert "Submitted as provider batches" in out
    batch = ProviderBatch.objects.get()
    assert batch.batch_id in fake.batches and batch.total == 3

    fake.finish(batch.batch_id)
    out = run("imagegen_sweep", "--batches")
    assert "1 polled" in out and "3 generations stored" in out
    assert set(Generation.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED


def test_the_celery_sweeper_polls_the_batches_too(fake, django_capture_on_commit_callbacks):
    products(1)
    with django_capture_on_commit_callbacks(execute=True):
        run("imagegen_generate", "testapp.Product", "photo", "--batch")
    fake.finish(ProviderBatch.objects.get().batch_id)
    tally = sweep_jobs_task()
    assert tally["batches_polled"] == 1 and tally["batches_succeeded"] == 1


def test_costs_separate_batch_spend(fake, django_capture_on_commit_callbacks, settings):
    products(2)
    with django_capture_on_commit_callbacks(execute=True):
        run("imagegen_generate", "testapp.Product", "photo", "--batch")
    fake.finish(ProviderBatch.objects.get().batch_id)
    run("imagegen_sweep", "--batches")
    report = json.loads(run("imagegen_costs", "--format", "json", "--batch"))
    batch_cost = sum(row.cost for row in Generation.objects.all())
    assert Decimal(report["total"]["batch_cost"]) == batch_cost
    assert Decimal(report["total"]["cost"]) == batch_cost
    assert "Batch ($)" in run("imagegen_costs", "--batch")
    assert "Batch" not in run("imagegen_costs")
    csv = run("imagegen_costs", "--batch", "--by", "model", "--format", "csv").splitlines()
    assert csv[0].endswith(",batch_cost")
    assert csv[1].endswith(f",{batch_cost:.6f}")
