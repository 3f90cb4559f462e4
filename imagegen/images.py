"""Pillow work on provider output: check it before anything is stored, decode it once later.

Provider bytes are untrusted input. They are checked for size before parsing, opened with an
explicit format allow-list, refused above a pixel cap (Pillow's decompression-bomb warning is
an error here), and checked whole so truncated or corrupt data fails before storage
(:func:`check`): a PNG by the CRC of every chunk through ``IEND``, without inflating or
decoding its pixels, which is what costs; any other format by a full decode. The follow-up
job decodes a stored original once (:func:`decode_and_open`), which also refuses pixel data
that only a crafted file can hold: intact chunks around a broken compressed stream.

:func:`load` gives the pixels for derived files (:mod:`imagegen.derivatives`,
:mod:`imagegen.lqip`): upright (EXIF orientation applied), in RGB or RGBA, in sRGB where an ICC
profile said otherwise, and with every piece of the provider's metadata dropped, since EXIF,
XMP and PNG text chunks can hold the prompt.
"""

from __future__ import annotations

import io
import warnings
import zlib
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from imagegen.conf import imagegen_settings
from imagegen.exceptions import InvalidResponse, UnsupportedRequest

MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "AVIF": "image/avif"}
#: EXIF orientations that turn the image a quarter: the displayed width is the stored height.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})


@dataclass(frozen=True, kw_only=True)
class DecodedImage:
    """What decoding learned about an image: its real format and its size as displayed.

    ``width`` and ``height`` follow the EXIF orientation, as browsers do.
    """

    format: str
    mime_type: str
    width: int
    height: int


def check(data: bytes) -> DecodedImage:
    """Check that ``data`` is a safe, whole image in an allowed format; return its facts.

    What a run does to every provider image before storing it. A PNG is checked without
    inflating its pixel data: its chunks are read through ``IEND`` and each one's CRC
    verified, so a truncated or damaged file is refused. Other formats are decoded fully.
    Raises :class:`~imagegen.exceptions.InvalidResponse` with a specific ``code``
    (``image_too_large``, ``not_an_image``, ``decompression_bomb``, ``corrupt_image``) and a
    message an editor can read.
    """
    with _open(data, load=False) as image:
        if image.format == "PNG":
            return _verified_png_facts(image)
        _load(image)
        return facts(image)


def decode(data: bytes) -> DecodedImage:
    """Check ``data`` like :func:`check`, then decode its pixels too; return its facts."""
    info, image = decode_and_open(data)
    image.close()
    return info


def decode_and_open(data: bytes) -> tuple[DecodedImage, Image.Image]:
    """Check ``data`` like :func:`check`; return its facts and its decoded image (caller closes).

    The follow-up job decodes a stored original once and makes every derived file from these
    pixels. The decode refuses, with ``corrupt_image``, the pixel data :func:`check` does not
    read: a compressed stream that is broken, too short or holds bad row filters.
    """
    image = _open(data, load=False)
    try:
        if image.format == "PNG":
            # verify() leaves an image unusable: check a second opening of the same bytes.
            with Image.open(io.BytesIO(data), formats=["PNG"]) as verified:
                info = _verified_png_facts(verified)
            # Pillow decodes a compressed stream that ends early, or whose checksum is
            # wrong, without a word: the rows must be checked first.
            if not _png_pixels_complete(data):
                raise InvalidResponse(
                    "The provider returned a truncated or corrupt image.", code="corrupt_image"
                )
            _load(image)
        else:
            _load(image)
            info = facts(image)
    except BaseException:
        image.close()
        raise
    return info, image


def _verified_png_facts(image: Image.Image) -> DecodedImage:
    """Verify every chunk's CRC of a PNG :func:`_open` opened; return its facts, no pixels decoded.

    The image cannot be used afterwards (Pillow's ``verify()`` consumes it).
    """
    try:
        image.verify()  # reads every chunk through IEND, checking each CRC
        width, height = image.size
        # Pillow's PNG getexif() would decode the pixels to reach chunks after the image
        # data; verify() has read them all into ``info`` already.
        orientation = Image.Image.getexif(image).get(ExifTags.Base.Orientation)
    except Exception as err:
        raise InvalidResponse(
            "The provider returned a truncated or corrupt image.", code="corrupt_image"
        ) from err
    if orientation in _QUARTER_TURNS:
        width, height = height, width
    return DecodedImage(format="PNG", mime_type=MIME_TYPES["PNG"], width=width, height=height)


