"""The ledger at scale and for reading: totals, filter lists and dates from the rollups; costs
with their currency, the images table, the target's name."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import imagegen
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.pipeline import rollups
from tests.admin.support import total_of
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/imagegen/generation/"
UTC = datetime.UTC


def row(
    provider: str = "openai",
    model: str = "gpt-image-2",
    *,
    day: int = 10,
    month: int = 3,
    cost: str | None = "0.04",
    status: str = Status.SUCCEEDED,
    **fields,
) -> Generation:
    """Write a ledger row of 2025 by hand and count it in the rollups."""
    generation = Generation.objects.create(
        provider=provider,
        model=model,
        prompt="A lighthouse",
        status=status,
        estimated_cost=Decimal("0.04"),
        cost=None if cost is None else Decimal(cost),
        created_at=datetime.datetime(2025, month, day, 12, tzinfo=UTC),
        **fields,
    )
    rollups.count_row(generation, images=0)
    return generation


@pytest.fixture
def rows(db):
    row(day=1)
    row(day=2, cost="0.08")
    row("flux", "flux-schnell", month=4, cost="0.003")
    row("flux", "flux-schnell", month=4, cost=None, status=Status.FAILED)
    row(month=4, cost="0.01", unconfirmed_cost=Decimal("0.04"))


def ledger_sql(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if '"imagegen_generation"' in q["sql"]]


def test_the_count_and_total_come_from_the_rollup_without_scanning_the_ledger(admin_client,
                                                                              rows):  # fmt: skip
    with CaptureQueriesContext(connection) as captured:
        page = admin_client.get(CHANGELIST)
    assert total_of(page) == (
        "Total cost of these 5 generations: $0.133 (estimated: $0.20) and $0.04 unconfirmed "
        "(calls whose outcome is unknown; probably billed)"
    )
    # Only the page's rows (and their images) are read from the ledger: no COUNT, SUM or
    # DISTINCT over it.
    for sql in ledger_sql(captured):
        assert not re.search(r"COUNT\(|SUM\(|DISTINCT|MIN\(|MAX\(", sql), sql


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"provider": "flux"}, "these 2 generations: $0.003 (estimated: $0.08)"),
        ({"model": "gpt-image-2"}, "these 3 generations: $0.13 (estimated: $0.12)"),
        ({"created_at__year": "2025", "created_at__month": "3"},
         "these 2 generations: $0.12 (estimated: $0.08)"),
        ({"created_at__gte": "2025-04-01 00:00:00+00:00",
          "created_at__lt": "2025-05-01 00:00:00+00:00"},
         "these 3 generations: $0.013 (estimated: $0.12)"),
        # Not in the rollup: read from the ledger, the same numbers.
        ({"status__exact": "failed"}, "this generation: $0.00 (estimated: $0.04)"),
        ({"q": "lighthouse", "provider": "flux"},
         "these 2 generations: $0.003 (estimated: $0.08)"),
    ],
)  # fmt: skip
def test_filtered_totals_match_the_rows(admin_client, rows, params, expected):
    page = admin_client.get(CHANGELIST, params)
    assert f"Total cost of {expected}" in total_of(page)
    count = int(re.search(r"(\d+) generations?:", total_of(page).replace("this", "1")).group(1))
    assert page.content.count(b'<td class="action-checkbox">') == count


def test_filter_lists_and_dates_come_from_the_rollup(admin_client, rows):
    with CaptureQueriesContext(connection) as captured:
        page = admin_client.get(CHANGELIST)
    html = page.content.decode()
    assert "?provider=flux" in html and "?model=flux-schnell" in html
    # The date navigation lists the year, from the rollup.
    # (Django 6.1's template adds a label before the links.)
    navigation = r'<nav class="toplinks"[^>]*>.*?<a href="\?created_at__year=2025">2025</a>'
    assert re.search(navigation, html, re.S)
    assert not any("DISTINCT" in sql for sql in ledger_sql(captured))

    year = admin_client.get(CHANGELIST, {"created_at__year": "2025"}).content.decode()
    assert "created_at__month=3" in year and "created_at__month=4" in year
    month = admin_client.get(
        CHANGELIST, {"created_at__year": "2025", "created_at__month": "3"}
    ).content.decode()
    assert "created_at__day=1" in month and "created_at__day=2" in month


def test_the_generation_page_shows_costs_with_their_currency(admin_client, locmem):
    article = Article.objects.create(title="Harbour at night")
    generation = imagegen.generate(prompt="A harbour", provider="paid", target=article,
                                   field="hero", count=2)  # fmt: skip
    GeneratedImage.objects.filter(pk=generation.images.first().pk).update(selected=True)

    page = admin_client.get(f"{CHANGELIST}{generation.pk}/change/").content.decode()

    assert "0.000000" not in page and "0.080000" not in page
    for label in ("Estimated cost", "Cost"):
        assert re.search(rf">{label}:</label>\s*<div class=\"readonly\">\$0.08</div>", page)
    assert re.search(r">Unconfirmed cost:</label>\s*<div class=\"readonly\">\$0.00</div>", page)
    # The selected image is marked in words, once; no column of red crosses.
    assert page.count('<strong class="imagegen-selected">Selected</strong>') == 1
    assert "icon-no.svg" not in page
    # Each file's path appears as one link (its name), with the full path as its title.
    for image in generation.images.all():
        name = image.file.name
        assert page.count(f">{name.rsplit('/', 1)[-1]}</a>") == 1
    # The target is named and linked.
    assert f'<a href="/admin/testapp/article/{article.pk}/change/">Harbour at night</a>' in page


def test_a_deleted_target_is_named_by_type_and_id(admin_client, db):
    article = Article.objects.create(title="Gone")
    generation = row(content_type_id=None)
    Generation.objects.filter(pk=generation.pk).update(
        content_type=imagegen_ct(article), object_id=str(article.pk)
    )
    pk = article.pk
    article.delete()
    page = admin_client.get(CHANGELIST).content.decode()
    assert f"article #{pk} (deleted)" in page


def imagegen_ct(obj):
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(obj)
