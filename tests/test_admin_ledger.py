"""The ledger admin: read-only rows, editable alt text, the total, retry and cancel."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

import imagegen
from imagegen.admin import GenerationAdmin
from imagegen.exceptions import ProviderError
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.money import format_cost
from imagegen.pipeline import rollups
from imagegen.providers.locmem import LocmemProvider
from tests.admin.support import total_of
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db


def test_alt_text_is_editable_and_costs_are_not(admin_client):
    generation = imagegen.generate(prompt="A lighthouse at dawn")
    image = generation.images.get()
    url = f"/admin/imagegen/generation/{generation.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    assert b'name="images-0-alt_text"' in page.content
    assert b'name="cost"' not in page.content and b'name="prompt"' not in page.content
    response = admin_client.post(
        url,
        {
            "images-TOTAL_FORMS": "1",
            "images-INITIAL_FORMS": "1",
            "images-MIN_NUM_FORMS": "0",
            "images-MAX_NUM_FORMS": "1000",
            "images-0-id": str(image.pk),
            "images-0-generation": str(generation.pk),
            "images-0-alt_text": "A white lighthouse on a rocky shore at sunrise",
            "cost": "999",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    image.refresh_from_db()
    generation.refresh_from_db()
    assert image.alt_text == "A white lighthouse on a rocky shore at sunrise"
    assert generation.cost == 0  # read-only: the posted value is ignored


def test_ledger_has_no_add_button(admin_client):
    page = admin_client.get("/admin/imagegen/generation/")
    assert page.status_code == 200
    assert b"/admin/imagegen/generation/add/" not in page.content
    assert Generation.objects.count() == 0


# The total --------------------------------------------------------------------------------------

CHANGELIST = "/admin/imagegen/generation/"


def make_row(prompt: str, status: str, cost: str | None, **fields) -> Generation:
    """Write a ledger row by hand and count it in the rollups, as the pipeline would."""
    generation = Generation.objects.create(
        provider="test", prompt=prompt, status=status, estimated_cost=Decimal("0.04"),
        cost=None if cost is None else Decimal(cost), **fields,
    )  # fmt: skip
    rollups.count_row(generation, images=0)
    return generation


@pytest.fixture
def ledger_rows(db):
    return [
        make_row("A lighthouse at dawn", Status.SUCCEEDED, "0.04"),
        make_row("A red bicycle", Status.SUCCEEDED, "0.0025"),
        make_row("A lighthouse at night", Status.FAILED, "0.01"),
        make_row("A lighthouse in fog", Status.QUEUED, None),
    ]


def test_the_total_covers_every_filtered_row_not_just_the_page(admin_client, ledger_rows,
                                                               monkeypatch):  # fmt: skip
    monkeypatch.setattr(GenerationAdmin, "list_per_page", 2)

    page = admin_client.get(CHANGELIST)

    assert total_of(page) == "Total cost of these 4 generations: $0.0525 (estimated: $0.16)"


def test_the_total_follows_the_filters_and_the_search(admin_client, ledger_rows):
    succeeded = admin_client.get(CHANGELIST, {"status__exact": "succeeded"})
    assert total_of(succeeded) == "Total cost of these 2 generations: $0.0425 (estimated: $0.08)"

    lighthouses = admin_client.get(CHANGELIST, {"q": "lighthouse"})
    assert total_of(lighthouses) == "Total cost of these 3 generations: $0.05 (estimated: $0.12)"

    bicycle = admin_client.get(CHANGELIST, {"q": "bicycle"})
    assert total_of(bicycle) == "Total cost of this generation: $0.0025 (estimated: $0.04)"

    nothing = admin_client.get(CHANGELIST, {"q": "zeppelin"})
    assert total_of(nothing) == "Total cost of these 0 generations: $0.00 (estimated: $0.00)"


def test_the_total_sums_each_currency_apart(admin_client, ledger_rows):
    make_row("Ein Leuchtturm", Status.SUCCEEDED, "1.5", currency="EUR")

    page = admin_client.get(CHANGELIST, {"status__exact": "succeeded"})

    assert total_of(page) == (
        "Total cost of these 3 generations: 1.50 EUR + $0.0425 (estimated: 0.04 EUR + $0.08)"
    )


def test_the_changelist_query_count_does_not_grow_with_rows(admin_client, admin_user):
    article_type = ContentType.objects.get_for_model(Article)

    def add_rows(n: int) -> None:
        for _ in range(n):
            article = Article.objects.create(title="Lighthouse")
            generation = make_row("A lighthouse", Status.SUCCEEDED, "0.04",
                                  content_type=article_type, object_id=str(article.pk),
                                  field_name="hero", created_by=admin_user)  # fmt: skip
            for selected in (False, True):
                GeneratedImage.objects.create(
                    generation=generation, file="imagegen/x.png", width=64, height=48,
                    mime_type="image/png", bytes=10, sha256="0" * 64, selected=selected,
                )  # fmt: skip

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            page = admin_client.get(CHANGELIST)
        assert page.status_code == 200
        return len(captured)

    add_rows(3)
    queries()  # warm caches (content types, the session)
    few = queries()
    add_rows(9)
    many = queries()

    assert many == few
    page = admin_client.get(CHANGELIST)
    assert page.content.count(b'class="imagegen-thumb"') == 12
    last = Article.objects.last()
    # The target is named by its str(), linked to its change page.
    assert f'<a href="/admin/testapp/article/{last.pk}/change/">Lighthouse</a>'.encode() in (
        page.content
    )


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (Decimal("0.04"), "USD", "$0.04"),
        (Decimal("0.0025"), "USD", "$0.0025"),
        (Decimal("0"), "USD", "$0.00"),
        (Decimal("1.234567"), "USD", "$1.2346"),
        (Decimal("0.040000"), "USD", "$0.04"),
        (Decimal("-0.5"), "USD", "-$0.50"),
        (None, "USD", "—"),
        (Decimal("1.23"), "EUR", "1.23 EUR"),
    ],
)
def test_format_cost(amount, currency, text):
    assert format_cost(amount, currency) == text


def test_the_cost_column_shows_money(admin_client, ledger_rows):
    page = admin_client.get(CHANGELIST, {"o": "-8"})  # the cost column, most expensive first
    html = page.content.decode()
    assert '<td class="field-cost_display">$0.0025</td>' in html
    assert '<td class="field-cost_display">—</td>' in html
    assert html.index("$0.04</td>") < html.index("$0.01</td>") < html.index("$0.0025</td>")


# Retry and cancel -------------------------------------------------------------------------------


def act(client, action: str, rows: list[Generation], **extra):
    return client.post(
        CHANGELIST,
        {"action": action, ACTION_CHECKBOX_NAME: [str(row.pk) for row in rows], "index": "0"},
        follow=True,
        **extra,
    )


def notices(page) -> list[tuple[str, str]]:
    return [(message.tags, str(message)) for message in page.context["messages"]]


def test_retry_action_runs_failed_rows_again_and_skips_the_rest(admin_client, locmem):
    LocmemProvider.script(ProviderError("The provider fell over."))
    failed = imagegen.generate(prompt="A lighthouse at dawn", provider="test")
    assert failed.status == Status.FAILED
    done = imagegen.generate(prompt="A red bicycle", provider="test")

    page = act(admin_client, "retry_generations", [failed, done])

    assert notices(page) == [
        ("success", "Retried 1 generation. Skipped 1 that was not failed or canceled.")
    ]
    failed.refresh_from_db()
    assert failed.status == Status.SUCCEEDED and failed.images.count() == 1
    assert "Retried by admin after: The provider fell over." in failed.warnings
    assert len(locmem) == 3  # the two first runs and one retry


def test_retry_action_says_when_a_row_failed_again(admin_client, locmem):
    LocmemProvider.script(ProviderError("Down."), ProviderError("Still down."))
    failed = imagegen.generate(prompt="A lighthouse at dawn", provider="test")

    page = act(admin_client, "retry_generations", [failed])

    assert notices(page) == [
        ("warning", "Retried 1 generation. 1 of them failed again; see its error.")
    ]


def test_retry_action_stops_at_the_budget(admin_client, locmem, settings):
    LocmemProvider.script(ProviderError("Down."))
    failed = imagegen.generate(prompt="A lighthouse at dawn", provider="test")
    make_row("Spent", Status.SUCCEEDED, "0.05")
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"SITE_MONTHLY": "0.05"}}

    page = act(admin_client, "retry_generations", [failed])

    [(level, text)] = notices(page)
    assert level == "error"
    assert text.startswith("Retried 0 generations. Stopped by the budget: This would cost $0.04")
    failed.refresh_from_db()
    assert failed.status == Status.FAILED and len(locmem) == 1


def test_cancel_action_cancels_only_queued_rows(admin_client):
    queued = make_row("A lighthouse", Status.QUEUED, None)
    running = make_row("A lighthouse", Status.RUNNING, None)
    done = make_row("A lighthouse", Status.SUCCEEDED, "0.04")

    page = act(admin_client, "cancel_generations", [queued, running, done])

    assert notices(page) == [("warning", "Canceled 1 generation. Skipped 2 that were not queued.")]
    statuses = [row.status for row in Generation.objects.order_by("pk")]
    assert statuses == [Status.CANCELED, Status.RUNNING, Status.SUCCEEDED]


# Permissions ------------------------------------------------------------------------------------


def staff(*codenames: str):
    user = get_user_model().objects.create_user("staff", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


def test_without_generate_image_the_actions_are_hidden_and_refused(client, locmem):
    LocmemProvider.script(ProviderError("Down."))
    failed = imagegen.generate(prompt="A lighthouse at dawn", provider="test")
    queued = make_row("A lighthouse", Status.QUEUED, None)
    client.force_login(staff("view_generation"))

    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert b"retry_generations" not in page.content
    assert b"cancel_generations" not in page.content
    assert "Total cost of these 2 generations" in total_of(page)

    act(client, "retry_generations", [failed])
    act(client, "cancel_generations", [queued])

    failed.refresh_from_db()
    queued.refresh_from_db()
    assert (failed.status, queued.status) == (Status.FAILED, Status.QUEUED)
    assert len(locmem) == 1


def test_with_generate_image_a_staff_user_can_retry_and_cancel(client, locmem):
    LocmemProvider.script(ProviderError("Down."))
    failed = imagegen.generate(prompt="A lighthouse at dawn", provider="test")
    queued = make_row("A lighthouse", Status.QUEUED, None)
    client.force_login(staff("view_generation", "generate_image"))

    page = client.get(CHANGELIST)
    assert b'<option value="retry_generations">' in page.content
    assert b'<option value="cancel_generations">' in page.content

    act(client, "retry_generations", [failed])
    act(client, "cancel_generations", [queued])

    failed.refresh_from_db()
    queued.refresh_from_db()
    assert (failed.status, queued.status) == (Status.SUCCEEDED, Status.CANCELED)
    assert "Retried by staff after: Down." in failed.warnings
