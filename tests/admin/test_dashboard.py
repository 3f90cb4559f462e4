"""The spend dashboard: every panel, its chart, its table and its CSV, and who may see it."""

from __future__ import annotations

import csv
import datetime
import io
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from imagegen.models import BudgetUse, Generation, Status
from imagegen.pipeline import rollups
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db

URL = "/admin/imagegen/generation/spend/"
TODAY = timezone.localdate()


def row(*, provider="openai", model="gpt-image-2", preset="hero", cost="0.04", days_ago=0,
        status=Status.SUCCEEDED, target=None, user=None, unconfirmed="0", images=1):  # fmt: skip
    """Write a ledger row by hand and count it in the rollups."""
    from django.contrib.contenttypes.models import ContentType

    created = timezone.now() - datetime.timedelta(days=days_ago)
    generation = Generation.objects.create(
        provider=provider,
        model=model,
        preset=preset,
        prompt="A lighthouse",
        status=status,
        estimated_cost=Decimal("0.04"),
        cost=None if cost is None else Decimal(cost),
        unconfirmed_cost=Decimal(unconfirmed),
        created_at=created,
        created_by=user,
        content_type=ContentType.objects.get_for_model(target) if target else None,
        object_id=str(target.pk) if target else "",
    )
    rollups.count_row(generation, images=images if status == Status.SUCCEEDED else 0)
    return generation


@pytest.fixture
def ledger(db):
    editor = get_user_model().objects.create_user("editor")
    harbour = Article.objects.create(title="Harbour at night")
    lighthouse = Article.objects.create(title="Lighthouse")
    row(target=harbour, cost="0.12", user=editor)
    row(target=harbour, cost="0.04", days_ago=2)
    row(target=lighthouse, provider="flux", model="flux-schnell", preset="product",
        cost="0.003")  # fmt: skip
    row(provider="flux", model="flux-schnell", cost=None, status=Status.FAILED, days_ago=1)
    row(provider="flux", model="flux-schnell", cost=None, status=Status.FILTERED)
    row(cost="0.01", unconfirmed="0.04", target=lighthouse)
    return {"editor": editor, "harbour": harbour, "lighthouse": lighthouse}


def section(page, slug: str) -> str:
    html = page.content.decode()
    start = html.index(f'id="imagegen-{slug}"')
    return html[start : html.index("</section>", start)]


def export(client, slug: str, **params) -> list[dict[str, str]]:
    response = client.get(URL, {"export": slug, **params})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f"imagegen-{slug}-" in response["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_the_dashboard_has_every_panel_with_an_accessible_chart_and_a_table(admin_client,
                                                                            ledger):  # fmt: skip
    page = admin_client.get(URL)
    assert page.status_code == 200
    for slug in ("spend", "models", "objects", "failures"):
        html = section(page, slug)
        assert re.search(r'<svg class="imagegen-chart"[^>]*role="img"[^>]*aria-labelledby=', html)
        assert "<title id=" in html and "<desc id=" in html
        assert "<table>" in html
        assert f"export={slug}" in html
    assert "script" not in section(page, "spend")  # drawn on the server, no JavaScript


def test_spend_over_time_stacks_by_provider_and_shows_unconfirmed_apart(admin_client, ledger):
    html = section(admin_client.get(URL), "spend")
    day = TODAY.isoformat()
    assert f"<title>{day}, openai: $0.13</title>" in html  # 0.12 + 0.01 confirmed today
    assert f"<title>{day}, flux: $0.003</title>" in html
    assert f"<title>{day}, unconfirmed: $0.04</title>" in html

    rows = export(admin_client, "spend")
    today = {r["provider"]: r for r in rows if r["day"] == day}
    assert today["openai"] == {"day": day, "provider": "openai", "currency": "USD",
                               "cost": "0.130000", "unconfirmed": "0.040000"}  # fmt: skip
    assert today["flux"]["cost"] == "0.003000"


@pytest.mark.parametrize(("by", "key", "names"), [
    ("model", "model", {"gpt-image-2", "flux-schnell"}),
    ("preset", "preset", {"hero", "product"}),
    ("user", "user", {"editor", "(no user)"}),
])  # fmt: skip
def test_spend_can_be_stacked_by_model_preset_or_user(admin_client, ledger, by, key, names):
    rows = export(admin_client, "spend", by=by)
    assert {r[key] for r in rows} == names
    assert f"Spend over time by {by}" in section(admin_client.get(URL, {"by": by}), "spend")


def test_spend_by_month_and_the_date_range(admin_client, ledger):
    rows = export(admin_client, "spend", period="month")
    assert {r["month"] for r in rows} <= {
        TODAY.strftime("%Y-%m"),
        (TODAY - datetime.timedelta(days=2)).strftime("%Y-%m"),
    }
    assert sum(Decimal(r["cost"]) for r in rows) == Decimal("0.173")
    # Only today: the row of two days ago is left out.
    rows = export(admin_client, "spend", start=TODAY.isoformat(), end=TODAY.isoformat())
    assert sum(Decimal(r["cost"]) for r in rows) == Decimal("0.133")


