"""Does the ledger stay fast as it grows? Pages at 10k, 100k and 1M generation rows on PostgreSQL.

The script creates a private PostgreSQL database (``imagegen_bench_ledger``, dropped at the
end), migrates it, and loads the ledger with ``COPY`` in three steps: 10,000 rows, then 100,000,
then 1,000,000. The rows look like a site's year: 40 users, each using two of five presets (a
preset is a provider and a model), 20,000 articles as targets (one row in ten has none), one
image per succeeded row, statuses 90 % succeeded, 6 % failed, 2 % filtered, 1 % canceled, 1 %
queued, created over the last 365 days. After each step the rollups are rebuilt (what the
pipeline keeps up to date row by row) and the tables are analysed, then each page is timed:

* the ledger changelist (``GenerationAdmin``): default, filtered by provider, by a month of the
  date navigation, and by status (which the rollup does not answer: read from the ledger);
* ``imagegen_costs --by provider``, ``--by month`` and ``--by object`` (which reads the ledger);
* the spend dashboard (every panel);
* the article changelist sorted by its "AI spend" column.

Each is run side by side with its baseline, the same page as it was before the rollups: the
admin's own date hierarchy, ``DISTINCT`` filter lists, ``COUNT(*)`` and ``SUM`` over the
ledger; the costs report as one aggregate over the ledger with a subquery per row for images;
the dashboard's numbers aggregated from the ledger; "AI spend" as a correlated ``SUM`` over the
ledger. Each is served ``ROUNDS`` times, interleaved, after a warm-up, and the medians and
their ratios are printed, with the number of queries.

Goal (issue 13): at 1M rows the ledger (default and filtered), ``imagegen_costs`` and the
dashboard each answer in at most 300 ms, and "AI spend" sorting in at most 500 ms.

Environment: ``IMAGEGEN_PG_HOST``/``PORT``/``USER`` (default 127.0.0.1:5432, postgres),
``IMAGEGEN_BENCH_SIZES`` (default ``10000,100000,1000000``), ``IMAGEGEN_BENCH_ROUNDS`` (5).
Without PostgreSQL the script says so and stops.
"""

from __future__ import annotations

import datetime
import gc
import io
import os
import random
import statistics
import sys
import time
from decimal import Decimal

from django_setup import setup

DB_NAME = "imagegen_bench_ledger"
HOST = os.environ.get("IMAGEGEN_PG_HOST", "127.0.0.1")
PORT = os.environ.get("IMAGEGEN_PG_PORT", "5432")
USER = os.environ.get("IMAGEGEN_PG_USER", "postgres")
SIZES = [int(n) for n in os.environ.get("IMAGEGEN_BENCH_SIZES", "10000,100000,1000000").split(",")]
ROUNDS = int(os.environ.get("IMAGEGEN_BENCH_ROUNDS", "5"))
USERS = 40
ARTICLES = 20_000
#: preset -> (provider, model, price of one image)
PRESETS = {
    "hero": ("openai", "gpt-image-1", "0.04"),
    "thumbnail": ("openai", "gpt-image-1-mini", "0.011"),
    "product": ("flux", "flux-schnell", "0.003"),
    "illustration": ("replicate", "sdxl", "0.0055"),
    "social": ("bfl", "flux-pro-1.1", "0.04"),
}
STATUSES = ["succeeded"] * 90 + ["failed"] * 6 + ["filtered"] * 2 + ["canceled", "queued"]

#: The ROOT_URLCONF: this module, once main() has filled it.
urlpatterns: list = []


def admin_connection(dbname: str = "postgres"):
    import psycopg

    return psycopg.connect(host=HOST, port=PORT, user=USER, dbname=dbname, autocommit=True)


def create_database() -> bool:
    """Create the private database afresh; return False if PostgreSQL is not there."""
    try:
        with admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}"')
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    except Exception as error:  # noqa: BLE001 (any failure to connect means: no PostgreSQL)
        print(f"ledger_scale: PostgreSQL at {HOST}:{PORT} is not available ({error}); skipped.")
        return False
    return True


