"""The admin widget of ``GeneratedImageField``: the file input plus Generate, candidates, history.

The widget stays a plain ``ClearableFileInput`` (uploading still works) until
:class:`imagegen.admin.ImageGenAdminMixin` binds it to a saved object and to the endpoints of
its ``ModelAdmin``, and then only for users allowed to generate. The choice an editor makes
travels in one hidden input, ``<name>__imagegen_pick``, holding a ``GeneratedImage`` id that
the ``ModelAdmin`` checks and sets on the field when the form is saved.

Edit mode offers the operations on a source image (the current image, a candidate, a history
image or an uploaded photo) that the configured providers can do for the field, as
:func:`imagegen.services.operations_for` reports them; ``mask.js`` is its mask painter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib.admin.widgets import AdminFileWidget
from django.db import models
from django.utils.translation import gettext_lazy as _

from imagegen.conf import imagegen_settings
from imagegen.forms import CURRENT, MAX_COUNT, OPERATION_LABELS, UPLOAD, EditForm
from imagegen.pipeline.inputs import NEEDS_MASK, NEEDS_SEARCH, PROMPT_OPTIONAL, TAKES_MASK
from imagegen.services import operations_for

#: Suffix of the hidden input that carries the chosen image's id.
PICK_SUFFIX = "__imagegen_pick"

#: The form fields of a plain generation, shown in every mode.
BASE_FIELDS = ("prompt", "preset", "provider", "count")
#: Operations that take a reference image in the widget (restyle needs one to copy the look).
REFERENCE_OPERATIONS = ("restyle", "replace_background")
#: File types the upload inputs offer (the pipeline checks the bytes, whatever the name says).
ACCEPT = "image/png,image/jpeg,image/webp"

#: What the prompt asks for, per operation (the prompt's help text changes with the choice).
PROMPT_HINTS = {
    "generate": _("What the image shows; the preset adds style, lighting and quality."),
    "edit": _("Say what to change, such as “make the sky stormy”."),
    "inpaint": _("What to paint into the marked area."),
    "outpaint": _("Optional: what the added edges show."),
    "erase": _("Optional: the marked area is filled in from its surroundings."),
    "search_replace": _("What to put in its place."),
    "search_recolor": _("The new colour, such as “deep red”."),
    "remove_background": _("Optional: the background becomes transparent."),
    "replace_background": _("The new background, such as “a white studio”."),
    "upscale": _("Optional: the image is enlarged, nothing is changed."),
    "restyle": _("Optional: the look to give the image, besides the reference."),
}

#: Strings the script shows, translated on the server.
SCRIPT_STRINGS = {
    "generating": _("Generating…"),
    "editing": _("Working on the image…"),
    "queued": _("Queued, waiting for a worker…"),
    "running": _("Generating…"),
    "done": _("Done: pick a candidate, then save."),
    "failed": _("Generation failed: %(error)s"),
    "error": _("Something went wrong: %(error)s"),
    "estimate": _("Estimated cost: %(cost)s"),
    "candidate": _("Candidate %(number)s"),
    "picked": _("Image %(number)s will be set when you save."),
    "reverted": _("This earlier image will be set when you save."),
    "keep": _("Keep the current image"),
    "keep_empty": _("Leave the field empty"),
    "gone": _("This generation no longer exists."),
    "regenerate": _("Regenerate"),
    "cost": _("Cost: %(cost)s"),
    "check": _("Check the marked field: %(error)s"),
    "edit_image": _("Edit this image"),
    "candidate_source": _("Candidate %(number)s"),
    "history_source": _("Image #%(id)s from the history"),
    "selection": _(
        "Selection: %(width)s by %(height)s pixels, %(left)s from the left and "
        "%(top)s from the top. Press Enter to add it to the mask."
    ),
    "selection_added": _("Added the selection to the mask."),
    "undone": _("Undid the last change to the mask."),
    "nothing_to_undo": _("Nothing to undo."),
    "cleared": _("Cleared the mask."),
    "tool_brush": _("Brush: paint the area to change."),
    "tool_eraser": _("Eraser: paint to take parts out of the mask."),
    "tool_rectangle": _("Rectangle: drag on the image, or use the arrow keys and Enter."),
    "bad_upload": _("That file is not an image this page can show: choose a PNG, JPEG or WebP."),
}


@dataclass(frozen=True, kw_only=True)
class Binding:
    """What the widget needs to know to generate: the object, its field and where to ask."""

    instance: models.Model
    field: models.Field
    urls: dict[str, str]
    can_generate: bool
    #: Returns the history panel's context (recent generations of the field and their totals).
    history: Callable[[], dict[str, Any]] = dict


class GeneratedImageWidget(AdminFileWidget):
    """A file input with a Generate button, a tray of candidates and the field's history."""

    template_name = "imagegen/widgets/generated_image.html"
    binding: Binding | None = None

    class Media:
        css = {"all": ["imagegen/admin.css"]}
        js = ["imagegen/mask.js", "imagegen/widget.js"]

    def bind(self, binding: Binding) -> None:
        self.binding = binding

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["imagegen"] = self.imagegen_context(name, context["widget"]["attrs"])
        return context

    def imagegen_context(self, name: str, attrs: dict[str, Any]) -> dict[str, Any]:
        binding = self.binding
        saved = binding is not None and binding.instance.pk is not None
        base = {"enabled": False, "saved": saved, "bound": binding is not None}
        if binding is None or not saved or not binding.can_generate:
            return base
        field = binding.field
        instance = binding.instance
        prefix = f"{name}-imagegen"
        form = EditForm(
            prefix=prefix,
            initial={
                "prompt": field.prompt_for(instance),
                "preset": getattr(field, "preset", None),
                "provider": getattr(field, "provider", None) or "",
                "count": 1,
                "operation": "generate",
                "source": CURRENT,
            },
        )
        for key, form_field in form.fields.items():
            form_field.widget.attrs["data-imagegen-input"] = key
        # The server's limits, so the browser's own checks and the arrow keys match them.
        form.fields["count"].widget.attrs.update({"min": 1, "max": MAX_COUNT})
        offers = operations_for(instance, field.name)
        has_current = bool(getattr(instance, field.name, None))
        form.fields["operation"].choices = [("generate", OPERATION_LABELS["generate"])] + [
            (offer.operation, OPERATION_LABELS[offer.operation]) for offer in offers
        ]
        sources = [(UPLOAD, _("Upload a photo"))]
        if has_current:
            sources.insert(0, (CURRENT, _("The current image")))
        form.fields["source"].widget = forms.Select(
            choices=sources, attrs={"data-imagegen-input": "source"}
        )
        for file_field in ("upload", "reference"):
            form.fields[file_field].widget.attrs["accept"] = ACCEPT
        widget_id = f"{attrs.get('id') or name}_imagegen"
        config = {
            "operations": {
                offer.operation: {
                    "mask": offer.mask != "none" and offer.operation in TAKES_MASK,
                    "needs_mask": offer.operation in NEEDS_MASK,
                    "search": offer.operation in NEEDS_SEARCH,
                    "scale": offer.operation == "upscale",
                    "reference": offer.max_references > 0
                    and offer.operation in REFERENCE_OPERATIONS,
                    "prompt_optional": offer.operation in PROMPT_OPTIONAL,
                }
                for offer in offers
            },
            "hints": {key: str(value) for key, value in PROMPT_HINTS.items()},
            "max_bytes": int(imagegen_settings.MAX_IMAGE_BYTES),
        }
        return {
            **base,
            "enabled": True,
            "id": widget_id,
            "strings_id": f"{widget_id}-strings",
            "config_id": f"{widget_id}-config",
            "config": config,
            "pick_name": name + PICK_SUFFIX,
            "form": form,
            "fields": [form[key] for key in BASE_FIELDS],
            "edit": {
                key: form[key]
                for key in ("operation", "source", "upload", "search", "scale", "reference")
            },
            "editable": bool(offers),
            "max_mb": max(int(imagegen_settings.MAX_IMAGE_BYTES) // (1024 * 1024), 1),
            "urls": binding.urls,
            "strings": {key: str(value) for key, value in SCRIPT_STRINGS.items()},
            "history": binding.history(),
        }
