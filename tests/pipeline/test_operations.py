"""Image operations through the whole pipeline: edit, inpaint, outpaint, erase, upscale and
remove_background on the offline providers, with lineage, refusals and input safety."""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

import imagegen
from imagegen.exceptions import ProviderUnavailable, UnsupportedRequest
from imagegen.models import GeneratedImage, Generation
from imagegen.pipeline.cleanup import referenced_names
from imagegen.pipeline.inputs import outpaint_padding
from imagegen.pipeline.planning import params_of
from imagegen.providers import locmem as locmem_module
from imagegen.providers.placeholder import PlaceholderProvider
from imagegen.services import cost_for, estimate, generate_many, plan
from tests.conftest import media_files
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db


class TextOnlyProvider(PlaceholderProvider):
    """A provider that makes images from text and nothing else."""

    operations = ("generate",)


@pytest.fixture
def ops(settings):
    settings.IMAGEGEN = {
        "DEFAULT_PROVIDER": "default",
        "PROVIDERS": {
            "default": {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"},
            "test": {"BACKEND": "imagegen.providers.locmem.LocmemProvider"},
            "paid": {
                "BACKEND": "imagegen.providers.locmem.LocmemProvider",
                "OPTIONS": {"cost": "0.04"},
            },
            "textonly": {"BACKEND": "tests.pipeline.test_operations.TextOnlyProvider"},
        },
        "PRICES": {"locmem": {"per_image": "0.04"}},
        "PRESETS": {
            "banner": {"aspect_ratio": "16:9", "providers": ["textonly", "test", "default"]},
            "product": {"operation_providers": {"upscale": ["textonly", "default", "test"]}},
        },
        "DERIVATIVE_WIDTHS": [],
    }
    return locmem_module.requests


def photo(width: int = 160, height: int = 160, fmt: str = "PNG", exif: Image.Exif | None = None):
    """Return a product shot: a red square on a plain white background."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    ImageDraw.Draw(image).rectangle(
        (width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(200, 30, 30)
    )
    buffer = io.BytesIO()
    image.save(buffer, fmt, **({"exif": exif} if exif is not None else {}))
    return buffer.getvalue()


def contents(file) -> bytes:
    with file.open("rb") as handle:
        return handle.read()


def opened(image_or_bytes) -> Image.Image:
    if isinstance(image_or_bytes, bytes):
        return Image.open(io.BytesIO(image_or_bytes))
    with image_or_bytes.file.open("rb") as file:
        image = Image.open(io.BytesIO(file.read()))
        image.load()
        return image


# Each operation on the placeholder provider ------------------------------------------------


def test_inpaint_fills_the_masked_rectangle_and_the_row_records_it(ops):
    source = photo()
    generation = imagegen.generate(
        operation="inpaint", source=source, mask=(0, 0, 40, 40), prompt="a blue flower"
    )
    assert generation.status == "succeeded", generation.error_message
    assert generation.operation == "inpaint"
    assert generation.source_image is None
    stored = contents(generation.source_file)
    assert hashlib.sha256(stored).hexdigest() == generation.source_sha256
    assert generation.mask_file.name
    params = params_of(generation)
    assert (params.operation, params.source_sha256) == ("inpaint", generation.source_sha256)
    result = opened(generation.images.get())
    assert result.size == (160, 160)
    assert result.convert("RGB").getpixel((100, 100)) == (200, 30, 30)  # outside: the source
    assert result.convert("RGB").getpixel((10, 10)) != (255, 255, 255)  # inside: painted


def test_erase_fills_the_mask_from_the_surroundings(ops):
    mask = Image.new("L", (160, 160), 0)
    ImageDraw.Draw(mask).rectangle((40, 40, 119, 119), fill=255)
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    generation = imagegen.generate(operation="erase", source=photo(), mask=buffer.getvalue())
    result = opened(generation.images.get()).convert("RGB")
    assert result.getpixel((80, 80)) != (200, 30, 30)
    assert result.getpixel((2, 2)) == (255, 255, 255)


def test_edit_changes_the_whole_image(ops):
    generation = imagegen.generate(operation="edit", source=photo(), prompt="make it blue")
    result = opened(generation.images.get()).convert("RGB")
    assert result.getpixel((2, 2)) != (255, 255, 255)


def test_outpaint_to_a_preset_extends_the_canvas_to_its_ratio(ops):
    generation = imagegen.generate(
        operation="outpaint", source=photo(), preset="banner", provider="default"
    )
    assert generation.status == "succeeded", generation.error_message
    assert params_of(generation).padding == (62, 0, 62, 0)
    result = opened(generation.images.get()).convert("RGB")
    assert result.size == (284, 160)
    assert result.getpixel((62 + 80, 80)) == (200, 30, 30)  # the source, centred
    assert outpaint_padding(160, 90, "1:1") == (0, 35, 0, 35)


def test_the_placeholder_outpaints_at_the_padding_it_was_given(ops):
    generation = imagegen.generate(
        operation="outpaint", source=photo(), padding=(100, 0, 20, 0), provider="default"
    )
    result = opened(generation.images.get()).convert("RGB")
    assert result.size == (280, 160)
    # The source's white corner sits 100 pixels in, not centred at 60.
    assert result.getpixel((100, 2)) == (255, 255, 255)
    assert result.getpixel((60, 2)) != (255, 255, 255)


def test_remove_background_makes_a_plain_background_transparent(ops):
    generation = imagegen.generate(operation="remove_background", source=photo())
    result = opened(generation.images.get())
    assert result.mode == "RGBA"
    assert result.getpixel((2, 2))[3] == 0
    assert result.getpixel((80, 80)) == (200, 30, 30, 255)


def test_upscale_resamples_to_the_scale(ops):
    generation = imagegen.generate(operation="upscale", source=photo(), scale=2)
    image = generation.images.get()
    assert (image.width, image.height) == (320, 320)
    assert opened(image).convert("RGB").getpixel((160, 160)) == (200, 30, 30)


def test_a_django_file_is_a_source(ops):
    generation = imagegen.generate(
        operation="upscale", source=ContentFile(photo(), name="shot.png"), scale=1.5
    )
    assert generation.images.get().width == 240


# Lineage and cost per object ----------------------------------------------------------------


def test_a_chain_generated_inpainted_upscaled_is_walked_and_costed(ops):
    article = Article.objects.create(title="Lamp")
    first = imagegen.generate(target=article, provider="paid")
    generated = first.images.get()
    inpainted = imagegen.generate(
        operation="inpaint", source=generated, mask=(0, 0, 10, 10), prompt="a lamp", provider="paid"
    )
    # A generated source's row targets the same object and field.
    assert (inpainted.object_id, inpainted.field_name) == (str(article.pk), "hero")
    assert inpainted.source_image == generated
    assert not inpainted.source_file
    upscaled = imagegen.generate(operation="upscale", target=article, provider="paid")
    # The field's current image (the inpainted one, attached) is the default source.
    top = upscaled.images.get()
    assert top.parent == inpainted.images.get()
    assert [image.generation.operation for image in top.lineage()] == [
        "upscale",
        "inpaint",
        "generate",
    ]
    assert generated.parent is None
    assert cost_for(article) == Decimal("0.12")
    article.refresh_from_db()
    assert article.hero.name == top.file.name


def test_an_edit_without_a_source_and_an_empty_field_is_refused(ops):
    article = Article.objects.create(title="Lamp")
    with pytest.raises(UnsupportedRequest, match="needs a source image"):
        imagegen.generate(operation="upscale", target=article)


# Capabilities decide, before anything is spent ---------------------------------------------


def test_a_provider_that_cannot_do_the_operation_is_refused_with_the_ones_that_can(ops):
    with pytest.raises(UnsupportedRequest) as caught:
        imagegen.generate(
            operation="inpaint", source=photo(), mask=(0, 0, 4, 4), provider="textonly", prompt="x"
        )
    message = str(caught.value)
    assert "cannot inpaint" in message
    assert "default, test, paid" in message
    assert "textonly" not in message.split("can:")[1]
    assert not Generation.objects.exists()
    assert media_files(__import__("django.conf").conf.settings) == []


def test_fallbacks_only_go_to_providers_that_can_do_the_operation(ops):
    planned = plan(operation="upscale", source=photo(), preset="banner", provider="test", scale=2)
    assert planned.params.fallbacks == ("default",)
    text = plan(prompt="a lamp", preset="banner")
    assert text.provider.alias == "textonly"
    assert text.params.fallbacks == ("test", "default")


def test_a_failed_operation_falls_back_with_the_same_images(ops):
    locmem_module.LocmemProvider.script(ProviderUnavailable("down"))
    generation = imagegen.generate(
        operation="upscale", source=photo(), preset="banner", provider="test", scale=2
    )
    assert generation.provider == "default"
    assert generation.fallback_of is not None
    assert generation.source_sha256 == generation.fallback_of.source_sha256
    assert generation.images.get().width == 320


def test_too_many_references_are_refused(ops):
    with pytest.raises(UnsupportedRequest, match="at most 4 reference images"):
        imagegen.generate(operation="edit", source=photo(), reference=[photo()] * 5, prompt="x")


def test_an_unknown_operation_is_refused(ops):
    with pytest.raises(UnsupportedRequest, match="Unknown operation 'paint'"):
        imagegen.generate(operation="paint", source=photo())


# Masks -------------------------------------------------------------------------------------


def test_inpaint_needs_a_mask(ops):
    with pytest.raises(UnsupportedRequest, match="inpaint needs a mask"):
        imagegen.generate(operation="inpaint", source=photo(), prompt="x")


def test_a_mask_of_another_size_is_refused(ops):
    with pytest.raises(UnsupportedRequest, match=r"mask is 64x64 pixels.*160x160"):
        imagegen.generate(operation="inpaint", source=photo(), mask=photo(64, 64), prompt="x")


def test_a_rectangle_outside_the_source_is_refused(ops):
    with pytest.raises(UnsupportedRequest, match="must lie inside the source image"):
        imagegen.generate(operation="inpaint", source=photo(), mask=(0, 0, 200, 10), prompt="x")


def test_locmem_records_the_source_and_mask_it_received(ops):
    imagegen.generate(
        operation="inpaint", source=photo(), mask=(0, 0, 8, 8), prompt="x", provider="test"
    )
    (request,) = ops
    assert request.operation == "inpaint"
    assert opened(request.source_images[0]).size == (160, 160)
    mask = opened(request.mask)
    assert mask.getpixel((0, 0)) == 255 and mask.getpixel((100, 100)) == 0


# Inputs are safe and private ---------------------------------------------------------------


def gps_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    exif[0x010F] = "SupplierCam"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (48.0, 51.0, 29.0)
    gps[3], gps[4] = "E", (2.0, 17.0, 40.0)
    return exif


def test_a_gps_position_in_a_supplier_photo_never_reaches_the_provider(ops):
    source = photo(80, 40, fmt="JPEG", exif=gps_exif())
    assert opened(source).getexif().get_ifd(0x8825)  # the photo does carry a position
    generation = imagegen.generate(operation="edit", source=source, prompt="x", provider="test")
    (request,) = ops
    sent = request.source_images[0]
    image = opened(sent)
    assert image.format == "PNG"
    assert image.size == (40, 80)  # upright: the EXIF orientation was applied
    assert not image.getexif()
    assert not set(image.info) & {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile"}
    assert b"SupplierCam" not in sent and b"Exif" not in sent
    assert contents(generation.source_file) == sent  # and the stored copy is the clean one


def test_an_input_over_the_byte_cap_is_refused_naming_it(ops, settings):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "MAX_IMAGE_BYTES": 100}
    with pytest.raises(UnsupportedRequest, match=r"source image is [\d,]+ bytes.*100-byte limit"):
        imagegen.generate(operation="upscale", source=photo())
    assert not Generation.objects.exists()


def test_an_input_over_the_pixel_cap_is_refused_naming_it(ops, settings):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "MAX_IMAGE_PIXELS": 1000}
    with pytest.raises(UnsupportedRequest, match=r"source image has too many pixels.*1,000"):
        imagegen.generate(operation="upscale", source=photo())


def test_a_mask_that_is_not_an_image_is_refused_naming_it(ops):
    with pytest.raises(UnsupportedRequest, match="The mask is not a PNG or JPEG"):
        imagegen.generate(operation="inpaint", source=photo(), mask=b"GIF89a...", prompt="x")


def test_a_reference_in_a_format_off_the_allow_list_is_refused(ops):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "BMP")
    with pytest.raises(UnsupportedRequest, match="reference image 1 is not a"):
        imagegen.generate(prompt="x", reference=buffer.getvalue(), provider="test")


# estimate() and plan() take the same arguments, and write nothing --------------------------


def test_estimate_matches_the_row_and_writes_nothing(ops, settings):
    arguments = {
        "operation": "inpaint",
        "source": photo(),
        "mask": (0, 0, 10, 10),
        "prompt": "a lamp",
        "provider": "paid",
    }
    assert estimate(**arguments) == Decimal("0.04")
    assert not Generation.objects.exists() and media_files(settings) == []
    assert imagegen.estimate(**arguments) == imagegen.generate(**arguments).estimated_cost


def test_text_to_image_rows_keep_their_params(ops):
    generation = imagegen.generate(prompt="a lamp")
    assert "operation" not in generation.params
    assert generation.operation == "generate"
    assert GeneratedImage.objects.get().parent is None


def test_reference_images_are_stored_and_reach_the_provider(ops, settings):
    generation = imagegen.generate(
        prompt="a chair in this style", reference=[photo(32, 32), photo(16, 16)], provider="test"
    )
    (request,) = ops
    assert [opened(image).size for image in request.source_images] == [(32, 32), (16, 16)]
    names = params_of(generation).references
    assert len(names) == 2 and generation.params["references"] == list(names)
    assert referenced_names(names) == set(names)  # the sweep keeps them


def test_the_sweep_keeps_the_source_and_mask_files(ops):
    generation = imagegen.generate(
        operation="inpaint", source=photo(), mask=(0, 0, 8, 8), prompt="x", provider="test"
    )
    names = {generation.source_file.name, generation.mask_file.name}
    assert referenced_names([*names, "imagegen/unused.png"]) == names


def test_a_queued_operation_runs_from_the_stored_inputs(ops):
    generation = imagegen.generate(
        operation="inpaint", source=photo(), mask=(0, 0, 8, 8), prompt="x", provider="test"
    )
    (request,) = params_of(generation).requests(generation)
    assert request.operation == "inpaint"
    assert request.source_images == ops[0].source_images
    assert request.mask == ops[0].mask


def test_a_preset_names_providers_per_operation(ops):
    planned = plan(operation="upscale", source=photo(), preset="product")
    # textonly is listed first but cannot upscale: it is passed over.
    assert (planned.provider.alias, planned.params.fallbacks) == ("default", ("test",))
    text = plan(prompt="a lamp", preset="product")
    assert text.provider.alias == "default"  # other operations keep the preset's providers


def test_xmp_icc_and_text_chunks_are_stripped_too(ops):
    from PIL import ImageCms, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "supplier secret")
    info.add_itxt("XML:com.adobe.xmp", "<x:xmpmeta>GPSLatitude 48.85</x:xmpmeta>")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (9, 9, 9)).save(buffer, "PNG", pnginfo=info, icc_profile=icc)
    imagegen.generate(operation="upscale", source=buffer.getvalue(), provider="test")
    sent = ops[0].source_images[0]
    assert b"supplier secret" not in sent and b"xmpmeta" not in sent
    assert b"iCCP" not in sent and b"tEXt" not in sent and b"iTXt" not in sent
    assert opened(sent).info == {}


def test_bulk_upscale_uses_each_objects_current_image(ops):
    articles = [Article.objects.create(title=f"Lamp {n}") for n in range(2)]
    for article in articles:
        imagegen.generate(target=article, width=64, height=64)
    result = generate_many(articles, operation="upscale", scale=2)
    assert not result.errors
    for article, generation in zip(articles, result.generations, strict=True):
        assert generation.operation == "upscale"
        assert generation.source_image.generation.object_id == str(article.pk)
        assert generation.images.get().width == 128


# The operations vocabulary: search=, padding=, and the placeholder's newer operations ----------


def pixels(generation, *points):
    """Return the RGB colours of ``generation``'s image at ``points``."""
    image = opened(generation.images.get()).convert("RGB")
    return [image.getpixel(point) for point in points]


@pytest.mark.parametrize("operation", ["search_replace", "search_recolor"])
def test_search_operations_need_search(ops, operation):
    with pytest.raises(UnsupportedRequest, match=rf"{operation} needs search=: what to look for"):
        imagegen.generate(operation=operation, source=photo(), prompt="a teacup")
    with pytest.raises(UnsupportedRequest, match="needs search="):
        imagegen.generate(operation=operation, source=photo(), prompt="a teacup", search="  ")
    assert not Generation.objects.exists()


@pytest.mark.parametrize("operation", ["generate", "edit", "inpaint", "restyle", "upscale"])
def test_search_is_refused_on_other_operations(ops, operation):
    source = {} if operation == "generate" else {"source": photo()}
    mask = {"mask": (0, 0, 8, 8)} if operation == "inpaint" else {}
    with pytest.raises(UnsupportedRequest, match="search= is only for search_recolor and "):
        imagegen.generate(operation=operation, prompt="x", search="the box", **source, **mask)
    assert not Generation.objects.exists()


def test_search_replace_changes_only_what_it_found(ops):
    # Offline the centre third stands in for what was searched for.
    first = imagegen.generate(
        operation="search_replace", source=photo(), prompt="a teacup", search="the red square"
    )
    assert first.status == "succeeded", first.error_message
    assert params_of(first).search == "the red square"
    corner, centre = pixels(first, (2, 2), (80, 80))
    assert corner == (255, 255, 255)
    assert centre != (200, 30, 30)
    again = imagegen.generate(
        operation="search_replace", source=photo(), prompt="a teacup", search="the red square"
    )
    assert pixels(again, (2, 2), (80, 80)) == [corner, centre]  # deterministic


def test_search_recolor_tints_what_it_found(ops):
    replaced = imagegen.generate(
        operation="search_replace", source=photo(), prompt="yellow", search="the red square"
    )
    recolored = imagegen.generate(
        operation="search_recolor", source=photo(), prompt="yellow", search="the red square"
    )
    corner, centre = pixels(recolored, (2, 2), (80, 80))
    assert corner == (255, 255, 255)
    assert centre != (200, 30, 30)
    # A recolour keeps 30 % of the found object's own colour under the new one (the art the
    # replacement paints in full).
    art = pixels(replaced, (80, 80))[0]
    expected = tuple(0.3 * red + 0.7 * new for red, new in zip((200, 30, 30), art, strict=True))
    assert centre == pytest.approx(expected, abs=1)
    assert centre != art


def test_replace_background_keeps_the_subject_on_new_art(ops):
    generation = imagegen.generate(
        operation="replace_background", source=photo(), prompt="a sunlit beach"
    )
    assert generation.status == "succeeded", generation.error_message
    corner, subject = pixels(generation, (2, 2), (80, 80))
    assert corner != (255, 255, 255)  # the white background is gone
    assert subject == (200, 30, 30)  # the subject is kept
    again = imagegen.generate(
        operation="replace_background", source=photo(), prompt="a sunlit beach"
    )
    assert pixels(again, (2, 2)) == [corner]


def test_restyle_takes_the_look_of_its_reference(ops):
    blue = Image.new("RGB", (40, 40), (0, 0, 255))
    buffer = io.BytesIO()
    blue.save(buffer, "PNG")
    generation = imagegen.generate(
        operation="restyle", source=photo(), reference=buffer.getvalue(), prompt="in this style"
    )
    assert generation.status == "succeeded", generation.error_message
    corner, centre = pixels(generation, (2, 2), (80, 80))
    # 40 % of the source's shape, 60 % of the reference's look.
    assert corner == pytest.approx((102, 102, 255), abs=1)
    assert centre == pytest.approx((80, 12, 165), abs=1)
    assert len(params_of(generation).references) == 1


def test_restyle_without_a_reference_takes_the_prompts_look(ops):
    generation = imagegen.generate(operation="restyle", source=photo(), prompt="a watercolour")
    corner, centre = pixels(generation, (2, 2), (80, 80))
    assert corner != (255, 255, 255) and centre != (200, 30, 30)
    other = imagegen.generate(operation="restyle", source=photo(), prompt="a neon sign")
    assert pixels(other, (2, 2)) != [corner]  # another prompt, another look
    same = imagegen.generate(operation="restyle", source=photo(), prompt="a watercolour")
    assert pixels(same, (2, 2), (80, 80)) == [corner, centre]


def test_locmem_records_search_and_padding(ops):
    imagegen.generate(
        operation="search_recolor", source=photo(), prompt="green", search="the box",
        provider="test",
    )  # fmt: skip
    imagegen.generate(operation="outpaint", source=photo(), padding=(16, 8, 32, 0), provider="test")
    recolor, outpaint = ops
    assert (recolor.operation, recolor.search, recolor.padding) == (
        "search_recolor",
        "the box",
        None,
    )
    assert (outpaint.operation, outpaint.search, outpaint.padding) == (
        "outpaint",
        "",
        (16, 8, 32, 0),
    )
    assert (outpaint.width, outpaint.height) == (160 + 48, 160 + 8)