def drop_database() -> None:
    from django.db import connections

    connections.close_all()
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


# --- the data ------------------------------------------------------------------------------------


def make_people() -> tuple[list[int], list[int], int]:
    """Create the users and the articles; return their ids and the articles' content type."""
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType

    from tests.testapp.models import Article

    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"user{n}") for n in range(USERS)
    )
    Article.objects.bulk_create(
        (Article(title=f"Article {n}") for n in range(ARTICLES)), batch_size=5000
    )
    articles = list(Article.objects.values_list("pk", flat=True))
    return [u.pk for u in users], articles, ContentType.objects.get_for_model(Article).pk


GENERATION_COLUMNS = (
    "id", "content_type_id", "object_id", "field_name", "preset", "provider", "backend", "model",
    "prompt", "negative_prompt", "params", "count", "status", "estimated_cost", "cost",
    "unconfirmed_cost", "currency", "usage", "provider_job_id", "error_code", "error_message",
    "warnings", "attempts", "timings", "request_hash", "reservation", "created_by_id",
    "created_at", "started_at", "finished_at", "updated_at",
)  # fmt: skip
IMAGE_COLUMNS = (
    "generation_id", "file", "width", "height", "mime_type", "bytes", "sha256", "revised_prompt",
    "alt_text", "lqip", "dominant_color", "thumbhash", "derivatives", "selected", "created_at",
)  # fmt: skip


def load(first_id: int, count: int, users: list[int], articles: list[int], ct: int) -> None:
    """COPY ``count`` generations (ids from ``first_id``) and their images into the ledger."""
    from django.db import connection

    rng = random.Random(first_id)
    now = datetime.datetime.now(datetime.UTC)
    names = list(PRESETS)
    rows, images = io.StringIO(), io.StringIO()
    for pk in range(first_id, first_id + count):
        user = rng.choice(users)
        preset = names[(user + rng.randint(0, 1)) % len(names)]
        provider, model, price = PRESETS[preset]
        status = rng.choice(STATUSES)
        created = now - datetime.timedelta(seconds=rng.randint(0, 365 * 86400))
        estimate = Decimal(price)
        cost = "\\N"
        if status == "succeeded":
            cost = price
        unconfirmed = price if status == "failed" and rng.random() < 0.2 else "0"
        target = rng.random() < 0.9
        stamp = created.isoformat()
        finished = stamp if status not in ("queued",) else "\\N"
        rows.write("\t".join((
            str(pk), str(ct) if target else "\\N", str(rng.choice(articles)) if target else "",
            "hero" if target else "", preset, provider, "bench.Provider", model,
            f"A picture {pk}", "", "{}", "1", status, str(estimate), cost, unconfirmed, "USD",
            "{}", "", "" if status == "succeeded" else status, "", "[]", "1", "{}", "", "{}",
            str(user), stamp, stamp, finished, stamp,
        )) + "\n")  # fmt: skip
        if status == "succeeded":
            images.write("\t".join((
                str(pk), f"imagegen/{pk:064x}.png", "1024", "1024", "image/png", "123456",
                f"{pk:064x}", "", "", "", "", "", "[]", "t" if rng.random() < 0.5 else "f", stamp,
            )) + "\n")  # fmt: skip
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor, for COPY
        for table, columns, data in (
            ("imagegen_generation", GENERATION_COLUMNS, rows),
            ("imagegen_generatedimage", IMAGE_COLUMNS, images),
        ):
            with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                copy.write(data.getvalue())
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('imagegen_generation', 'id'), "
            "(SELECT max(id) FROM imagegen_generation))"
        )


def settle() -> None:
    """Rebuild the rollups (as the pipeline would have kept them) and analyse every table."""
    from django.db import connection

    from imagegen.pipeline import rollups

    rollups.rebuild()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# --- the baselines ---------------------------------------------------------------------------


