"""What each object has cost: the "AI spend" column and the total on the change form."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imagegen.models import Status
from tests.admin.support import CHANGELIST, EDITOR_PERMS, ledger_row, make_user, text_of
from tests.testapp.models import Article, Product

pytestmark = pytest.mark.django_db


def spend_cells(page) -> dict[str, str]:
    """Return {title: spend} for the rows of the article changelist."""
    html = page.content.decode()
    rows = re.findall(
        r'<tr>.*?<th class="field-title">(.*?)</th>.*?'
        r'<td class="field-imagegen_spend">(.*?)</td>',
        html,
        re.S,
    )
    return {re.sub(r"<[^>]+>", "", title): spend for title, spend in rows}


def titles_in_order(page) -> list[str]:
    html = page.content.decode()
    return [
        re.sub(r"<[^>]+>", "", t) for t in re.findall(r'<th class="field-title">(.*?)</th>', html)
    ]


@pytest.fixture
def spent(db):
    """Articles that cost $0.08 (two rows), $0.0025, nothing, and $0.04 plus a failed $0.01."""
    two = Article.objects.create(title="Two")
    ledger_row(two)
    ledger_row(two)
    cheap = Article.objects.create(title="Cheap")
    ledger_row(cheap, cost="0.0025")
    none = Article.objects.create(title="None")
    mixed = Article.objects.create(title="Mixed")
    ledger_row(mixed)
    ledger_row(mixed, cost="0.01", status=Status.FAILED)
    ledger_row(mixed, cost=None, status=Status.QUEUED)
    # A product with the same primary key must not count towards the article's spend.
    product = Product.objects.create(name="Teapot")
    while product.pk < none.pk:
        product = Product.objects.create(name="Teapot")
    ledger_row(Product.objects.get(pk=none.pk), field="photo", cost="5.00")
    return {"two": two, "cheap": cheap, "none": none, "mixed": mixed}


def test_the_changelist_has_an_ai_spend_column(admin_client, spent):
    page = admin_client.get(CHANGELIST)

    assert page.status_code == 200
    assert "AI spend" in page.content.decode()
    assert spend_cells(page) == {
        "Two": "$0.08",
        "Cheap": "$0.0025",
        "None": "$0.00",
        "Mixed": "$0.05",
    }


def test_ordering_by_the_spend_column(admin_client, spent):
    page = admin_client.get(CHANGELIST)
    html = page.content.decode()
    header = re.search(
        r'<th scope="col" class="[^"]*column-imagegen_spend[^"]*">(.*?)</th>', html, re.S
    )
    assert header, "the AI spend column cannot be sorted"
    # Django 6.1 adds role="button" to the header's link.
    link = re.search(r'<a [^>]*href="\?o=([\d.\-]+)"', header.group(1))
    assert link

    ascending = admin_client.get(CHANGELIST, {"o": link.group(1)})
    descending = admin_client.get(CHANGELIST, {"o": "-" + link.group(1)})

    assert titles_in_order(ascending) == ["None", "Cheap", "Mixed", "Two"]
    assert titles_in_order(descending) == ["Two", "Mixed", "Cheap", "None"]


def test_the_changelist_query_count_does_not_grow_with_rows(admin_client, admin_user):
    def add(n: int) -> None:
        for _ in range(n):
            article = Article.objects.create(title=f"Article {Article.objects.count()}")
            ledger_row(article, images=1, user=admin_user)
            ledger_row(article, images=2, user=admin_user)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            page = admin_client.get(CHANGELIST)
        assert page.status_code == 200
        return len(captured)

    add(3)
    queries()  # warm the caches (content types, the session)
    few = queries()
    add(12)
    many = queries()

    page = admin_client.get(CHANGELIST)
    assert list(spend_cells(page).values()) == ["$0.08"] * 15
    assert few == many


def test_the_column_goes_where_list_display_puts_it(admin_client, spent, monkeypatch):
    from django.contrib import admin

    monkeypatch.setattr(admin.site._registry[Article], "list_display", ["imagegen_spend", "title"])

    page = admin_client.get(CHANGELIST)

    html = page.content.decode()
    assert html.count('class="field-imagegen_spend"') == 4  # once per row, not twice
    assert html.index("column-imagegen_spend") < html.index("column-title")
    # The first column links to the object, as in any changelist.
    assert re.search(r'<th class="field-imagegen_spend"><a href="[^"]+">\$0.08</a></th>', html)


def test_the_column_can_be_turned_off(admin_client, spent, monkeypatch):
    from django.contrib import admin

    monkeypatch.setattr(admin.site._registry[Article], "imagegen_spend_column", False)

    page = admin_client.get(CHANGELIST)

    assert page.status_code == 200
    assert "AI spend" not in page.content.decode()


# The change form ----------------------------------------------------------------------------------


def spend_tool(page) -> str:
    html = page.content.decode()
    match = re.search(r'<li class="imagegen-spend-tool">(.*?)</li>', html, re.S)
    assert match, "no AI spend among the object tools"
    return match.group(1)


def test_the_change_form_shows_the_spend_linking_to_the_ledger(admin_client, spent):
    article = spent["two"]

    page = admin_client.get(f"/admin/testapp/article/{article.pk}/change/")

    tool = spend_tool(page)
    assert "AI spend: $0.08" in re.sub(r"<[^>]+>", "", tool)
    href = re.search(r'href="([^"]+)"', tool).group(1).replace("&amp;", "&")
    ledger = admin_client.get(href)
    assert ledger.status_code == 200, href
    assert "e=1" not in ledger.get("Location", "")
    assert "Total cost of these 2 generations: $0.08" in text_of(ledger)


def test_the_change_form_of_an_object_without_generations_says_nothing_was_spent(
    admin_client, spent
):
    page = admin_client.get(f"/admin/testapp/article/{spent['none'].pk}/change/")

    assert "AI spend: $0.00" in re.sub(r"<[^>]+>", "", spend_tool(page))


def test_without_view_generation_the_spend_is_shown_without_a_link(client, spent):
    client.force_login(make_user("editor", *EDITOR_PERMS))

    page = client.get(f"/admin/testapp/article/{spent['two'].pk}/change/")

    tool = spend_tool(page)
    assert "AI spend: $0.08" in re.sub(r"<[^>]+>", "", tool)
    assert "href" not in tool


def test_with_view_generation_the_link_is_shown(client, spent):
    client.force_login(make_user("editor", *EDITOR_PERMS, "view_generation"))

    page = client.get(f"/admin/testapp/article/{spent['two'].pk}/change/")

    assert "href" in spend_tool(page)


def test_the_add_form_shows_no_spend(admin_client, spent):
    page = admin_client.get("/admin/testapp/article/add/")

    assert page.status_code == 200
    assert "imagegen-spend-tool" not in page.content.decode()
