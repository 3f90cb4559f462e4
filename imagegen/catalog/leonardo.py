"""Leonardo.Ai models reached through ``POST /api/rest/v1/generations``: capabilities and prices.

provider-apis.md §5: a model is a UUID sent as ``modelId``; width and height are 32 to 1536 in
multiples of 8; ``num_images`` is 1 to 8 (1 to 4 when a side is over 768); seed and negative
prompt are taken; images come back as JPEG files on ``cdn.leonardo.ai``. Billing is the create
answer's ``apiCreditCost`` times a dollar rate per credit (:data:`CREDIT_PRICE`); these prices
only feed estimates and resumed jobs, whose create answer (and so its credit cost) is gone.
"""

from __future__ import annotations

import datetime
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

MODELS: tuple[ModelInfo, ...] = (
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