def make_sites() -> None:
    """Fill ``urlpatterns``: the default admin, and a copy with the baselines' admins."""
    from django.contrib import admin
    from django.core.paginator import Paginator
    from django.urls import path

    from imagegen.admin.ledger import GenerationAdmin
    from imagegen.admin.totals import sums_of
    from imagegen.models import Generation
    from tests.testapp.admin import ArticleAdmin
    from tests.testapp.models import Article

    class OldLedgerAdmin(GenerationAdmin):
        """The ledger as it was: the admin's own filters, date hierarchy and counts."""

        list_filter = ("status", "provider", "model", "preset", "created_at")
        date_hierarchy = "created_at"
        show_full_result_count = True
        change_list_template = "admin/change_list.html"

        def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty=True):
            return Paginator(queryset, per_page, orphans, allow_empty)

        def changelist_view(self, request, extra_context=None):
            response = admin.ModelAdmin.changelist_view(self, request, extra_context)
            # The total as it was computed: a SUM over the filtered ledger.
            response.context_data["ledger_total"] = sums_of(
                None, response.context_data["cl"].queryset
            )
            return response

    class OldArticleAdmin(ArticleAdmin):
        """ "AI spend" as it was: a correlated SUM over the ledger for every article."""

        def get_queryset(self, request):
            queryset = admin.ModelAdmin.get_queryset(self, request)
            legacy = Generation.objects.filter(pk__gt=0).cost_subquery(Article)
            return queryset.annotate(imagegen_spend_total=legacy)

    baseline = admin.AdminSite(name="baseline")
    for model, model_admin in admin.site._registry.items():
        replacement = {Generation: OldLedgerAdmin, Article: OldArticleAdmin}.get(model)
        baseline.register(model, replacement or type(model_admin))
    urlpatterns[:] = [path("admin/", admin.site.urls), path("baseline/", baseline.urls)]


