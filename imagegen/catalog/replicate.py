"""FLUX models on Replicate: capabilities, prices, lifecycle and the input fields each one takes.

Model ids are Replicate's ``owner/name`` (provider-apis.md §3.1: official models are created with
``POST /models/{owner}/{name}/predictions``). Sources: §3.5 (input schemas and output shapes),
§3.6 and §8 (prices). Where the reference gives no number the value is marked [UNCERTAIN];
``IMAGEGEN["PRICES"]`` overrides any price by model id.

Official image models are billed per output image, or per megapixel for FLUX.2 (§3.6): the
provider computes the cost of each prediction from what it asked for and what came back, with
the price rules below.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from decimal import Decimal

from imagegen.catalog.entries import Capabilities, ModelInfo, OperationSupport, Source
from imagegen.pricing import MegapixelTiers, PerImage, PriceRule
from imagegen.types import ImageRequest

#: §3.5 flux-2-pro: the ``resolution`` values imagegen sends ("match_input_image" is not used).
RESOLUTIONS = ("0.5 MP", "1 MP", "2 MP", "4 MP")
#: Pixels in one billed megapixel. Replicate counts 1024x1024 as one megapixel [UNCERTAIN:
#: third-party price pages; the reference gives no unit].
MEGAPIXEL = 1024 * 1024
#: Largest input image Replicate bills for: bigger ones are resized to 4 MP [UNCERTAIN].
MAX_BILLED_INPUT_MEGAPIXELS = 4
#: §3.1: a data URL may carry at most this many bytes; larger files need an HTTP URL.
MAX_DATA_URL_BYTES = 256 * 1024

# §3.5 aspect_ratio enums. flux-dev lacks 3:4 and 4:3; the pro models' lists come from the
# model pages the reference cites and leave out "custom" and "match_input_image", which
# imagegen does not send (a request is fitted to one of the named ratios).
_SCHNELL_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
_DEV_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "9:16", "9:21")
_PRO_RATIOS = ("1:1", "16:9", "3:2", "2:3", "4:5", "5:4", "9:16", "3:4", "4:3")
_ULTRA_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21")
# §3.5: every official FLUX model answers webp (the default), jpg or png; Ultra jpg or png.
_FORMATS = ("png", "jpeg", "webp")


@dataclass(frozen=True, kw_only=True)
class InputSchema:
    """The optional ``input`` fields of one model that imagegen fills in, and its output shape.

    ``fields`` may hold ``num_outputs``, ``output_format``, ``output_quality``, ``seed``,
    ``go_fast``, ``megapixels``, ``resolution`` and ``safety_tolerance``; anything else goes
    through ``ImageRequest.extra``. ``image_field`` names where source images go for an edit:
    ``"image"`` (one image) or ``"input_images"`` (a list).
    """

    fields: frozenset[str]
    image_field: str | None = None
    max_input_images: int = 0
    #: Where an inpainting model takes its mask (black kept, white repainted), if it does.
    mask_field: str | None = None
    #: "list" (an array of URLs) or "single" (one URL string), §3.2.
    output: str = "single"


_BASE = frozenset({"aspect_ratio", "seed", "output_format", "output_quality"})
#: The input fields imagegen sends to each catalogued model (§3.5).
SCHEMAS: dict[str, InputSchema] = {
    "black-forest-labs/flux-schnell": InputSchema(
        fields=_BASE | {"num_outputs", "go_fast", "megapixels"}, output="list"
    ),
    # §3.5: "Newer versions also take go_fast and megapixels [UNCERTAIN]": sent only when the
    # project sets the option.
    "black-forest-labs/flux-dev": InputSchema(
        fields=_BASE | {"num_outputs", "go_fast", "megapixels"},
        image_field="image",
        max_input_images=1,
        output="list",
    ),
    "black-forest-labs/flux-1.1-pro": InputSchema(fields=_BASE | {"safety_tolerance"}),
    # flux-pro and Ultra are not in §3.5; their fields follow the model pages [UNCERTAIN].
    "black-forest-labs/flux-pro": InputSchema(fields=_BASE | {"safety_tolerance"}),
    "black-forest-labs/flux-1.1-pro-ultra": InputSchema(
        fields=frozenset({"aspect_ratio", "seed", "output_format", "safety_tolerance"})
    ),
    "black-forest-labs/flux-2-pro": InputSchema(
        fields=_BASE | {"resolution", "safety_tolerance"},
        image_field="input_images",
        max_input_images=8,
    ),
    "black-forest-labs/flux-2-flex": InputSchema(
        fields=_BASE | {"resolution", "safety_tolerance"},
        image_field="input_images",
        max_input_images=10,
    ),
    "black-forest-labs/flux-2-dev": InputSchema(
        fields=_BASE | {"go_fast"}, image_field="input_images", max_input_images=4
    ),
    # KONTEXT_PAGE: one input_image, aspect_ratio (match_input_image by default), jpg or png,
    # safety_tolerance, seed.
    "black-forest-labs/flux-kontext-pro": InputSchema(
        fields=frozenset({"aspect_ratio", "seed", "output_format", "safety_tolerance"}),
        image_field="input_image",
        max_input_images=1,
    ),
    "black-forest-labs/flux-kontext-max": InputSchema(
        fields=frozenset({"aspect_ratio", "seed", "output_format", "safety_tolerance"}),
        image_field="input_image",
        max_input_images=1,
    ),
    # FILL_PRO_PAGE: image and mask ("Black areas will be preserved while white areas will be
    # inpainted. Must have the same size as image"), no aspect_ratio (the output follows the
    # image), jpg by default, safety_tolerance 1 to 6, seed; one URL out.
    "black-forest-labs/flux-fill-pro": InputSchema(
        fields=frozenset({"seed", "output_format", "safety_tolerance"}),
        image_field="image",
        max_input_images=1,
        mask_field="mask",
    ),
}


def schema_for(model: str) -> InputSchema | None:
    """Return the input schema of ``model`` (an ``owner/name[:version]`` id), or None if unknown."""
    return SCHEMAS.get(model.partition(":")[0])


# Megapixel billing (FLUX.2) ----------------------------------------------------------------------


def resolution_megapixels(resolution: str) -> Decimal:
    """Return the megapixels a ``resolution`` value ("2 MP") stands for."""
    return Decimal(resolution.split()[0])


def nearest_resolution(width: int, height: int) -> str:
    """Return the :data:`RESOLUTIONS` value closest (by ratio) to ``width`` x ``height``."""
    wanted = max(1, width * height) / MEGAPIXEL
    return min(RESOLUTIONS, key=lambda r: abs(math.log(float(resolution_megapixels(r)) / wanted)))


def output_pixels(request: ImageRequest) -> int:
    """Return the pixels one output image of ``request`` is billed for.

    A custom size in ``extra`` (``aspect_ratio="custom"`` with ``width`` and ``height``) counts
    as asked; otherwise the resolution tier the provider sends (``ImageRequest.quality``, set by
    ``ReplicateProvider.prepare``); otherwise 1 MP, the models' default size.
    """
    extra = request.extra or {}
    width, height = extra.get("width"), extra.get("height")
    if extra.get("aspect_ratio") == "custom" and isinstance(width, int) and isinstance(height, int):
        return width * height
    if request.quality in RESOLUTIONS:
        return int(resolution_megapixels(request.quality) * MEGAPIXEL)
    return MEGAPIXEL


def flux2_price(rate: str) -> MegapixelTiers:
    """Return a FLUX.2 price: ``rate`` dollars per megapixel of output and of input images.

    Each image is rounded up to whole megapixels of :data:`MEGAPIXEL` pixels, at least one; an
    output counts as :func:`output_pixels`, an input image as its size, at most
    :data:`MAX_BILLED_INPUT_MEGAPIXELS`. The provider records the billed totals in the usage
    (``MegapixelTiers.usage``), which the actual cost is computed from.
    """
    return MegapixelTiers(
        price=Decimal(rate),
        input_price=Decimal(rate),
        megapixel=MEGAPIXEL,
        max_input=Decimal(MAX_BILLED_INPUT_MEGAPIXELS),
        output_pixels=output_pixels,
    )


# The catalog -------------------------------------------------------------------------------------


#: Text to image only: a table that lists no operation on a source image.
TEXT_ONLY = {"generate": OperationSupport()}
#: The instruction-style operations of the editing models (ReplicateProvider's INSTRUCTIONS).
INSTRUCTED = ("edit", "replace_background", "search_replace", "search_recolor", "restyle")


def edit_operations(model: str) -> dict[str, OperationSupport]:
    """Return the operations table of a model that edits from an instruction: its references
    are its input images (:data:`SCHEMAS`) after the source."""
    schema = SCHEMAS[model]
    return dict.fromkeys(INSTRUCTED, OperationSupport(max_references=schema.max_input_images - 1))


def _caps(ratios: tuple[str, ...], *, max_count: int = 1, edit: bool = False, **kw) -> Capabilities:
    # §3.5: no model takes a negative prompt; every one takes a seed.
    return Capabilities(
        aspect_ratios=ratios,
        max_count=max_count,
        seed=True,
        negative_prompt=False,
        edit=edit,
        mask=False,
        output_formats=kw.pop("output_formats", _FORMATS),
        operations=kw.pop("operations", TEXT_ONLY),
        **kw,
    )


#: The reference's research date: the sources below were read then.
REFERENCE_CHECKED = datetime.date(2026, 11, 16)
#: Replicate's model page of one official model.
MODEL_PAGE = "https://replicate.com/black-forest-labs/{}"
#: Replicate's price page.
PRICING = "https://replicate.com/pricing"
#: The day the operations' model pages were read.
CHECKED = datetime.date(2026, 12, 5)
#: The API page of FLUX.1 Kontext [pro] the reference cites (§3.2, [REP-KONTEXT]).
KONTEXT_PAGE = (
    "https://replicate.com/black-forest-labs/flux-kontext-pro/versions/"
    "0a1381936934845a14efcc9f309ce7d031cb905867878b5c5830280e00e97606/api"
)
#: The API page of FLUX.1 Fill [pro] on Replicate.
FILL_PRO_PAGE = (
    "https://replicate.com/black-forest-labs/flux-fill-pro/versions/"
    "9609ba7331ed872c99f81c92c69a9ee52a50d8aba99f636173e0674d997efd0c/api"
)


def _model(name: str, label: str, caps: Capabilities, price: PriceRule, **kw) -> ModelInfo:
    price_source = kw.pop("price_source", None) or Source(
        url=PRICING,
        checked=REFERENCE_CHECKED,
        verified=False,
        note="Read from a third-party transcription of this page (api-evangelist, 2026-10-07).",
    )
    return ModelInfo(
        provider="replicate",
        id=f"black-forest-labs/{name}",
        label=label,
        capabilities=caps,
        price=price,
        sources={
            "id": Source(url=MODEL_PAGE.format(name), checked=REFERENCE_CHECKED),
            "price": price_source,
        },
        **kw,
    )


def _estimate(name: str, note: str) -> Source:
    return Source(url=MODEL_PAGE.format(name), checked=REFERENCE_CHECKED, verified=False, note=note)


# Replicate publishes no lifecycle dates for these models. The release dates once listed here
# were Black Forest Labs' announcements without a page to cite, so they were removed.
# §3.6 [UNCERTAIN]: flux-2-pro is "billed per megapixel (input and output)"; third-party copies
# of Replicate's page quote $0.015 per megapixel for each (1024x1024, rounded up per image).
# flux-2-flex and flux-2-dev have no Replicate price in the reference: BFL's FLUX.2 [flex] rate
# (§8, $0.05/MP) and a third-party FLUX.2 [dev] rate ($0.012/MP) are used as estimates.
FLUX2_PRO_PRICE = flux2_price("0.015")
MODELS: tuple[ModelInfo, ...] = (
    _model(
        "flux-schnell",
        "FLUX.1 [schnell]",
        _caps(_SCHNELL_RATIOS, max_count=4),
        PerImage(price=Decimal("0.003")),  # §3.6: $3.00 per 1000 output images
        notes="go_fast (the default) makes seeds non-reproducible (§3.7).",
    ),
    _model(
        "flux-dev",
        "FLUX.1 [dev]",
        # Image-to-image only: one ``image``, no instruction following.
        _caps(_DEV_RATIOS, max_count=4, edit=True, operations={"edit": OperationSupport()}),
        PerImage(price=Decimal("0.025")),  # §3.6
        notes="Image-to-image with one source image; the output follows its aspect ratio.",
    ),
    _model(
        "flux-1.1-pro",
        "FLUX1.1 [pro]",
        _caps(_PRO_RATIOS),
        PerImage(price=Decimal("0.04")),  # §3.6
    ),
    _model(
        "flux-1.1-pro-ultra",
        "FLUX1.1 [pro] Ultra",
        # Not in §3.5: jpg or png only, up to 4 MP [UNCERTAIN: model page].
        _caps(_ULTRA_RATIOS, output_formats=("jpeg", "png")),
        # §6.4/§8: $0.06 at BFL; Replicate's price is assumed the same [UNCERTAIN].
        PerImage(price=Decimal("0.06")),
        price_source=_estimate("flux-1.1-pro-ultra", "Assumed equal to BFL's own $0.06."),
    ),
    _model(
        "flux-pro",
        "FLUX.1 [pro]",
        _caps(_PRO_RATIOS),
        PerImage(price=Decimal("0.055")),  # §3.6 [REP-FLUXPRO]
        successor="black-forest-labs/flux-1.1-pro",
        price_source=Source(url=MODEL_PAGE.format("flux-pro"), checked=REFERENCE_CHECKED),
    ),
    _model(
        "flux-2-pro",
        "FLUX.2 [pro]",
        _caps(_PRO_RATIOS, edit=True, operations=edit_operations("black-forest-labs/flux-2-pro")),
        FLUX2_PRO_PRICE,
        notes="Up to 8 source images; resolution 0.5 to 4 MP.",
        price_source=_estimate("flux-2-pro", "Third-party copies of the page: $0.015 per MP."),
    ),
    _model(
        "flux-2-flex",
        "FLUX.2 [flex]",
        _caps(_PRO_RATIOS, edit=True, operations=edit_operations("black-forest-labs/flux-2-flex")),
        flux2_price("0.05"),
        notes="Up to 10 source images. Price is an estimate [UNCERTAIN].",
        price_source=_estimate("flux-2-flex", "No Replicate price found; BFL's $0.05 per MP."),
    ),
    _model(
        "flux-2-dev",
        "FLUX.2 [dev]",
        _caps(_PRO_RATIOS, edit=True, operations=edit_operations("black-forest-labs/flux-2-dev")),
        flux2_price("0.012"),
        notes="Up to 4 source images; about 1 MP output. Price is an estimate [UNCERTAIN].",
        price_source=_estimate("flux-2-dev", "No Replicate price found; a third-party rate."),
    ),
    *(
        ModelInfo(
            provider="replicate",
            id=f"black-forest-labs/flux-kontext-{tier}",
            label=f"FLUX.1 Kontext [{tier}]",
            # jpg or png; one input_image, so instructions without reference images.
            capabilities=_caps(
                _ULTRA_RATIOS,
                edit=True,
                output_formats=("jpeg", "png"),
                operations=edit_operations(f"black-forest-labs/flux-kontext-{tier}"),
            ),
            price=PerImage(price=Decimal(price)),
            notes="Instruction editing of one source image.",
            sources={
                "id": (
                    Source(url=KONTEXT_PAGE, checked=REFERENCE_CHECKED)
                    if tier == "pro"
                    else _estimate(
                        "flux-kontext-max",
                        "Not read; flux-kontext-pro's sibling, taken to share its API page's "
                        "schema (one input_image).",
                    )
                ),
                "price": _estimate(
                    f"flux-kontext-{tier}",
                    f"Replicate's per-image price, assumed equal to BFL's own ${price}.",
                ),
            },
        )
        for tier, price in (("pro", "0.04"), ("max", "0.08"))
    ),
    ModelInfo(
        provider="replicate",
        id="black-forest-labs/flux-fill-pro",
        label="FLUX.1 Fill [pro]",
        # The output has the source image's size: free sizes, jpg or png.
        capabilities=Capabilities(
            max_count=1,
            seed=True,
            edit=True,
            mask=True,
            output_formats=("jpeg", "png"),
            operations={
                "inpaint": OperationSupport(mask="required"),
                "erase": OperationSupport(mask="required"),
            },
        ),
        price=PerImage(price=Decimal("0.05")),
        notes=(
            "Inpainting: one source image and its mask (white is repainted). Its outpaint "
            "presets (zoom out, make square) fix their own padding, so imagegen does not use them."
        ),
        sources={
            "id": Source(url=FILL_PRO_PAGE, checked=CHECKED),
            "price": _estimate("flux-fill-pro", "Assumed equal to BFL's own $0.05 per image."),
        },
    ),
)
