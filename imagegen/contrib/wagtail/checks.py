"""System checks of the Wagtail integration; each message has an id and a hint.

``imagegen_wagtail.W001``: the app comes after ``wagtail.images`` in ``INSTALLED_APPS``, so
Wagtail's chooser template wins over this app's and the chooser has no "Generate" tab.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks

APP = "imagegen.contrib.wagtail"


@checks.register("imagegen")
def check_app_order(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when the chooser template of ``wagtail.images`` would be found before this app's."""
    return app_order_warnings(settings.INSTALLED_APPS)


def app_order_warnings(installed_apps: Sequence[str]) -> list[checks.CheckMessage]:
    """Return the W001 warning if ``installed_apps`` lists this app after ``wagtail.images``."""
    apps = list(installed_apps)
    if APP in apps and "wagtail.images" in apps and apps.index(APP) > apps.index("wagtail.images"):
        return [
            checks.Warning(
                "imagegen.contrib.wagtail comes after wagtail.images in INSTALLED_APPS, so "
                'the image chooser has no "Generate" tab.',
                hint='Put "imagegen.contrib.wagtail" before "wagtail.images".',
                id="imagegen_wagtail.W001",
            )
        ]
    return []
