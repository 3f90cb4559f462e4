"""The example project's Wagtail site: seeded and generated offline, pages show renditions."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from wagtail.images import get_image_model
from wagtail_demo.models import ArticlePage, HomePage

from imagegen.models import Generation

pytestmark = pytest.mark.django_db


def test_the_demo_seeds_pages_and_generates_their_images(client):
    call_command("imagegen_wagtail_demo", stdout=None)
    articles = list(ArticlePage.objects.live())
    assert len(articles) == 3
    assert all(article.hero_image_id for article in articles)
    assert get_image_model().objects.count() == 6  # a hero and an image block each
    assert Generation.objects.count() == 6
    assert HomePage.objects.get().get_site().is_default_site

    html = client.get(articles[0].url).content.decode()
    assert re.search(r'class="hero"', html)
    assert re.search(r'src="/media/images/[^"]+\.fill-1200x675\.', html)
    assert re.search(r'src="/media/images/[^"]+\.width-800\.', html)
    home = client.get(HomePage.objects.get().url).content.decode()
    assert home.count(".fill-320x180.") == 3

    call_command("imagegen_wagtail_demo", stdout=None)  # a second run adds nothing
    assert Generation.objects.count() == 6
