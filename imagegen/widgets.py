"""The admin widget of ``GeneratedImageField``: the file input plus Generate, candidates, history.

The widget stays a plain ``ClearableFileInput`` (uploading still works) until
:class:`imagegen.admin.ImageGenAdminMixin` binds it to a saved object and to the endpoints of
its ``ModelAdmin``, and then only for users allowed to generate. The choice an editor makes
travels in one hidden input, ``<name>__imagegen_pick``, holding a ``GeneratedImage`` id that
the ``ModelAdmin`` checks and sets on the field when the form is saved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.widgets import AdminFileWidget
from django.db import models
from django.utils.translation import gettext_lazy as _

from imagegen.forms import MAX_COUNT, GenerateForm

#: Suffix of the hidden input that carries the chosen image's id.
PICK_SUFFIX = "__imagegen_pick"

#: Strings the script shows, translated on the server.
SCRIPT_STRINGS = {
    "generating": _("Generating…"),
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
        js = ["imagegen/widget.js"]

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
        form = GenerateForm(
            prefix=prefix,
            initial={
                "prompt": field.prompt_for(instance),
                "preset": getattr(field, "preset", None),
                "provider": getattr(field, "provider", None) or "",
                "count": 1,
            },
        )
        for key, form_field in form.fields.items():
            form_field.widget.attrs["data-imagegen-input"] = key
        form.fields["count"].widget.attrs.update({"min": 1, "max": MAX_COUNT})
        widget_id = f"{attrs.get('id') or name}_imagegen"
        return {
            **base,
            "enabled": True,
            "id": widget_id,
            "strings_id": f"{widget_id}-strings",
            "pick_name": name + PICK_SUFFIX,
            "form": form,
            "urls": binding.urls,
            "strings": {key: str(value) for key, value in SCRIPT_STRINGS.items()},
            "history": binding.history(),
        }
