"""The spend dashboard and the ledger in a browser: they fit the page, follow the dark theme, and
make the docs' screenshots (spend-*.png, ledger*.png)."""

from __future__ import annotations

import datetime
import random
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

import imagegen
from imagegen.models import BudgetUse, GeneratedImage, Generation, Status
from imagegen.pipeline import rollups
from tests.browser.conftest import TIMEOUT_MS, VIEWPORT, login, make_user, screenshot
from tests.browser.test_editor_flows import element_screenshot, page_errors, watch  # noqa: F401
from tests.testapp.models import Article

try:
    from playwright.sync_api import expect
except ImportError:  # the ``chromium`` fixture skips these tests (or fails them, if required)
    expect = None

DASHBOARD = "/admin/imagegen/generation/spend/"
LEDGER = "/admin/imagegen/generation/"
#: provider, model, preset, price of one image
OFFERS = [
    ("openai", "gpt-image-1", "hero", "0.04"),
    ("openai", "gpt-image-1-mini", "thumbnail", "0.011"),
    ("flux", "flux-schnell", "product", "0.003"),
    ("replicate", "sdxl", "illustration", "0.0055"),
]


def seed_ledger(users) -> list[Article]:
    """Write 30 days of a plausible ledger (by hand, counted in the rollups) for the pictures."""
    rng = random.Random(13)
    articles = [Article.objects.create(title=t) for t in (
        "A lighthouse at dawn", "Autumn in the old town", "The night market",
        "Harbour in the rain", "Spring in the botanical garden", "The last tram",
    )]  # fmt: skip
    article_type = ContentType.objects.get_for_model(Article)
    now = timezone.now()
    for days_ago in range(30):
        for _ in range(rng.randint(3, 9)):
            provider, model, preset, price = rng.choice(OFFERS)
            count = rng.choice((1, 1, 2, 4))
            status = rng.choices(
                [Status.SUCCEEDED, Status.FAILED, Status.FILTERED], weights=[90, 7, 3]
            )[0]
            cost = Decimal(price) * count if status == Status.SUCCEEDED else None
            article = rng.choice(articles)
            generation = Generation.objects.create(
                provider=provider, model=model, preset=preset, prompt=article.title,
                count=count, status=status, estimated_cost=Decimal(price) * count,
                cost=cost, created_by=rng.choice(users),
                unconfirmed_cost=Decimal(price) if rng.random() < 0.04 else Decimal(0),
                content_type=article_type, object_id=str(article.pk), field_name="hero",
                created_at=now - datetime.timedelta(days=days_ago, hours=rng.randint(0, 20)),
            )  # fmt: skip
            rollups.count_row(generation, images=count if cost else 0)
    month = timezone.localdate().replace(day=1)
    spent = Generation.objects.filter(created_at__date__gte=month).total_cost()
    BudgetUse.objects.create(cap="site::month", period_start=month, spent=spent,
                             unconfirmed=Decimal("0.08"), reserved=Decimal("0.12"))  # fmt: skip
    for user in users:
        mine = Generation.objects.filter(created_at__date__gte=month, created_by=user)
        BudgetUse.objects.create(cap=f"user:{user.pk}:month", period_start=month,
                                 spent=mine.total_cost())  # fmt: skip
    return articles


@pytest.fixture
def budgets(settings):
    settings.IMAGEGEN = {**getattr(settings, "IMAGEGEN", {}),
                         "BUDGETS": {"SITE_MONTHLY": "25", "USER_MONTHLY": "10"}}  # fmt: skip


def fits(page) -> bool:
    """Return whether the page has no horizontal scroll bar."""
    return page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")


def test_the_dashboard(page, live_server, page_errors, budgets):  # noqa: F811
    admin = make_user("admin", superuser=True)
    users = [admin, make_user("editor"), make_user("marketing")]
    seed_ledger(users)
    login(page, live_server, admin, next_url="/admin/imagegen/")
    page.get_by_role("link", name="AI spend").click()
    page.wait_for_url(f"**{DASHBOARD}")
    expect(page.get_by_role("img", name="Spend over time by provider", exact=True)).to_be_visible()
    assert fits(page)
    screenshot(page, "spend-dashboard")
    for slug in ("models", "objects", "caps", "failures"):
        element_screenshot(page.locator(f"#imagegen-{slug}"), f"spend-{slug}")

    page.select_option("select[name=by]", "user")
    page.select_option("select[name=period]", "day")
    page.get_by_role("button", name="Show").click()
    chart = page.get_by_role("img", name="Spend over time by user", exact=True)
    expect(chart).to_be_visible()
    element_screenshot(page.locator("#imagegen-spend"), "spend-by-user")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download “Top objects by spend” as CSV").click()
    assert download.value.suggested_filename.startswith("imagegen-objects-")


def test_the_dashboard_follows_the_dark_theme(chromium, live_server, external_requests, budgets):
    admin = make_user("admin", superuser=True)
    seed_ledger([admin])
    context = chromium.new_context(viewport=VIEWPORT, locale="en-US", timezone_id="UTC",
                                   color_scheme="dark", base_url=live_server.url)  # fmt: skip
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    try:
        page = context.new_page()
        watch(page, errors)
        login(page, live_server, admin, next_url=DASHBOARD)
        page.goto(f"{live_server.url}{DASHBOARD}")
        text = page.locator("#imagegen-spend .imagegen-chart-text").first
        fill = text.evaluate("e => getComputedStyle(e).fill")
        body = page.evaluate("() => getComputedStyle(document.body).color")
        assert fill == body  # the admin's --body-fg, light on the dark theme
        screenshot(page, "spend-dashboard-dark")
    finally:
        context.close()
    assert errors == []


def test_the_ledger_and_a_generation(page, live_server, page_errors):  # noqa: F811
    admin = make_user("admin", superuser=True)
    articles = seed_ledger([admin, make_user("editor")])
    prompt = "A white lighthouse on a rocky shore at dawn"
    generation = imagegen.generate(target=articles[0], field="hero", user=admin, count=3,
                                   prompt=prompt)  # fmt: skip
    GeneratedImage.objects.filter(pk=generation.images.first().pk).update(selected=True)
    login(page, live_server, admin, next_url=LEDGER)
    expect(page.get_by_role("link", name="A lighthouse at dawn").first).to_be_visible()
    assert fits(page)
    page.locator("#toggle-nav-sidebar").click()  # room for every column in the picture
    page.evaluate("() => scrollTo(0, 0)")
    screenshot(page, "ledger")

    page.goto(f"{live_server.url}{LEDGER}{generation.pk}/change/")
    assert fits(page)  # the images table fits the page
    images = page.locator(".imagegen-images")
    assert images.locator(".imagegen-selected").all_inner_texts() == ["Selected"]
    element_screenshot(images, "ledger-images")
