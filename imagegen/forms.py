"""Forms behind the admin: what an editor asks for when generating, checked before any call."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.db import models
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from imagegen.catalog import retiring
from imagegen.conf import imagegen_settings
from imagegen.exceptions import ImagegenConfigurationError, UnsupportedRequest
from imagegen.fields import generated_fields
from imagegen.images import clean_input
from imagegen.models import GeneratedImage
from imagegen.pipeline.inputs import NEEDS_MASK, NEEDS_SEARCH, TAKES_MASK
from imagegen.presets import all_presets
from imagegen.providers import providers

#: The most candidates an editor can ask for at once.
MAX_COUNT = 4
#: Longest subject prompt accepted from the admin.
MAX_PROMPT = 2000
#: Longest "What to find" of a search-and-replace or recolour.
MAX_SEARCH = 500
#: Upscale factors an editor can choose.
SCALES = (2, 4)
#: ``source`` values besides an image id: the field's current image, or an uploaded photo.
CURRENT, UPLOAD = "current", "upload"

#: Each operation in an editor's words, in the order of ``imagegen.types.OPERATIONS``.
OPERATION_LABELS = {
    "generate": _("Generate a new image"),
    "edit": _("Edit with a prompt"),
    "inpaint": _("Paint an area and replace it"),
    "outpaint": _("Extend to the preset's shape"),
    "erase": _("Erase an area"),
    "search_replace": _("Replace something"),
    "search_recolor": _("Recolour something"),
    "remove_background": _("Remove the background"),
    "replace_background": _("Replace the background"),
    "upscale": _("Upscale"),
    "restyle": _("Restyle from a reference image"),
}


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


class EditForm(GenerateForm):
    """One request from the Generate widget: a generation, or an operation on a source image.

    ``images`` are the generated images the editor may start from (this object's field's);
    ``has_current`` says whether the field holds an image. Uploads (the photo, the mask, the
    reference) are checked here with the pipeline's own safe decoding, so a bad file gets a
    message next to its control before anything is planned.
    """

    count = forms.IntegerField(
        label=_("Images"),
        min_value=1,
        max_value=MAX_COUNT,
        initial=1,
        # One message for every way of getting it wrong, in the editor's words, shown next to
        # the input by the widget.
        error_messages={
            key: format_lazy(_("Choose 1 to {max} images."), max=MAX_COUNT)
            for key in ("required", "invalid", "min_value", "max_value")
        },
    )
    operation = forms.ChoiceField(
        label=_("What to do"),
        required=False,
        choices=list(OPERATION_LABELS.items()),
    )
    source = forms.CharField(label=_("Source image"), required=False, max_length=20)
    upload = forms.FileField(label=_("Photo to edit"), required=False)
    mask = forms.FileField(label=_("Mask"), required=False)
    reference = forms.FileField(label=_("Reference image"), required=False)
    search = forms.CharField(
        label=_("What to find"),
        required=False,
        max_length=MAX_SEARCH,
        help_text=_("Name the thing to change, such as “the blue bottle”."),
    )
    scale = forms.TypedChoiceField(
        label=_("Upscale by"),
        required=False,
        coerce=int,
        empty_value=SCALES[0],
        choices=[(scale, f"{scale}\N{MULTIPLICATION SIGN}") for scale in SCALES],
    )

    def __init__(
        self,
        *args: Any,
        images: models.QuerySet[GeneratedImage] | None = None,
        has_current: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.images = images if images is not None else GeneratedImage.objects.none()
        self.has_current = has_current

    def clean_operation(self) -> str:
        return self.cleaned_data.get("operation") or "generate"

    def _image_file(self, name: str, what: str, *, grayscale: bool = False) -> bytes | None:
        upload = self.cleaned_data.get(name)
        if not upload:
            return None
        limit = int(imagegen_settings.MAX_IMAGE_BYTES)
        if upload.size > limit:
            raise forms.ValidationError(
                _("The %(what)s is too large: at most %(size)s MB.")
                % {"what": what, "size": limit // (1024 * 1024) or 1}
            )
        data = upload.read()
        try:
            clean_input(data, what, grayscale=grayscale)
        except UnsupportedRequest as err:
            raise forms.ValidationError(
                _("The %(what)s could not be used: choose a PNG, JPEG or WebP image.")
                % {"what": what}
            ) from err
        return data

    def clean_upload(self) -> bytes | None:
        return self._image_file("upload", str(_("photo")))

    def clean_mask(self) -> bytes | None:
        return self._image_file("mask", str(_("mask")), grayscale=True)

    def clean_reference(self) -> bytes | None:
        return self._image_file("reference", str(_("reference image")))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        operation = data.get("operation") or "generate"
        if operation == "generate":
            return data
        source = (data.get("source") or CURRENT).strip()
        if source == UPLOAD:
            if not data.get("upload") and "upload" not in self.errors:
                self.add_error("upload", _("Choose a photo to upload."))
        elif source == CURRENT:
            if not self.has_current:
                self.add_error(
                    "source", _("The field has no image yet: upload a photo or generate one.")
                )
        else:
            # isdigit() alone accepts "²" and other digits int() refuses.
            is_id = source.isascii() and source.isdigit() and len(source) < 19
            data["source_image"] = self.images.filter(pk=int(source)).first() if is_id else None
            if data["source_image"] is None:
                self.add_error("source", _("That image is not one of this field's."))
        if operation in NEEDS_SEARCH and not (data.get("search") or "").strip():
            self.add_error("search", _("Say what to find in the image."))
        if data.get("mask") and operation not in TAKES_MASK:
            data["mask"] = None  # a mask left over from another operation
        return data

    def needs_mask(self) -> bool:
        """Return whether the chosen operation needs a painted mask that is missing."""
        data = self.cleaned_data
        return data.get("operation") in NEEDS_MASK and not data.get("mask")

    def generate_kwargs(self) -> dict[str, Any]:
        """Return the cleaned data as ``imagegen.generate()`` keyword arguments."""
        kwargs = super().generate_kwargs()
        data = self.cleaned_data
        operation = data.get("operation") or "generate"
        if operation == "generate":
            return kwargs
        kwargs["operation"] = operation
        source = (data.get("source") or CURRENT).strip()
        if source == UPLOAD:
            kwargs["source"] = data["upload"]
        elif source != CURRENT:
            kwargs["source"] = data["source_image"]
        if data.get("mask"):
            kwargs["mask"] = data["mask"]
        if data.get("reference"):
            kwargs["reference"] = data["reference"]
        if operation in NEEDS_SEARCH:
            kwargs["search"] = data["search"].strip()
        if operation == "upscale":
            kwargs["scale"] = data.get("scale") or SCALES[0]
        return kwargs


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