#: Channels of each PNG colour type (gray, RGB, palette, gray + alpha, RGBA).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def _png_pixels_complete(data: bytes) -> bool:
    """Return whether a PNG's compressed pixel data inflates to exactly its rows, each with a
    valid filter byte; cheap beside a decode, which also undoes the filters."""
    chunks, offset, header = [], 8, b""
    while offset + 8 <= len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        elif kind == b"IEND":
            break
        offset += 12 + length
    if len(header) != 13 or header[8] not in (1, 2, 4, 8, 16) or header[9] not in _PNG_CHANNELS:
        return False
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:8], "big")
    bits = header[8] * _PNG_CHANNELS[header[9]]
    if header[12]:  # Adam7: seven passes of their own row lengths
        rows = []
        for x0, y0, dx, dy in _ADAM7:
            pass_width, pass_height = -(-(width - x0) // dx), -(-(height - y0) // dy)
            if pass_width > 0 and pass_height > 0:
                rows.append((pass_height, 1 + -(-pass_width * bits // 8)))
    else:
        rows = [(height, 1 + -(-width * bits // 8))]
    expected = sum(count * stride for count, stride in rows)
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(b"".join(chunks), expected + 1)
    except zlib.error:
        return False
    if len(raw) != expected or not inflate.eof:
        return False
    start = 0
    for count, stride in rows:
        if max(raw[start : start + count * stride : stride]) > 4:  # filter types are 0 to 4
            return False
        start += count * stride
    return True


#: The Adam7 passes: first column, first row, column step, row step.
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def facts(image: Image.Image) -> DecodedImage:
    """Return the format and displayed size of an image opened by :func:`_open`."""
    fmt = image.format
    width, height = image.size
    if image.getexif().get(ExifTags.Base.Orientation) in _QUARTER_TURNS:
        width, height = height, width
    mime_type = MIME_TYPES.get(fmt) or Image.MIME.get(fmt, "application/octet-stream")
    return DecodedImage(format=fmt, mime_type=mime_type, width=width, height=height)


def load(data: bytes) -> Image.Image:
    """Decode ``data`` with the checks of :func:`decode`; return clean pixels to derive from."""
    return clean(_open(data))


def clean(upright: Image.Image) -> Image.Image:
    """Return a loaded image made ready to derive from (it may be the same object, changed).

    The image is turned upright by its EXIF orientation, converted to RGB (RGBA if it has
    transparency) and to sRGB if it carries another ICC profile, and has an empty ``info``:
    nothing the provider embedded reaches a file encoded from it.
    """
    ImageOps.exif_transpose(upright, in_place=True)
    alpha = "A" in upright.getbands() or "transparency" in upright.info
    mode = "RGBA" if alpha else "RGB"
    icc = upright.info.get("icc_profile")
    converted = _to_srgb(upright, icc, mode) if icc else None
    if converted is not None:
        upright = converted
    elif upright.mode != mode:
        upright = upright.convert(mode)
    upright.info = {}
    return upright


@dataclass(frozen=True, kw_only=True)
class CleanInput:
    """An input image made safe to send: upright, metadata-free PNG bytes, and their size."""

    content: bytes
    width: int
    height: int


def clean_input(data: bytes, name: str, *, grayscale: bool = False) -> CleanInput:
    """Check an input image (a source, mask or reference) like a result; return it cleaned.

    ``data`` goes through the checks of :func:`decode` (byte cap, format allow-list, pixel cap,
    a full decode), is turned upright by its EXIF orientation, and is re-encoded as a PNG with
    no metadata at all: no EXIF (and so no GPS position), no XMP, no ICC profile, no text
    chunks. A mask is made ``grayscale`` (white marks the area to change). Raises
    :class:`~imagegen.exceptions.UnsupportedRequest` naming ``name`` (such as "source image")
    and the limit it broke.
    """
    max_bytes = int(imagegen_settings.MAX_IMAGE_BYTES)
    if not data:
        raise UnsupportedRequest(f"The {name} is empty.")
    if len(data) > max_bytes:
        raise UnsupportedRequest(
            f"The {name} is {len(data):,} bytes, more than the {max_bytes:,}-byte limit "
            "(IMAGEGEN['MAX_IMAGE_BYTES'])."
        )
    try:
        image = _open(data)
    except InvalidResponse as err:
        raise UnsupportedRequest(_input_problem(name, err.code)) from err
    with image:
        upright = clean(image)
        if grayscale:
            upright = upright.convert("L")
        buffer = io.BytesIO()
        upright.save(buffer, "PNG")
        width, height = upright.size
    return CleanInput(content=buffer.getvalue(), width=width, height=height)


def _input_problem(name: str, code: str) -> str:
    if code == "not_an_image":
        allowed = " or ".join(fmt.upper() for fmt in imagegen_settings.ALLOWED_FORMATS)
        return f"The {name} is not a {allowed} image (IMAGEGEN['ALLOWED_FORMATS'])."
    if code == "decompression_bomb":
        limit = int(imagegen_settings.MAX_IMAGE_PIXELS)
        return (
            f"The {name} has too many pixels: the limit is {limit:,} "
            "(IMAGEGEN['MAX_IMAGE_PIXELS'])."
        )
    return f"The {name} is truncated or corrupt."


def _to_srgb(image: Image.Image, icc: bytes, mode: str) -> Image.Image | None:
    """Return ``image`` converted from its ICC profile to sRGB in ``mode``, or None."""
    try:
        # ImageCms needs Pillow's optional LittleCMS support: import it only for ICC images.
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(image, source, srgb, outputMode=mode)
    except Exception:  # noqa: BLE001 - a broken or unsupported profile: convert plainly
        return None


def _open(data: bytes, *, load: bool = True) -> Image.Image:
    """Open and fully load ``data`` under the byte, format and pixel caps; the caller closes it.

    With ``load=False`` the pixels are left to decode on first use (:func:`_load` checks).
    """
    max_bytes = int(imagegen_settings.MAX_IMAGE_BYTES)
    if len(data) > max_bytes:
        raise InvalidResponse(
            f"The provider returned {len(data):,} bytes, more than the {max_bytes:,}-byte limit.",
            code="image_too_large",
        )
    if not data:
        raise InvalidResponse("The provider returned an empty image.", code="not_an_image")
    allowed = [fmt.upper() for fmt in imagegen_settings.ALLOWED_FORMATS]
    max_pixels = int(imagegen_settings.MAX_IMAGE_PIXELS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # Only the allowed decoders ever see the bytes.
            image = Image.open(io.BytesIO(data), formats=allowed)
        except UnidentifiedImageError as err:
            raise InvalidResponse(
                f"The provider returned data that is not a {' or '.join(allowed)} image.",
                code="not_an_image",
            ) from err
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise _bomb() from err
        except Exception as err:
            raise InvalidResponse(
                "The provider returned an image that could not be read.", code="corrupt_image"
            ) from err
        try:
            width, height = image.size
            if width * height > max_pixels:
                raise _bomb(width, height, max_pixels)
            if load:
                _load(image)
        except BaseException:
            image.close()
            raise
    return image


def _load(image: Image.Image) -> None:
    """Decode the pixels of an image :func:`_open` opened; raise InvalidResponse if they fail."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise _bomb() from err
        except Exception as err:
            raise InvalidResponse(
                "The provider returned a truncated or corrupt image.", code="corrupt_image"
            ) from err


def _bomb(width: int = 0, height: int = 0, limit: int = 0) -> InvalidResponse:
    size = f" ({width}x{height} pixels, over the {limit:,}-pixel limit)" if width else ""
    return InvalidResponse(
        f"The provider returned an image too large to decode safely{size}.",
        code="decompression_bomb",
    )
