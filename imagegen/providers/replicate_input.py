"""What Replicate is sent: the path and body that create a prediction, built from a request.

The wire format follows provider-apis.md §3.1 and §3.5. A catalogued model's schema
(:mod:`imagegen.catalog.replicate`) says which ``input`` fields it takes, so the request's
fields and the provider's OPTIONS go only where they are understood; an uncatalogued model gets
what every text-to-image model takes. The source images of an edit (and an inpainting mask)
travel inline as data URLs, and ``ImageRequest.extra`` is applied last, adding or overriding any
other field. FLUX.2 and Kontext edit from an instruction: the operations without a model of
their own send the prompt :data:`INSTRUCTIONS` makes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from imagegen.catalog import replicate as models
from imagegen.exceptions import UnsupportedRequest
from imagegen.providers.bfl_input import FLUX_INSTRUCTIONS
from imagegen.providers.http.inputs import data_url, instruction
from imagegen.providers.http.outputs import image_mime
from imagegen.types import ImageRequest

if TYPE_CHECKING:
    from imagegen.providers.replicate import ReplicateProvider

__all__ = ["INSTRUCTIONS", "RESERVED", "create_call", "image_fields", "prediction_input"]

# Fields imagegen sets itself: the prompt, and the count (the catalog splits large requests).
RESERVED = frozenset({"prompt", "num_outputs"})
#: The prompts of FLUX.2 and Kontext's instruction edits, and of FLUX.1 Fill [pro]'s erase: the
#: same models as on Black Forest Labs' own API, so the same table. Documented in
#: docs/providers/replicate.md.
INSTRUCTIONS = FLUX_INSTRUCTIONS
_MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[0-9a-f]{64})?$")


def create_call(
    provider: ReplicateProvider, request: ImageRequest, model: str
) -> tuple[str, dict[str, Any]]:
    """Return the path and JSON body that create a prediction for ``request`` (§3.1)."""
    if not _MODEL_ID.match(model):
        example = "black-forest-labs/flux-schnell"
        problem = f"must be a Replicate model id such as {example}, got {model!r}."
        raise provider.option_error("model", problem)
    body: dict[str, Any] = {"input": prediction_input(provider, request, model)}
    if provider.webhook_url:
        body["webhook"] = provider.webhook_url
        body["webhook_events_filter"] = ["completed"]
    name, _, version = model.partition(":")
    if version:
        return "/predictions", {"version": version, **body}
    owner, _, slug = name.partition("/")
    return f"/models/{quote(owner, safe='')}/{quote(slug, safe='')}/predictions", body


def prediction_input(
    provider: ReplicateProvider, request: ImageRequest, model: str
) -> dict[str, Any]:
    """Return the prediction ``input`` for ``request``: its fields, the OPTIONS, then extra."""
    provider.refuse_reserved(request, RESERVED)
    schema = models.schema_for(model)
    fields: dict[str, Any] = {"prompt": instruction(INSTRUCTIONS, request)}
    if request.aspect_ratio and (schema is None or "aspect_ratio" in schema.fields):
        fields["aspect_ratio"] = request.aspect_ratio
    if request.seed is not None:
        fields["seed"] = request.seed
    if schema is None:
        # An uncatalogued model: only what every text-to-image model takes, plus extra.
        if request.operation != "generate":
            raise provider.unsupported(
                f"imagegen does not know where {model} takes source images; pass them as "
                "URLs in extra, with operation generate."
            )
        return {**fields, **request.extra}
    fmt = "jpg" if request.output_format == "jpeg" else request.output_format
    optional = {
        "num_outputs": request.count,
        "output_format": fmt,
        "output_quality": provider.output_quality if fmt != "png" else None,
        "go_fast": provider.go_fast,
        "megapixels": provider.megapixels,
        "resolution": request.quality if request.quality in models.RESOLUTIONS else None,
        "safety_tolerance": provider.safety_tolerance,
    }
    fields.update({k: v for k, v in optional.items() if k in schema.fields and v is not None})
    if request.operation != "generate":
        fields.update(image_fields(request, model, schema))
    if request.mask is not None:
        fields.update(mask_field(request, model, schema))
    fields.update(request.extra)
    return fields


def mask_field(request: ImageRequest, model: str, schema: models.InputSchema) -> dict[str, str]:
    """Return the mask of an inpainting model as a data URL; imagegen's mask (white repainted,
    black kept, the source's size) is already what FLUX.1 Fill [pro] takes."""
    if schema.mask_field is None or request.mask is None:
        raise UnsupportedRequest(f"{model} takes no mask; inpaint with flux-fill-pro.")
    if len(request.mask) > models.MAX_DATA_URL_BYTES:
        raise UnsupportedRequest(
            f"A mask of {len(request.mask):,} bytes is too large to send inline (Replicate's "
            f"limit is {models.MAX_DATA_URL_BYTES // 1024} KB)."
        )
    return {schema.mask_field: data_url(request.mask, image_mime(request.mask) or "image/png")}


def image_fields(request: ImageRequest, model: str, schema: models.InputSchema) -> dict[str, Any]:
    """Return the source images of an edit as data URLs in the model's image field (§3.1)."""
    images = request.source_images
    if not images or schema.image_field is None:
        raise UnsupportedRequest(f"An edit with {model} needs a source image.")
    if len(images) > schema.max_input_images:
        raise UnsupportedRequest(
            f"{model} takes at most {schema.max_input_images} source image(s), got {len(images)}."
        )
    urls = []
    for content in images:
        mime = image_mime(content)
        if not mime:
            raise UnsupportedRequest("Replicate takes source images as PNG, JPEG or WebP.")
        if len(content) > models.MAX_DATA_URL_BYTES:
            raise UnsupportedRequest(
                f"A source image of {len(content):,} bytes is too large to send inline "
                f"(Replicate's limit is {models.MAX_DATA_URL_BYTES // 1024} KB); pass an "
                f"HTTPS URL in extra[{schema.image_field!r}] instead."
            )
        urls.append(data_url(content, mime))
    return {schema.image_field: urls if schema.image_field == "input_images" else urls[0]}
