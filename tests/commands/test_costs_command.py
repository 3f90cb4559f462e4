"""Tests for ``imagegen_costs``: groups and totals from the ledger in table, CSV and JSON."""

from __future__ import annotations

import csv
import datetime
import io
import json
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command

from imagegen.models import GeneratedImage, Generation, Status
from imagegen.pipeline import rollups
from tests.testapp.models import Article

UTC = datetime.UTC


def ledger_row(
    *,
    provider: str = "openai",
    model: str = "gpt-image-2",
    cost: str | None = "0.040000",
    estimated: str = "0.040000",
    status: str = Status.SUCCEEDED,
    created: datetime.datetime | None = None,
    images: int = 1,
    target: Article | None = None,
    preset: str = "hero",
    user=None,
) -> Generation:
    """Write one Generation with ``images`` GeneratedImage rows, as the pipeline would."""
    generation = Generation.objects.create(
        provider=provider,
        model=model,
        prompt="a prompt",
        cost=None if cost is None else Decimal(cost),
        estimated_cost=Decimal(estimated),
        status=status,
        created_at=created or datetime.datetime(2025, 3, 10, 12, tzinfo=UTC),
        content_type=ContentType.objects.get_for_model(target) if target else None,
        object_id=str(target.pk) if target else "",
        field_name="hero" if target else "",
        preset=preset,
        created_by=user,
    )
    for n in range(images):
        GeneratedImage.objects.create(
            generation=generation, file=f"img/{generation.pk}-{n}.png", width=8, height=8,
            mime_type="image/png", bytes=10, sha256=f"{generation.pk:032d}{n:032d}",
        )  # fmt: skip
    rollups.count_row(generation, images)  # as the pipeline would have counted it
    return generation


@pytest.fixture
def ledger(db) -> dict[str, Article]:
    """Four generations over two providers, two months, two articles and one failure."""
    first = Article.objects.create(title="First")
    second = Article.objects.create(title="Second")
    ledger_row(target=first, images=3, cost="0.120000", estimated="0.120000")
    ledger_row(target=second, cost="0.041000", created=datetime.datetime(2025, 4, 2, tzinfo=UTC))
    ledger_row(provider="flux", model="flux-schnell", cost="0.003000", estimated="0.003000",
               target=first, preset="product")  # fmt: skip
    ledger_row(status=Status.FAILED, cost=None, images=0, target=second)
    return {"first": first, "second": second}


