from django.apps import AppConfig


class CustomImageConfig(AppConfig):
    name = "tests.contrib.wagtail.customimage"
    label = "customimage"
    default_auto_field = "django.db.models.BigAutoField"
