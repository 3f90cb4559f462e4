"""Small real images for fake answers: :func:`png_bytes` and the response builders' helpers."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

__all__ = ["b64", "images_or_sample", "png_bytes"]


def png_bytes(
    width: int = 64, height: int = 64, color: tuple[int, int, int] = (90, 120, 200)
) -> bytes:
    """Return a solid-colour PNG of ``width`` x ``height`` pixels."""
    # Imported on use: the other fakes need only httpx (see the package docstring).
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(content: bytes) -> str:
    """Return ``content`` as base64 text, as vendors put images in JSON."""
    return base64.b64encode(content).decode("ascii")


def images_or_sample(images: Sequence[bytes] | None) -> list[bytes]:
    """Return ``images`` as a list, or one sample PNG when the caller gave none (None)."""
    return [png_bytes()] if images is None else list(images)
