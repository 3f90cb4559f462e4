"""Leonardo.Ai models reached through ``POST /api/rest/v1/generations``: capabilities and prices.

provider-apis.md §5: a model is a UUID sent as ``modelId``; width and height are 32 to 1536 in
multiples of 8; ``num_images`` is 1 to 8 (1 to 4 when a side is over 768); seed and negative
prompt are taken; images come back as JPEG files on ``cdn.leonardo.ai``. The newer models
(:data:`GUIDED`: Lucid, Phoenix, FLUX.1) have their UUIDs from their own guides on
docs.leonardo.ai, which require ``contrast`` and list no negative prompt. Billing is the create
answer's ``apiCreditCost`` times a dollar rate per credit (:data:`CREDIT_PRICE`); these prices
only feed estimates and resumed jobs, whose create answer (and so its credit cost) is gone.
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from decimal import Decimal

from imagegen.catalog.entries import Capabilities, ModelInfo, Source
from imagegen.pricing import PerCredit

#: The day the sources below were last read.
CHECKED = datetime.date(2026, 12, 5)
#: The reference's research date: facts carried over from provider-apis.md were read then.
REFERENCE_CHECKED = datetime.date(2026, 11, 16)
#: Leonardo's pricing-calculator guide: its estimated pricing table (credits per request).
CALCULATOR_GUIDE = "https://docs.leonardo.ai/docs/plan-with-the-pricing-calculator"
#: Leonardo's Pay-As-You-Go guide: dollar-based billing "at the same standardised rate as the
#: previous Pro tier".
PAYG_GUIDE = "https://docs.leonardo.ai/docs/payg-guide"
#: Leonardo's own SDK, generated from its OpenAPI spec (the modelId default).
SDK = (
    "https://github.com/Leonardo-Interactive/leonardo-python-sdk/blob/main/"
    "src/leonardo_ai_sdk/models/operations/creategeneration.py"
)

#: §5.2: the ``modelId`` default of Leonardo's OpenAPI spec, Leonardo Lightning XL.
DEFAULT_MODEL = "b24e16ff-06e3-43eb-8d33-4416c2d75876"

#: Dollars per ``apiCreditCost`` credit. §5.7 says the conversion is undocumented [UNCERTAIN].
#: Leonardo's Pay-As-You-Go guide says PAYG bills "the same standardised rate as the previous Pro
#: tier" and saves former Basic and Standard plan users "up to 42%" and "up to 24%". Leonardo's
#: former API plans (3,500 credits for $9, 25,000 for $49, 200,000 for $299 on Pro; not in the
#: reference [UNCERTAIN]) fit that: $0.002571 and $0.00196 less 42% and 24% both give the Pro
#: rate of $0.001495, rounded here to $0.0015 per credit. Set OPTIONS["credit_price"] if your
#: invoices say otherwise.
CREDIT_PRICE = Decimal("0.0015")

#: §5.2: ``presetStyle`` values.
PRESET_STYLES = (
    *("ANIME", "BOKEH", "CINEMATIC", "CINEMATIC_CLOSEUP", "CREATIVE", "DYNAMIC", "ENVIRONMENT"),
    *("FASHION", "FILM", "FOOD", "GENERAL", "HDR", "ILLUSTRATION", "LEONARDO", "LONG_EXPOSURE"),
    *("MACRO", "MINIMALISTIC", "MONOCHROME", "MOODY", "NONE", "NEUTRAL", "PHOTOGRAPHY"),
    *("PORTRAIT", "RAYTRACED", "RENDER_3D", "RETRO", "SKETCH_BW", "SKETCH_COLOR", "STOCK_PHOTO"),
    *("VIBRANT", "UNPROCESSED"),
)
#: §5.2: the only presetStyle values accepted without alchemy.
PLAIN_STYLES = ("LEONARDO", "NONE")

# §5.2: sides 32-1536 in multiples of 8; 1-8 images, but 1-4 once a side is over 768, so 4 per
# call (larger counts are split). The images are JPEG files (§5.4, image_0.jpg) and no output
# format can be asked for.
V1_CAPS = Capabilities(
    min_side=32,
    max_side=1536,
    size_multiple=8,
    max_count=4,
    seed=True,
    negative_prompt=True,
    edit=False,
    mask=False,
    output_formats=("jpeg",),
)

#: Leonardo's model guides (docs.leonardo.ai), each with the model's UUID in its sample request.
LUCID_ORIGIN_GUIDE = "https://docs.leonardo.ai/docs/lucid-origin"
LUCID_REALISM_GUIDE = "https://docs.leonardo.ai/docs/lucid-realism"
PHOENIX_GUIDE = "https://docs.leonardo.ai/docs/phoenix"
KONTEXT_GUIDE = "https://docs.leonardo.ai/docs/flux-1-kontext-pro"
FLUX_GUIDE = "https://docs.leonardo.ai/docs/generate-images-using-flux"

#: The guides of the newer v1 models list ``contrast`` as required (3, 3.5 or 4: Low, Medium,
#: High) and list no ``negative_prompt``. imagegen sends the guides' sample value, Medium, unless
#: ``ImageRequest.extra`` sets ``contrast``.
GUIDED_FIELDS: dict[str, object] = {"contrast": 3.5}

# The newer models: the v1 endpoint's limits (§5.2), without a negative prompt, which their
# guides do not list. Lucid Origin's sample request is 1920x1080, above §5.2's 1536; the larger
# limit is not documented, so requests are still fitted to 1536.
GUIDED_CAPS = replace(V1_CAPS, negative_prompt=False)

#: The price note of a model whose credit cost Leonardo publishes nowhere: it is estimated like
#: the default model, as any uncatalogued UUID is; billing uses the reported ``apiCreditCost``.
_UNPUBLISHED = (
    "No credit cost for this model is on Leonardo's pages: its guide gives none, and the "
    f"pricing-calculator guide's table ({CALCULATOR_GUIDE}) covers only older SD and SDXL "
    "models. Estimated like Lightning XL, 10 credits an image; the generation is billed at the "
    "apiCreditCost Leonardo reports. Set IMAGEGEN['PRICES'] to estimate it better."
)


def _guided(model_id: str, label: str, guide: str, notes: str = "") -> ModelInfo:
    """Return a newer v1 model whose UUID is in its guide on docs.leonardo.ai, price unknown."""
    return ModelInfo(
        provider="leonardo",
        id=model_id,
        label=label,
        capabilities=GUIDED_CAPS,
        price=PerCredit(credits=Decimal(10), credit_price=CREDIT_PRICE),
        notes=notes or f"The modelId of Leonardo's {label} guide. Price not published.",
        sources={
            "id": Source(url=guide, checked=CHECKED),
            "price": Source(url=guide, checked=CHECKED, verified=False, note=_UNPUBLISHED),
        },
    )


LIGHTNING_XL: tuple[ModelInfo, ...] = (
    ModelInfo(
        provider="leonardo",
        id=DEFAULT_MODEL,
        label="Leonardo Lightning XL",
        capabilities=V1_CAPS,
        # Leonardo's pricing-calculator page (outside the reference): Lightning XL with Alchemy
        # v2 costs 40 credits for four 1024x1024 images, so 10 per image. Without alchemy it
        # costs less; the estimate errs high.
        price=PerCredit(credits=Decimal(10), credit_price=CREDIT_PRICE),
        notes=(
            "The modelId default of Leonardo's API spec. Estimated at 10 credits per image "
            "(Leonardo's pricing table, with Alchemy); billing uses apiCreditCost."
        ),
        sources={
            "id": Source(url=SDK, checked=REFERENCE_CHECKED),
            "price": Source(
                url=CALCULATOR_GUIDE,
                checked=CHECKED,
                verified=False,
                note=(
                    "The guide's table gives Lightning XL with Alchemy v2 40 credits for four "
                    "1024x1024 images; the dollars per credit are inferred from the PAYG guide "
                    f"({PAYG_GUIDE}), which names no rate. The live check asks Leonardo's "
                    "pricing calculator."
                ),
            ),
        },
    ),
)

#: The newer v1 models, each with its UUID from its guide on docs.leonardo.ai (checked
#: 2026-12-05). Phoenix 0.9's UUID is not in the stored guides, and the v2-only models (FLUX.2,
#: GPT Image, Nano Banana...) take slugs imagegen does not send, so neither is listed.
GUIDED: tuple[ModelInfo, ...] = (
    _guided("7b592283-e8a7-4c5a-9ba6-d18c31f258b9", "Lucid Origin", LUCID_ORIGIN_GUIDE),
    _guided("05ce0082-2d80-4a2d-8653-4d1c85e2418e", "Lucid Realism", LUCID_REALISM_GUIDE),
    _guided("de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3", "Leonardo Phoenix 1.0", PHOENIX_GUIDE),
    _guided(
        "28aeddf8-bd19-4803-80fc-79602d1a9989",
        "FLUX.1 Kontext [pro]",
        KONTEXT_GUIDE,
        notes=(
            "The modelId of Leonardo's FLUX.1 Kontext [pro] guide. Text to image only here: "
            "imagegen does not upload its context images. Price not published."
        ),
    ),
    _guided("1dd50843-d653-4516-a8e3-f0238ee453ff", "FLUX.1 Schnell (Flux Speed)", FLUX_GUIDE),
    _guided("b2614463-296c-462a-9586-aafdb8f00e36", "FLUX.1 Dev (Flux Precision)", FLUX_GUIDE),
)
#: The ids that get :data:`GUIDED_FIELDS`.
GUIDED_MODELS = frozenset(info.id for info in GUIDED)

MODELS: tuple[ModelInfo, ...] = (*LIGHTNING_XL, *GUIDED)
