"""Building a provider's request: source images as base64, data URLs or multipart file parts.

Vendors take source images in one of three shapes, and each is built here once: bare base64
text, a ``data:`` URL, or a multipart file part named after its sniffed type. Fields left unset
(None) are dropped rather than sent, so the vendor's own defaults apply. Providers that edit
from an instruction put an operation to the model as a rewritten prompt (:func:`instruction`).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

from PIL import Image

from imagegen.exceptions import UnsupportedRequest
from imagegen.providers.http.outputs import image_mime
from imagegen.types import ImageRequest

__all__ = ["b64", "data_url", "file_part", "instruction", "present"]


def b64(content: bytes) -> str:
    """Return ``content`` as base64 text."""
    return base64.b64encode(content).decode("ascii")


def data_url(content: bytes, mime: str) -> str:
    """Return ``content`` as a ``data:`` URL of type ``mime``."""
    return f"data:{mime};base64,{b64(content)}"


def file_part(stem: str, content: bytes) -> tuple[str, bytes, str]:
    """Return a multipart file part for ``content``: a name and type from its magic bytes."""
    mime = image_mime(content) or "application/octet-stream"
    return (f"{stem}.{mime.rpartition('/')[2]}", content, mime)


def present(fields: dict[str, Any]) -> dict[str, Any]:
    """Return ``fields`` without the ones that are None (unset)."""
    return {key: value for key, value in fields.items() if value is not None}


def instruction(templates: Mapping[str, str], request: ImageRequest) -> str:
    """Return the prompt that asks an instruction-following model for ``request``'s operation.

    ``templates`` maps an operation to a format string over ``prompt`` and ``search``; the key
    ``"<operation>+reference"`` is used instead when the request carries reference images
    besides its source. An operation without a template sends the prompt unchanged. The
    prompt's closing full stop is dropped, as the templates go on after it.
    """
    key = request.operation
    if len(request.source_images) > 1 and f"{key}+reference" in templates:
        key = f"{key}+reference"
    template = templates.get(key)
    if template is None:
        return request.prompt
    prompt = request.prompt.strip().rstrip(".").rstrip()
    return template.format(prompt=prompt, search=request.search.strip())


def alpha_mask(mask: bytes, source: bytes) -> bytes:
    """Return imagegen's grayscale ``mask`` (white = change) as an alpha mask: a PNG fully
    transparent where the image should change, the size of ``source`` (OpenAI's form, §2.4).

    Gray levels keep their share: a pixel half white is half transparent.
    """
    try:
        with Image.open(io.BytesIO(mask)) as opened:
            gray = opened.convert("L")
        with Image.open(io.BytesIO(source)) as first:
            size = first.size
    except (OSError, ValueError) as err:
        raise UnsupportedRequest(f"The mask or source image cannot be read: {err}") from err
    if gray.size != size:
        raise UnsupportedRequest(
            f"The mask is {gray.size[0]}x{gray.size[1]} pixels; it must be the size of "
            f"the first image, {size[0]}x{size[1]}."
        )
    converted = Image.new("RGBA", size, (0, 0, 0, 255))
    converted.putalpha(gray.point(lambda level: 255 - level))
    buffer = io.BytesIO()
    converted.save(buffer, "PNG")
    return buffer.getvalue()
