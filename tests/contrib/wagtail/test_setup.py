"""The app's setup: migrations are current, and a misplaced app is reported."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from imagegen.contrib.wagtail.checks import app_order_warnings, check_app_order


@pytest.mark.django_db
def test_no_missing_migrations():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_the_app_order_is_fine_here():
    assert check_app_order() == []


def test_the_app_after_wagtail_images_is_reported():
    (warning,) = app_order_warnings(["wagtail.images", "imagegen.contrib.wagtail"])
    assert warning.id == "imagegen_wagtail.W001"
    assert app_order_warnings(["imagegen.contrib.wagtail", "wagtail.images"]) == []
