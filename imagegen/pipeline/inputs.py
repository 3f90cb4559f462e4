"""The input images of an operation: its source, its mask and its references, made safe.

Whatever the caller passes (a ``GeneratedImage``, a Django ``File``, raw bytes, or for the
mask a rectangle) is read here and goes through :func:`imagegen.images.clean_input`: the same
format allow-list and byte and pixel caps as provider results, the EXIF orientation applied,
and every metadata block stripped, so nothing but pixels reaches a provider. Each refusal is
an :class:`~imagegen.exceptions.UnsupportedRequest` that names the input and the limit.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.core.files import File
from django.db import models
from PIL import Image, ImageDraw

from imagegen.catalog import parse_ratio
from imagegen.exceptions import UnsupportedRequest
from imagegen.images import CleanInput, clean_input
from imagegen.models import GeneratedImage

#: Operations that need a mask, and those that also take one.
NEEDS_MASK = frozenset({"inpaint", "erase"})
TAKES_MASK = NEEDS_MASK | {"edit"}
#: Operations that work without a prompt: the operation's name stands in for it.
PROMPT_OPTIONAL = frozenset({"outpaint", "erase", "upscale", "remove_background"})
#: Operations that look for something in the source (``generate(search=...)``).
NEEDS_SEARCH = frozenset({"search_replace", "search_recolor"})


@dataclass(frozen=True, kw_only=True)
class Inputs:
    """The cleaned input images of one request."""

    operation: str = "generate"
    source: CleanInput | None = None
    #: The generated image the source is, for lineage; None for an upload or bytes.
    source_image: GeneratedImage | None = None
    mask: CleanInput | None = None
    references: tuple[CleanInput, ...] = ()

    def images(self) -> tuple[bytes, ...]:
        """Return the images sent as ``ImageRequest.source_images``: the source, then references."""
        first = (self.source.content,) if self.source is not None else ()
        return (*first, *(item.content for item in self.references))

    @property
    def mask_bytes(self) -> bytes | None:
        return None if self.mask is None else self.mask.content


def sha256(item: CleanInput | None) -> str:
    """Return the SHA-256 of a cleaned input's bytes, or ``""``."""
    return "" if item is None else hashlib.sha256(item.content).hexdigest()


def read(value: Any, name: str) -> tuple[bytes, GeneratedImage | None]:
    """Return the bytes of an input image and the ``GeneratedImage`` it is, if it is one."""
    if isinstance(value, GeneratedImage):
        return _read_file(value.file, name), value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value), None
    if isinstance(value, File):
        return _read_file(value, name), None
    raise UnsupportedRequest(
        f"The {name} must be a GeneratedImage, a Django File or bytes, not {type(value).__name__}."
    )


def _read_file(file: File, name: str) -> bytes:
    if not file:
        raise UnsupportedRequest(f"The {name} has no file.")
    try:
        file.open("rb")
        try:
            file.seek(0)
            return file.read()
        finally:
            file.close()
    except OSError as err:
        raise UnsupportedRequest(f"The {name} could not be read: {err}") from err


def current_image(target: models.Model, field_name: str) -> GeneratedImage | File | None:
    """Return the image ``target``'s field holds: its ``GeneratedImage`` row if it has one."""
    file = getattr(target, field_name, None)
    if not file:
        return None
    image = GeneratedImage.objects.filter(file=file.name).order_by("-pk").first()
    return image or file


def resolve(
    operation: str,
    *,
    source: Any = None,
    mask: Any = None,
    reference: Any = None,
) -> Inputs:
    """Read, check and clean the inputs of ``operation``; refuse what does not fit it."""
    references = _references(reference)
    if operation == "generate":
        if source is not None or mask is not None:
            raise UnsupportedRequest(
                "generate makes an image from the prompt: pass operation= to use a source or mask."
            )
        return Inputs(references=references)
    if source is None:
        raise UnsupportedRequest(
            f"{operation} needs a source image: pass source=, or a target whose field has one."
        )
    data, image = read(source, "source image")
    cleaned = clean_input(data, "source image")
    if mask is None and operation in NEEDS_MASK and not _transparent(cleaned):
        # A source with transparent pixels marks what to change itself (its alpha channel).
        raise UnsupportedRequest(
            f"{operation} needs a mask: an image or (left, top, right, bottom), or a source "
            "whose transparent pixels mark what to change."
        )
    if mask is not None and operation not in TAKES_MASK:
        raise UnsupportedRequest(f"{operation} takes no mask.")
    return Inputs(
        operation=operation,
        source=cleaned,
        source_image=image,
        mask=None if mask is None else _mask(mask, cleaned),
        references=references,
    )


def _transparent(image: CleanInput) -> bool:
    """Return whether a cleaned image has any pixel that is not fully opaque."""
    with Image.open(io.BytesIO(image.content)) as opened:
        if "A" not in opened.getbands() and "transparency" not in opened.info:
            return False
        low, _ = opened.convert("RGBA").getchannel("A").getextrema()
        return low < 255


def _references(reference: Any) -> tuple[CleanInput, ...]:
    if reference is None:
        return ()
    items = reference if isinstance(reference, list | tuple) else [reference]
    return tuple(
        clean_input(read(item, f"reference image {index}")[0], f"reference image {index}")
        for index, item in enumerate(items, start=1)
    )


def _mask(mask: Any, source: CleanInput) -> CleanInput:
    if isinstance(mask, list | tuple):
        return rectangle_mask(mask, source.width, source.height)
    cleaned = clean_input(read(mask, "mask")[0], "mask", grayscale=True)
    if (cleaned.width, cleaned.height) != (source.width, source.height):
        raise UnsupportedRequest(
            f"The mask is {cleaned.width}x{cleaned.height} pixels; it must be the source "
            f"image's size, {source.width}x{source.height}."
        )
    return cleaned


def rectangle_mask(box: Sequence[Any], width: int, height: int) -> CleanInput:
    """Return a mask of ``width`` x ``height``: white inside ``box`` (left, top, right, bottom)."""
    try:
        left, top, right, bottom = (int(value) for value in box)
    except (TypeError, ValueError) as err:
        raise UnsupportedRequest(
            "A mask rectangle is four whole numbers: (left, top, right, bottom)."
        ) from err
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise UnsupportedRequest(
            f"The mask rectangle {(left, top, right, bottom)} must lie inside the source image, "
            f"0 to {width} across and 0 to {height} down, and not be empty."
        )
    image = Image.new("L", (width, height), 0)
    ImageDraw.Draw(image).rectangle((left, top, right - 1, bottom - 1), fill=255)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return CleanInput(content=buffer.getvalue(), width=width, height=height)


def outpaint_padding(width: int, height: int, ratio: str) -> tuple[int, int, int, int]:
    """Return the (left, top, right, bottom) padding that extends ``width`` x ``height`` to
    ``ratio`` ("16:9"), centred, without cropping."""
    rw, rh = parse_ratio(ratio)
    if width * rh < height * rw:  # too narrow: widen
        extra = round(height * rw / rh) - width
        return (extra // 2, 0, extra - extra // 2, 0)
    extra = round(width * rh / rw) - height
    return (0, extra // 2, 0, extra - extra // 2)
