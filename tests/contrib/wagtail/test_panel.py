"""``GeneratedImagePanel``: generate and regenerate a page's image field, with its history."""

from __future__ import annotations

import pytest
from django.urls import reverse
from wagtail.images import get_image_model
from wagtail_demo.models import ArticlePage, HomePage

import imagegen
from imagegen.contrib.wagtail.panels import GeneratedImagePanel, find_panel, generated_panels
from imagegen.models import GeneratedImage, Generation

pytestmark = pytest.mark.django_db

XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


def urls(article):
    args = [article.pk, "hero_image"]
    return {
        name: reverse(f"imagegen_wagtail:page_{name}", args=args)
        for name in ("generate", "estimate", "history")
    }


def test_the_panel_is_found_with_its_preset_and_prompt():
    panel = find_panel(ArticlePage, "hero_image")
    assert isinstance(panel, GeneratedImagePanel)
    assert panel.preset == "hero"
    assert find_panel(ArticlePage, "body") is None
    assert generated_panels(HomePage) == []


def test_the_edit_view_shows_the_panel_with_the_page_prompt(editor_client, article):
    response = editor_client.get(reverse("wagtailadmin_pages:edit", args=[article.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-controller="imagegen-generate"' in html
    assert "A lighthouse at dawn: waves on rocks" in html
    assert urls(article)["generate"] in html
    assert 'data-imagegen-generate-widget-value="id_hero_image"' in html
    assert "imagegen_wagtail/generate.js" in html


def test_no_controls_without_the_permission(client, plain_editor, article):
    client.force_login(plain_editor)
    response = client.get(reverse("wagtailadmin_pages:edit", args=[article.pk]))
    assert response.status_code == 200
    assert 'data-controller="imagegen-generate"' not in response.content.decode()


def test_an_unsaved_page_asks_for_a_draft(editor_client, home):
    url = reverse("wagtailadmin_pages:add", args=["wagtail_demo", "articlepage", home.pk])
    html = editor_client.get(url).content.decode()
    assert "Save a draft of the page to generate its image." in html


def test_generate_uses_the_field_preset_and_the_page_prompt(editor_client, editor, article):
    response = editor_client.post(urls(article)["generate"], {"count": "2"}, **XHR)
    assert response.status_code == 201
    generation = Generation.objects.get(pk=response.json()["generation"]["id"])
    assert generation.target == article
    assert generation.field_name == "hero_image"
    assert generation.preset == "hero"
    assert generation.params["subject"] == "A lighthouse at dawn: waves on rocks"
    assert generation.images.count() == 2
    article.refresh_from_db()
    assert article.hero_image is None  # candidates wait for a pick


def test_estimate_and_count_limits(editor_client, article):
    assert editor_client.post(urls(article)["estimate"], {"count": "1"}).status_code == 200
    assert editor_client.post(urls(article)["generate"], {"count": "9"}).status_code == 400


def test_pick_sets_the_field_image_and_marks_it_selected(editor_client, article):
    body = editor_client.post(urls(article)["generate"], {"count": "2"}).json()["generation"]
    candidates = list(GeneratedImage.objects.filter(generation_id=body["id"]).order_by("pk"))
    response = editor_client.post(
        reverse("imagegen_wagtail:pick"), {"image": candidates[1].pk}, follow=True, **XHR
    )
    image = get_image_model().objects.get()
    assert response.json()["result"]["id"] == str(image.pk)
    candidates[1].refresh_from_db()
    assert candidates[1].selected


def test_regenerate_and_history(editor_client, article):
    first = editor_client.post(urls(article)["generate"], {"count": "1"}).json()["generation"]
    editor_client.post(urls(article)["generate"], {"count": "2"})
    candidate = GeneratedImage.objects.get(generation_id=first["id"])
    editor_client.post(reverse("imagegen_wagtail:pick"), {"image": candidate.pk})
    article.hero_image = get_image_model().objects.get()
    article.save_revision().publish()

    html = editor_client.get(reverse("wagtailadmin_pages:edit", args=[article.pk])).content
    assert "Regenerate" in html.decode()
    history = editor_client.post(urls(article)["history"]).json()
    assert history["count"] == 2
    assert history["html"].count("Use this image") == 2  # the third is in use
    assert "In use" in history["html"]


def test_unknown_field_is_404(editor_client, article):
    url = reverse("imagegen_wagtail:page_generate", args=[article.pk, "body"])
    assert editor_client.post(url).status_code == 404


def test_cost_for_the_page(editor_client, article):
    editor_client.post(urls(article)["generate"], {"count": "1"})
    rows = Generation.objects.for_object(article, "hero_image")
    assert imagegen.cost_for(article) == rows.total_cost()