def old_costs(by: str) -> None:
    """The costs report as it was: one aggregate over the ledger, a subquery per row for images."""
    from django.db.models import Count, IntegerField, OuterRef, Subquery, Sum, Value
    from django.db.models.functions import Coalesce

    from imagegen.management.commands.imagegen_costs import group_keys
    from imagegen.models import GeneratedImage, Generation

    images = (
        GeneratedImage.objects.filter(generation=OuterRef("pk"))
        .order_by()
        .values("generation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    annotations, fields = group_keys(by)
    zero = Value(Decimal(0))
    list(
        Generation.objects.annotate(**annotations)
        .values(*fields)
        .annotate(
            generations=Count("pk"),
            images=Sum(Coalesce(Subquery(images, output_field=IntegerField()), 0)),
            estimated=Coalesce(Sum("estimated_cost"), zero),
            actual=Coalesce(Sum("cost"), zero),
        )
        .order_by(*fields)
    )


def new_costs(by: str) -> None:
    from imagegen.management.commands.imagegen_costs import Command

    Command().report(by, None, None, [])


def old_dashboard() -> None:
    """The dashboard's numbers (30 days) aggregated from the ledger instead of the rollups."""
    from django.db.models import Count, Q, Sum
    from django.db.models.functions import TruncDate

    from imagegen.models import Generation

    since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=30)
    recent = Generation.objects.filter(created_at__gte=since).order_by()
    list(recent.annotate(day=TruncDate("created_at")).values("day", "provider", "currency")
         .annotate(cost=Sum("cost"), unconfirmed=Sum("unconfirmed_cost")))  # fmt: skip
    list(recent.values("provider", "model", "currency").annotate(
        n=Count("pk"), est=Sum("estimated_cost"), cost=Sum("cost")))  # fmt: skip
    list(Generation.objects.exclude(content_type=None).order_by().values(
        "content_type", "object_id").annotate(cost=Sum("cost")).order_by("-cost")[:10])  # fmt: skip
    list(recent.values("provider").annotate(
        n=Count("pk"), failed=Count("pk", filter=Q(status="failed")),
        filtered=Count("pk", filter=Q(status="filtered"))))  # fmt: skip


# --- timing --------------------------------------------------------------------------------------


def main() -> None:
    if not create_database():
        return
    database = {"ENGINE": "django.db.backends.postgresql", "NAME": DB_NAME, "HOST": HOST,
                "PORT": PORT, "USER": USER}  # fmt: skip
    try:
        setup(admin_urlconf=__name__, database=database, BUDGETS={"SITE_MONTHLY": "5000"})
        run()
    finally:
        drop_database()


def run() -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    make_sites()
    users, articles, ct = make_people()
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("bench", "b@example.com", "x"))
    today = datetime.date.today()
    month = {"created_at__year": today.year, "created_at__month": today.month}
    month_qs = f"created_at__year={today.year}&created_at__month={today.month}"

    def page(path: str):
        def get() -> None:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)

        return get

    checks = {
        "ledger": (page("/admin/imagegen/generation/"), page("/baseline/imagegen/generation/")),
        "ledger ?provider": (page("/admin/imagegen/generation/?provider=openai"),
                             page("/baseline/imagegen/generation/?provider=openai")),
        "ledger ?month": (page(f"/admin/imagegen/generation/?{month_qs}"),
                          page(f"/baseline/imagegen/generation/?{month_qs}")),
        "ledger ?status": (page("/admin/imagegen/generation/?status__exact=failed"),
                           page("/baseline/imagegen/generation/?status__exact=failed")),
        "imagegen_costs --by provider": (lambda: new_costs("provider"),
                                         lambda: old_costs("provider")),
        "imagegen_costs --by month": (lambda: new_costs("month"), lambda: old_costs("month")),
        "imagegen_costs --by object": (lambda: new_costs("object"), lambda: old_costs("object")),
        "dashboard": (page("/admin/imagegen/generation/spend/"), old_dashboard),
        "articles by AI spend": (page("/admin/testapp/article/?o=-2"),
                                 page("/baseline/testapp/article/?o=-2")),
    }  # fmt: skip
    del month
    # "--by object" reads the ledger (the rollups have no per-field totals): no goal, shown so
    # that its growth is seen.
    goals = {"articles by AI spend": 500, "imagegen_costs --by object": None}
    loaded = 0
    results: list[tuple[int, str, float, float, int, int]] = []
    print(f"ledger_scale: PostgreSQL {connection.pg_version // 10000}, sizes {SIZES}, "
          f"{ROUNDS} rounds, medians in ms")  # fmt: skip
    for size in SIZES:
        started = time.perf_counter()
        step = 100_000
        while loaded < size:
            n = min(step, size - loaded)
            load(loaded + 1, n, users, articles, ct)
            loaded += n
        settle()
        print(f"\n{size:>9,} rows loaded and rolled up in {time.perf_counter() - started:.1f} s")
        print(f"  {'page':<30} {'new':>9} {'baseline':>9} {'ratio':>7} {'queries':>9}  goal")
        for name, (new, old) in checks.items():
            new(), old()  # warm up (templates, caches, the plans)
            samples: dict[str, list[float]] = {"new": [], "old": []}
            queries: dict[str, int] = {}
            for _round in range(ROUNDS):
                for label, call in (("new", new), ("old", old)):
                    gc.collect()
                    with CaptureQueriesContext(connection) as captured:
                        t0 = time.perf_counter()
                        call()
                        samples[label].append((time.perf_counter() - t0) * 1000)
                    queries[label] = len(captured)
            new_ms, old_ms = (statistics.median(samples[k]) for k in ("new", "old"))
            goal = goals.get(name, 300)
            verdict = ""  # the goals are for a million rows
            if goal is not None and size >= 1_000_000:
                verdict = "ok" if new_ms <= goal else "OVER"
            results.append((size, name, new_ms, old_ms, queries["new"], queries["old"]))
            print(f"  {name:<30} {new_ms:>9.1f} {old_ms:>9.1f} {old_ms / new_ms:>6.1f}x "
                  f"{queries['new']:>4}/{queries['old']:<4}  "
                  f"{f'<= {goal}' if goal else '-'} {verdict}")  # fmt: skip
            sys.stdout.flush()
    print("\nnew = with the rollups; baseline = the same page before them; ratio = baseline/new;")
    print("queries = new/baseline (the dashboard's baseline is its aggregates alone, no page).")


if __name__ == "__main__":
    main()
