"""The page listing's "Generate images…": confirmation page with the estimate, then a batch."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.urls import reverse
from wagtail.images import get_image_model
from wagtail_demo.models import ArticlePage

from imagegen.models import Generation

pytestmark = pytest.mark.django_db


def action_url(*pages) -> str:
    base = reverse("wagtail_bulk_action", args=["wagtailcore", "page", "imagegen_generate"])
    return base + "?" + urlencode([("id", page.pk) for page in pages] + [("next", "/cms/")])


@pytest.fixture
def articles(home, article):
    second = home.add_child(instance=ArticlePage(title="A red kite", summary=""))
    second.save_revision().publish()
    return [article, second]


def test_the_action_is_offered_on_the_page_listing(editor_client, home, articles):
    html = editor_client.get(reverse("wagtailadmin_explore", args=[home.pk])).content.decode()
    assert "Generate images…" in html
    assert "imagegen_generate" in html


def test_confirmation_lists_pages_prompts_and_the_estimate(editor_client, home, articles):
    response = editor_client.get(action_url(*articles, home))
    html = response.content.decode()
    assert response.status_code == 200
    assert "A lighthouse at dawn: waves on rocks" in html
    assert "A red kite" in html
    assert "This page type has no generated image." in html  # the home page
    assert "Estimated total" in html
    assert "data-imagegen-total" in html
    assert 'name="preset"' in html and 'name="count"' in html
    assert Generation.objects.count() == 0


def test_update_estimate_renders_again_and_spends_nothing(editor_client, articles):
    response = editor_client.post(
        action_url(*articles), {"preset": "product", "count": "3", "step": "estimate"}
    )
    assert response.status_code == 200
    assert "Estimated total" in response.content.decode()
    assert Generation.objects.count() == 0


def test_generate_makes_a_batch_and_sets_each_image_on_a_draft(editor_client, editor, articles):
    response = editor_client.post(
        action_url(*articles), {"preset": "", "count": "1", "step": "generate"}
    )
    assert response.status_code == 302
    rows = list(Generation.objects.order_by("pk"))
    assert len(rows) == 2
    assert len({row.batch for row in rows}) == 1 and rows[0].batch is not None
    assert {row.preset for row in rows} == {"hero"}
    assert all(row.field_name == "hero_image" for row in rows)
    assert get_image_model().objects.count() == 2
    for article in articles:
        article.refresh_from_db()
        draft = article.get_latest_revision_as_object()
        assert draft.hero_image is not None
        assert article.hero_image is None  # live until an editor publishes the draft
        assert draft.hero_image.uploaded_by_user == editor


def test_pages_the_user_may_not_edit_are_left_out(client, plain_editor, editor, articles):
    client.force_login(plain_editor)
    html = client.get(action_url(*articles)).content.decode()
    assert "You may not generate images for these pages" in html


def test_an_edited_prompt_is_used_for_its_page(editor_client, articles):
    first, second = articles
    url = action_url(*articles)
    html = editor_client.get(url).content.decode()
    assert f'name="prompt_{first.pk}"' in html and 'form="imagegen-bulk-form"' in html
    data = {
        "count": "1",
        "step": "generate",
        f"prompt_{first.pk}": "a lighthouse drawn in ink",
        f"prompt_{second.pk}": "A red kite",  # the default: not an edit
    }
    editor_client.post(url, data)
    subjects = {row.object_id: row.params["subject"] for row in Generation.objects.all()}
    assert subjects == {str(first.pk): "a lighthouse drawn in ink", str(second.pk): "A red kite"}


def test_a_budget_stops_the_run(editor_client, articles, locmem, settings):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"USER_MONTHLY": "0.05"}}
    response = editor_client.post(
        action_url(*articles), {"provider": "paid", "count": "1", "step": "generate"}
    )
    assert response.status_code == 302
    assert Generation.objects.count() == 1  # the second page would break the budget
