"""The image chooser's "Generate" tab: generate candidates, pick one, get it as a chosen image."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import translation
from wagtail.images import get_image_model

from imagegen.contrib.wagtail.models import WagtailImageLink
from imagegen.models import GeneratedImage, Generation
from tests.conftest import deriving

pytestmark = pytest.mark.django_db

XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}


def chooser_html(client, **params) -> str:
    response = client.get(reverse("wagtailimages_chooser:choose"), params)
    assert response.status_code == 200
    return json.loads(response.content)["html"]


def generate(client, **data):
    data = {"prompt": "a lighthouse at dawn", "preset": "editorial", "count": "2", **data}
    return client.post(reverse("imagegen_wagtail:generate"), data, **XHR)


def test_the_chooser_has_a_generate_tab_with_the_form(editor_client):
    html = chooser_html(editor_client)
    assert 'id="tab-label-imagegen-generate"' in html
    assert 'id="tab-imagegen-generate"' in html
    assert 'data-controller="imagegen-generate"' in html
    for name in ("prompt", "preset", "provider", "count"):
        assert f'name="{name}"' in html
    # Wagtail's own tabs are still there.
    assert 'id="tab-search"' in html and 'id="tab-upload"' in html
    assert "data-imagegen-pick-form" in html and "data-chooser-modal-creation-form" in html


def test_no_tab_without_the_generate_permission(client, plain_editor):
    client.force_login(plain_editor)
    html = chooser_html(client)
    assert "imagegen-generate" not in html
    assert 'id="tab-upload"' in html


def test_no_tab_in_a_multiple_chooser(editor_client):
    html = chooser_html(editor_client, multiple="1")
    assert "imagegen-generate" not in html
    assert 'id="tab-search"' in html


def test_the_chooser_parameters_go_on_to_the_pick(editor_client):
    html = chooser_html(editor_client, select_format="true")
    assert reverse("imagegen_wagtail:pick") + "?select_format=true" in html


def test_estimate(editor_client):
    response = editor_client.post(
        reverse("imagegen_wagtail:estimate"), {"prompt": "x", "preset": "hero", "count": "1"}
    )
    assert response.status_code == 200
    assert response.json()["display"].startswith("$")


def test_generate_returns_candidates_and_adds_nothing_to_the_library(editor_client, editor):
    response = generate(editor_client)
    assert response.status_code == 201
    body = response.json()["generation"]
    assert body["finished"] and body["status"] == "succeeded"
    assert body["html"].count("Use this image") == 2
    generation = Generation.objects.get(pk=body["id"])
    assert generation.created_by == editor
    assert generation.content_type is None  # opened outside a page editor
    assert get_image_model().objects.count() == 0


def test_a_prompt_is_required(editor_client):
    response = generate(editor_client, prompt="")
    assert response.status_code == 400
    assert "prompt" in response.json()["errors"]


def test_generating_from_a_page_editor_records_the_page(editor_client, article):
    path = reverse("wagtailadmin_pages:edit", args=[article.pk])
    response = generate(editor_client, editor_path=path)
    generation = Generation.objects.get(pk=response.json()["generation"]["id"])
    assert generation.target == article
    assert generation.field_name == ""


def test_an_editor_path_that_is_no_page_editor_is_ignored(editor_client, article):
    response = generate(editor_client, editor_path="/cms/pages/1/delete/")
    generation = Generation.objects.get(pk=response.json()["generation"]["id"])
    assert generation.content_type is None


def test_pick_stores_the_candidate_and_answers_as_the_chooser_does(editor_client, article):
    path = reverse("wagtailadmin_pages:edit", args=[article.pk])
    body = generate(editor_client, editor_path=path).json()["generation"]
    candidate = GeneratedImage.objects.filter(generation_id=body["id"]).order_by("pk")[1]

    response = editor_client.post(reverse("imagegen_wagtail:pick"), {"image": candidate.pk}, **XHR)
    image = get_image_model().objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("wagtailimages_chooser:chosen", args=[image.pk])

    chosen = editor_client.get(response["Location"], **XHR).json()
    assert chosen["step"] == "chosen"
    assert chosen["result"]["id"] == str(image.pk)
    assert chosen["result"]["preview"]["url"]
    link = WagtailImageLink.objects.get(generated_image=candidate)
    assert (link.image, link.page_id) == (image, article.pk)


def test_pick_for_rich_text_goes_to_select_format(editor_client):
    body = generate(editor_client).json()["generation"]
    candidate = GeneratedImage.objects.filter(generation_id=body["id"]).first()
    url = reverse("imagegen_wagtail:pick") + "?select_format=true"
    response = editor_client.post(url, {"image": candidate.pk}, **XHR)
    image = get_image_model().objects.get()
    expected = reverse("wagtailimages_chooser:select_format", args=[image.pk])
    assert response["Location"] == expected + "?select_format=true"


def test_status_shows_only_the_users_own_generations(editor_client, client, django_user_model):
    body = generate(editor_client).json()["generation"]
    response = editor_client.post(reverse("imagegen_wagtail:status"), {"ids": str(body["id"])})
    assert [g["id"] for g in response.json()["generations"]] == [body["id"]]
    other = django_user_model.objects.create_user("other", password="pw")
    other.groups.add(Group.objects.get(name="Editors"))
    other.user_permissions.add(Permission.objects.get(codename="generate_image"))
    client.force_login(other)
    response = client.post(reverse("imagegen_wagtail:status"), {"ids": str(body["id"])})
    assert response.json()["generations"] == []
    picked = client.post(
        reverse("imagegen_wagtail:pick"),
        {"image": GeneratedImage.objects.filter(generation_id=body["id"]).first().pk},
    )
    assert picked.status_code == 403


def test_the_tab_is_translated(editor_client):
    with translation.override("de"):
        html = chooser_html(editor_client)
    assert ">Generieren<" in html.replace("\n", "").replace("  ", "")


def test_budgets_apply_in_the_chooser(editor_client, locmem, settings):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"USER_MONTHLY": "0.05"}}
    assert generate(editor_client, provider="paid", count="1").status_code == 201
    response = generate(editor_client, provider="paid", count="1")
    assert response.status_code == 400
    assert "budget" in response.json()["error"].lower()
    assert Generation.objects.count() == 1


def test_candidates_show_the_original_then_a_derived_thumbnail(editor_client):
    with deriving():  # the follow-up job runs after the response, as on a site
        body = generate(editor_client, count="1").json()["generation"]
    image = GeneratedImage.objects.get(generation_id=body["id"])
    # The response came before the derived files: the candidate shows the original.
    assert image.file.storage.url(image.file.name) in body["html"]
    smallest = min(image.derivatives, key=lambda entry: entry["width"])
    response = editor_client.post(reverse("imagegen_wagtail:status"), {"ids": str(body["id"])})
    (row,) = response.json()["generations"]
    assert image.file.storage.url(smallest["name"]) in row["html"]


def test_a_queued_generation_is_followed_until_it_finishes(editor_client, editor):
    queued = Generation.objects.create(
        prompt="a kite", provider="default", created_by=editor, status="queued"
    )
    response = editor_client.post(reverse("imagegen_wagtail:status"), {"ids": str(queued.pk)})
    (row,) = response.json()["generations"]
    assert (row["finished"], row["status"], row["html"]) == (False, "queued", "")
