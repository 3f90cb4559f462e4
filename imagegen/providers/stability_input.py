"""What Stability AI is sent: the endpoint an operation goes to, and its multipart form.

The wire format follows provider-apis.md §1.1 and §1.2: every call is a multipart POST under
``/v2beta/stable-image/``. ``ImageRequest.operation`` picks the endpoint; the model option
matters only for ``generate``:

- ``generate``: ``generate/ultra``, ``generate/core`` or ``generate/sd3`` (any SD3.5 model id,
  sent as ``model``). One image (a reference) makes it ``control/style``: a new image in that
  image's style, for any model. With ``extra["strength"]`` the image is instead the start of an
  image-to-image generation (Ultra and SD3 only).
- ``inpaint``, ``erase``: ``edit/inpaint``, ``edit/erase``; the mask is optional (without one the
  image's alpha channel is used, §1.2).
- ``outpaint``: ``edit/outpaint``; ``ImageRequest.padding`` (left, top, right, bottom) becomes
  ``left``/``up``/``right``/``down`` (``extra`` may set them too, the older spelling).
- ``search_replace``, ``search_recolor``: ``edit/search-and-replace`` with ``search`` as
  ``search_prompt``, ``edit/search-and-recolor`` with it as ``select_prompt``. The older spelling
  ``edit`` with ``extra["search_prompt"]`` or ``extra["select_prompt"]`` goes there too.
- ``remove_background``: ``edit/remove-background``.
- ``replace_background``: ``edit/replace-background-and-relight`` (a polled job): the source is
  ``subject_image``, the prompt ``background_prompt``, a reference ``background_reference``;
  the relight fields (``light_source_direction``...) come from ``extra``.
- ``upscale``: ``upscale/fast``, ``upscale/conservative`` or ``upscale/creative`` as
  ``extra["upscaler"]`` says; without it the fast one (four times the size) when the source fits
  it and the asked scale is at most 4, else the conservative one (about 4 megapixels).
- ``restyle``: ``control/style-transfer`` with a reference (``init_image`` the source,
  ``style_image`` the reference), else ``control/structure`` (the source's structure, the
  prompt's look).

Each endpoint gets only the fields it takes (:data:`~imagegen.catalog.stability.ENDPOINT_FIELDS`);
any other ``extra`` key is sent as a form field (``cfg_scale``, ``grow_mask``, ``creativity``...).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from PIL import Image, UnidentifiedImageError

from imagegen.catalog.stability import (
    ENDPOINT_FIELDS,
    FAST_UPSCALE_MAX_SIDE,
    IMAGE_PARTS,
    INPUT_PIXELS,
    MASKED,
    OUTPAINT_MAX_SIDE,
    nearest_ratio,
)
from imagegen.providers.http.inputs import file_part
from imagegen.types import ImageRequest

if TYPE_CHECKING:
    from imagegen.providers.stability import StabilityProvider

__all__ = [
    "EDITS",
    "RESERVED",
    "UPSCALERS",
    "endpoint_for",
    "image_parts",
    "multipart_form",
    "outpaint_sides",
]

EDITS = {
    "inpaint": "edit/inpaint",
    "outpaint": "edit/outpaint",
    "erase": "edit/erase",
    "search_replace": "edit/search-and-replace",
    "search_recolor": "edit/search-and-recolor",
    "remove_background": "edit/remove-background",
    "replace_background": "edit/replace-background-and-relight",
}
#: The form field ``ImageRequest.search`` goes to, by endpoint.
SEARCH_FIELDS = {
    "edit/search-and-replace": "search_prompt",
    "edit/search-and-recolor": "select_prompt",
}
UPSCALERS = ("fast", "conservative", "creative")
OUTPAINT_SIDES = ("left", "right", "up", "down")
# Fields imagegen sets itself; "none" is the dummy part that forces multipart (§1.1).
RESERVED = frozenset(
    {
        *("prompt", "model", "mode", "image", "mask", "none"),
        *("subject_image", "background_reference", "background_prompt"),
        *("init_image", "style_image"),
    }
)
#: ``extra`` keys that steer this provider and are not sent.
CONTROL = frozenset({"upscaler"})
#: The fast upscaler's factor (§1.2: its output is four times the input's width and height).
FAST_SCALE = 4


def endpoint_for(provider: StabilityProvider, request: ImageRequest) -> str:
    """Return the endpoint ``request`` goes to, under ``/v2beta/stable-image/``."""
    operation, extra = request.operation, request.extra
    if operation == "generate":
        if request.source_images and "strength" not in extra:
            return "control/style"
        model = request.model or provider.model
        if model in ("ultra", "core"):
            return f"generate/{model}"
        if model.startswith("sd3"):
            return "generate/sd3"
        raise provider.unsupported(
            f"Stability AI has no model {model!r}; use ultra, core or an SD3.5 model "
            "(sd3.5-large, sd3.5-large-turbo, sd3.5-medium, sd3.5-flash)."
        )
    if operation == "edit":
        # The older spelling of search_replace and search_recolor.
        search, select = extra.get("search_prompt"), extra.get("select_prompt")
        if bool(search) == bool(select):
            raise provider.unsupported(
                'A Stability AI edit needs extra["search_prompt"] (what to replace) or '
                'extra["select_prompt"] (what to recolour), not both; or use the operations '
                "search_replace and search_recolor with search=."
            )
        return "edit/search-and-replace" if search else "edit/search-and-recolor"
    if operation == "upscale":
        return upscaler_for(provider, request)
    if operation == "restyle":
        return "control/style-transfer" if len(request.source_images) > 1 else "control/structure"
    return EDITS[operation]


def upscaler_for(provider: StabilityProvider, request: ImageRequest) -> str:
    """Return the upscale endpoint: ``extra["upscaler"]``'s, else the one the scale needs."""
    chosen = request.extra.get("upscaler")
    if chosen is not None:
        if chosen not in UPSCALERS:
            raise provider.unsupported(
                f'extra["upscaler"] must be one of {", ".join(UPSCALERS)}; got {chosen!r}.'
            )
        return f"upscale/{chosen}"
    size = image_size(request.source_images[0]) if request.source_images else None
    if size is None:
        return "upscale/fast"
    width, height = size
    scale = max(request.width / width, request.height / height)
    return (
        "upscale/fast"
        if scale <= FAST_SCALE and fits_fast(width, height)
        else ("upscale/conservative")
    )


