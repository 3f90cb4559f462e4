"""Fixtures of the Wagtail integration's tests; they run only with ``tests.settings_wagtail``.

The core suite runs without Wagtail installed: there these tests are not even collected.
"""

from __future__ import annotations

import pytest
from django.conf import settings

if "imagegen.contrib.wagtail" not in settings.INSTALLED_APPS:
    collect_ignore_glob = ["test_*.py", "browser"]


@pytest.fixture
def home(db):
    from wagtail.models import Page, Site
    from wagtail_demo.models import HomePage

    root = Page.get_first_root_node()
    home = root.add_child(instance=HomePage(title="Home", slug="imagegen-home"))
    site = Site.objects.get(is_default_site=True)
    site.root_page = home
    site.save()
    return home


@pytest.fixture
def article(home):
    from wagtail_demo.models import ArticlePage

    article = home.add_child(
        instance=ArticlePage(title="A lighthouse at dawn", summary="waves on rocks")
    )
    article.save_revision().publish()
    return article


@pytest.fixture
def editor(db, django_user_model):
    """A Wagtail editor (Wagtail's "Editors" group) who may generate images."""
    from django.contrib.auth.models import Group, Permission

    user = django_user_model.objects.create_user("editor", password="pw")
    user.groups.add(Group.objects.get(name="Editors"))
    user.user_permissions.add(Permission.objects.get(codename="generate_image"))
    return user


@pytest.fixture
def plain_editor(db, django_user_model):
    """A Wagtail editor without ``imagegen.generate_image``."""
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("plain", password="pw")
    user.groups.add(Group.objects.get(name="Editors"))
    return user


@pytest.fixture
def editor_client(client, editor):
    client.force_login(editor)
    return client
