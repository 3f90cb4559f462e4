"""Derived files: widths, formats, provenance XMP, orientation, metadata stripping, cleanup."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import zlib
from unittest import mock

import pytest
from django.core.files.storage import FileSystemStorage
from PIL import Image, ImageCms, PngImagePlugin

import imagegen
from imagegen import derivatives
from imagegen.checks import check_settings
from imagegen.derivatives import TRAINED_ALGORITHMIC_MEDIA, plan_widths
from imagegen.models import GeneratedImage, Status
from imagegen.pipeline.storing import Store
from imagegen.providers.locmem import LocmemProvider
from imagegen.storage import get_storage
from tests.conftest import deriving, media_files, png_bytes

LADDER = [480, 960, 1600]
SECRET = "a secret prompt about the CEO"


def textured(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Return a deterministic image whose channels vary (a solid one says little about resizing)."""
    ramp = Image.linear_gradient("L")
    bands = [
        ramp.resize((width, height)),
        ramp.rotate(90).resize((width, height)),
        ramp.transpose(Image.Transpose.FLIP_TOP_BOTTOM).resize((width, height)),
    ]
    if mode == "RGBA":
        bands.append(ramp.rotate(45).resize((width, height)))
    return Image.merge(mode, bands)


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture
def ladder(settings, locmem):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "DERIVATIVE_WIDTHS": LADDER}
    return settings


def generate_from(data: bytes) -> GeneratedImage:
    """Generate an image from ``data`` and run its follow-up job, as a committed request would."""
    LocmemProvider.script(data)
    with deriving():
        generation = imagegen.generate(prompt="a lighthouse", provider="test")
    assert generation.status == Status.SUCCEEDED, generation.error_message
    generation.refresh_from_db()  # the follow-up job added its timings and warnings
    return generation.images.get()


def opened(name: str) -> Image.Image:
    with get_storage().open(name) as handle:
        image = Image.open(io.BytesIO(handle.read()))
        image.load()
    return image


def stored_bytes(name: str) -> bytes:
    with get_storage().open(name) as handle:
        return handle.read()


# -- planning -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "widths", "expected"),
    [
        (1024, LADDER, [480, 960, 1024]),  # 1600 would upscale: the original width instead
        (2000, LADDER, [480, 960, 1600]),
        (1600, LADDER, [480, 960, 1600]),  # equal counts as "at or above": made once
        (64, LADDER, [64]),
        (1024, [960, 480, 480], [480, 960]),  # sorted, duplicates dropped
        (1024, [], []),
    ],
)
def test_plan_widths_never_upscales(width, widths, expected):
    assert plan_widths(width, widths) == expected


# -- the pipeline -------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.postgres
def test_1024_image_gets_webp_and_avif_up_to_its_own_width(ladder):
    image = generate_from(encode(textured(1024, 768)))

    assert [(d["width"], d["height"], d["format"]) for d in image.derivatives] == [
        (480, 360, "webp"), (480, 360, "avif"),
        (960, 720, "webp"), (960, 720, "avif"),
        (1024, 768, "webp"), (1024, 768, "avif"),
    ]  # fmt: skip
    for entry in image.derivatives:
        data = stored_bytes(entry["name"])
        digest = hashlib.sha256(data).hexdigest()
        assert entry["name"].endswith(f"/{digest[:2]}/{digest}.{entry['format']}")
        assert entry["bytes"] == len(data)
        assert entry["mime_type"] == f"image/{entry['format']}"
        with Image.open(io.BytesIO(data)) as decoded:
            assert decoded.format == entry["format"].upper()
            assert decoded.size == (entry["width"], entry["height"])
    assert media_files(ladder) == sorted([image.file.name, *(d["name"] for d in image.derivatives)])
    assert "derivatives_ms" in image.generation.timings


@pytest.mark.django_db
def test_2000_image_gets_the_configured_ladder_only(ladder):
    image = generate_from(encode(textured(2000, 1000)))

    assert [(d["width"], d["height"]) for d in image.derivatives] == [
        (480, 240), (480, 240), (960, 480), (960, 480), (1600, 800), (1600, 800),
    ]  # fmt: skip
    assert (image.width, image.height) == (2000, 1000)


@pytest.mark.django_db
def test_original_is_stored_untouched(ladder):
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", SECRET)
    original = encode(textured(300, 200), pnginfo=info)
    image = generate_from(original)
    assert stored_bytes(image.file.name) == original