def fits_fast(width: int, height: int) -> bool:
    """Return whether the fast upscaler takes a ``width`` x ``height`` source."""
    return (
        width * height <= INPUT_PIXELS["upscale/fast"]
        and max(width, height) <= FAST_UPSCALE_MAX_SIDE
    )


def image_size(content: bytes) -> tuple[int, int] | None:
    """Return the width and height of an encoded image, or None if Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def outpaint_sides(provider: StabilityProvider, request: ImageRequest) -> dict[str, int]:
    """Return ``ImageRequest.padding`` as outpaint's non-zero ``left``/``up``/``right``/``down``."""
    if request.padding is None:
        return {}
    left, top, right, bottom = request.padding
    sides = {"left": left, "right": right, "up": top, "down": bottom}
    widest = max(sides.values())
    if widest > OUTPAINT_MAX_SIDE:
        raise provider.unsupported(
            f"Stability AI outpaints at most {OUTPAINT_MAX_SIDE} pixels on each side; the "
            f"padding asks for {widest}."
        )
    return {side: pixels for side, pixels in sides.items() if pixels}


def multipart_form(
    provider: StabilityProvider, request: ImageRequest, endpoint: str
) -> tuple[dict, list, list[str]]:
    """Return the text fields, file parts and warnings of a call to ``endpoint`` (§1.2)."""
    extra = dict(request.extra)
    provider.refuse_reserved(request, RESERVED)
    images = image_parts(provider, request, endpoint)
    wanted = ENDPOINT_FIELDS[endpoint]
    if "prompt" in wanted and not request.prompt.strip():
        raise provider.unsupported(f"Stability AI's {endpoint} needs a prompt.")
    image_to_image = endpoint.startswith("generate/") and bool(images)
    ratio = request.aspect_ratio or nearest_ratio(request.width, request.height)
    values = {
        "prompt": request.prompt or None,
        "negative_prompt": request.negative_prompt or None,
        # §1.5: SD3 rejects aspect_ratio in image-to-image; the output follows the image.
        "aspect_ratio": None if image_to_image else ratio,
        "seed": request.seed,
        "style_preset": provider.style_preset,
    }
    fields: dict[str, Any] = {n.rstrip("?"): values[n.rstrip("?")] for n in wanted}
    if endpoint == "generate/sd3":
        fields["model"] = request.model or provider.model
        if image_to_image:
            fields["mode"] = "image-to-image"
    if endpoint in SEARCH_FIELDS and request.search:
        fields[SEARCH_FIELDS[endpoint]] = request.search
    if endpoint == "edit/outpaint":
        fields.update(outpaint_sides(provider, request))
    if endpoint == "edit/replace-background-and-relight":
        fields["background_prompt"] = request.prompt.strip() or None
    fmt, warnings = "jpeg" if request.output_format == "jpg" else request.output_format, []
    if endpoint == "edit/remove-background" and fmt not in ("png", "webp"):
        warnings.append(f"Background removal returns png or webp only; asked for png, not {fmt}.")
        fmt = "png"
    fields["output_format"] = fmt
    fields.update({key: value for key, value in extra.items() if key not in CONTROL})
    check_fields(provider, request, endpoint, fields)
    data = {key: _text(value) for key, value in fields.items() if value is not None}
    parts = [*images, ("mask", request.mask)] if request.mask is not None else images
    files = [(name, file_part(name, content)) for name, content in parts]
    # §1.1: multipart even without a file; the official samples send a dummy "none" part.
    return data, files or [("none", ("none", b"", "application/octet-stream"))], warnings


