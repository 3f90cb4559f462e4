"""Reading a provider's answer: its image bytes typed by their magic, and its numbers.

Every provider turns image bytes into :class:`~imagegen.types.ImageOutput` the same way: the
magic bytes name the MIME type, and the format asked for is only a fallback. The numbers vendors
put in JSON (seeds, credits, token counts) are read without trusting their type. Decoding base64
and downloading result URLs raise in the provider's name, so they are methods of
:class:`~imagegen.providers.http.HttpProvider` (``decode_base64``, ``download_images``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from imagegen.types import ImageOutput

__all__ = [
    "FORMAT_MIME",
    "as_int",
    "as_number",
    "count",
    "dicts",
    "image_mime",
    "image_output",
    "json_number",
]

#: The MIME type of each output format, for bytes whose magic says nothing.
FORMAT_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def image_mime(content: bytes) -> str:
    """Return the MIME type that ``content``'s magic bytes announce, or "" when unknown."""
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in _SIGNATURES if content.startswith(magic)), "")


def image_output(content: bytes, fallback: str = "", **fields: Any) -> ImageOutput:
    """Return ``content`` as an output typed by its magic bytes, else by ``fallback``."""
    return ImageOutput(content=content, mime_type=image_mime(content) or fallback, **fields)


def dicts(items: Any) -> list[dict[str, Any]]:
    """Return the objects in ``items`` if it is a list (others dropped), else an empty list."""
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def count(mapping: Any, key: str) -> int:
    """Return ``mapping[key]`` as a whole count: 0 when absent, not a number, or not a dict."""
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def as_int(value: Any) -> int | None:
    """Return ``value`` as an integer (a seed, say), or None when it is absent or not one."""
    try:
        return int(str(value)) if value is not None else None
    except ValueError:
        return None


def as_number(*values: Any) -> int | float | None:
    """Return the first value that is a finite, non-negative number, as JSON-friendly int/float."""
    for value in values:
        if value is None or isinstance(value, bool):
            continue
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            continue
        if number.is_finite() and number >= 0:
            return json_number(number)
    return None


def json_number(value: Any) -> int | float:
    """Return ``value`` as an int when it is whole, else a float: usage is stored as JSON."""
    value = Decimal(str(value))
    return int(value) if value == value.to_integral_value() else float(value)