def test_estimate_against_actual_per_model(admin_client, ledger):
    rows = {(r["provider"], r["model"]): r for r in export(admin_client, "models")}
    assert rows[("openai", "gpt-image-2")] == {
        "provider": "openai", "model": "gpt-image-2", "currency": "USD", "generations": "3",
        "estimated": "0.120000", "cost": "0.170000", "unconfirmed": "0.040000",
    }  # fmt: skip
    assert rows[("flux", "flux-schnell")]["cost"] == "0.003000"
    html = section(admin_client.get(URL), "models")
    assert '<td class="imagegen-num">142%</td>' in html  # 0.17 of 0.12


def test_top_objects_are_named_and_linked(admin_client, ledger):
    html = section(admin_client.get(URL), "objects")
    harbour, lighthouse = ledger["harbour"], ledger["lighthouse"]
    assert f'<a href="/admin/testapp/article/{harbour.pk}/change/">Harbour at night</a>' in html
    assert html.index("Harbour at night") < html.index("Lighthouse")
    rows = export(admin_client, "objects")
    assert [r["object"] for r in rows] == ["Harbour at night", "Lighthouse"]
    assert rows[1] == {"object": "Lighthouse", "type": "testapp.article",
                       "object_id": str(lighthouse.pk), "generations": "2", "cost": "0.013000",
                       "unconfirmed": "0.040000"}  # fmt: skip


def test_failures_and_filtered_by_provider(admin_client, ledger):
    rows = {r["provider"]: r for r in export(admin_client, "failures")}
    assert rows["flux"] == {"provider": "flux", "generations": "3", "images": "1", "failed": "1",
                            "filtered": "1", "canceled": "0"}  # fmt: skip
    assert rows["openai"]["failed"] == "0"
    assert '<td class="imagegen-num">66.7%</td>' in section(admin_client.get(URL), "failures")


def test_each_cap_is_shown_against_its_limit(admin_client, ledger, settings):
    settings.IMAGEGEN = {"BUDGETS": {"SITE_MONTHLY": "100", "USER_MONTHLY": "10"}}
    month = TODAY.replace(day=1)
    editor = ledger["editor"]
    BudgetUse.objects.create(cap="site::month", period_start=month, spent=Decimal("12.5"),
                             unconfirmed=Decimal("0.5"), reserved=Decimal("2"))  # fmt: skip
    BudgetUse.objects.create(cap=f"user:{editor.pk}:month", period_start=month,
                             spent=Decimal("9"))  # fmt: skip
    # Last month's row is not this period's.
    BudgetUse.objects.create(cap="site::month", period_start=month - datetime.timedelta(days=40),
                             spent=Decimal("99"))  # fmt: skip

    html = section(admin_client.get(URL), "caps")
    assert "site, per month" in html and "user editor, per month" in html
    assert '<td class="imagegen-num">15%</td>' in html  # (12.5 + 0.5 + 2) of 100
    assert '<td class="imagegen-num">90%</td>' in html
    assert 'class="imagegen-chart-limit"' in html
    rows = export(admin_client, "caps")
    assert rows[0] == {"cap": "site::month", "period_start": month.isoformat(),
                       "spent": "12.500000", "unconfirmed": "0.500000", "reserved": "2.000000",
                       "limit": "100.000000"}  # fmt: skip
    assert rows[1]["cap"] == f"user:{editor.pk}:month"


def test_without_caps_the_panel_says_so(admin_client, ledger):
    assert "No budget caps are set" in section(admin_client.get(URL), "caps")


def test_the_dashboard_makes_the_same_number_of_queries_for_more_rows(admin_client, ledger):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(URL, {"by": "user"}).status_code == 200
        assert not any('"imagegen_generation"' in q["sql"] for q in captured.captured_queries)
        return len(captured)

    queries()
    few = queries()
    for n in range(30):
        article = Article.objects.create(title=f"Article {n}")
        row(target=article, provider=f"p{n % 4}", days_ago=n % 10, user=ledger["editor"])
    assert queries() == few


def test_only_users_who_may_see_the_ledger_see_the_dashboard(client, ledger):
    user = get_user_model().objects.create_user("staff", is_staff=True)
    client.force_login(user)
    assert client.get(URL).status_code == 403
    assert client.get(URL, {"export": "spend"}).status_code == 403
    assert b"AI spend" not in client.get("/admin/").content

    user.user_permissions.add(Permission.objects.get(codename="view_generation"))
    assert client.get(URL).status_code == 200
    assert export(client, "failures")
    app_index = client.get("/admin/imagegen/").content.decode()
    assert f'<a href="{URL}">AI spend</a>' in app_index
    ledger_page = client.get("/admin/imagegen/generation/").content.decode()
    assert f'<a href="{URL}">AI spend</a>' in ledger_page

    client.logout()
    assert client.get(URL).status_code == 302  # to the login page


def test_bad_options_fall_back_to_the_defaults(admin_client, ledger):
    page = admin_client.get(URL, {"start": "yesterday", "end": "2025-13-01", "by": "colour",
                                  "period": "week"})  # fmt: skip
    assert page.status_code == 200
    assert 'name="by"' in page.content.decode() and "by provider" in section(page, "spend")
