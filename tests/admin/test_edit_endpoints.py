"""The widget's edit endpoint and the edit fields of estimate: permissions, uploads, errors."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

import imagegen
from imagegen.admin.endpoints import upload_cap
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.providers.locmem import LocmemProvider
from imagegen.services import operations_for
from tests.admin.support import EDITOR_PERMS, make_user
from tests.testapp.models import Article, Product

pytestmark = pytest.mark.django_db

NOT_THIS_FIELDS = "That image is not one of this field's."


def png(size: tuple[int, int] = (64, 48), color: tuple[int, ...] = (20, 90, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def mask_png(size: tuple[int, int]) -> bytes:
    image = Image.new("L", size, 0)
    image.paste(255, (0, 0, size[0] // 2, size[1] // 2))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def upload(name: str, data: bytes, kind: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=kind)


def url(obj, endpoint: str, field: str = "hero") -> str:
    model = obj._meta.model_name
    return f"/admin/testapp/{model}/{obj.pk}/imagegen/{field}/{endpoint}/"


@pytest.fixture
def article(db):
    return Article.objects.create(title="Lighthouse", summary="a white tower")


@pytest.fixture
def editor(client):
    user = make_user("editor", *EDITOR_PERMS)
    client.force_login(user)
    return user


@pytest.fixture
def with_image(article):
    """The article's hero holds a generated image (the offline placeholder's)."""
    image = imagegen.generate(target=article, field="hero", prompt="A lighthouse").images.get()
    article.refresh_from_db()
    return image


def request_data(**extra):
    return {"prompt": "a red boat", "preset": "hero", "provider": "", "count": "1", **extra}


# Edits ------------------------------------------------------------------------------------------


def test_edit_of_the_current_image_makes_candidates_with_lineage(client, editor, with_image):
    article = with_image.generation.target
    response = client.post(url(article, "edit"), request_data(operation="edit", source="current"))

    assert response.status_code == 201, response.content
    generation = Generation.objects.get(pk=response.json()["generation"]["id"])
    assert generation.operation == "edit"
    assert generation.source_image_id == with_image.pk
    assert generation.status == Status.SUCCEEDED
    result = generation.images.get()
    assert result.parent_id == with_image.pk
    article.refresh_from_db()
    assert article.hero.name == with_image.file.name  # a candidate until the editor saves it


def test_inpaint_of_a_history_image_with_a_painted_mask(client, editor, with_image):
    article = with_image.generation.target
    size = (with_image.width, with_image.height)
    response = client.post(
        url(article, "edit"),
        request_data(
            operation="inpaint",
            source=str(with_image.pk),
            mask=upload("mask.png", mask_png(size)),
        ),
    )

    assert response.status_code == 201, response.content
    generation = Generation.objects.get(pk=response.json()["generation"]["id"])
    assert generation.operation == "inpaint"
    with generation.mask_file.open("rb") as file, Image.open(file) as mask:
        assert mask.size == size


def test_an_uploaded_photo_is_the_source(admin_client):
    client = admin_client
    bottle = Product.objects.create(name="Bottle")
    response = client.post(
        url(bottle, "edit", "photo"),
        request_data(
            preset="product",
            operation="replace_background",
            source="upload",
            upload=upload("bottle.png", png((80, 80))),
            reference=upload("studio.png", png((40, 40), (250, 250, 250))),
        ),
    )

    assert response.status_code == 201, response.content
    generation = Generation.objects.get(pk=response.json()["generation"]["id"])
    assert generation.operation == "replace_background"
    assert generation.source_file and generation.source_image is None
    assert generation.images.get().width == 80


def test_the_estimate_of_an_upload(admin_client):
    client = admin_client
    bottle = Product.objects.create(name="Bottle")
    data = request_data(
        preset="product", operation="upscale", scale="4", source="upload",
        upload=upload("bottle.png", png((80, 80))),
    )  # fmt: skip
    response = client.post(url(bottle, "estimate", "photo"), data)

    assert response.status_code == 200, response.content
    assert response.json()["display"] == "$0.00"
    assert not Generation.objects.exists()


def test_an_estimate_before_the_mask_is_painted(client, editor, with_image):
    article = with_image.generation.target
    response = client.post(url(article, "estimate"), request_data(operation="erase"))

    assert response.status_code == 200, response.content
    assert response.json()["display"] == "$0.00"


# Errors in plain words, by field -----------------------------------------------------------------


@pytest.mark.parametrize("count", ["0", "5", "many", ""])
@pytest.mark.parametrize("endpoint", ["estimate", "generate"])
def test_a_bad_count_says_what_to_do(client, editor, article, endpoint, count):
    response = client.post(url(article, endpoint), request_data(count=count))

    assert response.status_code == 400
    assert response.json() == {
        "errors": {"count": [{"message": "Choose 1 to 4 images.", "code": _code(count)}]}
    }


def _code(count: str) -> str:
    return {"0": "min_value", "5": "max_value", "many": "invalid", "": "required"}[count]


def test_the_count_input_carries_the_servers_limits(admin_client, article):
    html = admin_client.get(f"/admin/testapp/article/{article.pk}/change/").content.decode()
    start = html.index('id="id_hero-imagegen-count"')
    tag = html[html.rindex("<input", 0, start) : html.index(">", start)]
    assert 'min="1"' in tag and 'max="4"' in tag


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"operation": "inpaint"}, "mask", "Paint the area to change first."),
        ({"operation": "search_replace"}, "search", "Say what to find in the image."),
        ({"operation": "edit", "source": "upload"}, "upload", "Choose a photo to upload."),
        ({"operation": "edit", "source": "99999"}, "source", NOT_THIS_FIELDS),
        ({"operation": "edit", "source": "²"}, "source", NOT_THIS_FIELDS),
        ({"operation": "paint"}, "operation", None),
    ],
)  # fmt: skip
def test_edit_errors_are_by_their_field(client, editor, with_image, data, field, message):
    article = with_image.generation.target
    response = client.post(url(article, "edit"), request_data(**data))

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == [field]
    if message:
        assert errors[field][0]["message"] == message
    assert Generation.objects.count() == 1


def test_an_image_of_another_object_is_refused_as_source(client, editor, with_image):
    other = Article.objects.create(title="Harbour")
    response = client.post(
        url(other, "edit"), request_data(operation="edit", source=str(with_image.pk))
    )

    assert response.status_code == 400
    assert response.json()["errors"]["source"][0]["message"] == (
        "That image is not one of this field's."
    )


def test_editing_an_empty_field_asks_for_a_source(client, editor, article):
    response = client.post(url(article, "edit"), request_data(operation="edit"))

    assert response.status_code == 400
    assert response.json()["errors"]["source"][0]["message"] == (
        "The field has no image yet: upload a photo or generate one."
    )


def test_the_edit_endpoint_wants_an_operation(client, editor, with_image):
    response = client.post(url(with_image.generation.target, "edit"), request_data())

    assert response.status_code == 400
    assert response.json()["errors"]["operation"][0]["message"] == (
        "Choose what to do with the image."
    )


def test_a_file_that_is_not_an_image_gets_a_clear_message(client, editor, article):
    response = client.post(
        url(article, "edit"),
        request_data(
            operation="edit", source="upload", upload=upload("notes.png", b"no pixels here")
        ),
    )

    assert response.status_code == 400
    assert response.json()["errors"]["upload"][0]["message"] == (
        "The photo could not be used: choose a PNG, JPEG or WebP image."
    )
    assert not Generation.objects.exists()


def test_a_photo_over_the_byte_cap_is_refused(client, editor, article, settings):
    settings.IMAGEGEN = {"MAX_IMAGE_BYTES": 1024 * 1024}
    big = upload("big.bmp", b"BM" + b"\0" * (1024 * 1024 + 10), "image/bmp")
    response = client.post(
        url(article, "edit"), request_data(operation="edit", source="upload", upload=big)
    )

    assert response.status_code == 400
    assert response.json()["errors"]["upload"][0]["message"] == (
        "The photo is too large: at most 1 MB."
    )


def test_a_request_over_the_upload_cap_is_refused_before_it_is_read(client, editor, article):
    response = client.post(
        url(article, "edit"),
        data=b"x",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(upload_cap() + 1),
    )

    assert response.status_code == 413
    assert "The upload is too large" in response.json()["error"]


def test_a_refusal_of_the_pipeline_is_one_plain_message(client, editor, with_image, settings):
    article = with_image.generation.target
    size = (with_image.width + 1, with_image.height)
    response = client.post(
        url(article, "edit"),
        request_data(operation="inpaint", mask=upload("mask.png", mask_png(size))),
    )

    assert response.status_code == 400
    assert "must be the source image's size" in response.json()["error"]


# Who may edit ------------------------------------------------------------------------------------


def test_edit_needs_the_generate_permission(client, with_image):
    client.force_login(make_user("viewer", "view_article", "change_article"))
    article = with_image.generation.target
    response = client.post(url(article, "edit"), request_data(operation="edit"))

    assert response.status_code == 403
    assert Generation.objects.count() == 1


def test_edit_needs_the_csrf_token(editor, with_image):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(editor)
    response = strict.post(
        url(with_image.generation.target, "edit"), request_data(operation="edit")
    )

    assert response.status_code == 403
    assert Generation.objects.count() == 1


# What the widget offers --------------------------------------------------------------------------


def test_operations_for_a_field_follow_its_providers(article, settings):
    offered = [offer.operation for offer in operations_for(article, "hero")]
    assert offered[:3] == ["edit", "inpaint", "outpaint"]
    assert "generate" not in offered

    settings.IMAGEGEN = {
        "PROVIDERS": {"only": {"BACKEND": "imagegen.providers.locmem.LocmemProvider"}},
        "DEFAULT_PROVIDER": "only",
    }
    assert [o.operation for o in operations_for(article, "hero")] == _locmem_operations()


def _locmem_operations() -> list[str]:
    return [op for op in LocmemProvider.operations if op != "generate"]


def test_the_widget_lists_only_the_offered_operations(admin_client, article, settings):
    settings.IMAGEGEN = {
        "PROVIDERS": {"only": {"BACKEND": "imagegen.providers.locmem.LocmemProvider"}},
        "DEFAULT_PROVIDER": "only",
    }
    html = admin_client.get(f"/admin/testapp/article/{article.pk}/change/").content.decode()
    expected = {"generate", *_locmem_operations()}
    start = html.index('id="id_hero-imagegen-operation"')
    select = html[start : html.index("</select>", start)]
    offered = {part.split('"')[0] for part in select.split('value="')[1:]}
    assert offered == expected
    assert GeneratedImage.objects.count() == 0