@pytest.mark.django_db
def test_no_derivatives_when_widths_are_empty(settings, locmem):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "DERIVATIVE_WIDTHS": []}
    image = generate_from(png_bytes(200, 100))
    assert image.derivatives == []
    assert media_files(settings) == [image.file.name]
    assert image.lqip and image.thumbhash and image.dominant_color  # placeholders stay on


@pytest.mark.django_db
def test_jpeg_derivatives_on_request_flatten_alpha_onto_white(ladder):
    ladder.IMAGEGEN = {**ladder.IMAGEGEN, "DERIVATIVE_FORMATS": ["jpeg", "webp"]}
    transparent = Image.new("RGBA", (64, 32), (255, 0, 0, 0))
    image = generate_from(encode(transparent))

    assert [d["format"] for d in image.derivatives] == ["jpeg", "webp"]
    jpeg, webp = (opened(d["name"]) for d in image.derivatives)
    assert jpeg.mode == "RGB" and jpeg.getpixel((10, 10))[0] > 245  # white, not black
    assert webp.mode == "RGBA" and webp.getpixel((10, 10))[3] == 0  # alpha kept


# -- provenance and privacy ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["webp", "avif", "jpeg"])
def test_every_derivative_carries_the_iptc_digital_source_type(ladder, fmt):
    ladder.IMAGEGEN = {**ladder.IMAGEGEN, "DERIVATIVE_FORMATS": [fmt]}
    image = generate_from(encode(textured(600, 400)))

    assert {d["format"] for d in image.derivatives} == {fmt}
    for entry in image.derivatives:
        decoded = opened(entry["name"])
        xmp = decoded.info["xmp"]
        xmp = xmp.decode("utf-8") if isinstance(xmp, bytes) else xmp
        assert f">{TRAINED_ALGORITHMIC_MEDIA}</Iptc4xmpExt:DigitalSourceType>" in xmp
        assert f">django-imagegen {imagegen.__version__}</xmp:CreatorTool>" in xmp
        if importlib.util.find_spec("defusedxml"):  # getxmp() parses only with defusedxml
            description = decoded.getxmp()["xmpmeta"]["RDF"]["Description"]
            assert description["DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA


def test_xmp_packet_is_well_formed_xml():
    from xml.dom.minidom import parseString  # our own constant, not untrusted input

    document = parseString(derivatives.xmp_packet())  # noqa: S318
    [node] = document.getElementsByTagName("Iptc4xmpExt:DigitalSourceType")
    assert node.firstChild.data == TRAINED_ALGORITHMIC_MEDIA


@pytest.mark.django_db
def test_provider_metadata_never_reaches_a_derivative(ladder):
    ladder.IMAGEGEN = {**ladder.IMAGEGEN, "DERIVATIVE_FORMATS": ["webp", "avif", "jpeg"]}
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", SECRET)
    info.add_text("parameters", SECRET, zip=True)
    info.add_itxt("XML:com.adobe.xmp", f"<x:xmpmeta>{SECRET}</x:xmpmeta>")
    exif = Image.Exif()
    exif[0x010E] = SECRET  # ImageDescription
    source = textured(300, 200)
    original = encode(source, pnginfo=info, exif=exif)
    with Image.open(io.BytesIO(original)) as check:  # the test input really has them
        assert check.info["prompt"] == SECRET and "exif" in check.info

    image = generate_from(original)

    assert len(image.derivatives) == 3
    for entry in image.derivatives:
        data = stored_bytes(entry["name"])
        assert SECRET.encode() not in data
        assert zlib.compress(SECRET.encode()) not in data
        decoded = opened(entry["name"])
        assert not {"prompt", "parameters", "exif", "icc_profile", "comment"} & set(decoded.info)
        assert len(decoded.getexif()) == 0


@pytest.mark.django_db
def test_icc_profile_is_converted_and_dropped(ladder):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = generate_from(encode(textured(120, 80), icc_profile=srgb))
    for entry in image.derivatives:
        assert "icc_profile" not in opened(entry["name"]).info


@pytest.mark.django_db
def test_exif_orientation_is_applied(ladder):
    # Stored landscape, left half red and right half blue; Orientation 6 shows it turned a
    # quarter clockwise: portrait, red on top.
    stored = Image.new("RGB", (200, 100), (255, 0, 0))
    stored.paste((0, 0, 255), (100, 0, 200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6
    ladder.IMAGEGEN = {**ladder.IMAGEGEN, "DERIVATIVE_WIDTHS": [50, 480]}

    image = generate_from(encode(stored, "JPEG", exif=exif, quality=95))

    assert (image.width, image.height) == (100, 200)  # as displayed
    assert [(d["width"], d["height"]) for d in image.derivatives][::2] == [(50, 100), (100, 200)]
    upright = opened(image.derivatives[-2]["name"]).convert("RGB")
    top, bottom = upright.getpixel((50, 20)), upright.getpixel((50, 180))
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]
    assert len(upright.getexif()) == 0


# -- failures and cleanup -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.postgres
def test_failure_after_derivatives_deletes_every_file(ladder):
    LocmemProvider.script(encode(textured(1024, 768)))
    with mock.patch.object(GeneratedImage, "save", side_effect=RuntimeError("database down")):
        generation = imagegen.generate(prompt="a lighthouse", provider="test")

    assert generation.status == Status.FAILED
    assert generation.error_code == "internal_error"
    assert media_files(ladder) == []


@pytest.mark.django_db
@pytest.mark.postgres
def test_storage_failure_on_a_derivative_keeps_the_image_pending_and_no_derived_file(ladder):
    real_save = FileSystemStorage.save
    calls = []

    def flaky_save(storage, name, content, *args, **kwargs):
        calls.append(name)
        if len(calls) == 3:
            raise OSError("disk full")
        return real_save(storage, name, content, *args, **kwargs)

    LocmemProvider.script(encode(textured(600, 400)))
    with mock.patch.object(FileSystemStorage, "save", flaky_save), deriving():
        generation = imagegen.generate(prompt="a lighthouse", provider="test")

    # The generation was stored and charged; only its follow-up job failed, and left no file.
    assert generation.status == Status.SUCCEEDED
    assert len(calls) == 3  # the original, then two derived files, the second one failing
    image = generation.images.get()
    assert image.pending and image.derivatives == [] and image.deriving_since is None
    assert media_files(ladder) == [image.file.name]


@pytest.mark.django_db
def test_pillow_failure_keeps_the_original_with_a_warning(ladder):
    with mock.patch.object(derivatives, "_encode", side_effect=OSError("encoder broke")):
        image = generate_from(encode(textured(600, 400)))

    assert image.derivatives == [] and image.lqip == ""
    assert any("could not be made (OSError)" in w for w in image.generation.warnings)
    assert media_files(ladder) == [image.file.name]


@pytest.mark.django_db
def test_same_image_twice_reuses_the_derivatives(ladder):
    data = encode(textured(600, 400))
    first, second = generate_from(data), generate_from(data)
    assert first.derivatives == second.derivatives
    assert len(media_files(ladder)) == 1 + len(first.derivatives)


@pytest.mark.django_db
@pytest.mark.postgres
def test_cleanup_keeps_a_derivative_another_row_uses(ladder):
    image = generate_from(encode(textured(600, 400)))
    name = image.derivatives[0]["name"]
    store = Store()
    store.created.append((get_storage(), name))
    store.undo()  # e.g. a concurrent run that wrote the same bytes and then failed
    assert get_storage().exists(name)


# -- checks -------------------------------------------------------------------------------------


def check_ids(settings, **imagegen_settings):
    settings.IMAGEGEN = imagegen_settings
    return {message.id: message for message in check_settings()}


@pytest.mark.parametrize(
    "config",
    [
        {"DERIVATIVE_WIDTHS": [480, 0]},
        {"DERIVATIVE_WIDTHS": "480"},
        {"DERIVATIVE_WIDTHS": [480.5]},
        {"DERIVATIVE_WIDTHS": [True]},
        {"DERIVATIVE_FORMATS": ["webp", "gif"]},
        {"DERIVATIVE_FORMATS": "webp"},
    ],
)
def test_bad_derivative_settings(settings, config):
    found = check_ids(settings, **config)
    assert "imagegen.E013" in found and found["imagegen.E013"].hint


def test_good_derivative_settings_pass(settings):
    assert check_ids(settings, DERIVATIVE_WIDTHS=LADDER, DERIVATIVE_FORMATS=["avif", "jpeg"]) == {}
    assert check_ids(settings, DERIVATIVE_WIDTHS=[], DERIVATIVE_FORMATS=[]) == {}


def test_avif_without_encoder_warns(settings):
    real_check = derivatives.features.check

    def no_avif(feature):
        return False if feature == "avif" else real_check(feature)

    with mock.patch.object(derivatives.features, "check", no_avif):
        found = check_ids(settings, DERIVATIVE_WIDTHS=LADDER)
        assert set(found) == {"imagegen.W013"}
        assert derivatives.available_formats(["webp", "avif"]) == ["webp"]
        assert check_ids(settings, DERIVATIVE_WIDTHS=LADDER, DERIVATIVE_FORMATS=["webp"]) == {}
