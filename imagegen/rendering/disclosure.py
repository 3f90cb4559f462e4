"""The visible "AI-generated image · Provider model" label: ``{% imagegen_disclosure %}``.

The provider and model come from the ``Generation`` that made the file in the field, read from
the row of its ``GeneratedImage`` (an :class:`~imagegen.rendering.rows.ImageRow`, or a model
instance). The markup is the template :data:`DISCLOSURE_TEMPLATE`, which projects override.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from django.db import models
from django.forms.utils import flatatt
from django.template import Context, Engine
from django.utils.module_loading import import_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from imagegen.rendering.credentials import credentials_statement
from imagegen.rendering.picture import generated_image_for, image_field
from imagegen.rendering.placeholder_svg import html_attrs

#: Template of the disclosure label; override it in your project's templates directory.
DISCLOSURE_TEMPLATE = "imagegen/disclosure.html"


@functools.lru_cache(maxsize=64)
def _backend_display_name(backend: str) -> str:
    try:
        cls = import_string(backend)
    except Exception:  # noqa: BLE001 - a backend since removed or broken: use the alias
        return ""
    name = getattr(cls, "display_name", "") or ""
    if not name and isinstance(cls, type):
        name = cls.__name__.removesuffix("Provider")
    return str(name)


def provider_display_name(generation: Any) -> str:
    """Return the provider's display name for ``generation`` ("OpenAI"), else its alias.

    Read from the backend class recorded on the row (no query, no provider instance), so it
    stays right after the alias is reconfigured.
    """
    backend = getattr(generation, "backend", "") or ""
    return (_backend_display_name(backend) if backend else "") or generation.provider or ""


def disclosure_text(generation: Any) -> str:
    """Return the label for an image made by ``generation``, in the active language.

    "AI-generated image · OpenAI gpt-image-2"; the model is left out when it merely repeats
    the provider's name ("Offline placeholder"), both when neither is known.
    """
    provider = provider_display_name(generation)
    model = (getattr(generation, "model", "") or "").strip()
    if model and model.lower() in provider.lower():
        model = ""
    source = " ".join(part for part in (provider, model) if part)
    if not source:
        return gettext("AI-generated image")
    return gettext("AI-generated image · %(source)s") % {"source": source}


def render_disclosure(
    context: Context,
    obj: models.Model,
    field_name: str,
    attrs: Mapping[str, Any],
    *,
    credentials: bool = False,
) -> SafeString | str:
    """Return the label for ``obj.<field_name>``, rendered with :data:`DISCLOSURE_TEMPLATE`.

    ``context`` is the template context of the tag: the label renders with its engine, in a
    new context of its own. Returns ``""`` for an empty field or a file imagegen did not
    generate (a plain upload). With ``credentials`` the template also gets
    ``credentials_text``, what the image's Content Credentials say (often "").
    """
    image_field(obj, field_name)
    file = getattr(obj, field_name)
    if not file:
        return ""
    generated = generated_image_for(obj, field_name, file.name)
    if generated is None:
        return ""
    generation = generated.generation
    extra = html_attrs(attrs)
    classes = extra.pop("class", None)
    values = {
        "text": disclosure_text(generation),
        "provider": provider_display_name(generation),
        "model": generation.model,
        "class": f"imagegen-disclosure {classes}" if classes else "imagegen-disclosure",
        "attrs": flatatt(extra),
        "generation": generation,
        "image": generated,
        "credentials_text": credentials_statement(generated) if credentials else "",
    }
    engine = context.template.engine if context.template is not None else Engine.get_default()
    rendered = engine.get_template(DISCLOSURE_TEMPLATE).render(context.new(values))
    # Stripping whitespace cannot unbalance markup; an editor's final newline stays out.
    return mark_safe(rendered.strip())  # noqa: S308 - the template's output, already escaped
