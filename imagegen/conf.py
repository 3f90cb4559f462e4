"""The IMAGEGEN setting, read lazily and merged over defaults.

Nothing here reads ``django.conf.settings`` at import time. ``imagegen_settings.PROVIDERS`` and
friends resolve on attribute access, and every cache built from them is cleared when a test
overrides ``IMAGEGEN`` (see :func:`reset_caches`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

PLACEHOLDER_BACKEND = "imagegen.providers.placeholder.PlaceholderProvider"

#: Every top-level key of ``IMAGEGEN`` with its default.
DEFAULTS: dict[str, Any] = {
    "DEFAULT_PROVIDER": "default",
    "PROVIDERS": {"default": {"BACKEND": PLACEHOLDER_BACKEND}},
    "PRESETS": {},
    "TASK_RUNNER": "immediate",
    # Queues, shared rate limits, time limits and retries of the queued runners; the keys and
    # their defaults are imagegen.runners.options.TASK_DEFAULTS.
    "TASK_OPTIONS": {},
    "STORAGE": "default",
    "UPLOAD_TO": "imagegen/%Y/%m/",
    "BUDGETS": {},
    "PRICES": {},
    # Safe decoding of provider output.
    "ALLOWED_FORMATS": ["PNG", "JPEG", "WEBP", "AVIF"],
    "MAX_IMAGE_PIXELS": 40_000_000,
    "MAX_IMAGE_BYTES": 40 * 1024 * 1024,
    # Derived files made in the worker: widths in pixels (never upscaled; [] makes none) and
    # formats.
    "DERIVATIVE_WIDTHS": [480, 960, 1600],
    "DERIVATIVE_FORMATS": ["webp", "avif"],
    # C2PA Content Credentials (the c2pa extra): the signer of derived files, the trust
    # anchors originals are verified against, the verify page of the "cr" mark. Keys and
    # sources: imagegen.provenance.SETTING_KEYS and load_pem().
    "CONTENT_CREDENTIALS": {},
    # Template tags re-raise errors when this is true; None follows settings.DEBUG.
    "TEMPLATE_DEBUG": None,
    # Days before a configured model's announced shutdown date that the system check warns.
    "SHUTDOWN_WARNING_DAYS": 60,
    # imagegen.contrib.wagtail: collection, tags, title length and alt text field of the
    # Wagtail images it makes; the keys and their defaults are in that app's conf module.
    "WAGTAIL": {},
}

_cache_clearers: list[Callable[[], None]] = []


class ImagegenSettings:
    """Attribute access to ``settings.IMAGEGEN`` with defaults filled in, read on every access."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown imagegen setting {name!r}")
        user = getattr(settings, "IMAGEGEN", None) or {}
        return user.get(name, DEFAULTS[name])

    @property
    def user_settings(self) -> dict[str, Any]:
        """Return the raw ``IMAGEGEN`` dict as the project wrote it."""
        return dict(getattr(settings, "IMAGEGEN", None) or {})


imagegen_settings = ImagegenSettings()


def register_cache(clear: Callable[[], None]) -> Callable[[], None]:
    """Register a function that drops a cache derived from settings; returns it unchanged."""
    _cache_clearers.append(clear)
    return clear


def reset_caches() -> None:
    """Drop everything derived from settings (provider instances, presets, the runner)."""
    for clear in _cache_clearers:
        clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"IMAGEGEN", "STORAGES", "MEDIA_ROOT", "DEBUG"}:
        reset_caches()
