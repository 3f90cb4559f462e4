"""The Generate widget on the change form: candidates, picking one on save, reverting, uploads."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.formats import date_format
from django.utils.timezone import localtime

import imagegen
from imagegen.models import GeneratedImage, Generation, Status
from tests.admin.support import (
    EDITOR_PERMS,
    input_tag,
    ledger_row,
    make_user,
    notices,
    options_of,
    selected_option,
    text_of,
    textarea,
)
from tests.conftest import deriving, png_bytes
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db


@pytest.fixture
def article(db):
    return Article.objects.create(title="Lighthouse", summary="a white tower on a rocky coast")


def change_url(article: Article) -> str:
    return f"/admin/testapp/article/{article.pk}/change/"


def generate(client, article: Article, count: int = 3, prompt: str = "") -> dict:
    response = client.post(
        f"/admin/testapp/article/{article.pk}/imagegen/hero/generate/",
        {"prompt": prompt, "preset": "hero", "provider": "paid", "count": str(count)},
    )
    assert response.status_code == 201, response.content[:1000]
    return response.json()["generation"]


def save(client, article: Article, **extra):
    """Save the change form as the editor would: its current values plus ``extra``."""
    data = {"title": article.title, "summary": article.summary, "_save": "Save", **extra}
    return client.post(change_url(article), data)


def selected_ids(article: Article) -> set[int]:
    return set(
        GeneratedImage.objects.filter(
            generation__object_id=str(article.pk), generation__field_name="hero", selected=True
        ).values_list("pk", flat=True)
    )


# The form ---------------------------------------------------------------------------------------


def test_the_change_form_has_the_widget_with_the_prompt_and_the_choices(
    admin_client, locmem, article
):
    page = admin_client.get(change_url(article))

    assert page.status_code == 200
    html = page.content.decode()
    assert "data-imagegen-widget" in html
    assert (
        f'data-generate-url="/admin/testapp/article/{article.pk}/imagegen/hero/generate/"' in html
    )
    assert textarea(page, "hero-imagegen-prompt") == "Lighthouse: a white tower on a rocky coast"
    assert selected_option(page, "hero-imagegen-preset") == "hero"
    assert options_of(page, "hero-imagegen-preset") == ["hero", "editorial", "product"]
    assert options_of(page, "hero-imagegen-provider") == ["", "test", "paid", "default"]
    count = input_tag(page, "hero-imagegen-count")
    assert 'min="1"' in count and 'max="4"' in count and 'value="1"' in count
    assert 'name="hero__imagegen_pick"' in html
    assert '<input type="file" name="hero"' in html
    assert "0 generations, $0.00 in total." in text_of(page)


def test_the_history_panel_lists_earlier_generations(admin_client, admin_user, locmem, article):
    generated = generate(admin_client, article, count=2, prompt="A lighthouse in a storm")
    failed = ledger_row(
        article,
        cost=None,
        status=Status.FAILED,
        prompt="A lighthouse in fog",
        error_message="The provider fell over.",
    )

    page = admin_client.get(change_url(article))

    html = page.content.decode()
    history = html[html.index("data-imagegen-history>") :]
    text = text_of(page)
    assert "2 generations, $0.08 in total." in text
    rows = re.findall(r'<tr data-generation="(\d+)">(.*?)</tr>', history, re.S)
    assert [int(pk) for pk, _ in rows] == [failed.pk, generated["id"]]  # newest first
    done = " ".join(re.sub(r"<[^>]+>", " ", rows[1][1]).split())
    assert "A lighthouse in a storm" in done
    assert "paid locmem" in done
    assert "Succeeded" in done and "$0.08" in done
    assert admin_user.get_username() in done
    when = Generation.objects.get(pk=generated["id"]).created_at
    assert date_format(localtime(when), "DATETIME_FORMAT") in done
    for image in generated["images"]:
        assert f'data-image="{image["id"]}"' in rows[1][1]
        assert f'src="{image["thumbnail"]}"' in rows[1][1]
    assert rows[1][1].count('class="imagegen-thumb"') == 2
    broken = " ".join(re.sub(r"<[^>]+>", " ", rows[0][1]).split())
    assert "A lighthouse in fog" in broken and "Failed" in broken
    assert "The provider fell over." in broken


def test_the_add_form_says_to_save_first(admin_client, locmem):
    page = admin_client.get("/admin/testapp/article/add/")

    assert page.status_code == 200
    assert "Save this object first, then generate its image here." in text_of(page)
    assert "data-imagegen-widget" not in page.content.decode()
    assert '<input type="file" name="hero"' in page.content.decode()


def test_an_editor_with_the_permission_gets_the_widget(client, locmem, article):
    client.force_login(make_user("editor", *EDITOR_PERMS))

    page = client.get(change_url(article))

    assert "data-imagegen-widget" in page.content.decode()


# Generating candidates --------------------------------------------------------------------------


def test_generating_makes_candidates_without_attaching_them(admin_client, locmem, article):
    generation = generate(admin_client, article, count=3)

    assert generation["status"] == "succeeded" and generation["finished"] is True
    assert len(generation["images"]) == 3
    assert generation["prompt"] == "Lighthouse: a white tower on a rocky coast"
    assert generation["cost"] == "$0.12"
    assert not any(image["selected"] for image in generation["images"])
    article.refresh_from_db()
    assert not article.hero
    assert selected_ids(article) == set()


def test_generating_leaves_the_current_image_in_place(admin_client, locmem, article):
    earlier = imagegen.generate(target=article, field="hero", provider="paid")
    article.refresh_from_db()
    current = article.hero.name
    [earlier_image] = earlier.images.all()

    generate(admin_client, article, count=3, prompt="A lighthouse at night")

    article.refresh_from_db()
    assert article.hero.name == current
    assert selected_ids(article) == {earlier_image.pk}


# Picking on save --------------------------------------------------------------------------------


def test_saving_with_a_pick_sets_that_image_and_a_later_pick_reverts(admin_client, locmem, article):
    first = generate(admin_client, article, count=2, prompt="A lighthouse at dawn")
    second = generate(admin_client, article, count=3, prompt="A lighthouse at night")
    chosen = GeneratedImage.objects.get(pk=second["images"][1]["id"])

    response = save(admin_client, article, hero__imagegen_pick=str(chosen.pk))

    assert response.status_code == 302
    page = admin_client.get(response["Location"])
    assert [level for level, _ in notices(page)] == ["success"]
    article.refresh_from_db()
    assert article.hero.name == chosen.file.name
    assert selected_ids(article) == {chosen.pk}

    older = GeneratedImage.objects.get(pk=first["images"][0]["id"])
    response = save(admin_client, article, hero__imagegen_pick=str(older.pk))

    assert response.status_code == 302
    article.refresh_from_db()
    assert article.hero.name == older.file.name
    assert selected_ids(article) == {older.pk}
    # The history shows which image is in use.
    page = admin_client.get(change_url(article))
    assert re.search(rf'is-current" data-image="{older.pk}"', page.content.decode())


def test_saving_without_a_pick_keeps_the_image_and_its_flag(admin_client, locmem, article):
    generation = generate(admin_client, article, count=2)
    chosen = generation["images"][0]["id"]
    save(admin_client, article, hero__imagegen_pick=str(chosen))
    article.refresh_from_db()
    current = article.hero.name

    response = save(admin_client, article, title="Lighthouse, renamed")

    assert response.status_code == 302
    article.refresh_from_db()
    assert article.title == "Lighthouse, renamed" and article.hero.name == current
    assert selected_ids(article) == {chosen}


def other_articles_image(locmem) -> GeneratedImage:
    other = Article.objects.create(title="Harbour")
    return imagegen.generate(target=other, field="hero", provider="paid", attach=False).images.get()


def failed_generations_image(locmem, article) -> GeneratedImage:
    generation = imagegen.generate(target=article, field="hero", provider="paid", attach=False)
    Generation.objects.filter(pk=generation.pk).update(status=Status.FAILED)
    return generation.images.get()


def other_fields_image(locmem, article) -> GeneratedImage:
    row = ledger_row(article, field="banner", images=1)
    return row.images.get()


@pytest.mark.parametrize(
    "pick",
    [
        pytest.param(
            lambda locmem, article: str(other_articles_image(locmem).pk), id="other-object"
        ),
        pytest.param(
            lambda locmem, article: str(failed_generations_image(locmem, article).pk),
            id="not-succeeded",
        ),
        pytest.param(
            lambda locmem, article: str(other_fields_image(locmem, article).pk), id="other-field"
        ),
        pytest.param(lambda locmem, article: "999999", id="missing"),
        pytest.param(lambda locmem, article: "garbage", id="garbage"),
        pytest.param(lambda locmem, article: "-1", id="negative"),
        # str.isdigit() accepts "²" but int() refuses it; the save must not crash.
        pytest.param(lambda locmem, article: "²", id="superscript-digit"),
        # Larger than any primary key the database can hold.
        pytest.param(lambda locmem, article: "99999999999999999999999", id="too-large"),
    ],
)
def test_a_pick_that_is_not_this_fields_image_changes_nothing(admin_client, locmem, article, pick):
    earlier = imagegen.generate(target=article, field="hero", provider="paid")
    article.refresh_from_db()
    current = article.hero.name
    value = pick(locmem, article)

    response = save(admin_client, article, hero__imagegen_pick=value)

    assert response.status_code == 302
    page = admin_client.get(response["Location"])
    assert ("error", "The chosen image for hero could not be used.") in notices(page)
    article.refresh_from_db()
    assert article.hero.name == current
    assert selected_ids(article) == {earlier.images.get().pk}


def test_a_pick_by_a_user_without_the_permission_is_ignored(client, locmem, article):
    candidate = imagegen.generate(target=article, field="hero", provider="paid", attach=False)
    client.force_login(make_user("editor", "view_article", "change_article"))

    response = save(client, article, hero__imagegen_pick=str(candidate.images.get().pk))

    assert response.status_code == 302
    article.refresh_from_db()
    assert not article.hero
    assert selected_ids(article) == set()


# Uploads ----------------------------------------------------------------------------------------


def upload(name: str = "upload.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, png_bytes(), content_type="image/png")


def test_an_upload_wins_over_a_pick_with_a_warning(admin_client, locmem, article):
    generation = generate(admin_client, article, count=2)

    response = save(
        admin_client,
        article,
        hero=upload("mine.png"),
        hero__imagegen_pick=str(generation["images"][0]["id"]),
    )

    assert response.status_code == 302
    page = admin_client.get(response["Location"])
    assert ("warning", "The uploaded file was kept for hero.") in notices(page)
    article.refresh_from_db()
    assert article.hero.name.endswith("mine.png")
    assert (
        article.hero.name != GeneratedImage.objects.get(pk=generation["images"][0]["id"]).file.name
    )
    assert selected_ids(article) == set()


def test_uploading_a_file_clears_the_selected_image(admin_client, locmem, article):
    imagegen.generate(target=article, field="hero", provider="paid")
    assert len(selected_ids(article)) == 1

    response = save(admin_client, article, hero=upload("mine.png"))

    assert response.status_code == 302
    article.refresh_from_db()
    assert article.hero.name.endswith("mine.png")
    assert selected_ids(article) == set()


def test_clearing_the_field_clears_the_selected_image(admin_client, locmem, article):
    imagegen.generate(target=article, field="hero", provider="paid")

    response = save(admin_client, article, **{"hero-clear": "on"})

    assert response.status_code == 302
    article.refresh_from_db()
    assert not article.hero
    assert selected_ids(article) == set()


def test_with_a_queued_runner_the_widget_polls_until_the_candidates_are_ready(
    admin_client, queued, article
):
    from imagegen.services import run_generation

    estimate = admin_client.post(
        f"/admin/testapp/article/{article.pk}/imagegen/hero/estimate/",
        {"prompt": "", "preset": "hero", "provider": "paid", "count": "3"},
    )
    assert estimate.json() == {"estimate": "0.120000", "display": "$0.12"}

    generation = generate(admin_client, article, count=3)
    assert generation["status"] == "queued" and generation["finished"] is False
    assert generation["images"] == [] and generation["estimated_cost"] == "$0.12"

    status_url = f"/admin/testapp/article/{article.pk}/imagegen/hero/status/"
    [polled] = admin_client.post(status_url, {"ids": str(generation["id"])}).json()["generations"]
    assert polled["status"] == "queued"

    run_generation(generation["id"])

    [polled] = admin_client.post(status_url, {"ids": str(generation["id"])}).json()["generations"]
    assert polled["status"] == "succeeded" and polled["finished"] is True
    assert len(polled["images"]) == 3 and polled["cost"] == "$0.12"
    article.refresh_from_db()
    assert not article.hero
    assert selected_ids(article) == set()

    history = admin_client.post(f"/admin/testapp/article/{article.pk}/imagegen/hero/history/")
    assert history.json()["total"] == "$0.12"
    assert "1 generation, $0.12 in total." in history.json()["html"]
    for image in polled["images"]:
        assert f'data-image="{image["id"]}"' in history.json()["html"]


def test_a_failed_generation_points_the_widget_to_its_fallback(admin_client, locmem, article):
    failed = ledger_row(article, cost=None, status=Status.FAILED, error_message="Outage.")
    fallback = ledger_row(article, status=Status.QUEUED, cost=None, fallback_of=failed)
    ok = ledger_row(article)
    status_url = f"/admin/testapp/article/{article.pk}/imagegen/hero/status/"

    polled = admin_client.post(status_url, {"ids": f"{failed.pk},{ok.pk}"}).json()["generations"]

    by_id = {row["id"]: row for row in polled}
    assert by_id[failed.pk]["fallback"] == fallback.pk
    assert by_id[ok.pk]["fallback"] is None


def test_only_generated_image_fields_get_the_widget(admin_client, locmem):
    from tests.testapp.models import Product

    teapot = Product.objects.create(name="Teapot")

    page = admin_client.get(f"/admin/testapp/product/{teapot.pk}/change/")

    html = page.content.decode()
    assert html.count("data-imagegen-widget") == 1
    assert 'name="photo__imagegen_pick"' in html
    assert "thumbnail__imagegen_pick" not in html
    assert textarea(page, "photo-imagegen-prompt") == "Teapot"
    assert selected_option(page, "photo-imagegen-preset") == "product"


def test_a_form_with_errors_keeps_the_widget(admin_client, locmem, article):
    response = save(admin_client, article, title="")

    assert response.status_code == 200
    assert "This field is required." in text_of(response)
    assert "data-imagegen-widget" in response.content.decode()


def test_thumbnails_use_the_smallest_derived_webp(admin_client, locmem, article, settings):
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "DERIVATIVE_WIDTHS": [960, 480],
        "DERIVATIVE_FORMATS": ["webp"],
    }

    with deriving():
        generation = generate(admin_client, article, count=1)

    # The answer is sent before the derived files exist: its thumbnail is the original.
    [image] = generation["images"]
    stored = GeneratedImage.objects.get(pk=image["id"])
    assert image["thumbnail"] == image["url"] == stored.file.url
    # Once they are made, the page shows the smallest derived WebP.
    smallest = min(stored.derivatives, key=lambda entry: entry["width"])
    assert smallest["width"] == 480 and smallest["mime_type"] == "image/webp"
    thumbnail = stored.file.storage.url(smallest["name"])
    assert thumbnail != stored.file.url
    page = admin_client.get(change_url(article))
    assert f'src="{thumbnail}"' in page.content.decode()
