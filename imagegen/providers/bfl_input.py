"""What Black Forest Labs is sent: the JSON body of a task submit, built from a request.

The wire format follows provider-apis.md §6.2. FLUX.2 and FLUX.1 endpoints take a size, the
ratio-based ones (Ultra, Kontext) an ``aspect_ratio``; source images go in ``input_image`` to
``input_image_8`` as bare base64, except for FLUX.1 Fill [pro], which takes one ``image`` and
its ``mask``, and FLUX.1 Expand [pro], which takes one ``image`` and the pixels to add on each
side (``top``, ``bottom``, ``left``, ``right``). FLUX.2 and Kontext edit from an instruction:
the operations without an endpoint of their own send the prompt :data:`INSTRUCTIONS` makes.
Unset OPTIONS are not sent, and ``ImageRequest.extra`` adds any other API field last.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from imagegen.catalog.bfl import (
    ASPECT_RATIOS,
    EXPAND,
    FILL,
    MAX_EXPAND,
    RATIO,
    family,
    max_input_images,
    upsampling_field,
)
from imagegen.providers.http.inputs import b64, instruction
from imagegen.types import ImageRequest

if TYPE_CHECKING:
    from imagegen.providers.bfl import BFLProvider

__all__ = ["INSTRUCTIONS", "RESERVED", "input_images", "nearest_ratio", "task_body"]

# Fields imagegen sets itself. A webhook would change the submit answer (no polling_url, §6.3).
RESERVED = frozenset(
    {"prompt", "width", "height", "aspect_ratio", "seed", "output_format", "input_image"}
    | {"image", "mask", "top", "bottom", "left", "right"}
    | {f"input_image_{n}" for n in range(2, 9)}
    | {"webhook_url", "webhook_secret"}
)


#: The prompt each operation without an endpoint of its own sends to FLUX.2 and Kontext, which
#: edit from an instruction (BFL's examples: "Change the background to a beach sunset"), from
#: the caller's ``prompt`` and ``search`` ("+reference": reference images follow the source);
#: ``erase`` is the prompt of a FLUX.1 Fill [pro] task. Edit, inpaint and outpaint send the
#: prompt as it is. Replicate hosts the same models and sends the same prompts
#: (:mod:`imagegen.providers.replicate_input`). Documented in docs/providers/bfl.md.
FLUX_INSTRUCTIONS = {
    "replace_background": (
        "Change the background to {prompt}. Keep the subject exactly as it is: its shape, "
        "edges, colours, lighting and position."
    ),
    "search_replace": "Replace {search} with {prompt}. Keep everything else exactly the same.",
    "search_recolor": "Change the colour of {search}: {prompt}. Keep everything else the same.",
    "restyle": "Restyle this image: {prompt}. Keep its subject and composition.",
    "restyle+reference": (
        "Apply the style of image 2 to image 1: {prompt}. Keep the subject and composition of "
        "image 1; take only the look (palette, texture, medium) from image 2."
    ),
    "erase": "Empty background that continues the surroundings seamlessly, with no objects.",
}
INSTRUCTIONS = FLUX_INSTRUCTIONS


def task_body(provider: BFLProvider, request: ImageRequest, model: str) -> dict[str, Any]:
    """Return the JSON body of a submit to ``model`` (§6.2); refuse what it cannot take."""
    provider.refuse_reserved(request, RESERVED, " (and polls, so webhooks are not used)")
    if request.count != 1:
        raise provider.unsupported(
            "Black Forest Labs makes one image per call; prepare() splits larger counts."
        )
    if family(model) == FILL:
        fields = fill_fields(provider, request, model)
    elif family(model) == EXPAND:
        fields = expand_fields(provider, request, model)
    else:
        fields = size_fields(provider, request, model)
    if request.seed is not None:
        fields["seed"] = request.seed
    fmt = request.output_format
    fields["output_format"] = "jpeg" if fmt == "jpg" else fmt
    if provider.safety_tolerance is not None:
        fields["safety_tolerance"] = provider.safety_tolerance
    if provider.prompt_upsampling is not None:
        name = upsampling_field(model)
        value = provider.prompt_upsampling
        fields[name] = not value if name == "disable_pup" else value
    fields.update(request.extra)
    return fields


def fill_fields(provider: BFLProvider, request: ImageRequest, model: str) -> dict[str, Any]:
    """Return the prompt, ``image`` and ``mask`` of a FLUX.1 Fill [pro] inpainting task.

    BFL's API skill lists ``/v1/flux-pro-1.0-fill`` for inpainting: one image, repainted where
    the mask is white; no size is sent, the output follows the image.
    """
    if len(request.source_images) != 1:
        raise provider.unsupported(f"Black Forest Labs' {model} inpaints exactly one image.")
    prompt = instruction(INSTRUCTIONS, request)
    fields: dict[str, Any] = {"prompt": prompt, "image": b64(request.source_images[0])}
    if request.mask is not None:
        fields["mask"] = b64(request.mask)
    return fields


def expand_fields(provider: BFLProvider, request: ImageRequest, model: str) -> dict[str, Any]:
    """Return the prompt, ``image`` and the pixels to add on each side of a FLUX.1 Expand [pro]
    outpainting task (EXPAND_DOCS in :mod:`imagegen.catalog.bfl`).

    ``ImageRequest.padding`` is (left, top, right, bottom); no size is sent, the output is the
    image with the padding around it.
    """
    if request.operation != "outpaint" or request.padding is None:
        raise provider.unsupported(
            f"Black Forest Labs' {model} outpaints: it needs a source image and padding."
        )
    if len(request.source_images) != 1:
        raise provider.unsupported(f"Black Forest Labs' {model} expands exactly one image.")
    if request.mask is not None:
        raise provider.unsupported(f"Black Forest Labs' {model} takes no mask.")
    left, top, right, bottom = request.padding
    if max(request.padding) > MAX_EXPAND:
        raise provider.unsupported(
            f"Black Forest Labs' {model} adds at most {MAX_EXPAND} pixels on a side."
        )
    return {
        "prompt": request.prompt,
        "image": b64(request.source_images[0]),
        "top": top,
        "bottom": bottom,
        "left": left,
        "right": right,
    }


def size_fields(provider: BFLProvider, request: ImageRequest, model: str) -> dict[str, Any]:
    """Return the prompt, size or aspect ratio and input images of any other endpoint."""
    if request.mask is not None:
        raise provider.unsupported(
            f"Black Forest Labs' {model} takes no mask; inpaint with flux-pro-1.0-fill."
        )
    if request.operation != "generate" and not request.source_images:
        raise provider.unsupported("A Black Forest Labs edit needs at least one source image.")
    fields: dict[str, Any] = {"prompt": instruction(INSTRUCTIONS, request)}
    if family(model) == RATIO:
        ratio = request.aspect_ratio or nearest_ratio(request.width, request.height)
        fields["aspect_ratio"] = ratio
    else:
        fields["width"], fields["height"] = request.width, request.height
    fields.update(input_images(provider, request, model))
    return fields


def input_images(provider: BFLProvider, request: ImageRequest, model: str) -> dict[str, str]:
    """Return ``input_image`` ... ``input_image_8`` for the source images, as base64."""
    images, limit = request.source_images, max_input_images(model)
    if not images:
        return {}
    if not limit:
        raise provider.unsupported(
            f"Black Forest Labs' {model} takes no input image; use a FLUX.2 or Kontext "
            'endpoint, or pass extra["image_prompt"] for a FLUX.1 image prompt.'
        )
    if len(images) > limit:
        raise provider.unsupported(f"Black Forest Labs' {model} takes at most {limit} images.")
    names = ["input_image"] + [f"input_image_{n}" for n in range(2, limit + 1)]
    return dict(zip(names, map(b64, images), strict=False))


def nearest_ratio(width: int, height: int) -> str:
    """Return the aspect ratio Black Forest Labs takes that is closest to ``width`` x ``height``."""
    target = math.log(width / height)

    def distance(ratio: str) -> float:
        w, h = ratio.split(":")
        return abs(math.log(int(w) / int(h)) - target)

    return min(ASPECT_RATIOS, key=distance)
