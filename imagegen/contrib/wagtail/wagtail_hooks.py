"""Wagtail hooks: the admin URLs, the client-side controller and the page bulk action."""

from __future__ import annotations

from django.templatetags.static import static
from django.urls import include, path
from django.utils.html import format_html
from wagtail import hooks

from imagegen.contrib.wagtail import urls
from imagegen.contrib.wagtail.bulk_actions import GenerateImagesBulkAction


@hooks.register("register_admin_urls")
def register_admin_urls() -> list:
    return [path("imagegen/", include(urls, namespace="imagegen_wagtail"))]


@hooks.register("insert_global_admin_js")
def global_admin_js() -> str:
    # A Stimulus controller (Wagtail's client-side convention): it connects wherever its
    # markup appears, in the chooser modal or a page's panel, with no build step.
    return format_html('<script src="{}"></script>', static("imagegen_wagtail/generate.js"))


@hooks.register("insert_global_admin_css")
def global_admin_css() -> str:
    return format_html('<link rel="stylesheet" href="{}">', static("imagegen_wagtail/generate.css"))


hooks.register("register_bulk_action", GenerateImagesBulkAction)
