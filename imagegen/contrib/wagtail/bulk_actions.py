"""The page listing's "Generate images…" bulk action: a confirmation page with the estimate.

Like the Django admin's action, the page lists each selected page with its prompt and what it
would cost, and the editor can change the preset, provider and count and update the estimate
before anything is spent. Each page's field is its first ``GeneratedImagePanel``; pages
without one are listed apart. Generating writes the rows through
:func:`imagegen.services.iter_generate_many` as one batch; when a row succeeds (at once with
the immediate runner, later with a queue) its first image becomes a library image set on a new
draft revision of its page (see :mod:`imagegen.contrib.wagtail.receivers`).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from wagtail.admin.views.pages.bulk_actions.page_bulk_action import PageBulkAction
from wagtail.models import Page

from imagegen import services
from imagegen.conf import imagegen_settings
from imagegen.contrib.wagtail.forms import PageBulkGenerateForm
from imagegen.contrib.wagtail.panels import GeneratedImagePanel, generated_panels
from imagegen.contrib.wagtail.permissions import can_generate_for_page
from imagegen.exceptions import BudgetExceeded, ImagegenError
from imagegen.models import Generation, Status
from imagegen.money import format_cost

#: Above this many pages, the page warns that the immediate runner works inside the request.
IMMEDIATE_WARNING = 20


@dataclass(frozen=True, kw_only=True)
class Row:
    """One selected page on the confirmation page."""

    page: Page
    field: str = ""
    field_label: str = ""
    prompt: str = ""
    estimate: Decimal | None = None
    provider: str = ""
    error: str = ""

    @property
    def estimate_display(self) -> str:
        return format_cost(self.estimate) if self.estimate is not None else "—"


def panel_of(page: Page) -> GeneratedImagePanel | None:
    """Return the first ``GeneratedImagePanel`` of ``page``'s type, if it has one."""
    panels = generated_panels(type(page))
    return panels[0] if panels else None


