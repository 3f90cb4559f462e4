"""Every endpoint: POST only, CSRF, a Wagtail admin user who may generate, else 403."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from wagtail.models import Collection, GroupCollectionPermission

import imagegen
from imagegen.contrib.wagtail.permissions import can_generate, can_generate_for_page

pytestmark = pytest.mark.django_db

XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"}
ENDPOINTS = ["estimate", "generate", "status", "pick"]
PAGE_ENDPOINTS = ["page_estimate", "page_generate", "page_history"]


def url_of(name: str, article) -> str:
    if name.startswith("page_"):
        return reverse(f"imagegen_wagtail:{name}", args=[article.pk, "hero_image"])
    return reverse(f"imagegen_wagtail:{name}")


def data_for(name: str, editor) -> dict:
    if name == "pick":
        generation = imagegen.generate(prompt="a kite", user=editor, attach=False)
        return {"image": generation.images.get().pk}
    if name == "status":
        return {"ids": "1"}
    if name in ("estimate", "generate"):
        return {"prompt": "a kite", "preset": "editorial", "count": "1"}
    return {"count": "1"}


def user_with(django_user_model, name: str, *, admin=True, generate=True, add_images=True):
    """Return a user with only the given rights (no group of Wagtail's)."""
    user = django_user_model.objects.create_user(name, password="pw")
    group = Group.objects.create(name=f"group-{name}")
    user.groups.add(group)
    if admin:
        group.permissions.add(Permission.objects.get(codename="access_admin"))
    if generate:
        group.permissions.add(Permission.objects.get(codename="generate_image"))
    if add_images:
        for codename in ("add_image", "choose_image"):
            GroupCollectionPermission.objects.create(
                group=group,
                collection=Collection.get_first_root_node(),
                permission=Permission.objects.get(
                    content_type__app_label="wagtailimages", codename=codename
                ),
            )
    return user


@pytest.mark.parametrize("name", ENDPOINTS + PAGE_ENDPOINTS)
def test_the_editor_is_allowed(editor_client, editor, article, name):
    response = editor_client.post(url_of(name, article), data_for(name, editor), **XHR)
    assert response.status_code in (200, 201, 302)


@pytest.mark.parametrize("name", ENDPOINTS + PAGE_ENDPOINTS)
def test_get_is_refused(editor_client, article, name):
    assert editor_client.get(url_of(name, article), **XHR).status_code == 405


@pytest.mark.parametrize("name", ENDPOINTS + PAGE_ENDPOINTS)
def test_anonymous_is_refused(client, editor, article, name):
    data = data_for(name, editor)
    assert client.post(url_of(name, article), data, **XHR).status_code == 403
    # A browser navigation goes to Wagtail's login page instead.
    response = client.post(url_of(name, article), data)
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("name", ENDPOINTS + PAGE_ENDPOINTS)
def test_csrf_is_required(editor, article, name):
    client = Client(enforce_csrf_checks=True)
    client.force_login(editor)
    assert client.post(url_of(name, article), data_for(name, editor), **XHR).status_code == 403


@pytest.mark.parametrize(
    "rights",
    [
        {"generate": False},  # no imagegen.generate_image
        {"add_images": False},  # may not add images to the collection
        {"admin": False},  # no Wagtail admin access
    ],
    ids=["no-generate-permission", "no-collection-add", "no-admin-access"],
)
@pytest.mark.parametrize("name", ENDPOINTS + PAGE_ENDPOINTS)
def test_missing_rights_are_refused(client, django_user_model, editor, article, name, rights):
    user = user_with(django_user_model, "limited", **rights)
    client.force_login(user)
    response = client.post(url_of(name, article), data_for(name, editor), **XHR)
    assert response.status_code == 403


@pytest.mark.parametrize("name", PAGE_ENDPOINTS)
def test_page_endpoints_need_the_page_edit_permission(client, django_user_model, editor, article,
                                                      name):  # fmt: skip
    # May generate into the library, but has no permission on any page.
    user = user_with(django_user_model, "no-pages")
    client.force_login(user)
    assert can_generate(user) and not can_generate_for_page(user, article)
    response = client.post(url_of(name, article), data_for(name, editor), **XHR)
    assert response.status_code == 403


def test_inactive_users_may_not_generate(editor):
    editor.is_active = False
    assert not can_generate(editor)


def test_collection_permission_is_checked_on_the_generated_collection(django_user_model, settings):
    settings.IMAGEGEN = {"WAGTAIL": {"COLLECTION": "AI"}}
    root = Collection.get_first_root_node()
    other = root.add_child(instance=Collection(name="Elsewhere"))
    ai = root.add_child(instance=Collection(name="AI"))
    user = user_with(django_user_model, "elsewhere", add_images=False)
    group = user.groups.get()
    GroupCollectionPermission.objects.create(
        group=group,
        collection=other,
        permission=Permission.objects.get(
            content_type__app_label="wagtailimages", codename="add_image"
        ),
    )
    assert not can_generate(user)
    GroupCollectionPermission.objects.create(
        group=group,
        collection=ai,
        permission=Permission.objects.get(
            content_type__app_label="wagtailimages", codename="add_image"
        ),
    )
    assert can_generate(django_user_model.objects.get(pk=user.pk))
