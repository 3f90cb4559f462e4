"""Admin for the demo models: imagegen's mixin adds generation, candidates and AI spend."""

from django.contrib import admin
from django.db import models
from django.utils.html import format_html

from imagegen.admin import ImageGenAdminMixin

from .models import Article, Product, Story


class DemoAdmin(ImageGenAdminMixin, admin.ModelAdmin):
    """Show the object's image as a thumbnail; the mixin adds the rest."""

    #: Name of the model's ``GeneratedImageField``.
    image_field = ""

    @admin.display(description="Image")
    def thumbnail(self, obj: models.Model) -> str:
        file = getattr(obj, self.image_field)
        if not file:
            return "—"
        return format_html(
            '<img src="{}" alt="" style="height:40px;width:auto;border-radius:4px" loading="lazy">',
            file.url,
        )


@admin.register(Article)
class ArticleAdmin(DemoAdmin):
    image_field = "hero"
    list_display = ["thumbnail", "title", "published", "imagegen_spend"]
    list_display_links = ["thumbnail", "title"]
    prepopulated_fields = {"slug": ["title"]}
    search_fields = ["title", "summary"]
    date_hierarchy = "published"


@admin.register(Product)
class ProductAdmin(DemoAdmin):
    image_field = "photo"
    list_display = ["thumbnail", "name", "price", "imagegen_spend"]
    list_display_links = ["thumbnail", "name"]
    search_fields = ["name", "description"]


@admin.register(Story)
class StoryAdmin(DemoAdmin):
    image_field = "image"
    list_display = ["thumbnail", "headline", "imagegen_spend"]
    list_display_links = ["thumbnail", "headline"]
    search_fields = ["headline", "dek"]