def costs(*args: str) -> str:
    out = io.StringIO()
    call_command("imagegen_costs", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def parse_csv(text: str) -> dict[str, dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    key = next(iter(rows[0])) if rows else ""
    return {row[key]: row for row in rows}


def test_default_is_a_table_by_provider_with_total(ledger) -> None:
    lines = costs().splitlines()
    assert lines[0].split() == ["Provider", "Generations", "Images", "Estimated", "($)",
                                "Actual", "($)"]  # fmt: skip
    body = {line.split()[0]: line.split()[1:] for line in lines[2:] if not line.startswith("-")}
    assert body["openai"] == ["3", "4", "0.200000", "0.161000"]
    assert body["flux"] == ["1", "1", "0.003000", "0.003000"]
    assert body["TOTAL"] == ["4", "5", "0.203000", "0.164000"]
    # Columns are aligned: every line of the table is as wide as the header's rule.
    widths = {len(line) for line in lines if line.startswith("-")}
    assert len(widths) == 1


def test_csv_parses_back_to_exact_decimals(ledger) -> None:
    rows = parse_csv(costs("--format", "csv"))
    assert set(rows) == {"openai", "flux"}
    assert Decimal(rows["openai"]["cost"]) == Decimal("0.161")
    assert Decimal(rows["openai"]["estimated_cost"]) == Decimal("0.2")
    assert rows["openai"]["images"] == "4"
    assert rows["flux"]["generations"] == "1"


def test_json_has_decimal_strings_and_a_total(ledger) -> None:
    report = json.loads(costs("--format", "json", "--by", "model"))
    groups = {g["model"]: g for g in report["groups"]}
    assert groups["gpt-image-2"]["cost"] == "0.161000"
    assert Decimal(groups["flux-schnell"]["estimated_cost"]) == Decimal("0.003")
    total = report["total"]
    assert (total["generations"], total["images"]) == (4, 5)
    assert Decimal(total["cost"]) == sum(Decimal(g["cost"]) for g in report["groups"])


def test_images_do_not_multiply_costs(db) -> None:
    ledger_row(images=4, cost="0.160000", estimated="0.160000")
    report = json.loads(costs("--format", "json"))
    assert report["groups"] == [
        {"provider": "openai", "generations": 1, "images": 4, "estimated_cost": "0.160000",
         "cost": "0.160000"}
    ]  # fmt: skip


def test_by_month(ledger) -> None:
    rows = parse_csv(costs("--by", "month", "--format", "csv"))
    assert list(rows) == ["2025-03", "2025-04"]
    assert Decimal(rows["2025-03"]["cost"]) == Decimal("0.123")
    assert Decimal(rows["2025-04"]["cost"]) == Decimal("0.041")


def test_by_object_names_model_pk_and_field(ledger) -> None:
    ledger_row(cost="0.500000")  # no target
    rows = parse_csv(costs("--by", "object", "--format", "csv"))
    first, second = ledger["first"].pk, ledger["second"].pk
    assert Decimal(rows[f"testapp.article #{first} hero"]["cost"]) == Decimal("0.123")
    assert rows[f"testapp.article #{second} hero"]["generations"] == "2"
    assert Decimal(rows["(no object)"]["cost"]) == Decimal("0.5")


def test_by_preset_and_by_user(ledger) -> None:
    editor = get_user_model().objects.create(username="editor")
    ledger_row(user=editor, cost="1.000000")
    presets = parse_csv(costs("--by", "preset", "--format", "csv"))
    assert Decimal(presets["product"]["cost"]) == Decimal("0.003")
    users = parse_csv(costs("--by", "user", "--format", "csv"))
    assert Decimal(users["editor"]["cost"]) == Decimal("1")
    assert users["(no user)"]["generations"] == "4"


def test_since_until_and_status_filter(ledger) -> None:
    april = parse_csv(costs("--since", "2025-04-01", "--until", "2025-04-02", "--format", "csv"))
    assert list(april) == ["openai"]
    assert Decimal(april["openai"]["cost"]) == Decimal("0.041")
    march = parse_csv(costs("--until", "2025-03-31", "--format", "csv"))
    assert march["openai"]["generations"] == "2"
    failed = json.loads(costs("--status", "failed", "--format", "json"))
    assert failed["total"] == {"generations": 1, "images": 0, "estimated_cost": "0.040000",
                               "cost": "0.000000"}  # fmt: skip


def test_each_report_is_one_or_two_queries(ledger, django_assert_num_queries) -> None:
    # One over the rollup (for "user", one more for the names, when there are users); the
    # ledger and its images for "object".
    queries = {"provider": 1, "model": 1, "month": 1, "preset": 1, "user": 1, "object": 2}
    for by, count in queries.items():
        with django_assert_num_queries(count):
            costs("--by", by)
    with django_assert_num_queries(2):  # a status filter: the ledger and its images
        costs("--by", "provider", "--status", "failed")


def test_empty_ledger_prints_zero_total(db) -> None:
    lines = costs().splitlines()
    assert lines[-1].split() == ["TOTAL", "0", "0", "0.000000", "0.000000"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "March"), "--since must be a date"),
        (("--since", "2025-05-01", "--until", "2025-04-01"), "--since is after --until"),
    ],
)
def test_bad_dates_are_command_errors(db, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        costs(*args)


@pytest.mark.parametrize("by", ["provider", "model", "month", "preset", "user"])
def test_reports_by_provider_model_month_preset_or_user_read_the_rollup(ledger, by):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        report = json.loads(costs("--by", by, "--format", "json"))
    assert report["total"] == {"generations": 4, "images": 5, "estimated_cost": "0.203000",
                               "cost": "0.164000"}  # fmt: skip
    # Not one query reads the ledger, however large it is.
    assert not any('"imagegen_generation"' in q["sql"] for q in captured.captured_queries)
    assert len(captured.captured_queries) <= 2
