"""Derived files: smaller WebP/AVIF/JPEG copies of a generated image, marked as AI-generated.

The provider's bytes are stored untouched (they may carry the vendor's C2PA manifest or
watermark). The files made here are new encodes of the upright, metadata-free pixels from
:func:`imagegen.images.load`, at the widths of ``IMAGEGEN["DERIVATIVE_WIDTHS"]`` and in the
formats of ``IMAGEGEN["DERIVATIVE_FORMATS"]``. Each carries one XMP packet that says what it is
(IPTC Digital Source Type ``trainedAlgorithmicMedia``) and which software made it, and nothing
else: no EXIF, no PNG text, no prompt.

With a signer in ``IMAGEGEN["CONTENT_CREDENTIALS"]`` the pipeline then gives each file a signed
C2PA manifest with the original as its parent (:func:`imagegen.provenance.sign_derived`); the
XMP stays, for tools that read only IPTC.

This runs in the follow-up job of a stored image (:mod:`imagegen.pipeline.deriving`), never
during a request or inside ``generate()``.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, features

from imagegen.conf import imagegen_settings
from imagegen.version import __version__

#: IPTC's Digital Source Type for media created by a trained model (IPTC NewsCodes).
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

#: Format name -> (Pillow format, MIME type, encoder parameters). The parameters are fixed, so
#: the same pixels always give the same bytes (and so the same content-addressed name).
#: Chosen by measurement (benchmarks/derivatives.py, 1024 px originals, widths 480/960/1024):
#: at the same quality settings, WebP ``method`` 1 encodes three to four times faster than 4
#: and AVIF ``speed`` 9 twice as fast as 8, at the same SSIM against the source (within
#: 0.002). AVIF files are about 6 % larger; WebP ones about 30 %, which matters little since
#: WebP only serves the browsers that cannot show AVIF.
FORMATS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "webp": ("WEBP", "image/webp", {"quality": 80, "method": 1}),
    "avif": ("AVIF", "image/avif", {"quality": 60, "speed": 9}),
    "jpeg": ("JPEG", "image/jpeg", {"quality": 82, "optimize": True, "progressive": True}),
}

_XMP_TEMPLATE = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/">
   <Iptc4xmpExt:DigitalSourceType>{source_type}</Iptc4xmpExt:DigitalSourceType>
   <xmp:CreatorTool>{creator_tool}</xmp:CreatorTool>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="r"?>"""


@dataclass(frozen=True, kw_only=True)
class Derivative:
    """One encoded derived file, not yet stored."""

    width: int
    height: int
    format: str
    mime_type: str
    content: bytes
    #: Whether ``content`` carries a C2PA manifest signed by the site (see imagegen.provenance).
    signed: bool = False

    def record(self, name: str) -> dict[str, Any]:
        """Return the entry kept in ``GeneratedImage.derivatives`` once stored as ``name``."""
        entry = {
            "width": self.width,
            "height": self.height,
            "format": self.format,
            "mime_type": self.mime_type,
            "name": name,
            "bytes": len(self.content),
        }
        if self.signed:
            entry["signed"] = True
        return entry


@functools.cache
def xmp_packet() -> bytes:
    """Return the XMP packet written into every derived file."""
    text = _XMP_TEMPLATE.format(
        source_type=TRAINED_ALGORITHMIC_MEDIA, creator_tool=f"django-imagegen {__version__}"
    )
    return text.encode("utf-8")


def plan_widths(width: int, widths: list[int] | tuple[int, ...]) -> list[int]:
    """Return the widths to make for an image ``width`` pixels wide, smallest first.

    Nothing is upscaled: configured widths at or above ``width`` are dropped, and if any were,
    one file at the image's own width takes their place (so a small image still gets one).
    """
    wanted = sorted({int(w) for w in widths})
    kept = [w for w in wanted if w < width]
    if len(kept) < len(wanted):
        kept.append(width)
    return kept


def available_formats(formats: list[str] | tuple[str, ...]) -> list[str]:
    """Return the known formats of ``formats`` that this Pillow can write, in order, once each."""
    result: list[str] = []
    for name in formats:
        fmt = str(name).lower()
        if fmt in FORMATS and fmt not in result and features.check(fmt if fmt != "jpeg" else "jpg"):
            result.append(fmt)
    return result


def make_derivatives(
    image: Image.Image,
    *,
    widths: list[int] | tuple[int, ...] | None = None,
    formats: list[str] | tuple[str, ...] | None = None,
) -> list[Derivative]:
    """Encode ``image`` (from :func:`imagegen.images.load`) at each planned width and format.

    ``widths`` and ``formats`` default to the ``DERIVATIVE_WIDTHS`` and ``DERIVATIVE_FORMATS``
    settings. The result is ordered by width, then by the order of ``formats``.
    """
    if widths is None:
        widths = imagegen_settings.DERIVATIVE_WIDTHS or []
    if formats is None:
        formats = imagegen_settings.DERIVATIVE_FORMATS or []
    names = available_formats(formats)
    if not names:
        return []
    made = []
    for width in plan_widths(image.width, widths):
        height = max(1, round(image.height * width / image.width))
        scaled = image if width == image.width else _resize(image, width, height)
        for name in names:
            made.append(_encode(scaled, name))
    return made


def _resize(image: Image.Image, width: int, height: int) -> Image.Image:
    # Bicubic takes about two thirds of Lanczos's time at these scales, for an SSIM of 0.996
    # and more against a Lanczos resample (benchmarks/derivatives.py): no visible difference.
    # reducing_gap lets Pillow shrink by a whole factor cheaply first when the scale allows.
    return image.resize((width, height), Image.Resampling.BICUBIC, reducing_gap=2.0)


def _encode(image: Image.Image, name: str) -> Derivative:
    pil_format, mime_type, params = FORMATS[name]
    if pil_format == "JPEG" and image.mode != "RGB":
        # JPEG has no alpha: flatten onto white, as a page background would show it.
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A") if "A" in image.getbands() else None)
        image = background
    buffer = io.BytesIO()
    # Only our XMP is passed: no exif=, icc_profile= or text, so nothing else is written.
    image.save(buffer, format=pil_format, xmp=xmp_packet(), **params)
    return Derivative(
        width=image.width,
        height=image.height,
        format=name,
        mime_type=mime_type,
        content=buffer.getvalue(),
    )
