"""Black Forest Labs' FLUX endpoints: capabilities, prices and the request shape of each family.

provider-apis.md §6: the ``model`` option is the endpoint name (``POST /v1/{model}``). Three
request shapes exist (:func:`family`): FLUX.2 (``width``/``height`` in multiples of 16, up to 4 MP,
``input_image`` ... ``input_image_8``), FLUX.1 (``width``/``height`` 256 to 1440 in multiples of 32)
and the aspect-ratio endpoints (FLUX1.1 [pro] Ultra and FLUX.1 Kontext, ``aspect_ratio``). Every
call makes one image. Billing is in credits at $0.01 (§6.1); the actual cost comes from the
response's ``cost`` field, so these prices feed estimates and answers without a ``cost``.
"""

from __future__ import annotations

from decimal import Decimal

from imagegen.catalog import Capabilities, ModelInfo, register
from imagegen.pricing import MegapixelTiers, PerImage

#: §6.1: 1 credit = $0.01.
CREDIT_PRICE = Decimal("0.01")
#: Aspect ratios of the ratio endpoints: BFL takes any ratio from 21:9 to 9:21; these are offered.
ASPECT_RATIOS = ("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21")

FLUX2, FLUX1, RATIO = "flux2", "flux1", "ratio"


def family(model: str) -> str:
    """Return the request shape of endpoint ``model``: "flux2", "flux1" or "ratio"."""
    if model.startswith("flux-2-"):
        return FLUX2
    if model.startswith("flux-kontext-") or model.endswith("-ultra"):
        return RATIO
    return FLUX1


def max_input_images(model: str) -> int:
    """Return how many input images endpoint ``model`` takes (0: none, as far as imagegen knows).

    §6.2: FLUX.2 takes ``input_image`` to ``input_image_8``. [klein] is documented with fewer
    references elsewhere; 4 is our [UNCERTAIN] limit. Kontext takes one ``input_image`` (BFL's
    Kontext docs, outside the reference). FLUX.1's ``image_prompt`` is a style reference, not an
    edit input: pass it in ``extra``.
    """
    if model.startswith("flux-2-klein"):
        return 4
    if model.startswith("flux-2-"):
        return 8
    if model.startswith("flux-kontext-"):
        return 1
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
#: (§6.2), so BFL's prices count binary megapixels [UNCERTAIN: inferred from those examples].
FLUX_MEGAPIXEL = 1024 * 1024


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
    **_COMMON,
)
# §6.2: FLUX.1 [pro] 1.1 width/height 256-1440 in multiples of 32 ([pro] and [dev] alike).
FLUX1_CAPS = Capabilities(
    min_side=256, max_side=1440, size_multiple=32, edit=False, output_formats=_FORMATS, **_COMMON
)
ULTRA_CAPS = Capabilities(
    aspect_ratios=ASPECT_RATIOS, edit=False, output_formats=_FORMATS, **_COMMON
)
KONTEXT_CAPS = Capabilities(
    aspect_ratios=ASPECT_RATIOS, edit=True, output_formats=_FORMATS, **_COMMON
)


def flux2_price(price: str, edit: str | None = None) -> MegapixelTiers:
    """Return FLUX.2's price: ``price`` dollars per output megapixel, the first one charged in full.

    §6.4 gives "from" prices per megapixel; an image under 1 MP costs the 1 MP price, a larger
    one scales with its exact size in :data:`FLUX_MEGAPIXEL` units (no rounding). Edits (input
    images) cost ``edit`` per megapixel instead where BFL lists one (FLUX.2 [pro]: from $0.045);
    input megapixels are not charged apart.
    """
    return MegapixelTiers(
        price=Decimal(price),
        edit_price=Decimal(edit) if edit else None,
        megapixel=FLUX_MEGAPIXEL,
        round_up=False,
        from_prices=True,
    )


def _flux2(model_id: str, label: str, price: str, edit: str | None = None, **kw) -> ModelInfo:
    rule = flux2_price(price, edit)
    return ModelInfo(
        provider="bfl", id=model_id, label=label, capabilities=FLUX2_CAPS, price=rule, **kw
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


# §6.1 lists the endpoints, §6.4 the prices. FLUX.2 [dev] is local only (no hosted API) and is not
# listed. The reference gives no lifecycle dates, so none are set.
_OUTSIDE = "Price from BFL's pricing page, not the reference; billing uses the response's cost."
register(
    _flux2("flux-2-pro", "FLUX.2 [pro]", "0.03", edit="0.045"),
    _flux2("flux-2-max", "FLUX.2 [max]", "0.07"),
    _flux2("flux-2-flex", "FLUX.2 [flex]", "0.05"),
    _flux2("flux-2-klein-4b", "FLUX.2 [klein] 4B", "0.014"),
    _flux2("flux-2-klein-9b", "FLUX.2 [klein] 9B", "0.015"),
    _flux2(
        "flux-2-pro-preview",
        "FLUX.2 [pro] preview",
        "0.03",
        edit="0.045",
        notes="Preview endpoint (§6.1); priced like FLUX.2 [pro] [UNCERTAIN].",
    ),
    _flat("flux-pro-1.1", "FLUX1.1 [pro]", FLUX1_CAPS, "0.04"),
    _flat("flux-pro-1.1-ultra", "FLUX1.1 [pro] Ultra", ULTRA_CAPS, "0.06"),
    _flat("flux-kontext-pro", "FLUX.1 Kontext [pro]", KONTEXT_CAPS, "0.04", notes=_OUTSIDE),
    _flat("flux-kontext-max", "FLUX.1 Kontext [max]", KONTEXT_CAPS, "0.08", notes=_OUTSIDE),
    _flat(
        "flux-pro",
        "FLUX.1 [pro]",
        FLUX1_CAPS,
        "0.05",
        notes="Price from BFL's older price list [UNCERTAIN]; billing uses the response's cost.",
    ),
    _flat(
        "flux-dev",
        "FLUX.1 [dev]",
        FLUX1_CAPS,
        "0.025",
        notes="Price from BFL's older price list [UNCERTAIN]; billing uses the response's cost.",
    ),
)
