"""Who may generate in the Wagtail admin: the same permission as elsewhere, plus Wagtail's own.

An editor generates with ``imagegen.generate_image``, Wagtail admin access, and Wagtail's
"add" permission on the collection generated images go to; for a page's field, the page's
edit permission as well.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from wagtail.images import get_image_model
from wagtail.models import Page

from imagegen.contrib.wagtail.images import find_collection

try:  # Wagtail 8.0+: permission policies are looked up by model.
    from wagtail.permissions import policy_registry
except ImportError:  # Wagtail 7.4 LTS: the policy is a module attribute, set per image model.
    policy_registry = None


def image_permission_policy() -> Any:
    """Return Wagtail's permission policy for the site's image model."""
    if policy_registry is not None:
        return policy_registry.get_by_type(get_image_model())
    # Read at call time: Wagtail 7.4 replaces it when WAGTAILIMAGES_IMAGE_MODEL changes.
    from wagtail.images import permissions

    return permissions.permission_policy


def has_admin_access(user: Any) -> bool:
    """Return whether ``user`` is an active user of the Wagtail admin (its "staff")."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.has_perm("wagtailadmin.access_admin")
    )


def can_add_to(user: Any, collection: models.Model) -> bool:
    """Return whether ``user`` may add images to ``collection``."""
    allowed = image_permission_policy().collections_user_has_permission_for(user, "add")
    return allowed.filter(pk=collection.pk).exists()


def can_generate(user: Any) -> bool:
    """Return whether ``user`` may generate images into the library's generated collection.

    Before the collection exists, the add permission on the root (which it is made under, and
    whose permissions it inherits) decides.
    """
    return bool(
        has_admin_access(user)
        and user.has_perm("imagegen.generate_image")
        and can_add_to(user, find_collection())
    )


def can_generate_for_page(user: Any, page: Page) -> bool:
    """Return whether ``user`` may generate images for ``page`` (and so edit it)."""
    return can_generate(user) and page.permissions_for_user(user).can_edit()
