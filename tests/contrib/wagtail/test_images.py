"""Generated images become Wagtail images as uploads do, and the ledger links them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from wagtail.images import get_image_model
from wagtail.models import Collection

import imagegen
from imagegen.contrib.wagtail.images import (
    cut,
    generated_for,
    image_cost,
    store_image,
    target_collection,
)
from imagegen.contrib.wagtail.models import WagtailImageLink

pytestmark = pytest.mark.django_db


def generate(**kwargs):
    kwargs.setdefault("prompt", "A lighthouse at dawn, waves on rocks")
    return imagegen.generate(attach=False, **kwargs)


def test_an_image_of_the_site_image_model_in_the_generated_collection(article, editor):
    generation = generate(target=article, field="hero_image", user=editor, count=2)
    first = generation.images.order_by("pk")[0]
    image = store_image(first, user=editor)

    assert isinstance(image, get_image_model())
    assert image.collection.name == "AI generated"
    assert image.collection.get_parent() == Collection.get_first_root_node()
    assert image.title == "A lighthouse at dawn, waves on rocks"
    assert image.description == first.alt_text
    assert list(image.tags.names()) == ["ai-generated"]
    assert image.uploaded_by_user == editor
    assert not image.has_focal_point()
    assert (image.width, image.height) == (first.width, first.height)
    assert image.file_size == first.bytes and image.file_hash
    # The file is a copy in Wagtail's own folder: deleting the image keeps the ledger's.
    assert image.file.name.startswith("original_images/")
    assert image.file.name != first.file.name

    rendition = image.get_rendition("fill-64x36")
    assert (rendition.width, rendition.height) == (64, 36)

    link = WagtailImageLink.objects.get(generated_image=first)
    assert (link.image, link.page_id, link.created_by) == (image, article.pk, editor)
    assert store_image(first, user=editor) == image  # once per ledger image
    assert get_image_model().objects.count() == 1
    assert list(generated_for(image)) == [first]


def test_the_library_search_finds_it(article, editor):
    generation = generate(prompt="a red kite over hills", user=editor)
    image = store_image(generation.images.get(), user=editor)
    assert list(get_image_model().objects.search("kite")) == [image]
    assert list(get_image_model().objects.search("ai-generated")) == [image]  # by its tag


def test_usage_counts_the_page_that_shows_it(article, editor):
    generation = generate(target=article, field="hero_image", user=editor)
    image = store_image(generation.images.get(), user=editor)
    article.hero_image = image
    article.save_revision().publish()
    assert [page.pk for page, _refs in image.get_usage()] == [article.pk]


def test_cost_per_page_and_per_image(article, editor, locmem):
    first = generate(target=article, field="hero_image", user=editor, count=2, provider="paid")
    second = generate(target=article, user=editor, provider="paid")
    image = store_image(first.images.order_by("pk")[0], user=editor)
    store_image(first.images.order_by("pk")[1], user=editor)

    assert (first.cost, second.cost) == (Decimal("0.08"), Decimal("0.04"))
    assert imagegen.cost_for(article) == Decimal("0.12")
    # Each library image counts the whole generation it was picked from, once.
    assert image_cost(image) == Decimal("0.08")


def test_collection_and_tags_and_title_length_are_settings(editor, settings):
    settings.IMAGEGEN = {
        "WAGTAIL": {"COLLECTION": "Robots", "TAGS": ["ai", "draft"], "TITLE_LENGTH": 14}
    }
    generation = generate(prompt="An extremely long prompt about many things", user=editor)
    image = store_image(generation.images.get(), user=editor)
    assert image.collection == target_collection()
    assert image.collection.name == "Robots"
    assert sorted(image.tags.names()) == ["ai", "draft"]
    assert image.title == "An extremely…"


def test_cut_keeps_words_whole():
    assert cut("one two  three", 50) == "one two three"
    assert cut("one two three", 10) == "one two…"
