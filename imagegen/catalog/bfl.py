"""Black Forest Labs' FLUX endpoints: capabilities, prices and the request shape of each family.

provider-apis.md §6: the ``model`` option is the endpoint name (``POST /v1/{model}``). Three
request shapes exist (:func:`family`): FLUX.2 (``width``/``height`` in multiples of 16, up to 4 MP,
``input_image`` ... ``input_image_8``), FLUX.1 (``width``/``height`` 256 to 1440 in multiples of 32)
and the aspect-ratio endpoints (FLUX1.1 [pro] Ultra and FLUX.1 Kontext, ``aspect_ratio``). Every
call makes one image. Billing is in credits at $0.01 (§6.1); the actual cost comes from the
response's ``cost`` field, so these prices feed estimates and answers without a ``cost``. Each
entry names the BFL page its id and price were read on (:attr:`ModelInfo.sources`).
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from decimal import Decimal

from imagegen.catalog.entries import Capabilities, ModelInfo, OperationSupport, Source, sources
from imagegen.pricing import MegapixelTiers, PerImage

#: §6.1: 1 credit = $0.01.
CREDIT_PRICE = Decimal("0.01")
#: Aspect ratios of the ratio endpoints: BFL takes any ratio from 21:9 to 9:21; these are offered.
ASPECT_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21")

FLUX2, FLUX1, RATIO, FILL, EXPAND = "flux2", "flux1", "ratio", "fill", "expand"
#: Pixels FLUX.1 Expand [pro] adds on one side at most (its schema: top, bottom, left and right
#: each 0 to 2048).
MAX_EXPAND = 2048


def family(model: str) -> str:
    """Return the request shape of endpoint ``model``: "flux2", "flux1", "ratio", "fill" or
    "expand"."""
    if model.startswith("flux-2-"):
        return FLUX2
    if model.endswith("-fill"):
        # FLUX.1 Fill [pro]: one source image and a mask; the output has the image's size.
        return FILL
    if model.endswith("-expand"):
        # FLUX.1 Expand [pro]: one source image and the pixels to add on each side.
        return EXPAND
    if model.startswith("flux-kontext-") or model.endswith("-ultra"):
        return RATIO
    return FLUX1


def max_input_images(model: str) -> int:
    """Return how many input images endpoint ``model`` takes (0: none, as far as imagegen knows).

    §6.2: FLUX.2 takes ``input_image`` to ``input_image_8``. [klein] is documented with fewer
    references elsewhere; 4 is our [UNCERTAIN] limit. Kontext takes ``input_image`` and, as an
    "experimental multiref", ``input_image_2`` to ``input_image_4`` (BFL's Kontext schema, read
    through Comfy Router's copy of it [UNVERIFIED on BFL's own page]). FLUX.1's ``image_prompt``
    is a style reference, not an edit input: pass it in ``extra``.
    """
    if model.startswith("flux-2-klein"):
        return 4
    if model.startswith("flux-2-"):
        return 8
    if model.startswith("flux-kontext-"):
        return 4
    return 0


def upsampling_field(model: str) -> str:
    """Return the field the ``prompt_upsampling`` option is sent as.

    §6.2/§6.5: FLUX.2 [pro] and [max] replaced ``prompt_upsampling`` with ``disable_pup`` (sending
    the old field may give a 422); [flex] and FLUX.1 keep ``prompt_upsampling``. [klein] shares the
    ``Flux2Inputs`` schema, so it gets ``disable_pup`` too.
    """
    if family(model) == FLUX2 and not model.startswith("flux-2-flex"):
        return "disable_pup"
    return "prompt_upsampling"


#: Pixels in one FLUX.2 billing megapixel: 1024 x 1024. §6.3's example bills a 1024 x 1024 image
#: (``output_mp`` 1.05) the flat 3 credits of the first megapixel, and 2048 x 2048 is "4 MP"
#: (§6.2), so BFL's prices count binary megapixels [UNVERIFIED: inferred from those examples].
FLUX_MEGAPIXEL = 1024 * 1024

#: The day the sources below were last read.
CHECKED = datetime.date(2026, 12, 5)
#: The reference's research date: facts carried over from provider-apis.md were read then.
REFERENCE_CHECKED = datetime.date(2026, 11, 16)
#: BFL's pricing page: "from" prices per model, 1 credit = $0.01.
PRICING = "https://docs.bfl.ai/quick_start/pricing.md"
#: BFL's own API skill (github.com/black-forest-labs/skills): endpoint paths, the first and each
#: further megapixel of FLUX.2, and the formula (firstMP + (outputMP-1) * mpPrice) + inputMP *
#: mpPrice, in cents.
SKILL = (
    "https://github.com/black-forest-labs/skills/blob/"
    "172fdcfe72465dfdb76598dd7c37eb3e76027cb1/skills/bfl-api/SKILL.md"
)
#: BFL's API reference (the endpoint list and request schemas).
API_REFERENCE = "https://docs.bfl.ai/api-reference/tasks/generate-an-image-with-flux1-%5Bpro%5D"

#: BFL's API reference of FLUX.1 Expand [pro] (``POST /v1/flux-pro-1.0-expand``, schema
#: ``FluxProExpandInputs``: ``image``, ``top``/``bottom``/``left``/``right`` 0 to 2048, ``prompt``,
#: ``steps``, ``guidance``, ``seed``, ``safety_tolerance``, ``output_format``); read on its
#: docs.bfl.ml mirror of the same site.
EXPAND_DOCS = (
    "https://docs.bfl.ai/api-reference/models/expand-an-image-by-adding-pixels-on-any-side"
)


def edit_operations(model: str) -> dict[str, OperationSupport]:
    """Return the operations table of an endpoint that edits with input images (FLUX.2,
    Kontext): every operation is an instruction (bfl_input.INSTRUCTIONS), the references are
    the input images after the source (SKILL, :func:`max_input_images`)."""
    support = OperationSupport(max_references=max_input_images(model) - 1)
    ops = ("edit", "replace_background", "search_replace", "search_recolor", "restyle")
    return dict.fromkeys(ops, support)


#: Text to image only: a table that lists no operation on a source image.
TEXT_ONLY = {"generate": OperationSupport()}
#: FLUX.1 Fill [pro] repaints where the mask is white (inpaint) or, asked to, continues the
#: surroundings there (erase: BFL's skill lists Fill for "inpainting and object removal").
FILL_OPERATIONS = {
    "inpaint": OperationSupport(mask="required"),
    "erase": OperationSupport(mask="required"),
}
#: FLUX.1 Expand [pro] outpaints: the source and up to 2048 px on each side (EXPAND_DOCS).
EXPAND_OPERATIONS = {"outpaint": OperationSupport()}

_COMMON = {"max_count": 1, "seed": True, "negative_prompt": False, "mask": False}
# §6.2: jpeg (BFL's default) or png; webp is [UNCERTAIN], so a webp request is sent as jpeg.
_FORMATS = ("jpeg", "png")
# §6.2: multiples of 16, at least 64, at most 4 MP; the 2048 px side is a wrapper's [UNCERTAIN]
# limit, and 4 MP is read as 2048 x 2048 pixels.
FLUX2_CAPS = Capabilities(
    min_side=64,
    max_side=2048,
    size_multiple=16,
    max_pixels=2048 * 2048,
    edit=True,
    output_formats=_FORMATS,
    operations=edit_operations("flux-2-pro"),
    **_COMMON,
)
# §6.2: FLUX.1 [pro] 1.1 width/height 256-1440 in multiples of 32 ([pro] and [dev] alike).
FLUX1_CAPS = Capabilities(
    min_side=256,
    max_side=1440,
    size_multiple=32,
    edit=False,
    output_formats=_FORMATS,
    operations=TEXT_ONLY,
    **_COMMON,
)
ULTRA_CAPS = Capabilities(
    aspect_ratios=ASPECT_RATIOS,
    edit=False,
    output_formats=_FORMATS,
    operations=TEXT_ONLY,
    **_COMMON,
)
KONTEXT_CAPS = Capabilities(
    aspect_ratios=ASPECT_RATIOS,
    edit=True,
    output_formats=_FORMATS,
    operations=edit_operations("flux-kontext-pro"),
    **_COMMON,
)
# FLUX.1 Fill [pro] inpaints one source image where its mask is white; no size is sent, so the
# output follows the source image. The FLUX.1 side limits only bound the estimate's size.
FILL_CAPS = Capabilities(
    min_side=256,
    max_side=1440,
    size_multiple=32,
    edit=True,
    output_formats=_FORMATS,
    operations=FILL_OPERATIONS,
    **{**_COMMON, "mask": True},
)
# FLUX.1 Expand [pro]: the output is the source plus the padding, so no size is sent; the
# FLUX.2 side limits only bound the estimate's size (it is billed per image).
EXPAND_CAPS = Capabilities(
    min_side=64,
    max_side=8192,
    edit=True,
    output_formats=_FORMATS,
    operations=EXPAND_OPERATIONS,
    **_COMMON,
)


def flux2_price(first: str, further: str) -> MegapixelTiers:
    """Return FLUX.2's price: ``first`` dollars for an output's first megapixel, ``further`` for
    each further megapixel and for each megapixel of the input images.

    BFL's API skill: cost in cents = firstMP + (outputMP - 1) x mpPrice + inputMP x mpPrice, so an
    edit costs its input megapixels at the further rate ([pro] 1 MP with a 1 MP input: 3 + 1.5 =
    4.5 cents, the "from $0.045" of the pricing page). Each image is counted in whole
    :data:`FLUX_MEGAPIXEL` megapixels, rounded up (a 1.98 MP ``output_mp`` was billed 4.5 credits
    on [pro]) [UNVERIFIED: rounding inferred from response examples]. Billing itself uses the
    response's ``cost``; this rule feeds estimates.
    """
    return MegapixelTiers(
        first=Decimal(first),
        price=Decimal(further),
        input_price=Decimal(further),
        megapixel=FLUX_MEGAPIXEL,
        round_up=True,
    )


#: FLUX.2 [klein] takes fewer input images than the other FLUX.2 endpoints.
KLEIN_CAPS = replace(FLUX2_CAPS, operations=edit_operations("flux-2-klein-4b"))


def _flux2(model_id: str, label: str, first: str, further: str, **kw) -> ModelInfo:
    return ModelInfo(
        provider="bfl",
        id=model_id,
        label=label,
        capabilities=KLEIN_CAPS if model_id.startswith("flux-2-klein") else FLUX2_CAPS,
        price=flux2_price(first, further),
        **kw,
    )


def _flat(model_id: str, label: str, caps: Capabilities, price: str, **kw) -> ModelInfo:
    return ModelInfo(
        provider="bfl",
        id=model_id,
        label=label,
        capabilities=caps,
        price=PerImage(price=Decimal(price)),
        **kw,
    )


# §6.1 lists the endpoints; BFL's skill the FLUX.2 first and further megapixel prices, its pricing
# page the "from" prices they add up to. FLUX.2 [dev] is local only (no hosted API) and is not
# listed. BFL publishes no lifecycle dates, so none are set.
_FLUX2_SOURCES = sources(CHECKED, id=SKILL, price=SKILL)
_FLUX1_SOURCES = sources(CHECKED, id=SKILL, price=SKILL)
_OLD_PRICE = Source(
    url=PRICING,
    checked=CHECKED,
    verified=False,
    note="Not on BFL's pricing page or skill today; the price is from BFL's older price list.",
)
MODELS: tuple[ModelInfo, ...] = (
    _flux2("flux-2-pro", "FLUX.2 [pro]", "0.03", "0.015", sources=_FLUX2_SOURCES),
    _flux2("flux-2-max", "FLUX.2 [max]", "0.07", "0.03", sources=_FLUX2_SOURCES),
    _flux2(
        "flux-2-flex",
        "FLUX.2 [flex]",
        "0.05",
        "0.05",
        sources=sources(
            CHECKED,
            id=SKILL,
            price=Source(
                url=SKILL,
                checked=CHECKED,
                note="BFL's skill and pricing page say 5 cents; some copies of the skill say 6.",
            ),
        ),
    ),
    _flux2("flux-2-klein-4b", "FLUX.2 [klein] 4B", "0.014", "0.001", sources=_FLUX2_SOURCES),
    _flux2("flux-2-klein-9b", "FLUX.2 [klein] 9B", "0.015", "0.002", sources=_FLUX2_SOURCES),
    _flux2(
        "flux-2-pro-preview",
        "FLUX.2 [pro] preview",
        "0.03",
        "0.015",
        notes="Preview endpoint (§6.1); priced like FLUX.2 [pro].",
        sources=sources(
            REFERENCE_CHECKED,
            id=Source(
                url=API_REFERENCE,
                checked=REFERENCE_CHECKED,
                verified=False,
                note="In provider-apis.md §6.1's endpoint list; not in BFL's skill today.",
            ),
            price=Source(
                url=PRICING,
                checked=CHECKED,
                verified=False,
                note="No price of its own on BFL's pages; priced like FLUX.2 [pro].",
            ),
        ),
    ),
    _flat("flux-pro-1.1", "FLUX1.1 [pro]", FLUX1_CAPS, "0.04", sources=_FLUX1_SOURCES),
    _flat("flux-pro-1.1-ultra", "FLUX1.1 [pro] Ultra", ULTRA_CAPS, "0.06", sources=_FLUX1_SOURCES),
    _flat("flux-kontext-pro", "FLUX.1 Kontext [pro]", KONTEXT_CAPS, "0.04", sources=_FLUX1_SOURCES),
    _flat("flux-kontext-max", "FLUX.1 Kontext [max]", KONTEXT_CAPS, "0.08", sources=_FLUX1_SOURCES),
    _flat(
        "flux-pro-1.0-fill",
        "FLUX.1 Fill [pro]",
        FILL_CAPS,
        "0.05",
        notes="Inpainting: one source image and a mask (white is repainted).",
        sources=_FLUX1_SOURCES,
    ),
    _flat(
        "flux-pro-1.0-expand",
        "FLUX.1 Expand [pro]",
        EXPAND_CAPS,
        "0.05",
        notes="Outpainting: one source image and the pixels to add on each side.",
        sources={
            "id": Source(url=EXPAND_DOCS, checked=CHECKED),
            "price": Source(
                url=PRICING,
                checked=CHECKED,
                verified=False,
                note="Priced like FLUX.1 Fill [pro]; the response's cost is what is billed.",
            ),
        },
    ),
    _flat(
        "flux-pro",
        "FLUX.1 [pro]",
        FLUX1_CAPS,
        "0.05",
        notes="Billing uses the response's cost.",
        sources={"id": Source(url=API_REFERENCE, checked=REFERENCE_CHECKED), "price": _OLD_PRICE},
    ),
    _flat(
        "flux-dev",
        "FLUX.1 [dev]",
        FLUX1_CAPS,
        "0.025",
        notes="Billing uses the response's cost.",
        sources={"id": Source(url=API_REFERENCE, checked=REFERENCE_CHECKED), "price": _OLD_PRICE},
    ),
)
