"""Small real images for fake answers: :func:`png_bytes` and the builders' base64 helpers."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

__all__ = ["png_bytes"]


def png_bytes(
    width: int = 64, height: int = 64, color: tuple[int, int, int] = (90, 120, 200)
) -> bytes:
    """Return a solid-colour PNG of ``width`` x ``height`` pixels."""
    # Pillow on first use: importing imagegen.testing in a conftest stays cheap.
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def _b64(content: bytes) -> str:
    return base64.b64encode(content).decode("ascii")


def _images(images: Sequence[bytes] | None) -> list[bytes]:
    return [png_bytes()] if images is None else list(images)
