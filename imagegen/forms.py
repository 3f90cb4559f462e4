"""Forms behind the admin: what an editor asks for when generating, checked before any call."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.db import models
from django.utils.translation import gettext_lazy as _

from imagegen.catalog import retiring
from imagegen.exceptions import ImagegenConfigurationError
from imagegen.fields import generated_fields
from imagegen.presets import all_presets
from imagegen.providers import providers

#: The most candidates an editor can ask for at once.
MAX_COUNT = 4
#: Longest subject prompt accepted from the admin.
MAX_PROMPT = 2000


def preset_choices() -> list[tuple[str, str]]:
    """Return (name, label) for every preset, built-in and configured."""
    return [(name, str(preset.label or name)) for name, preset in all_presets().items()]


def provider_choices() -> list[tuple[str, str]]:
    """Return (alias, "alias: model") for every configured provider, after the preset's own.

    A model that is shut down, or shuts down within ``SHUTDOWN_WARNING_DAYS``, says so, so an
    editor sees it before picking it.
    """
    choices: list[tuple[str, str]] = [("", _("The preset's provider"))]
    for alias in providers:
        try:
            provider = providers[alias]
        except ImagegenConfigurationError:  # reported by the system checks, not here
            continue
        label = f"{alias}: {provider.model}" if provider.model else alias
        info = provider.model_info()
        if info.status() == "shut down":
            label = _("%(label)s (shut down %(date)s)") % {"label": label, "date": info.shutdown}
        elif retiring(info):
            label = _("%(label)s (shuts down %(date)s)") % {"label": label, "date": info.shutdown}
        choices.append((alias, label))
    return choices


class GenerateForm(forms.Form):
    """One request from the admin: subject prompt, preset, provider and number of images."""

    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=MAX_PROMPT,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What the image shows; the preset adds style, lighting and quality."),
    )
    preset = forms.ChoiceField(label=_("Preset"))
    provider = forms.ChoiceField(label=_("Provider"), required=False)
    count = forms.IntegerField(label=_("Images"), min_value=1, max_value=MAX_COUNT, initial=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Settings are read per form, so presets and providers follow the current settings.
        self.fields["preset"].choices = preset_choices()
        self.fields["provider"].choices = provider_choices()

    def generate_kwargs(self) -> dict[str, Any]:
        """Return the cleaned data as ``imagegen.generate()`` keyword arguments."""
        data = self.cleaned_data
        return {
            "preset": data["preset"],
            "provider": data.get("provider") or None,
            "count": data["count"],
        }


class BulkGenerateForm(GenerateForm):
    """The "Generate images…" page: one field to fill, and a prompt per selected object."""

    field = forms.ChoiceField(label=_("Image field"))

    def __init__(
        self, *args: Any, model: type[models.Model], objects: Iterable[models.Model], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["prompt"]
        fields = generated_fields(model)
        self.fields["field"].choices = [(f.name, f.verbose_name) for f in fields]
        self.fields["field"].initial = fields[0].name if fields else None
        self.fields["preset"].initial = fields[0].preset if fields else None
        if len(fields) < 2:
            self.fields["field"].widget = forms.HiddenInput()
        self.objects = list(objects)
        for obj in self.objects:
            self.fields[self.prompt_name(obj)] = forms.CharField(
                label=_("Prompt for %(object)s") % {"object": obj},
                max_length=MAX_PROMPT,
                required=False,
                widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
            )

    @staticmethod
    def prompt_name(obj: models.Model) -> str:
        return f"prompt_{obj.pk}"

    def prompt_field(self, obj: models.Model) -> forms.BoundField:
        return self[self.prompt_name(obj)]

    def edited_prompts(self, defaults: dict[str, str]) -> dict[str, str]:
        """Return {str(pk): prompt} for the objects whose prompt differs from its default."""
        edited = {}
        for obj in self.objects:
            value = (self.cleaned_data.get(self.prompt_name(obj)) or "").strip()
            if value and value != defaults.get(str(obj.pk), ""):
                edited[str(obj.pk)] = value
        return edited