def check_fields(
    provider: StabilityProvider, request: ImageRequest, endpoint: str, fields: dict[str, Any]
) -> None:
    """Refuse a form ``endpoint`` would refuse for a missing field (§1.2)."""
    refusal = ""
    if endpoint == "edit/outpaint" and not any(fields.get(side) for side in OUTPAINT_SIDES):
        refusal = (
            "Outpainting needs padding=(left, top, right, bottom), or extra['left'], "
            "['right'], ['up'] or ['down']."
        )
    elif endpoint in SEARCH_FIELDS and not fields.get(SEARCH_FIELDS[endpoint]):
        refusal = (
            f"Stability AI's {endpoint} needs search=: what to look for in the source "
            f"(sent as {SEARCH_FIELDS[endpoint]})."
        )
    elif endpoint == "edit/replace-background-and-relight" and not (
        fields.get("background_prompt") or len(request.source_images) > 1
    ):
        refusal = (
            "Replacing the background needs a prompt (the new background) or a reference image."
        )
    if refusal:
        raise provider.unsupported(refusal)


def image_parts(
    provider: StabilityProvider, request: ImageRequest, endpoint: str
) -> list[tuple[str, bytes]]:
    """Return the named images ``endpoint`` gets; refuse what it cannot take."""
    images, extra, refusal = request.source_images, request.extra, ""
    names = IMAGE_PARTS.get(endpoint, ("image",))
    if endpoint.startswith("generate/"):
        if images and endpoint == "generate/core":
            refusal = "Stable Image Core does not take a source image; use ultra or SD3.5."
        elif "strength" in extra and not images:
            refusal = 'extra["strength"] needs a source image (image-to-image, §1.5).'
    elif not images:
        refusal = f"Stability AI's {endpoint} needs a source image."
    if not refusal and len(images) > len(names):
        refusal = (
            "Stability AI takes one source image per call."
            if len(names) == 1
            else f"Stability AI's {endpoint} takes a source image and one reference image."
        )
    if request.mask is not None and endpoint not in MASKED:
        refusal = refusal or f"Stability AI's {endpoint} does not take a mask."
    refusal = refusal or _size_refusal(endpoint, images)
    if refusal:
        raise provider.unsupported(refusal)
    return list(zip(names, images, strict=False))


def _size_refusal(endpoint: str, images: tuple[bytes, ...]) -> str:
    """Return why the source is too large for ``endpoint``'s own limit, or ``""``."""
    limit = INPUT_PIXELS.get(endpoint)
    size = image_size(images[0]) if limit and images else None
    if size is None:
        return ""
    width, height = size
    too_wide = endpoint == "upscale/fast" and max(size) > FAST_UPSCALE_MAX_SIDE
    if width * height <= limit and not too_wide:  # type: ignore[operator]
        return ""
    sides = f" and sides of at most {FAST_UPSCALE_MAX_SIDE}" if too_wide else ""
    return (
        f"The source image is {width}x{height} pixels; Stability AI's {endpoint} takes at "
        f"most {limit:,} pixels{sides}."
    )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
