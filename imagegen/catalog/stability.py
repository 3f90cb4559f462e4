"""Stability AI models and endpoints: capabilities, credit prices and the fields each one takes.

provider-apis.md §1: the ``model`` option names a generation endpoint (``ultra``, ``core``) or an
SD3.5 model of the ``sd3`` endpoint; every price is a number of credits at $0.01 each (§1.6).
"""

from __future__ import annotations

import datetime
import math
from decimal import Decimal

from imagegen.catalog.entries import (
    Capabilities,
    ModelInfo,
    OperationSupport,
    Source,
    parse_ratio,
)
from imagegen.pricing import PerCredit

#: The reference's research date: the sources below were read then.
REFERENCE_CHECKED = datetime.date(2026, 11, 16)
#: Stability AI's API reference (its OpenAPI spec): endpoints and the sd3 model enum.
API_REFERENCE = "https://platform.stability.ai/docs/api-reference"
#: Stability AI's price page (1 credit = $0.01; credits per model).
PRICING = "https://platform.stability.ai/pricing"

#: §1.2 shared fields: the aspect ratios every generation endpoint takes (default 1:1).
ASPECT_RATIOS = ("21:9", "16:9", "3:2", "5:4", "1:1", "4:5", "2:3", "9:16", "9:21")
#: §1.2 shared fields: ``style_preset`` values.
STYLE_PRESETS = (
    *("enhance", "anime", "photographic", "digital-art", "comic-book", "fantasy-art"),
    *("line-art", "analog-film", "neon-punk", "isometric", "low-poly", "origami"),
    *("modeling-compound", "cinematic", "3d-model", "pixel-art", "tile-texture"),
)

#: §1.6: credits per image of each generation model (the ``model`` option).
MODEL_CREDITS: dict[str, Decimal] = {
    "ultra": Decimal(8),
    "core": Decimal(3),
    "sd3.5-large": Decimal("6.5"),
    "sd3.5-large-turbo": Decimal(4),
    "sd3.5-medium": Decimal("3.5"),
    "sd3.5-flash": Decimal("2.5"),
}

# Edit, control and upscale calls cost the same whatever the configured model, so they are priced
# per endpoint in this table rather than registered as catalog "models": they are not models (the
# pipeline and the admin would offer them for text-to-image), and ImageRequest.operation picks
# them, not the model option. The provider returns the cost of every call itself (one billed
# image, filtered or not, §1.4) with usage {"credits": n}; IMAGEGEN["PRICES"] may override an
# endpoint by its key here (StabilityProvider.price_rule).
#: §1.2/§1.6: credits per call of each edit, control and upscale endpoint (path under
#: /v2beta/stable-image); :data:`OPERATION_SOURCES` says where each price was read.
OPERATION_CREDITS: dict[str, Decimal] = {
    "edit/inpaint": Decimal(5),
    "edit/outpaint": Decimal(4),
    "edit/erase": Decimal(5),
    "edit/search-and-replace": Decimal(5),
    "edit/search-and-recolor": Decimal(5),
    "edit/remove-background": Decimal(5),
    "edit/replace-background-and-relight": Decimal(8),
    "upscale/fast": Decimal(2),
    "upscale/conservative": Decimal(40),
    "upscale/creative": Decimal(60),
    "control/structure": Decimal(5),
    "control/style": Decimal(5),
    "control/style-transfer": Decimal(8),
}
#: Where each endpoint's credit price comes from: the "Credits" line of its section of the API
#: reference (the OpenAPI spec that page renders), priced at $0.01 a credit (§1.6).
OPERATION_SOURCES: dict[str, Source] = {
    endpoint: Source(
        url=f"{API_REFERENCE}#tag/{endpoint.partition('/')[0].capitalize()}",
        checked=REFERENCE_CHECKED,
        verified=False,
        note="Credits per call from provider-apis.md §1.2 and §1.6, read from the API "
        "reference's OpenAPI spec; $0.01 a credit from third-party copies of the price page.",
    )
    for endpoint in OPERATION_CREDITS
}

_ASK = ("prompt", "negative_prompt", "aspect_ratio", "seed", "style_preset")
_EDIT = ("prompt", "negative_prompt", "seed", "style_preset")
#: §1.2: the request fields each endpoint takes besides its images and output_format (which all
#: take); "prompt?" marks an optional prompt, "prompt" a required one. Which image parts each
#: endpoint gets is :data:`IMAGE_PARTS`'.
ENDPOINT_FIELDS: dict[str, tuple[str, ...]] = {
    "generate/ultra": _ASK,
    "generate/core": _ASK,
    "generate/sd3": _ASK,
    "edit/inpaint": _EDIT,
    "edit/outpaint": ("prompt?", "seed", "style_preset"),
    "edit/erase": ("seed",),  # §1.5: the spec's required prompt is not a property of erase
    "edit/search-and-replace": _EDIT,
    "edit/search-and-recolor": _EDIT,
    "edit/remove-background": (),
    # The prompt goes as background_prompt (stability_input.multipart_form()).
    "edit/replace-background-and-relight": ("negative_prompt", "seed"),
    "upscale/fast": (),
    "upscale/conservative": ("prompt", "negative_prompt", "seed"),  # §1.5: prompt required
    "upscale/creative": ("prompt", "negative_prompt", "seed", "style_preset"),
    "control/structure": _EDIT,
    "control/style": _ASK,
    "control/style-transfer": ("prompt?", "negative_prompt", "seed"),
}
#: The multipart names of each endpoint's images, in ``ImageRequest.source_images`` order: the
#: source, then the reference (``generate``'s control/style has only its reference).
IMAGE_PARTS: dict[str, tuple[str, ...]] = {
    "edit/replace-background-and-relight": ("subject_image", "background_reference"),
    "control/style-transfer": ("init_image", "style_image"),
}
#: §1.2: the endpoints that take a mask.
MASKED = frozenset({"edit/inpaint", "edit/erase"})
#: §1.3: the endpoints that answer 200 with a job id, polled at /v2beta/results/{id}.
ASYNC_ENDPOINTS = frozenset({"upscale/creative", "edit/replace-background-and-relight"})