class GenerateImagesBulkAction(PageBulkAction):
    """Generate the image of each selected page's ``GeneratedImagePanel`` field."""

    display_name = _("Generate images…")
    action_type = "imagegen_generate"
    aria_label = _("Generate images for the selected pages")
    template_name = "imagegen_wagtail/bulk_generate.html"
    action_priority = 80
    form_class = PageBulkGenerateForm

    def check_perm(self, page: Page) -> bool:
        return can_generate_for_page(self.request.user, page)

    def editable_pages(self) -> list[Page]:
        """Return the selected pages that have a generated image field, as specific pages."""
        if not hasattr(self, "_editable"):
            pages, _without_access = self.get_actionable_objects()
            self._editable = [p.specific for p in pages if panel_of(p.specific) is not None]
        return self._editable

    def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = super().get_form_kwargs()
        if self.request.method == "GET":
            kwargs.pop("data", None)
        kwargs["pages"] = self.editable_pages()
        return kwargs

    def settings(self, form: PageBulkGenerateForm) -> dict[str, Any]:
        """Return the editor's preset, provider and count (the defaults before a post)."""
        if form.is_bound and form.is_valid():
            return form.generate_kwargs()
        return {"preset": None, "provider": None, "count": 1}

    def defaults(self) -> dict[str, str]:
        """Return {str(pk): prompt} of each editable page, from its panel's template."""
        return {str(page.pk): panel_of(page).prompt_for(page) for page in self.editable_pages()}

    def rows(
        self, pages: list[Page], settings: dict[str, Any], edited: dict[str, str]
    ) -> list[Row]:
        rows = []
        for page in pages:
            page = page.specific
            panel = panel_of(page)
            if panel is None:
                rows.append(Row(page=page, error=str(_("This page type has no generated image."))))
                continue
            try:
                own = edited.get(str(page.pk))
                kwargs = panel.generate_kwargs(page, **settings, prompt=own)
                plan = services.plan(**kwargs)
            except ImagegenError as err:
                rows.append(Row(page=page, field=panel.field_name, error=str(err)))
                continue
            model = plan.calls[0].model or plan.provider.model
            rows.append(
                Row(
                    page=page,
                    field=panel.field_name,
                    field_label=str(page._meta.get_field(panel.field_name).verbose_name),
                    prompt=kwargs["prompt"],
                    estimate=plan.estimated_cost,
                    provider=f"{plan.provider.alias}: {model}" if model else plan.provider.alias,
                )
            )
        return rows

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        form = context["form"]
        pages = [item["item"] for item in context["items"]]
        defaults = self.defaults()
        if not form.is_bound:
            for page in form.pages:
                form.fields[form.prompt_name(page)].initial = defaults[str(page.pk)]
        rows = self.rows(pages, self.settings(form), form.edited_prompts(defaults))
        estimate = sum((row.estimate or Decimal(0) for row in rows), Decimal(0))
        context.update(
            {
                "rows": [(row, form.prompt_field(row.page)) for row in rows],
                "estimate": format_cost(estimate),
                "generatable": sum(1 for row in rows if not row.error),
                "hidden_prompts": max(0, len(self.editable_pages()) - len(form.pages)),
                # The immediate runner generates while the editor's request waits.
                "in_request": len(rows) > IMMEDIATE_WARNING
                and imagegen_settings.TASK_RUNNER == "immediate",
            }
        )
        return context

    def form_valid(self, form: PageBulkGenerateForm) -> HttpResponse:
        if form.cleaned_data.get("step") != "generate":
            # "Update estimate": show the page again with the editor's choices.
            return self.render_to_response(self.get_context_data(form=form))
        return super().form_valid(form)

    def get_execution_context(self) -> dict[str, Any]:
        form = self.cleaned_form
        return {
            **super().get_execution_context(),
            **form.generate_kwargs(),
            "prompts": form.edited_prompts(self.defaults()),
        }

    @classmethod
    def execute_action(
        cls,
        objects: list[Page],
        user: Any = None,
        prompts: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, int]:
        """Generate for ``objects`` as one batch; return (rows made, pages skipped).

        ``prompts`` maps a page's id to the prompt an editor wrote for it on the page.
        """
        prompts = prompts or {}
        groups: dict[tuple[type, str], list[Page]] = defaultdict(list)
        skipped = 0
        for page in objects:
            page = page.specific
            panel = panel_of(page)
            if panel is None:
                skipped += 1
                continue
            groups[(type(page), panel.field_name)].append(page)
        batch, made = uuid.uuid4(), 0
        for (_page_class, field), pages in groups.items():
            panel = panel_of(pages[0])
            outcomes = services.iter_generate_many(
                pages,
                field,
                user=user,
                prompt_for=lambda page, panel=panel: (
                    prompts.get(str(page.pk)) or panel.prompt_for(page)
                ),
                batch=batch,
                attach=False,
                preset=kwargs.get("preset") or panel.preset,
                provider=kwargs.get("provider") or panel.provider,
                count=kwargs.get("count") or 1,
            )
            for _page, outcome in outcomes:
                if isinstance(outcome, Generation) and outcome.status != Status.FAILED:
                    made += 1
                elif isinstance(outcome, BudgetExceeded):
                    # The run stopped here: every page not generated counts as skipped.
                    return made, len(objects) - made
                else:
                    skipped += 1
        return made, skipped

    def get_success_message(self, num_parent_objects: int, num_child_objects: int) -> str:
        message = ngettext(
            "Image generation started for %(count)d page; each image is set on a new draft.",
            "Image generation started for %(count)d pages; each image is set on a new draft.",
            num_parent_objects,
        ) % {"count": num_parent_objects}
        if num_child_objects:
            message += " " + ngettext(
                "%(count)d page was skipped (see the ledger).",
                "%(count)d pages were skipped (see the ledger).",
                num_child_objects,
            ) % {"count": num_child_objects}
        return message
