"""``GeneratedImagePanel``: a page's image field, with generate, regenerate and its history.

Use it in place of a ``FieldPanel`` for a ``ForeignKey`` to the image model::

    content_panels = Page.content_panels + [
        GeneratedImagePanel("hero_image", preset="hero", prompt="{{ object.title }}"),
    ]

The prompt is a Django template rendered with the page as ``object``; the preset and provider
are the field's, as ``GeneratedImageField`` has them for plain Django models.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum
from django.urls import reverse
from django.utils.translation import gettext as _
from wagtail.admin.panels import FieldPanel, Panel
from wagtail.models import Page

from imagegen import services
from imagegen.contrib.wagtail.permissions import can_generate_for_page
from imagegen.contrib.wagtail.text import client_messages
from imagegen.exceptions import ImagegenError
from imagegen.forms import MAX_COUNT
from imagegen.models import Generation
from imagegen.money import format_cost
from imagegen.prompts import clean, render_prompt


class GeneratedImagePanel(FieldPanel):
    """A ``FieldPanel`` for an image ``ForeignKey`` that can generate the image from the page."""

    def __init__(
        self,
        field_name: str,
        *args: Any,
        preset: str | None = None,
        prompt: str | None = None,
        provider: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(field_name, *args, **kwargs)
        self.preset = preset
        self.prompt = prompt
        self.provider = provider

    def clone_kwargs(self) -> dict[str, Any]:
        kwargs = super().clone_kwargs()
        kwargs.update(preset=self.preset, prompt=self.prompt, provider=self.provider)
        return kwargs

    def prompt_for(self, page: Page) -> str:
        """Return the subject prompt for ``page``: the rendered template, or its title."""
        if self.prompt:
            return render_prompt(self.prompt, page)
        return clean(str(page))

    def generate_kwargs(self, page: Page, **overrides: Any) -> dict[str, Any]:
        """Return ``imagegen.generate()`` arguments for this field of ``page``."""
        kwargs = {
            "prompt": self.prompt_for(page),
            "preset": self.preset,
            "provider": self.provider,
            "target": page,
            "field": self.field_name,
            "attach": False,
        }
        kwargs.update({key: value for key, value in overrides.items() if value is not None})
        return kwargs

    class BoundPanel(FieldPanel.BoundPanel):
        """The field as Wagtail draws it, then the generate controls."""

        template_name = "imagegen_wagtail/panel.html"

        def get_context_data(self, parent_context: Any = None) -> dict[str, Any]:
            context = super().get_context_data(parent_context)
            if not self.read_only:
                context["imagegen"] = self.imagegen_context()
            return context

        def imagegen_context(self) -> dict[str, Any] | None:
            page, user = self.instance, getattr(self.request, "user", None)
            if user is None:
                return None
            if page.pk is None:
                if not user.has_perm("imagegen.generate_image"):
                    return None
                return {"error": _("Save a draft of the page to generate its image.")}
            if not can_generate_for_page(user, page):
                return None
            args = [page.pk, self.panel.field_name]
            context: dict[str, Any] = {
                "widget_id": self.bound_field.auto_id,
                "generate_url": reverse("imagegen_wagtail:page_generate", args=args),
                "estimate_url": reverse("imagegen_wagtail:page_estimate", args=args),
                "history_url": reverse("imagegen_wagtail:page_history", args=args),
                "status_url": reverse("imagegen_wagtail:status"),
                "pick_url": reverse("imagegen_wagtail:pick"),
                "preset": self.panel.preset or "",
                "counts": range(1, MAX_COUNT + 1),
                "messages": client_messages(),
            }
            try:
                kwargs = self.panel.generate_kwargs(page)
                context["prompt"] = kwargs["prompt"]
                context["estimate"] = format_cost(services.estimate(**kwargs))
            except ImagegenError as err:
                return {**context, "error": str(err)}
            totals = Generation.objects.for_object(page, self.panel.field_name).aggregate(
                rows=Count("pk"), cost=Sum("cost")
            )
            context["history_count"] = totals["rows"]
            context["history_total"] = format_cost(totals["cost"] or Decimal(0))
            context["has_history"] = bool(totals["rows"])
            return context


def _walk(panel: Panel) -> Iterator[Panel]:
    yield panel
    for child in getattr(panel, "children", ()):
        yield from _walk(child)


def generated_panels(page_class: type[Page]) -> list[GeneratedImagePanel]:
    """Return the ``GeneratedImagePanel``s of ``page_class``'s edit form, in order."""
    return [p for p in _walk(page_class.get_edit_handler()) if isinstance(p, GeneratedImagePanel)]


def find_panel(page_class: type[Page], field_name: str) -> GeneratedImagePanel | None:
    """Return the ``GeneratedImagePanel`` of ``page_class`` for ``field_name``, if it has one."""
    for panel in generated_panels(page_class):
        if panel.field_name == field_name:
            return panel
    return None
