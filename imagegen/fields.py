"""``GeneratedImageField``: an ImageField that knows how to generate its own image."""

from __future__ import annotations

from typing import Any

from django.db import models

from imagegen.exceptions import UnsupportedRequest
from imagegen.prompts import clean, render_prompt
from imagegen.storage import get_storage


def generated_fields(model: type[models.Model]) -> list[GeneratedImageField]:
    """Return the ``GeneratedImageField`` fields of ``model``, in declaration order."""
    return [f for f in model._meta.get_fields() if isinstance(f, GeneratedImageField)]


def resolve_field(
    target: models.Model, field: str | None, *, attach: bool = True
) -> models.Field | None:
    """Return the image field of ``target`` to fill; infer it when there is exactly one.

    Raises :class:`~imagegen.exceptions.UnsupportedRequest` for an unsaved target, an unknown
    field, a field that is not an image field, or an ambiguous choice. With ``attach=False``
    nothing is set on the target, so the field may be any field (such as a ``ForeignKey`` to
    a Wagtail image), or none when the model has no ``GeneratedImageField``: the ledger only
    records what the images were made for, and the caller stores them.
    """
    if target.pk is None:
        raise UnsupportedRequest("Save the object before generating images for it.")
    opts = target._meta
    if field is None:
        candidates = generated_fields(type(target))
        if not attach and not candidates:
            return None
        if len(candidates) != 1:
            raise UnsupportedRequest(
                f"{opts.label} has {len(candidates)} GeneratedImageFields; pass field=."
            )
        return candidates[0]
    try:
        model_field = opts.get_field(field)
    except Exception as err:
        raise UnsupportedRequest(f"{opts.label} has no field {field!r}.") from err
    if attach and not isinstance(model_field, models.ImageField):
        raise UnsupportedRequest(f"{opts.label}.{field} is not an image field.")
    return model_field


class GeneratedImageField(models.ImageField):
    """An ``ImageField`` filled by imagegen.

    ``preset`` names a preset (``"hero"``, ``"editorial"``, ``"product"`` or one of
    ``IMAGEGEN["PRESETS"]``); ``prompt`` is a Django template rendered with the instance as
    ``object`` (``"{{ object.title }}, {{ object.summary }}"``); ``provider`` is a provider alias
    that overrides the preset's. Files live in the ``IMAGEGEN["STORAGE"]`` storage unless
    ``storage`` is given.
    """

    def __init__(
        self,
        *args: Any,
        preset: str | None = None,
        prompt: str = "",
        provider: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.preset = preset
        self.prompt = prompt
        self.provider = provider
        kwargs.setdefault("storage", get_storage)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("max_length", 255)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        for attr in ("preset", "prompt", "provider"):
            if getattr(self, attr):
                kwargs[attr] = getattr(self, attr)
        return name, path, args, kwargs

    def prompt_for(self, instance: models.Model) -> str:
        """Return the subject prompt for ``instance``: the rendered template, or its ``str()``."""
        if self.prompt:
            return render_prompt(self.prompt, instance)
        return clean(str(instance))
