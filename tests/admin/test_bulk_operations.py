"""The bulk operations (upscale, remove backgrounds, fit to the preset), lineage and revert.

The confirmation pages' estimates and skips, the refusal when no provider can do an operation,
a run's results and messages, the history and the ledger showing chains, reverting to any link
of a chain, and the cost per object counting the operations.
"""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from PIL import Image

import imagegen
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.providers.placeholder import PlaceholderProvider
from imagegen.services import ALREADY_FITS, NO_SOURCE, cost_for, nothing_to_do, spend_for
from tests.admin.support import (
    CHANGELIST,
    EDITOR_PERMS,
    act,
    form_data,
    make_user,
    notices,
    options_of,
    text_of,
    total_of,
)
from tests.conftest import png_bytes
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db

PLACEHOLDER = {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"}
PAID = {"BACKEND": "imagegen.providers.locmem.LocmemProvider", "OPTIONS": {"cost": "0.04"}}
TEXT_ONLY = {"BACKEND": "tests.admin.test_bulk_operations.TextOnlyProvider"}


class TextOnlyProvider(PlaceholderProvider):
    """A provider that makes images from text and nothing else."""

    operations = ("generate",)


def configure(settings, default_alias: str, **providers) -> None:
    """Configure ``providers`` by alias, ``default_alias`` the default one."""
    settings.IMAGEGEN = {
        "DEFAULT_PROVIDER": default_alias,
        "PROVIDERS": providers,
        "PRICES": {"locmem": {"per_image": "0.04"}},
        "DERIVATIVE_WIDTHS": [],
    }


@pytest.fixture
def ops(settings):
    """The offline placeholder (default, does every operation) and a paid locmem provider."""
    configure(settings, "default", default=PLACEHOLDER, paid=PAID)


def with_image(article: Article, width: int, height: int, **kwargs) -> GeneratedImage:
    """Give ``article`` a generated image of ``width`` x ``height``; return its row."""
    generation = imagegen.generate(target=article, width=width, height=height, **kwargs)
    assert generation.status == Status.SUCCEEDED, generation.error_message
    return generation.images.get()


def uploaded(article: Article, width: int = 64, height: int = 64) -> None:
    """Give ``article`` an uploaded image, not a generated one."""
    article.hero.save(f"upload-{article.pk}.png", ContentFile(png_bytes(width, height)))


def size_of(article: Article) -> tuple[int, int]:
    article.refresh_from_db()
    with article.hero.open("rb") as file:
        return Image.open(io.BytesIO(file.read())).size


def current(article: Article) -> GeneratedImage:
    article.refresh_from_db()
    return GeneratedImage.objects.filter(file=article.hero.name, selected=True).get()


def confirm(client, page, step: str, **changes):
    """Submit the confirmation page's form as a browser would, with ``changes`` made to it."""
    data = {**form_data(page, "imagegen-bulk-form"), **changes, "imagegen_step": step}
    return client.post(CHANGELIST, data)


# The actions on the changelist --------------------------------------------------------------


def test_the_changelist_offers_the_operations_next_to_generate(admin_client, ops, articles):
    page = admin_client.get(CHANGELIST)

    actions = options_of(page, "action")
    for name in ("generate_images", "upscale_images", "remove_backgrounds", "fit_images"):
        assert name in actions
    html = page.content.decode()
    assert ">Upscale images…</option>" in html
    assert ">Remove backgrounds…</option>" in html
    assert ">Fit images to the preset…</option>" in html


def test_an_editor_without_the_permission_has_none_of_them(client, ops, articles):
    perms = [p for p in EDITOR_PERMS if p != "generate_image"] + ["delete_article"]
    client.force_login(make_user("writer", *perms))

    actions = options_of(client.get(CHANGELIST), "action")
    assert "delete_selected" in actions
    for name in ("generate_images", "upscale_images", "remove_backgrounds", "fit_images"):
        assert name not in actions
    # Posting the action anyway changes nothing.
    uploaded(articles[0])
    response = act(client, [articles[0].pk], action="upscale_images")
    assert response.status_code in (302, 403)
    assert not Generation.objects.exists()


# Upscale ----------------------------------------------------------------------------------------


def test_the_upscale_page_estimates_each_object_and_lists_those_without_an_image(
    admin_client, ops, articles
):
    for article in articles[:2]:
        with_image(article, 64, 64)

    page = act(admin_client, [a.pk for a in articles], action="upscale_images")

    assert page.status_code == 200
    assert "admin/imagegen/operate_images.html" in [t.name for t in page.templates]
    text = text_of(page)
    assert "Upscale the current images of 3 articles." in text
    assert text.count("64 x 64 px → 128 x 128 px") == 2
    assert "Skipped: nothing to do" in text and "Bakery no current image" in text
    assert "Estimated total: $0.00" in text
    assert options_of(page, "scale") == ["2", "4"]
    assert Generation.objects.count() == 2  # nothing written by the page

    # Another provider and scale: each row's estimate and the total follow.
    again = confirm(admin_client, page, "preview", provider="paid", scale="4")

    text = text_of(again)
    assert text.count("64 x 64 px → 256 x 256 px") == 2
    assert text.count("paid: locmem $0.04") == 2
    assert "Estimated total: $0.08" in text
    assert Generation.objects.count() == 2


def test_upscaling_makes_each_image_twice_as_wide_with_the_old_one_as_parent(
    admin_client, ops, articles
):
    old = {article.pk: with_image(article, 64, 48) for article in articles[:2]}
    page = act(admin_client, [a.pk for a in articles], action="upscale_images")

    response = confirm(admin_client, page, "generate")

    assert response.status_code == 302 and response["Location"] == CHANGELIST
    after = admin_client.get(response["Location"])
    assert notices(after) == [
        ("success", "Upscaled the images of 2 objects, costing $0.00."),
        ("info", "Skipped 1 object with nothing to do: Bakery."),
    ]
    for article in articles[:2]:
        assert size_of(article) == (128, 96)
        image = current(article)
        assert image.parent == old[article.pk]
        assert image.generation.operation == "upscale"
        assert image.generation.source_image == old[article.pk]
    articles[2].refresh_from_db()
    assert not articles[2].hero
    assert Generation.objects.filter(operation="upscale").count() == 2


def test_an_uploaded_image_is_upscaled_too(admin_client, ops, articles):
    uploaded(articles[0], 40, 30)
    page = act(admin_client, [articles[0].pk], action="upscale_images")
    assert "40 x 30 px → 80 x 60 px" in text_of(page)

    confirm(admin_client, page, "generate", scale="4")

    assert size_of(articles[0]) == (160, 120)
    assert current(articles[0]).parent is None  # an upload is no generated parent


# Fit to the preset and remove backgrounds -------------------------------------------------------


def test_fit_extends_a_square_image_to_the_presets_shape_and_skips_one_that_has_it(
    admin_client, ops, articles
):
    square = with_image(articles[0], 90, 90)
    with_image(articles[1], 160, 90)  # already 16:9, the hero preset's shape

    page = act(admin_client, [a.pk for a in articles[:2]], action="fit_images")

    text = text_of(page)
    assert "Fit images to the preset" in text
    assert "90 x 90 px → 160 x 90 px" in text
    assert "Harbour already the preset's shape" in text
    assert "scale" not in form_data(page, "imagegen-bulk-form")

    response = confirm(admin_client, page, "generate")

    assert response.status_code == 302
    assert size_of(articles[0]) == (160, 90)
    assert current(articles[0]).parent == square
    assert current(articles[0]).generation.operation == "outpaint"
    assert Generation.objects.filter(operation="outpaint").count() == 1
    assert ("info", "Skipped 1 object with nothing to do: Harbour.") in notices(
        admin_client.get(CHANGELIST)
    )


def test_when_every_object_is_skipped_there_is_nothing_to_confirm(admin_client, ops, articles):
    with_image(articles[0], 160, 90)

    page = act(admin_client, [a.pk for a in articles[:2]], action="fit_images")

    text = text_of(page)
    assert "None of the selected objects has anything to do." in text
    assert "Lighthouse already the preset's shape" in text and "Harbour no current image" in text
    assert "Fit images</button>" not in page.content.decode()
    assert "Estimated total: $0.00" in text


def test_remove_backgrounds_records_the_operation_and_the_parent(admin_client, ops, articles):
    old = with_image(articles[0], 64, 64)

    page = act(admin_client, [articles[0].pk], action="remove_backgrounds")
    assert "Remove the background of the current image of 1 article." in text_of(page)
    confirm(admin_client, page, "generate")

    image = current(articles[0])
    assert image.generation.operation == "remove_background"
    assert image.parent == old
    assert ("success", "Removed the background of 1 object's image, costing $0.00.") in notices(
        admin_client.get(CHANGELIST)
    )


def test_nothing_to_do_reads_the_current_image_generated_or_uploaded(ops, articles):
    lighthouse, harbour, bakery = articles
    uploaded(lighthouse, 160, 90)
    with_image(harbour, 90, 90)

    assert nothing_to_do(bakery, "hero", "upscale") == NO_SOURCE
    assert nothing_to_do(lighthouse, "hero", "outpaint") == ALREADY_FITS
    assert nothing_to_do(lighthouse, "hero", "outpaint", preset="product") == ""  # 1:1
    assert nothing_to_do(lighthouse, "hero", "outpaint", padding=(0, 10, 0, 10)) == ""
    assert nothing_to_do(lighthouse, "hero", "upscale") == ""
    assert nothing_to_do(harbour, "hero", "outpaint") == ""
    assert not Generation.objects.exclude(operation="generate").exists()


# When no provider can do it -----------------------------------------------------------------


def test_the_page_refuses_when_no_configured_provider_can_and_names_none(
    admin_client, settings, articles
):
    configure(settings, "textonly", textonly=TEXT_ONLY)
    uploaded(articles[0])

    page = act(admin_client, [articles[0].pk], action="upscale_images")

    text = text_of(page)
    assert "No configured provider can do this for the selected objects:" in text
    assert "cannot upscale images. Configured providers that can: none." in text
    assert "Upscale</button>" not in page.content.decode()

    # Confirming anyway (an old tab) spends nothing and says why.
    response = confirm(admin_client, page, "generate")
    errors = [text for level, text in notices(admin_client.get(response["Location"]))]
    assert any("cannot upscale images" in error for error in errors)
    assert not Generation.objects.exists()


def test_the_refusal_names_the_providers_that_can_and_choosing_one_works(
    admin_client, settings, articles
):
    configure(settings, "textonly", textonly=TEXT_ONLY, default=PLACEHOLDER)
    uploaded(articles[0])

    page = act(admin_client, [articles[0].pk], action="remove_backgrounds")

    assert "Configured providers that can: default." in text_of(page)
    assert "Remove backgrounds</button>" not in page.content.decode()

    chosen = confirm(admin_client, page, "preview", provider="default")
    assert "No configured provider can do this" not in text_of(chosen)
    assert "Remove backgrounds</button>" in chosen.content.decode()
    confirm(admin_client, chosen, "generate")
    assert current(articles[0]).generation.provider == "default"


# A queued run -----------------------------------------------------------------------------------


def test_a_queued_upscale_follows_its_run_on_the_progress_page(
    admin_client, queued, articles, django_capture_on_commit_callbacks
):
    for article in articles[:2]:
        uploaded(article)
    page = act(admin_client, [a.pk for a in articles[:2]], action="upscale_images")

    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(admin_client, page, "generate")

    [batch] = set(Generation.objects.values_list("batch", flat=True))
    assert response["Location"] == f"/admin/testapp/article/imagegen/batch/{batch}/"
    assert len(queued) == 2
    progress = admin_client.get(response["Location"])
    assert ("success", "Queued upscaling for 2 objects.") in notices(progress)
    assert "Upscaling images" in text_of(progress)
    assert "0 of 2 finished" in text_of(progress)


# Lineage, revert and cost -----------------------------------------------------------------------


@pytest.fixture
def chain(ops, articles):
    """Lighthouse's image generated, inpainted, then upscaled, each on the paid provider."""
    article = articles[0]
    generated = with_image(article, 64, 48, provider="paid")
    inpainted = imagegen.generate(
        operation="inpaint", source=generated, mask=(0, 0, 8, 8), prompt="a gull", provider="paid"
    ).images.get()
    article.refresh_from_db()  # the inpaint set the field on its own copy of the article
    upscaled = imagegen.generate(operation="upscale", target=article, provider="paid")
    return article, [generated, inpainted, upscaled.images.get()]


def change_url(article: Article) -> str:
    return f"/admin/testapp/article/{article.pk}/change/"


def test_the_history_shows_each_images_chain_and_links_to_its_parent(admin_client, chain):
    article, (generated, inpainted, upscaled) = chain

    html = admin_client.get(change_url(article)).content.decode()

    chain_of = dict(re.findall(r'data-image="(\d+)".*?data-imagegen-chain>([^<]*)<', html, re.S))
    assert chain_of[str(upscaled.pk)] == "generated → inpainted → upscaled"
    assert chain_of[str(inpainted.pk)] == "generated → inpainted"
    assert str(generated.pk) not in chain_of  # a generated image has no chain to show
    assert (
        f'data-imagegen-parent="{inpainted.pk}">Upscaled from '
        f'<a href="#imagegen-hero-image-{inpainted.pk}">image #{inpainted.pk}</a>'
    ) in html
    assert f'id="imagegen-hero-image-{inpainted.pk}"' in html
    assert f'<a href="#imagegen-hero-image-{generated.pk}">image #{generated.pk}</a>' in html
    # Regenerate would make a new image from the prompt alone: only the generated row has it.
    assert html.count("data-imagegen-regenerate") == 1


def test_revert_puts_the_middle_link_of_a_chain_back(admin_client, chain):
    article, (_generated, inpainted, upscaled) = chain
    assert current(article) == upscaled

    response = admin_client.post(
        change_url(article),
        {"title": article.title, "summary": article.summary, "hero__imagegen_pick": inpainted.pk},
    )

    assert response.status_code == 302
    assert current(article) == inpainted
    assert set(GeneratedImage.objects.filter(selected=True).values_list("pk", flat=True)) == {
        inpainted.pk
    }
    html = admin_client.get(change_url(article)).content.decode()
    assert re.search(rf'is-current" data-image="{inpainted.pk}"', html)
    assert f'data-imagegen-use="{upscaled.pk}"' in html  # and forward again, if wanted
    assert Generation.objects.count() == 3  # nothing was generated to revert


def test_the_cost_of_an_object_counts_its_operations(admin_client, chain):
    article, _images = chain

    assert cost_for(article) == Decimal("0.12")
    assert spend_for(article).confirmed == Decimal("0.12")
    changelist = admin_client.get(CHANGELIST).content.decode()
    assert '<td class="field-imagegen_spend">$0.12</td>' in changelist
    ct = ContentType.objects.get_for_model(Article).pk
    ledger = admin_client.get(
        "/admin/imagegen/generation/", {"content_type__id__exact": ct, "object_id": article.pk}
    )
    assert total_of(ledger) == "Total cost of these 3 generations: $0.12 (estimated: $0.12)"
    assert "AI spend: $0.12" in text_of(admin_client.get(change_url(article)))


def test_the_ledger_shows_the_operation_and_the_chain_of_a_row(admin_client, chain):
    _article, (generated, inpainted, upscaled) = chain
    row = upscaled.generation

    listing = admin_client.get("/admin/imagegen/generation/").content.decode()
    link = f'<a href="/admin/imagegen/generation/{inpainted.generation_id}/change/">'
    assert f'upscaled <span class="quiet">{link}from #{inpainted.generation_id}</a>' in listing

    detail = text_of(admin_client.get(f"/admin/imagegen/generation/{row.pk}/change/"))
    expected = (
        f"#{generated.generation_id} generated → #{inpainted.generation_id} inpainted → "
        f"#{row.pk} upscaled"
    )
    assert expected in detail
