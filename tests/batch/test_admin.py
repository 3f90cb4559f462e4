"""The admin side of batch runs: "Now" or "Within 24 hours" on the confirmation page, the
batches on the progress page and in their own list, and cancelling them."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from imagegen import services
from imagegen.models import BatchStatus, Generation, ProviderBatch, Status
from tests.admin.support import EDITOR_PERMS, act, confirm, make_user, text_of
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db

BATCHES = "/admin/imagegen/providerbatch/"


@pytest.fixture
def articles(db):
    return [Article.objects.create(title=t) for t in ("Lighthouse", "Harbour", "Bakery")]


def money(text: str, label: str) -> Decimal:
    found = re.search(re.escape(label) + r"\s*\$([0-9.,]+)", text)
    assert found, f"{label!r} not in the page"
    return Decimal(found.group(1).replace(",", ""))


def test_the_confirmation_page_offers_now_and_within_24_hours_with_both_totals(
    admin_client, fake, articles
):
    text = text_of(act(admin_client, [a.pk for a in articles]))
    now = money(text, "Now:")
    later = money(text, "Within 24 hours, about half the price:")
    # Half, to the cent the page rounds to.
    assert abs(later * 2 - now) <= Decimal("0.02")
    assert later < now


def test_a_provider_without_a_batch_api_offers_only_now(admin_client, articles):
    text = text_of(act(admin_client, [a.pk for a in articles]))  # the placeholder default
    assert "Within 24 hours, about half the price" in text
    assert "Not available: the chosen provider or model has no batch API." in text


def test_within_24_hours_submits_a_batch_and_the_progress_page_shows_it(
    admin_client, fake, articles, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(admin_client, articles, "generate", imagegen_mode="batch")
    assert response.status_code == 302
    batch = ProviderBatch.objects.get()
    assert batch.batch_id in fake.batches and batch.total == 3
    assert set(Generation.objects.values_list("status", flat=True)) == {Status.RUNNING}

    page = admin_client.get(response["Location"])
    text = text_of(page)
    assert "Provider batches (within 24 hours, at the batch price)" in text
    assert "openai: gpt-image-2" in text
    assert "Validating" in text
    assert "Cancel batch" in text

    cancelled = admin_client.post(response["Location"], {"imagegen_cancel_batch": batch.pk})
    assert cancelled.status_code == 302
    assert fake.batches[batch.batch_id]["status"] == "cancelling"
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLING


def test_the_batch_list_shows_each_batch_and_cancels_it(
    admin_client, fake, articles, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        confirm(admin_client, articles, "generate", imagegen_mode="batch")
    batch = ProviderBatch.objects.get()
    text = text_of(admin_client.get(BATCHES))
    assert "openai" in text and "Validating" in text
    admin_client.post(BATCHES, {"action": "cancel_batches", ACTION_CHECKBOX_NAME: [batch.pk]})
    assert fake.batches[batch.batch_id]["status"] == "cancelling"


def test_cancelling_a_batch_needs_the_generate_permission(
    client, fake, articles, django_capture_on_commit_callbacks
):
    viewer = make_user("viewer", "view_providerbatch")
    with django_capture_on_commit_callbacks(execute=True):
        services.generate_many(articles, "hero", mode="batch")
    batch = ProviderBatch.objects.get()
    client.force_login(viewer)
    page = client.get(BATCHES)
    assert page.status_code == 200
    assert "cancel_batches" not in page.content.decode()
    client.post(BATCHES, {"action": "cancel_batches", ACTION_CHECKBOX_NAME: [batch.pk]})
    assert fake.batches[batch.batch_id]["status"] == "validating"
    editor = make_user("editor", *EDITOR_PERMS, "view_providerbatch")
    client.force_login(editor)
    assert "cancel_batches" in client.get(BATCHES).content.decode()
