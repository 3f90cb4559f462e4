"""What does the admin's "AI spend" column cost on a changelist?

``ImageGenAdminMixin`` adds an "AI spend" column to the changelist: ``get_queryset()``
annotates each row with ``Generation.objects.cost_subquery(model)``, a correlated subquery that
sums the ledger's costs for the row, and ``imagegen_spend`` formats the total. The script
serves the Article changelist (``tests/testapp/admin.py``, 100 rows on the page) to a superuser
through Django's test ``Client``, three ways:

* spend column: the real ``ArticleAdmin`` on the default site, ``/admin/testapp/article/``;
* baseline: the same admin with ``imagegen_spend_column = False`` (no column, no annotation);
* per row, for reference: the baseline plus a column computed with ``imagegen.cost_for(obj)``,
  what one would write without the mixin: a query per row.

The baseline and the per-row admin are served by two more admin sites, with the same models
registered as the default site (so every page has the same sidebar) and only Article's admin
swapped. The database holds 100 articles with 20 generations each, every one with a cost but
every fifth (a failure, say), and 10,000 generations of 1,000 products whose ids overlap the
articles', which the subquery has to skip. The rows are written directly; no image is made.
The three pages are requested interleaved in one process, 25 rounds after a warm-up, with the
garbage collector run before each, outside the timing; the script prints medians, ratios, the
query counts and the plan SQLite uses for the subquery.

Goal: the column costs a constant number of queries, the same as the changelist without it,
and at most 1.5 times the time of that changelist. The per-row column makes one query per row.
"""

from __future__ import annotations

import gc
import statistics
import time
from decimal import Decimal

from django_setup import setup

ARTICLES = 100
PER_ARTICLE = 20
OTHERS = 10_000
PRODUCTS = 1_000
ROUNDS = 25
URLS = {
    "spend column": "/admin/testapp/article/",
    "baseline": "/bare/testapp/article/",
    "per row": "/per-row/testapp/article/",
}

#: The ROOT_URLCONF: this module, once main() has filled it.
urlpatterns: list = []


def make_rows() -> dict[int, Decimal]:
    """Write the articles and the ledger in a few bulk queries; return each article's total."""
    from django.contrib.contenttypes.models import ContentType

    from imagegen.models import Generation, Status
    from imagegen.pipeline import rollups
    from tests.testapp.models import Article, Product

    Article.objects.bulk_create(Article(title=f"Article {i}") for i in range(ARTICLES))
    articles = list(Article.objects.order_by("pk"))
    totals = dict.fromkeys((article.pk for article in articles), Decimal(0))
    rows = []
    for article in articles:
        for j in range(PER_ARTICLE):
            cost = None if j % 5 == 4 else Decimal("0.010000") * (1 + j % 4)
            totals[article.pk] += cost or 0
            rows.append(
                Generation(
                    content_type=ContentType.objects.get_for_model(Article),
                    object_id=str(article.pk),
                    field_name="hero",
                    provider="openai",
                    model="gpt-image-2",
                    prompt=article.title,
                    status=Status.FAILED if cost is None else Status.SUCCEEDED,
                    cost=cost,
                )
            )
    for i in range(OTHERS):
        rows.append(
            Generation(
                content_type=ContentType.objects.get_for_model(Product),
                object_id=str(i % PRODUCTS + 1),
                field_name="photo",
                provider="openai",
                model="gpt-image-2",
                prompt=f"Product {i % PRODUCTS + 1}",
                status=Status.SUCCEEDED,
                cost=Decimal("0.040000"),
            )
        )
    Generation.objects.bulk_create(rows, batch_size=1000)
    # The rows were written by hand: count them in the rollups, as the pipeline would have.
    rollups.rebuild()
    return totals


