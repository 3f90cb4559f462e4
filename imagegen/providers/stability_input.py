"""What Stability AI is sent: the endpoint an operation goes to, and its multipart form.

The wire format follows provider-apis.md §1.1 and §1.2: every call is a multipart POST under
``/v2beta/stable-image/``. ``ImageRequest.operation`` picks the endpoint; the model option
matters only for ``generate``:

- ``generate``: ``generate/ultra``, ``generate/core`` or ``generate/sd3`` (any SD3.5 model id,
  sent as ``model``); a source image makes it image-to-image (Ultra and SD3 only) with
  ``strength`` from ``extra`` (default 0.5).
- ``inpaint``, ``erase``: ``edit/inpaint``, ``edit/erase``; the mask is optional (without one the
  image's alpha channel is used, §1.2).
- ``outpaint``: ``edit/outpaint``, with ``left``/``right``/``up``/``down`` pixels in ``extra``.
- ``edit``: ``edit/search-and-replace`` when ``extra["search_prompt"]`` names what to replace,
  ``edit/search-and-recolor`` when ``extra["select_prompt"]`` names what to recolour.
- ``remove_background``: ``edit/remove-background``.
- ``upscale``: ``upscale/fast`` (default), ``upscale/conservative`` or ``upscale/creative`` as
  ``extra["upscaler"]`` says.

Each endpoint gets only the fields it takes (:data:`~imagegen.catalog.stability.ENDPOINT_FIELDS`);
any other ``extra`` key is sent as a form field (``cfg_scale``, ``grow_mask``, ``creativity``...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagegen.catalog.stability import ENDPOINT_FIELDS, MASKED, nearest_ratio
from imagegen.providers.http.inputs import file_part
from imagegen.types import ImageRequest

if TYPE_CHECKING:
    from imagegen.providers.stability import StabilityProvider

__all__ = ["EDITS", "RESERVED", "UPSCALERS", "check_images", "endpoint_for", "multipart_form"]

EDITS = {
    "inpaint": "edit/inpaint",
    "outpaint": "edit/outpaint",
    "erase": "edit/erase",
    "remove_background": "edit/remove-background",
}
UPSCALERS = ("fast", "conservative", "creative")
OUTPAINT_SIDES = ("left", "right", "up", "down")
# Fields imagegen sets itself; "none" is the dummy part that forces multipart (§1.1).
RESERVED = frozenset({"prompt", "model", "mode", "image", "mask", "none"})
#: ``extra`` keys that steer this provider and are not sent.
CONTROL = frozenset({"upscaler"})
# §1.2 makes strength required with an image but gives no default; 0.5 is our middle choice.
DEFAULT_STRENGTH = "0.5"


def endpoint_for(provider: StabilityProvider, request: ImageRequest) -> str:
    """Return the endpoint ``request`` goes to, under ``/v2beta/stable-image/``."""
    operation, extra = request.operation, request.extra
    if operation == "generate":
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
        search, select = extra.get("search_prompt"), extra.get("select_prompt")
        if bool(search) == bool(select):
            raise provider.unsupported(
                'A Stability AI edit needs extra["search_prompt"] (what to replace) or '
                'extra["select_prompt"] (what to recolour), not both.'
            )
        return "edit/search-and-replace" if search else "edit/search-and-recolor"
    if operation == "upscale":
        upscaler = extra.get("upscaler", "fast")
        if upscaler not in UPSCALERS:
            raise provider.unsupported(
                f'extra["upscaler"] must be one of {", ".join(UPSCALERS)}; got {upscaler!r}.'
            )
        return f"upscale/{upscaler}"
    return EDITS[operation]


def multipart_form(
    provider: StabilityProvider, request: ImageRequest, endpoint: str
) -> tuple[dict, list, list[str]]:
    """Return the text fields, file parts and warnings of a call to ``endpoint`` (§1.2)."""
    extra = dict(request.extra)
    provider.refuse_reserved(request, RESERVED)
    image = check_images(provider, request, endpoint)
    wanted = ENDPOINT_FIELDS[endpoint]
    if "prompt" in wanted and not request.prompt.strip():
        raise provider.unsupported(f"Stability AI's {endpoint} needs a prompt.")
    ratio = request.aspect_ratio or nearest_ratio(request.width, request.height)
    values = {
        "prompt": request.prompt or None,
        "negative_prompt": request.negative_prompt or None,
        # §1.5: SD3 rejects aspect_ratio in image-to-image; the output follows the image.
        "aspect_ratio": None if image else ratio,
        "seed": request.seed,
        "style_preset": provider.style_preset,
    }
    fields: dict[str, Any] = {n.rstrip("?"): values[n.rstrip("?")] for n in wanted}
    if endpoint == "generate/sd3":
        fields["model"] = request.model or provider.model
        if image is not None:
            fields["mode"] = "image-to-image"
    if endpoint.startswith("generate/") and image is not None:
        fields["strength"] = DEFAULT_STRENGTH
    fmt, warnings = "jpeg" if request.output_format == "jpg" else request.output_format, []
    if endpoint == "edit/remove-background" and fmt not in ("png", "webp"):
        warnings.append(f"Background removal returns png or webp only; asked for png, not {fmt}.")
        fmt = "png"
    fields["output_format"] = fmt
    fields.update({key: value for key, value in extra.items() if key not in CONTROL})
    data = {key: _text(value) for key, value in fields.items() if value is not None}
    parts = (("image", image), ("mask", request.mask))
    files = [(name, file_part(name, content)) for name, content in parts if content is not None]
    # §1.1: multipart even without a file; the official samples send a dummy "none" part.
    return data, files or [("none", ("none", b"", "application/octet-stream"))], warnings


def check_images(provider: StabilityProvider, request: ImageRequest, endpoint: str) -> bytes | None:
    """Return the one source image ``endpoint`` gets; refuse what it cannot take."""
    sources, extra, refusal = request.source_images, request.extra, ""
    if len(sources) > 1:
        refusal = "Stability AI takes one source image per call."
    elif endpoint.startswith("generate/"):
        if sources and endpoint == "generate/core":
            refusal = "Stable Image Core does not take a source image; use ultra or SD3.5."
        elif "strength" in extra and not sources:
            refusal = 'extra["strength"] needs a source image (image-to-image, §1.5).'
    elif not sources:
        refusal = f"Stability AI's {endpoint} needs a source image."
    if request.mask is not None and endpoint not in MASKED:
        refusal = refusal or f"Stability AI's {endpoint} does not take a mask."
    if endpoint == "edit/outpaint" and not any(extra.get(s) for s in OUTPAINT_SIDES):
        refusal = refusal or 'Outpainting needs extra["left"], ["right"], ["up"] or ["down"].'
    if refusal:
        raise provider.unsupported(refusal)
    return sources[0] if sources else None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
