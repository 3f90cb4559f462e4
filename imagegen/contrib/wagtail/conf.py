"""The ``IMAGEGEN["WAGTAIL"]`` settings, merged over their defaults, read on every call."""

from __future__ import annotations

from typing import Any

from imagegen.conf import imagegen_settings

#: Every key of ``IMAGEGEN["WAGTAIL"]`` with its default.
DEFAULTS: dict[str, Any] = {
    # The collection generated images go to, made under the root collection when missing.
    "COLLECTION": "AI generated",
    # Tags every generated image gets, so the library can filter them.
    "TAGS": ["ai-generated"],
    # Titles are the prompt, cut at a word to this many characters.
    "TITLE_LENGTH": 80,
    # The image model's field that receives the generation's alt text ("" for none).
    "ALT_TEXT_FIELD": "description",
    # The preset the image chooser's "Generate" tab starts with.
    "CHOOSER_PRESET": "editorial",
}


def wagtail_settings() -> dict[str, Any]:
    """Return ``IMAGEGEN["WAGTAIL"]`` with the defaults filled in."""
    return {**DEFAULTS, **(imagegen_settings.WAGTAIL or {})}
