"""Catalog adaptation and price rules."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from imagegen import catalog
from imagegen.catalog import Capabilities, ModelInfo, adapt
from imagegen.pricing import (
    MegapixelTiers,
    PerCredit,
    PerImage,
    PerMegapixel,
    PerToken,
    price_from_dict,
)
from imagegen.types import ImageRequest
from tests.conftest import png_bytes

SIZED = ModelInfo(
    provider="t",
    id="sized",
    capabilities=Capabilities(
        sizes=((1024, 1024), (1536, 1024), (1024, 1536)), max_count=4, seed=False
    ),
)


def test_nearest_native_size_by_aspect_ratio():
    calls, warnings = adapt(ImageRequest(prompt="x", width=1536, height=864), SIZED)
    assert (calls[0].width, calls[0].height) == (1536, 1024)
    assert "does not offer 1536x864; using 1536x1024" in warnings[0]
    calls, _ = adapt(ImageRequest(prompt="x", width=800, height=1200), SIZED)
    assert (calls[0].width, calls[0].height) == (1024, 1536)


def test_count_split_and_seed_and_negative_dropped():
    request = ImageRequest(
        prompt="x", width=1024, height=1024, count=10, seed=5, negative_prompt="y"
    )
    calls, warnings = adapt(request, SIZED)
    assert [c.count for c in calls] == [4, 4, 2]
    assert all(c.seed is None and c.negative_prompt == "" for c in calls)
    assert len(warnings) == 3


def test_aspect_ratio_models_and_free_sizes():
    ratios = ModelInfo(
        provider="t", id="r", capabilities=Capabilities(aspect_ratios=("1:1", "16:9", "3:2"))
    )
    calls, warnings = adapt(ImageRequest(prompt="x", width=1600, height=900), ratios)
    assert calls[0].aspect_ratio == "16:9" and warnings == []
    calls, warnings = adapt(
        ImageRequest(prompt="x", width=2100, height=900, aspect_ratio="21:9"), ratios
    )
    assert calls[0].aspect_ratio == "16:9" and "21:9" in warnings[0]
    free = ModelInfo(
        provider="t", id="f", capabilities=Capabilities(max_side=1440, size_multiple=32)
    )
    calls, _ = adapt(ImageRequest(prompt="x", width=2048, height=1152), free)
    assert (calls[0].width, calls[0].height) == (1440, 800)


def test_unsupported_output_format_is_replaced():
    jpeg_only = ModelInfo(provider="t", id="j", capabilities=Capabilities(output_formats=("jpeg",)))
    calls, warnings = adapt(ImageRequest(prompt="x", output_format="png"), jpeg_only)
    assert calls[0].output_format == "jpeg" and "cannot return png" in warnings[0]


def test_lifecycle_status():
    info = ModelInfo(
        provider="t",
        id="old",
        deprecated=datetime.date(2026, 1, 1),
        shutdown=datetime.date(2026, 10, 23),
        successor="new",
    )
    assert info.status(datetime.date(2025, 12, 31)) == "active"
    assert info.status(datetime.date(2026, 5, 1)) == "deprecated"
    assert info.status(datetime.date(2026, 10, 23)) == "shut down"


def test_prices_setting_overrides_catalog(settings):
    settings.IMAGEGEN = {"PRICES": {"placeholder": {"per_image": "0.01"}}}
    info = catalog.get_model("placeholder", "placeholder")
    assert info.price.estimate(ImageRequest(prompt="x", count=3)) == Decimal("0.03")


def test_per_image_table_by_quality_and_size():
    rule = PerImage(
        price=Decimal("0.04"), table={"high:1024x1536": Decimal("0.25"), "low": Decimal("0.01")}
    )
    assert rule.estimate(
        ImageRequest(prompt="x", quality="high", width=1024, height=1536)
    ) == Decimal("0.25")
    assert rule.estimate(ImageRequest(prompt="x", quality="low", count=2)) == Decimal("0.02")
    assert rule.actual(ImageRequest(prompt="x", count=4), {}, images=3) == Decimal("0.12")


def test_per_megapixel_rounds_up():
    rule = PerMegapixel(price=Decimal("0.015"))
    # 1536x1024 = 1.57 MP, billed as 2 MP.
    assert rule.estimate(ImageRequest(prompt="x", width=1536, height=1024)) == Decimal("0.03")
    assert rule.estimate(ImageRequest(prompt="x", width=512, height=512)) == Decimal("0.015")


MP = 1024 * 1024


def test_megapixel_tiers_exact_fraction_with_a_full_first_megapixel():
    # BFL's FLUX.2 rule (§6.4): exact 1024x1024 megapixels, at least one, edits priced apart.
    rule = MegapixelTiers(
        price=Decimal("0.03"), edit_price=Decimal("0.045"), round_up=False, from_prices=True
    )

    def cost(width, height, **kw):
        return rule.estimate(ImageRequest(prompt="x", width=width, height=height, **kw))

    assert cost(512, 512) == Decimal("0.030000")  # under 1 MP: the first megapixel in full
    assert cost(1024, 1024) == Decimal("0.030000")
    assert cost(1024, 1040) == Decimal("0.030469")  # 1.015625 MP: scales, no rounding up
    assert cost(1536, 864) == Decimal("0.037969")  # 1.265625 MP
    assert cost(2048, 2048, count=2) == Decimal("0.240000")
    # An edit: every output megapixel at the edit price; source images are not charged apart.
    big = png_bytes(2048, 2048)
    assert cost(1024, 1024, source_images=(big,)) == Decimal("0.045000")
    assert cost(2048, 1024, source_images=(big,)) == Decimal("0.090000")
    # Without usage totals, the actual cost is the estimate's, per image made.
    request = ImageRequest(prompt="x", width=1536, height=864)
    assert rule.actual(request, {"output_mp": 1.33, "credits": 4}, 1) == Decimal("0.037969")
    assert rule.describe() == "from $0.03 per megapixel (edits from $0.045)"
    assert MegapixelTiers(price=Decimal("0.03"), round_up=False).billed(MP // 2) == 1


def test_megapixel_tiers_rounded_up_with_a_first_tier_and_input_images():
    # Replicate's FLUX.2 rule (§3.6): each image rounded up to whole megapixels, at least one;
    # source images billed too, each at most 4 MP. Here with a dearer first megapixel.
    rule = MegapixelTiers(
        first=Decimal("0.03"),
        price=Decimal("0.015"),
        input_price=Decimal("0.01"),
        max_input=Decimal(4),
    )
    assert rule.billed(MP) == 1 and rule.billed(MP + 1) == 2  # the tier boundary
    assert rule.billed(1) == 1 and rule.billed(5 * MP, most=Decimal(4)) == 4

    def cost(width, height, **kw):
        return rule.estimate(ImageRequest(prompt="x", width=width, height=height, **kw))

    assert cost(512, 512) == Decimal("0.030000")  # rounded up to the first megapixel
    assert cost(1024, 1024) == Decimal("0.030000")
    assert cost(1024, 1040) == Decimal("0.045000")  # 1.02 MP: billed as 2
    assert cost(2048, 2048, count=2) == Decimal("0.150000")  # 2 x (0.03 + 3 x 0.015)
    # Inputs: 1200x1000 is 2 MP, 3000x3000 (8.6 MP) is capped at 4, an unreadable one is 1.
    sources = (png_bytes(1200, 1000), png_bytes(3000, 3000), b"not an image")
    request = ImageRequest(prompt="x", operation="edit", source_images=sources)
    assert rule.input_megapixels(request) == 7
    assert rule.estimate(request) == Decimal("0.100000")  # 0.03 + 7 x 0.01
    # The billed totals travel in the usage as JSON numbers and price the actual cost.
    assert rule.usage(request, 2) == {"output_megapixels": 2, "input_megapixels": 7}
    assert rule.actual(request, rule.usage(request, 2), 2) == Decimal("0.130000")
    usage = {"output_megapixels": 5, "input_megapixels": 0}
    assert rule.actual(request, usage, 2) == Decimal("0.105000")  # 2 x 0.03 + 3 x 0.015
    assert rule.describe() == (
        "$0.03 for the first megapixel, $0.015 for each further one, $0.01 per input megapixel"
    )


def test_megapixel_tiers_output_size_hook_and_fractional_minimum():
    # A provider billing a size tier rather than the size asked passes its own output size.
    tier = MegapixelTiers(price=Decimal("0.02"), output_pixels=lambda request: 4 * MP)
    assert tier.estimate(ImageRequest(prompt="x", width=512, height=512)) == Decimal("0.08")
    # Below one megapixel (a minimum under 1), an image pays the first-megapixel price only.
    rule = MegapixelTiers(
        first=Decimal("0.04"), price=Decimal("0.01"), round_up=False, minimum=Decimal("0.25")
    )
    assert rule.estimate(ImageRequest(prompt="x", width=256, height=256)) == Decimal("0.01")
    assert rule.estimate(ImageRequest(prompt="x", width=512, height=512)) == Decimal("0.01")
    assert rule.estimate(ImageRequest(prompt="x", width=1024, height=2048)) == Decimal("0.05")
    assert rule.usage(ImageRequest(prompt="x", width=512, height=1024), 1) == {
        "output_megapixels": 0.5,
        "input_megapixels": 0,
    }


def test_flux_2_catalogs_share_the_megapixel_rule():
    for provider, model in [
        ("bfl", "flux-2-pro"),
        ("bfl", "flux-2-klein-4b"),
        ("replicate", "black-forest-labs/flux-2-pro"),
        ("replicate", "black-forest-labs/flux-2-dev"),
    ]:
        assert isinstance(catalog.get_model(provider, model).price, MegapixelTiers), model
    replicate = catalog.get_model("replicate", "black-forest-labs/flux-2-pro").price
    assert replicate.describe() == "$0.015 per megapixel, $0.015 per input megapixel"
    # Replicate bills the resolution tier sent, not the size asked.
    request = ImageRequest(prompt="x", width=512, height=512, quality="4 MP")
    assert replicate.estimate(request) == Decimal("0.060000")


def test_per_credit_uses_reported_credits():
    rule = PerCredit(credits=Decimal("8"))
    assert rule.estimate(ImageRequest(prompt="x", count=2)) == Decimal("0.16")
    assert rule.actual(ImageRequest(prompt="x"), {"credits": 6.5}, images=1) == Decimal("0.065")


def test_per_token_from_usage():
    rule = PerToken(text_input=Decimal("5"), image_output=Decimal("40"), image_input=Decimal("10"))
    usage = {"text_input_tokens": 50, "image_input_tokens": 1000, "image_output_tokens": 4160}
    # (50*5 + 1000*10 + 4160*40) / 1e6
    assert rule.actual(ImageRequest(prompt="x"), usage, images=1) == Decimal("0.176650")


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({"per_image": "0.04"}, "per_image"),
        ({"per_megapixel": 0.015}, "per_megapixel"),
        ({"per_credit": 3, "credit_price": "0.01"}, "per_credit"),
        ({"free": True}, "free"),
        ({"kind": "per_token", "text_input": "5", "image_output": "40"}, "per_token"),
    ],
)
def test_price_from_dict(data, kind):
    assert price_from_dict(data).kind == kind


def test_price_from_dict_rejects_nonsense():
    with pytest.raises(ValueError, match="per_image"):
        price_from_dict({"per_kilo": 1})
