"""Django app configuration for imagegen."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ImagegenConfig(AppConfig):
    """Register system checks and the request receivers of after-response work."""

    name = "imagegen"
    verbose_name = _("Image generation")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from imagegen import (
            checks,  # noqa: F401 - registers the checks
            signals,
        )

        # Work the immediate runner leaves for after the response needs to see requests.
        signals.watch_requests()
