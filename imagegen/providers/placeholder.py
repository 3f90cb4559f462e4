"""An offline provider that paints deterministic gradient art, for development, tests and demos.

The same prompt, seed, size and format always give byte-identical images, and nothing leaves the
machine, so the placeholder costs nothing and works without credentials or a network.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
import zlib
from decimal import Decimal
from typing import Any, ClassVar

from PIL import Image, ImageChops, ImageColor, ImageStat

from imagegen.exceptions import InvalidProviderError, UnsupportedRequest
from imagegen.providers.base import BaseProvider
from imagegen.types import OPERATIONS, CallContext, ImageOutput, ImageRequest, ImageResult

RGB = tuple[int, int, int]

# Pillow's drawing, filter and font modules (the font module loads FreeType) are imported by the
# functions that paint, on the first render: importing the provider stays light.

#: Pillow format name, fixed encoder parameters and MIME type per output format. The parameters
#: never vary, so the encoded bytes depend on the pixels only; they favour speed over size.
_FORMATS: dict[str, tuple[str, dict[str, Any], str]] = {
    # Run-length zlib suits smooth gradients: smaller and slightly faster than the default.
    "png": ("PNG", {"compress_level": 1, "compress_type": zlib.Z_RLE}, "image/png"),
    "webp": ("WEBP", {"quality": 82, "method": 0, "lossless": False}, "image/webp"),
    "jpeg": ("JPEG", {"quality": 88, "optimize": False, "subsampling": 2}, "image/jpeg"),
}
_FORMATS["jpg"] = _FORMATS["jpeg"]

#: Longest side of the canvas the art is painted on before it is scaled to the requested size;
#: painting small and upscaling keeps 1024x1024 renders well under 100 ms and softens the shapes.
_WORK_SIDE = 160
#: Hue offsets (in turns) of the colour schemes a palette is drawn from.
_SCHEMES = ((0.0, 0.06, -0.06, 0.12), (0.0, 0.5, 0.08, 0.42), (0.0, 0.33, 0.67, 0.08))
_LABEL_WORDS = 6
#: How far (per channel) a pixel may be from the corner colour and still count as background.
_BACKGROUND_TOLERANCE = 24


class PlaceholderProvider(BaseProvider):
    """Render offline, deterministic gradient images with soft shapes and a caption.

    It does every operation on its source image (the first of ``source_images``) with a
    visible, deterministic change: ``edit`` blends the source with the prompt's art,
    ``inpaint`` paints the prompt's art into the mask's white area, ``erase`` fills it with the
    average colour of its surroundings, ``outpaint`` centres the source on a canvas of the requested
    size painted with the prompt's art, ``remove_background`` makes the pixels of the corner
    colour transparent, ``replace_background`` puts what is left on the prompt's art, ``restyle``
    blends the source with its reference (or the prompt's art), ``search_replace`` and
    ``search_recolor`` change the centre third (there is nothing to search with offline), and
    ``upscale`` resamples to the requested size (Lanczos).
    """

    catalog_key: ClassVar[str] = "placeholder"
    display_name: ClassVar[str] = "Offline placeholder"
    default_model: ClassVar[str] = "placeholder"
    operations: ClassVar[tuple[str, ...]] = OPERATIONS

    def __init__(self, *, label: bool = True, palette: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.label = bool(label)
        self.base_hue: float | None = None
        if palette is not None:
            try:
                r, g, b = ImageColor.getrgb(palette)[:3]
            except (ValueError, AttributeError, TypeError) as exc:
                raise InvalidProviderError(
                    f"PlaceholderProvider palette must be a colour such as '#336699', "
                    f"got {palette!r}."
                ) from exc
            self.base_hue = colorsys.rgb_to_hsv(r / 255, g / 255, b / 255)[0]

    def _generate(self, request: ImageRequest, context: CallContext) -> ImageResult:
        """Render ``request.count`` images, one seed apart, and return them at no cost."""
        fmt = request.output_format.lower()
        if fmt not in _FORMATS:
            raise UnsupportedRequest(
                f"The placeholder cannot write {request.output_format!r} images.",
                provider=self.alias,
            )
        pil_format, params, mime_type = _FORMATS[fmt]
        prompt = request.prompt
        base_seed = request.seed if request.seed is not None else _prompt_seed(prompt)
        images = []
        for index in range(request.count):
            seed = base_seed + index
            if request.operation == "generate":
                image = self.render(prompt, seed, request.width, request.height)
            else:
                image = self.operate(request, seed)
            if pil_format == "JPEG" and image.mode != "RGB":
                image = image.convert("RGB")  # JPEG has no transparency
            buffer = io.BytesIO()
            image.save(buffer, pil_format, **params)
            images.append(ImageOutput(content=buffer.getvalue(), mime_type=mime_type, seed=seed))
        return ImageResult(
            images=tuple(images),
            model=self.model,
            cost=Decimal("0"),
            usage={"images": len(images)},
        )

    def operate(self, request: ImageRequest, seed: int) -> Image.Image:
        """Return the result of ``request``'s operation on its source image."""
        if not request.source_images:
            raise UnsupportedRequest(
                f"{request.operation} needs a source image.", provider=self.alias
            )
        size = (request.width, request.height)
        source = _open(request.source_images[0])
        operation = request.operation
        if operation == "upscale":
            return source.resize(size, Image.Resampling.LANCZOS)
        if operation == "remove_background":
            return _remove_background(source.resize(size, Image.Resampling.LANCZOS))
        art = self.render(request.prompt, seed, *size)
        if operation == "replace_background":
            cutout = _remove_background(source.resize(size, Image.Resampling.LANCZOS))
            art.paste(cutout, (0, 0), cutout)
            return art
        if operation == "restyle":
            # The look comes from the first reference image, else from the prompt's art.
            look = art
            if len(request.source_images) > 1:
                look = _open(request.source_images[1]).convert("RGB").resize(size)
            shape = source.convert("RGB").resize(size, Image.Resampling.LANCZOS)
            return Image.blend(shape, look, 0.6)
        if operation in ("search_replace", "search_recolor"):
            # Offline there is nothing to search with: the centre third stands in for the find.
            source = source.convert("RGB").resize(size, Image.Resampling.LANCZOS)
            box = (size[0] // 3, size[1] // 3, 2 * size[0] // 3, 2 * size[1] // 3)
            mask = Image.new("L", size, 0)
            mask.paste(255, box)
            fill = art if operation == "search_replace" else Image.blend(source, art, 0.7)
            return Image.composite(fill, source, mask)
        if operation == "outpaint":
            # The planned padding places the source; without one it is centred.
            left, top = request.padding[:2] if request.padding else (0, 0)
            if not request.padding:
                left, top = (size[0] - source.width) // 2, (size[1] - source.height) // 2
            art.paste(source.convert("RGB"), (left, top))
            return art
        source = source.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        if request.mask is not None:
            mask = _open(request.mask).convert("L").resize(size, Image.Resampling.NEAREST)
            mask = mask.point(lambda value: 255 if value > 127 else 0)
        else:
            mask = None
        if operation in ("inpaint", "erase") and mask is not None:
            fill = art if operation == "inpaint" else _surroundings(source, mask)
            return Image.composite(fill, source, mask)
        # edit (and an edit with a mask: only the masked area changes).
        blended = Image.blend(source, art, 0.5)
        return blended if mask is None else Image.composite(blended, source, mask)

    def render(self, prompt: str, seed: int, width: int, height: int) -> Image.Image:
        """Return the RGB image for ``prompt`` and ``seed`` at exactly ``width`` x ``height``."""
        from PIL import ImageFilter  # heavy: loaded on the first render (see the top)

        digest = hashlib.sha256(f"{seed}\x1f{prompt}".encode("utf-8", "surrogatepass")).digest()
        # Random seeded with an int is stable across processes and Python versions, unlike hash().
        rng = random.Random(int.from_bytes(digest, "big"))
        colours = _palette(rng, self.base_hue)
        scale = min(_WORK_SIDE, max(width, height)) / max(width, height)
        size = (max(2, round(width * scale)), max(2, round(height * scale)))
        canvas = _gradient(size, colours[:4]).convert("RGBA")
        _draw_shapes(canvas, rng, colours)
        # Blurring the small canvas makes shape edges soft after upscaling.
        canvas = canvas.filter(ImageFilter.GaussianBlur(max(size) / 120)).convert("RGB")
        image = canvas.resize((width, height), Image.Resampling.BICUBIC)
        if self.label:
            _draw_label(image, prompt)
        return image


def _open(data: bytes) -> Image.Image:
    """Return the decoded image in ``data`` (the pipeline has checked and cleaned it)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _surroundings(image: Image.Image, mask: Image.Image) -> Image.Image:
    """Return a plain image of the average colour of ``image`` outside ``mask``."""
    outside = ImageChops.invert(mask)
    mean = ImageStat.Stat(image, mask=outside if outside.getbbox() else None).mean
    return Image.new("RGB", image.size, tuple(round(value) for value in mean[:3]))


def _remove_background(image: Image.Image) -> Image.Image:
    """Return ``image`` with the pixels close to its top-left corner's colour transparent."""
    rgb = image.convert("RGB")
    background = Image.new("RGB", rgb.size, rgb.getpixel((0, 0)))
    distance = ImageChops.difference(rgb, background).convert("L")
    alpha = distance.point(lambda value: 0 if value <= _BACKGROUND_TOLERANCE else 255)
    if "A" in image.getbands():
        alpha = ImageChops.multiply(alpha, image.getchannel("A"))
    result = rgb.convert("RGBA")
    result.putalpha(alpha)
    return result


def _prompt_seed(prompt: str) -> int:
    """Return a stable non-negative 31-bit seed derived from ``prompt``."""
    digest = hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def _palette(rng: random.Random, base_hue: float | None) -> list[RGB]:
    """Return six harmonious colours: four gradient corners, then two accents for the shapes."""
    hue, offsets = rng.random(), rng.choice(_SCHEMES)
    if base_hue is not None:
        # A configured hue should dominate the image, so keep to its analogous neighbours.
        hue, offsets = base_hue, _SCHEMES[0]
    saturation = rng.uniform(0.4, 0.7)
    value = rng.uniform(0.72, 0.92)
    colours = []
    for i, offset in enumerate((*offsets, rng.uniform(-0.1, 0.1), rng.uniform(0.4, 0.6))):
        # Alternating lightness keeps the gradient from looking flat even within one hue.
        v = min(1.0, value + (0.12 if i % 2 else -0.12) + rng.uniform(-0.04, 0.04))
        s = min(1.0, max(0.0, saturation + rng.uniform(-0.12, 0.12)))
        r, g, b = colorsys.hsv_to_rgb((hue + offset) % 1.0, s, v)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    corners = colours[:4]
    rng.shuffle(corners)
    return corners + colours[4:]


def _gradient(size: tuple[int, int], corners: list[RGB]) -> Image.Image:
    """Return a bilinear gradient between four corner colours (top-left, top-right, ...)."""
    # Pillow's own linear gradient as a blend mask avoids a per-pixel Python loop.
    vertical = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    horizontal = vertical.transpose(Image.Transpose.ROTATE_90).transpose(
        Image.Transpose.FLIP_LEFT_RIGHT
    )
    horizontal = horizontal.resize(size, Image.Resampling.BILINEAR)
    top = Image.composite(
        Image.new("RGB", size, corners[1]), Image.new("RGB", size, corners[0]), horizontal
    )
    bottom = Image.composite(
        Image.new("RGB", size, corners[3]), Image.new("RGB", size, corners[2]), horizontal
    )
    return Image.composite(bottom, top, vertical)


def _draw_shapes(canvas: Image.Image, rng: random.Random, colours: list[RGB]) -> None:
    """Composite a diagonal band and a few translucent circles onto ``canvas`` in place."""
    from PIL import ImageDraw  # heavy: loaded on the first render (see the top)

    w, h = canvas.size
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    # A light band across the image from one edge to the other, at a hash-derived angle.
    x0, x1 = rng.uniform(-0.3, 0.7) * w, rng.uniform(0.3, 1.3) * w
    band = rng.uniform(0.12, 0.3) * max(w, h)
    draw.polygon(
        [(x0, -1), (x0 + band, -1), (x1 + band, h + 1), (x1, h + 1)],
        fill=(255, 255, 255, rng.randint(28, 56)),
    )
    canvas.alpha_composite(layer)
    for _ in range(rng.randint(3, 5)):
        layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
        cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
        radius = rng.uniform(0.1, 0.38) * max(w, h)
        r, g, b = rng.choice(colours)
        if rng.random() < 0.5:
            # Lighter tints read as highlights; untinted accents add depth.
            r, g, b = (r + 255) // 2, (g + 255) // 2, (b + 255) // 2
        ImageDraw.Draw(layer).ellipse(
            (cx - radius, cy - radius, cx + radius, cy + radius),
            fill=(r, g, b, rng.randint(70, 150)),
        )
        canvas.alpha_composite(layer)


def _draw_label(image: Image.Image, prompt: str) -> None:
    """Write the prompt's first words in the bottom-left corner over a translucent backdrop."""
    from PIL import ImageDraw, ImageFont  # heavy (FreeType): loaded on the first render

    width, height = image.size
    words = prompt.split()[:_LABEL_WORDS]
    font_size = min(width, height) // 20
    if not words or font_size < 8:
        return  # Too small to be legible; the art alone is the placeholder.
    font = ImageFont.load_default(size=font_size)
    margin, pad = max(4, min(width, height) // 32), max(2, font_size // 3)
    text = " ".join(words) + ("…" if len(prompt.split()) > _LABEL_WORDS else "")
    available = width - 2 * margin - 2 * pad
    while text and font.getlength(text) > available:
        text = text[:-2].rstrip() + "…" if len(text) > 1 else ""
    if not text.strip("…"):
        return
    left, top, right, bottom = font.getbbox(text)
    box_w, box_h = round(right - left) + 2 * pad, round(bottom - top) + 2 * pad
    x, y = margin, height - margin - box_h
    if y < 0:
        return
    # Compositing only the label's region keeps alpha blending cheap on large images.
    region = image.crop((x, y, x + box_w, y + box_h)).convert("RGBA")
    overlay = Image.new("RGBA", region.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rounded_rectangle((0, 0, box_w - 1, box_h - 1), radius=pad, fill=(20, 20, 28, 110))
    draw.text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 235))
    region.alpha_composite(overlay)
    image.paste(region.convert("RGB"), (x, y))
