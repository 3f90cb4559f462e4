from django.apps import AppConfig


class WagtailDemoConfig(AppConfig):
    name = "wagtail_demo"
    verbose_name = "Wagtail demo"
    default_auto_field = "django.db.models.BigAutoField"
