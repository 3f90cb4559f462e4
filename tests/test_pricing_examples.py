"""Each price rule, exact to the micro-dollar, on worked examples from the providers' own pages.

* First and further megapixels, and input megapixels: BFL's API skill (github.com/
  black-forest-labs/skills, skills/bfl-api/SKILL.md): cents = firstMP + (outputMP - 1) x mpPrice
  + inputMP x mpPrice, with its "1MP T2I" and "1MP I2I" columns.
* Per token: OpenAI's gpt-image-1 model page (high, 1024x1024: $0.167 per image; 4160 output
  tokens at $40 per million) and the Gemini example of provider-apis.md §4.6 (1290 tokens at
  $30 per million).
* Per credit: Leonardo's pricing-calculator guide (four 1024x1024 Lightning XL images with
  Alchemy v2: 40 credits) and Stability AI's credits at $0.01.
* Per dollar: BFL's FLUX1.1 [pro] at $0.04 per image, Replicate's schnell at $3 per 1000.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from imagegen import catalog
from imagegen.pricing import MegapixelTiers, PerCredit, PerImage, PerToken
from imagegen.types import ImageRequest
from tests.conftest import png_bytes

PROMPT = "a lighthouse"


def request(width: int = 1024, height: int = 1024, **changes) -> ImageRequest:
    return ImageRequest(prompt=PROMPT, width=width, height=height, **changes)


@pytest.mark.parametrize(
    ("model", "output_mp", "input_mp", "cents"),
    [
        # BFL's table: 1st MP and +MP per model; the 1 MP edit has one 1 MP input image.
        ("flux-2-pro", 1, 0, "3"),
        ("flux-2-pro", 1, 1, "4.5"),
        ("flux-2-pro", 4, 0, "7.5"),  # the case: $0.075, not $0.12
        ("flux-2-pro", 4, 2, "10.5"),  # 3 + 3 x 1.5 + 2 x 1.5
        ("flux-2-max", 1, 1, "10"),
        ("flux-2-flex", 2, 1, "15"),
        ("flux-2-klein-4b", 1, 1, "1.5"),
        ("flux-2-klein-9b", 1, 1, "1.7"),
        ("flux-2-klein-9b", 4, 0, "2.1"),  # 1.5 + 3 x 0.2
    ],
)
def test_first_further_and_input_megapixels(model, output_mp, input_mp, cents) -> None:
    rule = catalog.get_model("bfl", model).price
    assert isinstance(rule, MegapixelTiers)
    expected = Decimal(cents) / 100
    assert rule.cost(output_mp, 1, input_mp) == expected
    # The same through a request: a square output of that many megapixels, and input images.
    side = {1: 1024, 2: 1448, 4: 2048}[output_mp]
    sources = tuple(png_bytes(width=1024, height=1024) for _ in range(input_mp))
    assert rule.estimate(request(side, side, source_images=sources)) == expected


def test_first_megapixel_is_charged_per_image() -> None:
    rule = catalog.get_model("bfl", "flux-2-pro").price
    # Two 2 MP images: each pays its own first megapixel (2 x (3 + 1.5) cents).
    assert rule.cost(4, 2) == Decimal("0.09")


def test_per_token_gpt_image_1_high_square() -> None:
    rule = catalog.get_model("openai", "gpt-image-1").price
    assert isinstance(rule, PerToken)
    usage = {"image_output_tokens": 4160}
    assert rule.actual(request(quality="high"), usage, 1) == Decimal("0.1664")
    with_prompt = {"text_input_tokens": 50, "image_output_tokens": 4160}
    assert rule.actual(request(quality="high"), with_prompt, 1) == Decimal("0.16665")


def test_per_token_gemini_image_output() -> None:
    rule = catalog.get_model("google", "gemini-2.5-flash-image").price
    assert rule.actual(request(), {"image_output_tokens": 1290}, 1) == Decimal("0.0387")
    # Nano Banana 2.1: 1120 tokens at $30 per million for a 1K image ($0.0336).
    nano = catalog.get_model("google", "gemini-nano-banana-2.1").price
    assert nano.actual(request(), {"image_output_tokens": 1120}, 1) == Decimal("0.0336")


def test_per_credit_leonardo_and_stability() -> None:
    lightning = catalog.get_model("leonardo", "b24e16ff-06e3-43eb-8d33-4416c2d75876").price
    assert isinstance(lightning, PerCredit)
    # Leonardo's table: 40 credits for four 1024x1024 images, at $0.0015 a credit.
    assert lightning.estimate(request(count=4)) == Decimal("0.06")
    assert lightning.actual(request(count=4), {"credits": 40}, 4) == Decimal("0.06")
    core = catalog.get_model("stability", "core").price
    assert core.estimate(request()) == Decimal("0.03")


def test_per_dollar_images() -> None:
    pro = catalog.get_model("bfl", "flux-pro-1.1").price
    assert isinstance(pro, PerImage)
    assert pro.estimate(request(1440, 800)) == Decimal("0.04")
    schnell = catalog.get_model("replicate", "black-forest-labs/flux-schnell").price
    assert schnell.estimate(request(count=4)) == Decimal("0.012")
