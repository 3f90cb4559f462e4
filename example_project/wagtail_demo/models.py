"""The Wagtail demo's pages: a home page and articles with a generated hero image."""

from django.db import models
from wagtail import blocks
from wagtail.admin.panels import FieldPanel
from wagtail.fields import StreamField
from wagtail.images import get_image_model_string
from wagtail.images.blocks import ImageChooserBlock
from wagtail.models import Page

from imagegen.contrib.wagtail.panels import GeneratedImagePanel


class HomePage(Page):
    """The site's root page: lists the articles."""

    intro = models.TextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]
    subpage_types = ["wagtail_demo.ArticlePage"]

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["articles"] = ArticlePage.objects.child_of(self).live().specific()
        return context


class ArticlePage(Page):
    """An article: a hero image generated from its title and summary, and a body of blocks."""

    summary = models.TextField(blank=True)
    hero_image = models.ForeignKey(
        get_image_model_string(),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    body = StreamField(
        [
            ("paragraph", blocks.RichTextBlock()),
            ("image", ImageChooserBlock()),
        ],
        blank=True,
    )

    content_panels = [
        *Page.content_panels,
        FieldPanel("summary"),
        GeneratedImagePanel(
            "hero_image",
            preset="hero",
            prompt="{{ object.title }}{% if object.summary %}: {{ object.summary }}{% endif %}",
        ),
        FieldPanel("body"),
    ]
    parent_page_types = ["wagtail_demo.HomePage"]
