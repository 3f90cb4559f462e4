"""Placeholders: dominant colour, the tiny WebP data URI and the ThumbHash."""

from __future__ import annotations

import base64
import io
import random
import re

import pytest
import thash
from PIL import Image, ImageDraw

import imagegen
from imagegen import lqip
from imagegen.models import Status
from imagegen.providers.locmem import LocmemProvider
from tests.conftest import deriving, png_bytes

DATA_URI = re.compile(r"^data:image/webp;base64,([A-Za-z0-9+/]+=*)$")


def detailed(width: int, height: int, seed: int = 1) -> Image.Image:
    """A busy image (sharp shapes of many colours): the worst case for a small placeholder."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    for _ in range(300):
        x, y = rng.randrange(width), rng.randrange(height)
        w, h = (
            rng.randrange(width // 40 + 1, width // 4 + 2),
            rng.randrange(height // 40 + 1, height // 4 + 2),
        )
        draw.ellipse([x, y, x + w, y + h], fill=tuple(rng.randrange(256) for _ in range(3)))
    return image


def thumbhash_bytes(value: str) -> list[int]:
    return list(base64.b64decode(value, validate=True))


def test_solid_red_is_dominantly_red():
    assert lqip.make_placeholders(Image.new("RGB", (500, 300), (255, 0, 0))).dominant_color == (
        "#ff0000"
    )


def test_dominant_colour_is_the_largest_area_not_the_average():
    image = Image.new("RGB", (300, 100), (0, 0, 255))
    image.paste((255, 255, 0), (0, 0, 100, 100))  # a third yellow, two thirds blue
    assert lqip.make_placeholders(image).dominant_color == "#0000ff"


def test_transparent_areas_count_as_white():
    image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    image.paste((0, 128, 0, 255), (0, 0, 20, 20))
    assert lqip.make_placeholders(image).dominant_color == "#ffffff"


@pytest.mark.parametrize("size", [(2000, 1000), (1024, 1024), (300, 900), (20, 10)])
def test_lqip_is_a_tiny_webp_data_uri(size):
    uri = lqip.make_placeholders(detailed(*size)).lqip
    match = DATA_URI.match(uri)
    assert match, uri[:60]
    assert len(uri) < 600
    with Image.open(io.BytesIO(base64.b64decode(match.group(1)))) as tiny:
        assert tiny.format == "WEBP"
        assert max(tiny.size) == min(lqip.THUMB_SIDE, max(size))
        assert tiny.size[0] / tiny.size[1] == pytest.approx(size[0] / size[1], rel=0.1)
        assert "exif" not in tiny.info and "xmp" not in tiny.info


@pytest.mark.parametrize(("size", "ratio"), [((2000, 1000), 2.0), ((600, 900), 2 / 3)])
def test_thumbhash_decodes_to_the_right_aspect_ratio(size, ratio):
    image = Image.new("RGB", size, (200, 30, 30))
    value = lqip.make_placeholders(image).thumbhash
    assert len(value) <= 64  # fits the model field
    decoded = thumbhash_bytes(value)
    # ThumbHash stores the ratio through its DCT grid (7x4 for 2:1), so it is approximate.
    assert thash.thumb_hash_to_approximate_aspect_ratio(decoded) == pytest.approx(ratio, rel=0.15)
    red, green, blue, alpha = thash.thumb_hash_to_average_rgba(decoded)
    assert red > 0.7 and green < 0.2 and blue < 0.2 and alpha == pytest.approx(1, abs=0.01)
    width, height, rgba = thash.thumb_hash_to_rgba(decoded)
    assert len(rgba) == 4 * width * height


def test_thumbhash_keeps_transparency():
    image = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    image.paste((255, 0, 0, 255), (16, 16, 48, 48))
    _r, _g, _b, alpha = thash.thumb_hash_to_average_rgba(
        thumbhash_bytes(lqip.make_placeholders(image).thumbhash)
    )
    assert 0.05 < alpha < 0.95


def test_thumbnail_is_at_most_32_pixels_and_never_enlarged():
    assert lqip.thumbnail(Image.new("RGB", (1600, 900))).size == (32, 18)
    assert lqip.thumbnail(Image.new("RGB", (10, 5))).size == (10, 5)


@pytest.mark.django_db
def test_generated_images_get_placeholders_in_the_follow_up_job(settings, locmem):
    LocmemProvider.script(png_bytes(320, 160, color=(255, 0, 0)))
    with deriving():
        generation = imagegen.generate(prompt="a red square", provider="test")
        # Not inside generate(): the row says what is still to be made.
        assert generation.images.get().lqip == ""

    assert generation.status == Status.SUCCEEDED
    generation.refresh_from_db()
    image = generation.images.get()
    assert image.pending == ""
    assert image.dominant_color == "#ff0000"
    assert DATA_URI.match(image.lqip) and len(image.lqip) < 600
    ratio = thash.thumb_hash_to_approximate_aspect_ratio(thumbhash_bytes(image.thumbhash))
    assert ratio == pytest.approx(2.0, rel=0.15)
    assert "derivatives_ms" in generation.timings
