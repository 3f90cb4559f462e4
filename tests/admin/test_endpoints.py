"""The JSON endpoints and who may use them: staff session, permissions, CSRF, POST only."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from imagegen.models import Generation
from tests.admin.support import (
    CHANGELIST,
    EDITOR_PERMS,
    act,
    ledger_row,
    make_user,
    text_of,
)
from tests.testapp.models import Article, Product

pytestmark = pytest.mark.django_db

BATCH = uuid.UUID("6f1c2d4e-0000-4000-8000-000000000001")


@pytest.fixture
def article(db):
    return Article.objects.create(title="Lighthouse", summary="a white tower on a rocky coast")


@pytest.fixture
def batch_row(article):
    return ledger_row(article, batch=BATCH, images=1)


def url_of(endpoint: str, article: Article) -> str:
    if endpoint == "batch-status":
        return f"/admin/testapp/article/imagegen/batch/{BATCH}/status/"
    return f"/admin/testapp/article/{article.pk}/imagegen/hero/{endpoint}/"


def data_of(endpoint: str, generation: Generation) -> dict[str, str]:
    if endpoint in ("estimate", "generate"):
        return {
            "prompt": "A lighthouse at dawn",
            "preset": "hero",
            "provider": "paid",
            "count": "1",
        }
    if endpoint == "status":
        return {"ids": str(generation.pk)}
    return {}


ENDPOINTS = ["estimate", "generate", "status", "history", "batch-status"]
#: What each endpoint answers a permitted user.
SUCCESS = {"estimate": 200, "generate": 201, "status": 200, "history": 200, "batch-status": 200}


def assert_refused(response) -> None:
    """A 403 from the endpoint itself (JSON), not a login redirect or a crash."""
    assert response.status_code == 403, response.content[:500]
    assert response.json() == {"error": "You may not generate images here."}


def assert_nothing_generated(locmem, generations_before: int) -> None:
    assert Generation.objects.count() == generations_before
    assert locmem == []


# Who may call ---------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_anonymous_users_get_403(client, locmem, article, batch_row, endpoint):
    response = client.post(url_of(endpoint, article), data_of(endpoint, batch_row))

    assert_refused(response)
    assert_nothing_generated(locmem, 1)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_logged_in_users_who_are_not_staff_get_403(client, locmem, article, batch_row, endpoint):
    client.force_login(make_user("reader", *EDITOR_PERMS, staff=False))

    response = client.post(url_of(endpoint, article), data_of(endpoint, batch_row))

    assert_refused(response)
    assert_nothing_generated(locmem, 1)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_staff_without_generate_image_get_403(client, locmem, article, batch_row, endpoint):
    client.force_login(make_user("editor", "view_article", "change_article"))

    response = client.post(url_of(endpoint, article), data_of(endpoint, batch_row))

    assert_refused(response)
    assert_nothing_generated(locmem, 1)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_staff_who_may_not_change_the_object_get_403(client, locmem, article, batch_row, endpoint):
    client.force_login(make_user("viewer", "view_article", "generate_image"))

    response = client.post(url_of(endpoint, article), data_of(endpoint, batch_row))

    assert_refused(response)
    assert_nothing_generated(locmem, 1)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_post_without_the_csrf_token_gets_403(locmem, article, batch_row, endpoint):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("editor", *EDITOR_PERMS))

    response = client.post(url_of(endpoint, article), data_of(endpoint, batch_row))

    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert_nothing_generated(locmem, 1)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_the_csrf_token_is_required_even_without_the_csrf_middleware(
    locmem, article, batch_row, endpoint, settings
):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if "Csrf" not in m]
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("editor", *EDITOR_PERMS))

    response = client.post(url_of(endpoint, article), data_of(endpoint, batch_row))

    assert response.status_code == 403
    assert b"CSRF" in response.content
    assert_nothing_generated(locmem, 1)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_get_is_refused(client, locmem, article, batch_row, endpoint):
    client.force_login(make_user("editor", *EDITOR_PERMS))

    response = client.get(url_of(endpoint, article), data_of(endpoint, batch_row))

    assert response.status_code == 405
    assert "error" in response.json()
    assert_nothing_generated(locmem, 1)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_get_is_refused_to_anonymous_users_too(client, locmem, article, batch_row, endpoint):
    response = client.get(url_of(endpoint, article), data_of(endpoint, batch_row))

    assert response.status_code in (403, 405)
    assert "Lighthouse" not in response.content.decode()
    assert_nothing_generated(locmem, 1)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_staff_with_both_permissions_and_the_csrf_token_get_an_answer(
    locmem, article, batch_row, endpoint
):
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("editor", *EDITOR_PERMS))
    # The change form sets the CSRF cookie the widget's script sends back.
    assert client.get(f"/admin/testapp/article/{article.pk}/change/").status_code == 200
    token = client.cookies["csrftoken"].value

    response = client.post(
        url_of(endpoint, article), data_of(endpoint, batch_row), headers={"X-CSRFToken": token}
    )

    assert response.status_code == SUCCESS[endpoint], response.content[:1000]
    body = response.json()
    if endpoint == "estimate":
        assert body == {"estimate": "0.040000", "display": "$0.04"}
    elif endpoint == "generate":
        assert body["generation"]["status"] == "succeeded"
        assert len(body["generation"]["images"]) == 1
        assert len(locmem) == 1
    elif endpoint == "status":
        assert [g["id"] for g in body["generations"]] == [batch_row.pk]
    elif endpoint == "history":
        assert "A lighthouse" in body["html"] and body["total"] == "$0.04"
    else:
        assert body["total"] == 1 and body["finished"] is True


def test_a_superuser_may_call_every_endpoint(admin_client, locmem, article, batch_row):
    for endpoint in ENDPOINTS:
        response = admin_client.post(url_of(endpoint, article), data_of(endpoint, batch_row))
        assert response.status_code == SUCCESS[endpoint], (endpoint, response.content[:500])


# What they answer -------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["estimate", "generate", "status", "history"])
@pytest.mark.parametrize("field", ["title", "nonexistent", "summary"])
def test_an_unknown_field_is_404(admin_client, locmem, article, endpoint, field):
    response = admin_client.post(
        f"/admin/testapp/article/{article.pk}/imagegen/{field}/{endpoint}/",
        data_of(endpoint, Generation(pk=1)),
    )

    assert response.status_code == 404
    assert_nothing_generated(locmem, 0)


def test_a_plain_image_field_is_404(admin_client, locmem):
    product = Product.objects.create(name="Teapot")

    response = admin_client.post(
        f"/admin/testapp/product/{product.pk}/imagegen/thumbnail/generate/",
        data_of("generate", Generation(pk=1)),
    )

    assert response.status_code == 404
    assert_nothing_generated(locmem, 0)


@pytest.mark.parametrize("endpoint", ["estimate", "generate", "status", "history"])
def test_an_unknown_object_is_404(admin_client, locmem, endpoint):
    response = admin_client.post(
        f"/admin/testapp/article/999/imagegen/hero/{endpoint}/",
        data_of(endpoint, Generation(pk=1)),
    )

    assert response.status_code == 404
    assert_nothing_generated(locmem, 0)


def test_status_never_reports_another_objects_generations(admin_client, article):
    other = Article.objects.create(title="Harbour")
    mine = ledger_row(article, images=1)
    theirs = ledger_row(other, images=1, prompt="A secret harbour")
    product = Product.objects.create(name="Teapot")
    product_row = ledger_row(product, field="photo", prompt="A secret teapot")
    same_pk_other_field = ledger_row(article, field="other", prompt="Another field")

    response = admin_client.post(
        f"/admin/testapp/article/{article.pk}/imagegen/hero/status/",
        {"ids": f"{theirs.pk},{mine.pk},{product_row.pk},{same_pk_other_field.pk}"},
    )

    assert response.status_code == 200
    assert [g["id"] for g in response.json()["generations"]] == [mine.pk]
    assert "secret" not in response.content.decode()


def test_status_ignores_ids_too_large_for_the_database(admin_client, article):
    mine = ledger_row(article)

    response = admin_client.post(
        f"/admin/testapp/article/{article.pk}/imagegen/hero/status/",
        {"ids": f"99999999999999999999999,{mine.pk}"},
    )

    assert response.status_code == 200
    assert [g["id"] for g in response.json()["generations"]] == [mine.pk]


def test_status_with_bad_ids_is_400(admin_client, article):
    response = admin_client.post(
        f"/admin/testapp/article/{article.pk}/imagegen/hero/status/", {"ids": "1,two"}
    )

    assert response.status_code == 400


@pytest.mark.parametrize("count", ["0", "5", "lots"])
def test_generate_refuses_a_bad_count(admin_client, locmem, article, count):
    data = {**data_of("generate", Generation(pk=1)), "count": count}

    response = admin_client.post(
        f"/admin/testapp/article/{article.pk}/imagegen/hero/generate/", data
    )

    assert response.status_code == 400
    assert "count" in response.json()["errors"]
    assert_nothing_generated(locmem, 0)


def test_generate_reports_a_budget_block_as_an_error(admin_client, locmem, article, settings):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"SITE_MONTHLY": "0.01"}}

    response = admin_client.post(
        f"/admin/testapp/article/{article.pk}/imagegen/hero/generate/",
        data_of("generate", Generation(pk=1)),
    )

    assert response.status_code == 400
    assert "monthly budget" in response.json()["error"]
    assert_nothing_generated(locmem, 0)


# The pages ---------------------------------------------------------------------------------------


def test_the_progress_page_is_refused_to_staff_without_the_permission(client, batch_row):
    client.force_login(make_user("editor", "view_article", "change_article"))

    page = client.get(f"/admin/testapp/article/imagegen/batch/{BATCH}/")

    assert page.status_code == 403
    assert "A lighthouse" not in page.content.decode()


def test_the_progress_page_sends_anonymous_users_to_the_login(client, batch_row):
    page = client.get(f"/admin/testapp/article/imagegen/batch/{BATCH}/")

    assert page.status_code == 302 and page["Location"].startswith("/admin/login/")


def test_the_progress_page_is_shown_to_an_editor(client, batch_row):
    client.force_login(make_user("editor", *EDITOR_PERMS))

    page = client.get(f"/admin/testapp/article/imagegen/batch/{BATCH}/")

    assert page.status_code == 200
    assert "1 of 1 finished; cost so far $0.04. All done." in text_of(page)


def test_without_the_permission_the_action_is_not_offered_and_does_nothing(client, locmem, article):
    client.force_login(make_user("editor", "view_article", "change_article"))

    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert "generate_images" not in page.content.decode()

    confirmation = act(client, [article.pk])
    generated = act(
        client,
        [article.pk],
        imagegen_form="1",
        field="hero",
        preset="hero",
        provider="paid",
        count="1",
        imagegen_step="generate",
    )

    for response in (confirmation, generated):
        assert response.status_code in (200, 302)
        assert "Estimated total" not in response.content.decode()
    assert_nothing_generated(locmem, 0)
    article.refresh_from_db()
    assert not article.hero


def test_calling_the_action_directly_without_the_permission_is_refused(rf, locmem, article):
    from django.contrib import admin
    from django.core.exceptions import PermissionDenied

    request = rf.post(CHANGELIST)
    request.user = make_user("editor", "view_article", "change_article")
    model_admin = admin.site._registry[Article]

    with pytest.raises(PermissionDenied):
        model_admin.generate_images(request, Article.objects.all())
    assert_nothing_generated(locmem, 0)


def test_without_the_permission_the_change_form_has_no_generate_button(client, article):
    client.force_login(make_user("editor", "view_article", "change_article"))

    page = client.get(f"/admin/testapp/article/{article.pk}/change/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "data-imagegen-widget" not in html
    assert "hero__imagegen_pick" not in html
    assert '<input type="file" name="hero"' in html
