from django.contrib import admin

from imagegen.admin import ImageGenAdminMixin

from .models import Article, Product


@admin.register(Article)
class ArticleAdmin(ImageGenAdminMixin, admin.ModelAdmin):
    list_display = ["title"]
    search_fields = ["title"]


@admin.register(Product)
class ProductAdmin(ImageGenAdminMixin, admin.ModelAdmin):
    list_display = ["name"]
