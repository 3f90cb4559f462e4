"""The Django app of the Wagtail integration."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImagegenWagtailConfig(AppConfig):
    """Connects the receiver that stores bulk runs' images into Wagtail when they finish."""

    name = "imagegen.contrib.wagtail"
    label = "imagegen_wagtail"
    verbose_name = _("Image generation for Wagtail")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Django's idiom: receivers and checks register once the models are loaded.
        from imagegen.contrib.wagtail import checks, receivers  # noqa: F401
