"""A site's custom image model gets the generated images.

Run with ``--ds=tests.settings_wagtail_custom_image`` (``make test-wagtail`` does).
"""

from __future__ import annotations

import pytest
from django.conf import settings
from wagtail.images import get_image_model

import imagegen
from imagegen.contrib.wagtail.images import store_image

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        getattr(settings, "WAGTAILIMAGES_IMAGE_MODEL", "") != "customimage.CustomImage",
        reason="runs with --ds=tests.settings_wagtail_custom_image",
    ),
]


def test_generated_images_are_of_the_custom_model(article, editor, settings):
    settings.IMAGEGEN = {"WAGTAIL": {"ALT_TEXT_FIELD": "caption"}}
    generation = imagegen.generate(
        prompt="a very long description of a lighthouse on a rock at dawn",
        target=article, field="hero_image", user=editor, attach=False,
    )  # fmt: skip
    image = store_image(generation.images.get(), user=editor)
    assert type(image).__name__ == "CustomImage" and isinstance(image, get_image_model())
    assert image.caption == "a very long description of a lighthouse…"  # cut to max_length
    assert image.description == ""
    assert image.get_rendition("fill-32x32").image == image
    article.hero_image = image
    article.save_revision().publish()
    assert [page.pk for page, _refs in image.get_usage()] == [article.pk]
