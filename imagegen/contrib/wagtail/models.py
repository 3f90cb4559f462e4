"""Where a generated image went in Wagtail: the library image made from it, and its page."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.images import get_image_model_string

from imagegen.models import GeneratedImage


class WagtailImageLink(models.Model):
    """One ledger image stored as one image of the site's Wagtail image model.

    The ledger row (``Generation``) records the page the images were made for as its target;
    this row adds the library image that was made from one of them. Deleting the Wagtail image
    keeps the ledger (``image`` becomes empty), as deleting any file the ledger paid for does.
    """

    generated_image = models.OneToOneField(
        GeneratedImage,
        verbose_name=_("generated image"),
        on_delete=models.CASCADE,
        related_name="wagtail_link",
    )
    image = models.ForeignKey(
        get_image_model_string(),
        verbose_name=_("Wagtail image"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    page = models.ForeignKey(
        "wagtailcore.Page",
        verbose_name=_("page"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("Wagtail image link")
        verbose_name_plural = _("Wagtail image links")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.generated_image_id} -> {self.image_id}"