def make_sites() -> None:
    """Fill ``urlpatterns`` with the default site and the two other ones."""
    from django.contrib import admin
    from django.urls import path

    import imagegen
    from imagegen.money import format_cost
    from tests.testapp.admin import ArticleAdmin
    from tests.testapp.models import Article

    class BareArticleAdmin(ArticleAdmin):
        imagegen_spend_column = False

    class PerRowArticleAdmin(ArticleAdmin):
        imagegen_spend_column = False
        list_display = ["title", "spend"]

        @admin.display(description="AI spend")
        def spend(self, obj: Article) -> str:
            return format_cost(imagegen.cost_for(obj))

    def copy_of_default(name: str, article_admin: type[admin.ModelAdmin]) -> admin.AdminSite:
        site = admin.AdminSite(name=name)
        for model, model_admin in admin.site._registry.items():
            site.register(model, article_admin if model is Article else type(model_admin))
        return site

    assert isinstance(admin.site._registry[Article], ArticleAdmin)
    urlpatterns[:] = [
        path("admin/", admin.site.urls),
        path("bare/", copy_of_default("bare", BareArticleAdmin).urls),
        path("per-row/", copy_of_default("per_row", PerRowArticleAdmin).urls),
    ]


def subquery_plan() -> str:
    """Return SQLite's plan for the annotated changelist query, one step a line."""
    from django.contrib import admin
    from django.test import RequestFactory

    from tests.testapp.models import Article

    request = RequestFactory().get(URLS["spend column"])
    queryset = admin.site._registry[Article].get_queryset(request).order_by("-pk")
    return queryset[:100].explain()


def main() -> None:
    setup(admin_urlconf=__name__)
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from imagegen.money import format_cost

    totals = make_rows()
    make_sites()
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("bench", "b@example.com", "x"))

    def timed(url: str) -> tuple[float, int, bytes]:
        """Return (seconds, queries, body) of one request, after a collection outside it."""
        gc.collect()
        connection.queries_log.clear()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
        assert response.status_code == 200, (url, response.status_code)
        return elapsed, len(queries), response.content

    # Warm up (imports, templates, URL resolvers) and check what each page shows.
    cells = {name: timed(url)[2].decode() for name, url in URLS.items()}
    expected = "".join(sorted(format_cost(total) for total in totals.values()))
    for name, cell_class in (("spend column", "field-imagegen_spend"), ("per row", "field-spend")):
        html = cells[name]
        assert html.count(f'class="{cell_class}"') == ARTICLES, name
        shown = [part.split("<", 1)[0] for part in html.split(f'class="{cell_class}">')[1:]]
        assert "".join(sorted(shown)) == expected, name
    assert "AI spend" not in cells["baseline"]

    samples: dict[str, list[float]] = {name: [] for name in URLS}
    queries: dict[str, set[int]] = {name: set() for name in URLS}
    for _round in range(ROUNDS):
        for name, url in URLS.items():
            elapsed, count, _body = timed(url)
            samples[name].append(elapsed)
            queries[name].add(count)
    assert all(len(counts) == 1 for counts in queries.values()), queries

    def ms(name: str) -> float:
        return statistics.median(samples[name]) * 1000

    def count(name: str) -> int:
        return next(iter(queries[name]))

    plan = subquery_plan()
    print(f"changelist:                {ARTICLES} articles, {PER_ARTICLE} generations each,"
          f" {OTHERS} other generations")  # fmt: skip
    print(f"baseline (no column):      median {ms('baseline'):.2f} ms,"
          f" {count('baseline')} queries")  # fmt: skip
    print(f"spend column (subquery):   median {ms('spend column'):.2f} ms,"
          f" {count('spend column')} queries")  # fmt: skip
    print(f"per-row cost_for() column: median {ms('per row'):.2f} ms,"
          f" {count('per row')} queries")  # fmt: skip
    print(f"ratio spend column:        {ms('spend column') / ms('baseline'):.2f}"
          "  (goal: at most 1.5, and the same queries as the baseline)")  # fmt: skip
    print(f"ratio per-row column:      {ms('per row') / ms('baseline'):.2f}")
    print(f"target index used:         {'yes' if 'imagegen_gen_target_idx' in plan else 'NO'}")
    print("plan of the annotated query:")
    for line in plan.splitlines():
        print(f"  {line}")


if __name__ == "__main__":
    main()
