"""The Wagtail admin's generate forms: the chooser's "Generate" tab and the page bulk action."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from imagegen.contrib.wagtail.conf import wagtail_settings
from imagegen.forms import GenerateForm


class ChooserGenerateForm(GenerateForm):
    """The chooser's "Generate" tab: a prompt is required, there is no field to fill it from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["prompt"].required = True
        self.fields["preset"].initial = wagtail_settings()["CHOOSER_PRESET"]
        # Wagtail's chooser tabs style their fields by these ids: keep them apart from the
        # search tab's and the upload tab's.
        self.auto_id = "id_imagegen_%s"


class PageBulkGenerateForm(GenerateForm):
    """The page listing's "Generate images…" page: preset, provider and count for all pages.

    Each page's prompt comes from its panel's template; the preset starts as the panel's own.
    """

    step = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["prompt"]
        self.fields["preset"].required = False
        self.fields["preset"].choices = [
            ("", _("Each page's own preset")),
            *self.fields["preset"].choices,
        ]
        self.fields["count"].label = _("Images per page")

    def generate_kwargs(self) -> dict[str, Any]:
        """Return the cleaned data as ``generate()`` arguments; no preset keeps each page's."""
        kwargs = super().generate_kwargs()
        kwargs["preset"] = kwargs["preset"] or None
        return kwargs
