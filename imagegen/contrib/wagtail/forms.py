"""The Wagtail admin's generate forms: the chooser's "Generate" tab and the page bulk action."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from wagtail.models import Page

from imagegen.contrib.wagtail.conf import wagtail_settings
from imagegen.forms import MAX_PROMPT, GenerateForm

#: Pages listed with an editable prompt; the rest of a larger selection use their template.
EDITABLE_ROWS = 50
#: The id of the bulk action's <form>, which the prompt fields in the table belong to.
FORM_ID = "imagegen-bulk-form"


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

    Each page's prompt comes from its panel's template, and the first ``EDITABLE_ROWS`` pages
    get a field to change it (an edit is used instead of the template for that page).
    """

    step = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args: Any, pages: Iterable[Page] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pages = list(pages)[:EDITABLE_ROWS]
        for page in self.pages:
            self.fields[self.prompt_name(page)] = forms.CharField(
                label=_("Prompt for %(page)s") % {"page": page.get_admin_display_title()},
                max_length=MAX_PROMPT,
                required=False,
                # Drawn in the table of pages, outside the <form>, which it names.
                widget=forms.Textarea(attrs={"rows": 2, "cols": 40, "form": FORM_ID}),
            )
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

    @staticmethod
    def prompt_name(page: Page) -> str:
        return f"prompt_{page.pk}"

    def prompt_field(self, page: Page) -> forms.BoundField | None:
        name = self.prompt_name(page)
        return self[name] if name in self.fields else None

    def edited_prompts(self, defaults: dict[str, str]) -> dict[str, str]:
        """Return {str(pk): prompt} for the pages whose prompt differs from its default."""
        if not self.is_bound or not self.is_valid():
            return {}
        edited = {}
        for page in self.pages:
            value = (self.cleaned_data.get(self.prompt_name(page)) or "").strip()
            if value and value != defaults.get(str(page.pk), ""):
                edited[str(page.pk)] = value
        return edited
