"""Placeholders computed once, in the follow-up job: dominant colour, a tiny WebP, a ThumbHash.

All three come from one thumbnail of at most :data:`THUMB_SIDE` pixels, so they cost a few
milliseconds per image. Templates read them from the ``GeneratedImage`` row and never open a
file: ``dominant_color`` is ``#rrggbb``, ``lqip`` is a ``data:image/webp;base64,...`` URI of a
few hundred characters, ``thumbhash`` is the base64 `ThumbHash <https://evanw.github.io/thumbhash/>`_
(encoded with the ``thash`` package) for client-side decoders.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import thash
from PIL import Image, ImageFilter

#: Longest side of the thumbnail every placeholder is computed from.
#: Longest side of the copy the ThumbHash is computed from.
HASH_SIDE = 16
THUMB_SIDE = 32
#: WebP quality of the data-URI placeholder; it is blurred when shown, so detail is wasted bytes.
LQIP_QUALITY = 40
#: Gaussian blur radius applied to the thumbnail before it is encoded: it takes out the fine
#: detail nobody sees in a placeholder and roughly halves the data URI of a detailed image.
LQIP_BLUR = 1


@dataclass(frozen=True, kw_only=True)
class Placeholders:
    """The placeholder values stored on a ``GeneratedImage``."""

    dominant_color: str
    lqip: str
    thumbhash: str


def make_placeholders(image: Image.Image) -> Placeholders:
    """Return the placeholders for ``image`` (upright RGB or RGBA, from ``images.load``)."""
    thumb = thumbnail(image)
    return Placeholders(
        dominant_color=dominant_color(thumb),
        lqip=data_uri(thumb),
        thumbhash=thumbhash(thumb),
    )


def thumbhash(thumb: Image.Image, side: int = HASH_SIDE) -> str:
    """Return the base64 ThumbHash of ``thumb``, encoded from a copy at most ``side`` px.

    ThumbHash keeps at most 7 cosine terms per axis, which 16 samples resolve; encoding from
    16 px instead of 32 makes thash's pure-Python path four times faster.
    """
    small = thumbnail(thumb, side)
    return base64.b64encode(bytes(thash.encode(small, resize=False))).decode("ascii")


def thumbnail(image: Image.Image, side: int = THUMB_SIDE) -> Image.Image:
    """Return ``image`` scaled so that its longer side is at most ``side`` pixels."""
    scale = min(1.0, side / max(image.width, image.height))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size == image.size:
        return image.copy()
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def dominant_color(image: Image.Image) -> str:
    """Return the most common colour of ``image`` (after reducing it to 8 colours) as #rrggbb.

    Transparent areas count as white, the usual page background.
    """
    if "A" in image.getbands():
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    quantized = image.convert("RGB").quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    counts = quantized.getcolors() or [(1, 0)]
    _count, index = max(counts)
    palette = quantized.getpalette() or [0, 0, 0]
    red, green, blue = palette[index * 3 : index * 3 + 3]
    return f"#{red:02x}{green:02x}{blue:02x}"


def data_uri(image: Image.Image, quality: int = LQIP_QUALITY, blur: float = LQIP_BLUR) -> str:
    """Return ``image``, softened, as a ``data:image/webp;base64,...`` URI with no metadata."""
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    buffer = io.BytesIO()
    image.save(buffer, format="WEBP", quality=quality, method=6)
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