#: The API reference's input limits (pixels, width x height) of a source image: every edit and
#: control endpoint takes 4,096 to 9,437,184 pixels; background removal at most 4,194,304; the
#: fast upscale 1,024 to 1,048,576 with sides of 32 to 1,536; the creative one at most 1,048,576.
EDIT_PIXELS = 9_437_184
INPUT_PIXELS: dict[str, int] = {
    "edit/remove-background": 4_194_304,
    "upscale/fast": 1_048_576,
    "upscale/creative": 1_048_576,
}
#: The fast upscale's widest input side (its output is four times the input's size).
FAST_UPSCALE_MAX_SIDE = 1536
#: The API reference's limit of each of outpaint's left, right, up and down (pixels).
OUTPAINT_MAX_SIDE = 2000

#: What each operation takes (``Capabilities.operations``), so that the pipeline refuses what no
#: endpoint can take before a call. The upscale's limit is the conservative upscaler's, the
#: largest: the provider picks the fast one only for sources it can take.
OPERATION_SUPPORT: dict[str, OperationSupport] = {
    "edit": OperationSupport(max_input_pixels=EDIT_PIXELS),  # search-and-replace/recolor
    # §1.2: without a mask the source's alpha channel says what to change.
    "inpaint": OperationSupport(mask="optional", max_input_pixels=EDIT_PIXELS),
    "erase": OperationSupport(mask="optional", max_input_pixels=EDIT_PIXELS),
    "outpaint": OperationSupport(max_input_pixels=EDIT_PIXELS),
    "search_replace": OperationSupport(max_input_pixels=EDIT_PIXELS),
    "search_recolor": OperationSupport(max_input_pixels=EDIT_PIXELS),
    "remove_background": OperationSupport(max_input_pixels=INPUT_PIXELS["edit/remove-background"]),
    "replace_background": OperationSupport(max_references=1, max_input_pixels=EDIT_PIXELS),
    "upscale": OperationSupport(max_input_pixels=EDIT_PIXELS),
    "restyle": OperationSupport(max_references=1, max_input_pixels=EDIT_PIXELS),
}


def operation_price(endpoint: str) -> PerCredit:
    """Return the list price of one call to an edit, control or upscale ``endpoint``."""
    return PerCredit(credits=OPERATION_CREDITS[endpoint])


def nearest_ratio(width: int, height: int) -> str:
    """Return the aspect ratio Stability AI takes that is closest to ``width`` x ``height``."""
    target = math.log(width / height)

    def distance(ratio: str) -> float:
        w, h = parse_ratio(ratio)
        return abs(math.log(w / h) - target)

    return min(ASPECT_RATIOS, key=distance)


def _caps(*, image_to_image: bool) -> Capabilities:
    # §1.2: ratios not sizes, one image per call, seed, negative prompt and png/jpeg/webp on all
    # three generate endpoints; Ultra and SD3 also take a source image (image-to-image). One
    # reference image makes any model's generate a control/style call.
    return Capabilities(
        aspect_ratios=ASPECT_RATIOS,
        max_count=1,
        seed=True,
        negative_prompt=True,
        edit=image_to_image,
        mask=False,
        max_references=1,
        output_formats=("png", "jpeg", "webp"),
        operations=OPERATION_SUPPORT,
    )


_LABELS = {
    "ultra": "Stable Image Ultra",
    "core": "Stable Image Core",
    "sd3.5-large": "Stable Diffusion 3.5 Large",
    "sd3.5-large-turbo": "Stable Diffusion 3.5 Large Turbo",
    "sd3.5-medium": "Stable Diffusion 3.5 Medium",
    "sd3.5-flash": "Stable Diffusion 3.5 Flash",
}
# The reference gives no release or retirement dates for these models, so none are set.
MODELS: tuple[ModelInfo, ...] = tuple(
    ModelInfo(
        provider="stability",
        id=model,
        label=label,
        capabilities=_caps(image_to_image=model != "core"),
        price=PerCredit(credits=MODEL_CREDITS[model]),
        notes=(
            # §1.2 [SAI-DEC]: the server accepts sd3.5-flash; the spec's enum lacks it.
            "Accepted by the API but missing from its published model list."
            if model == "sd3.5-flash"
            else ""
        ),
        sources={
            "id": Source(url=API_REFERENCE, checked=REFERENCE_CHECKED),
            "price": Source(
                url=PRICING,
                checked=REFERENCE_CHECKED,
                verified=False,
                note="Credits per image from provider-apis.md §1.6, which read them from "
                "third-party copies of this page.",
            ),
        },
    )
    for model, label in _LABELS.items()
)
