"""The "Generate images…" admin action: a confirmation page with the estimate, then dispatch.

The action posts back to the changelist like Django's own "Delete selected" does: the first
post renders the page, "Update estimate" renders it again with the editor's changes, and
"Generate" writes the rows through :func:`imagegen.services.iter_generate_many` (batched
inserts, one dispatch per batch) and redirects: to the changelist when the immediate runner
has already finished them, or to a progress page that follows a queued run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_ngettext
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from imagegen import services
from imagegen.exceptions import BudgetExceeded, ImagegenError
from imagegen.fields import resolve_field
from imagegen.forms import BulkGenerateForm
from imagegen.models import Generation, Status
from imagegen.money import format_cost
from imagegen.runners import get_runner

if TYPE_CHECKING:
    from imagegen.admin.mixin import ImageGenAdminMixin

#: Objects listed with an editable prompt; the rest of a larger selection use the template.
EDITABLE_ROWS = 50
#: Above this many objects, the page warns that the immediate runner works inside the request.
IMMEDIATE_WARNING = 20


@dataclass(frozen=True, kw_only=True)
class Row:
    """One selected object on the confirmation page."""

    obj: models.Model
    default_prompt: str
    estimate: Decimal | None
    provider: str = ""
    error: str = ""
    #: The estimate at the provider's batch price; None when it has no batch API.
    batch_estimate: Decimal | None = None

    @property
    def estimate_display(self) -> str:
        return format_cost(self.estimate) if self.estimate is not None else "—"


def generate_images_action(
    model_admin: ImageGenAdminMixin, request: HttpRequest, queryset: models.QuerySet
) -> HttpResponse | None:
    """Render the confirmation page, or generate for ``queryset`` once the editor confirms."""
    opts = model_admin.model._meta
    total = queryset.count()
    shown = list(queryset[:EDITABLE_ROWS])
    data, switched = None, False
    if "imagegen_form" in request.POST:
        data = request.POST.copy()
        # The prompts on the page were made for the field they were rendered for; when the
        # editor picks another field they are that field's defaults, not edits.
        switched = data.get("imagegen_prompts_for") != data.get("field")
        if switched:
            for obj in shown:
                data.pop(BulkGenerateForm.prompt_name(obj), None)
    form = BulkGenerateForm(data, model=model_admin.model, objects=shown)
    form.fields["count"].label = _("Images per object")
    valid = form.is_valid() if data is not None else False
    settings = _settings(form, valid)
    defaults = {str(obj.pk): _default_prompt(obj, settings["field"]) for obj in shown}
    for obj in shown:
        if data is None:
            form.fields[form.prompt_name(obj)].initial = defaults[str(obj.pk)]
        elif switched:
            data[form.prompt_name(obj)] = defaults[str(obj.pk)]
    edited = form.edited_prompts(defaults) if valid else {}

    mode = request.POST.get("imagegen_mode", "now")
    settings["mode"] = mode if mode in services.MODES else "now"
    if valid and request.POST.get("imagegen_step") == "generate":
        return _dispatch(model_admin, request, queryset, settings, edited)

    rows = [_row(obj, settings, defaults, edited) for obj in shown]
    estimate = sum((r.estimate or Decimal(0) for r in rows), Decimal(0))
    batchable = all(r.batch_estimate is not None for r in rows if r.estimate is not None)
    batch_estimate = sum((r.batch_estimate or Decimal(0) for r in rows), Decimal(0))
    if total > len(shown):
        rest, rest_batch = _estimate_rest(queryset, shown, settings)
        estimate += rest
        batch_estimate += rest_batch
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Generate images"),
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        "form": form,
        "rows": [(row, form.prompt_field(row.obj)) for row in rows],
        "total": total,
        "objects_name": model_ngettext(opts, total),
        "hidden_count": total - len(shown),
        "estimate": format_cost(estimate),
        # "Within 24 hours, about half the price": the provider's batch API, when it has one.
        "batch_estimate": format_cost(batch_estimate) if batchable else None,
        "mode": settings["mode"] if batchable else "now",
        # The immediate runner generates while the editor's request waits: a long run can
        # outlast the web server's timeout, so say so before anything is spent.
        "in_request": total > IMMEDIATE_WARNING and get_runner().is_immediate,
        "prompts_for": settings["field"],
        "queryset": queryset,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "select_across": request.POST.get("select_across", "0"),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "media": model_admin.media + form.media,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/imagegen/generate_images.html", context)


def _settings(form: BulkGenerateForm, valid: bool) -> dict[str, Any]:
    if valid:
        return {"field": form.cleaned_data["field"], **form.generate_kwargs()}
    return {
        "field": form.fields["field"].initial,
        "preset": form.fields["preset"].initial or None,
        "provider": None,
        "count": 1,
    }


def _default_prompt(obj: models.Model, field: str) -> str:
    model_field = resolve_field(obj, field)
    return model_field.prompt_for(obj)


def _plan_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: settings[k] for k in ("preset", "provider", "count")}


def _run_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    return {**_plan_kwargs(settings), "mode": settings.get("mode", "now")}


def _row(obj: models.Model, settings: dict, defaults: dict, edited: dict) -> Row:
    default = defaults[str(obj.pk)]
    try:
        plan = services.plan(
            target=obj,
            field=settings["field"],
            prompt=edited.get(str(obj.pk)) or None,
            **_plan_kwargs(settings),
        )
    except ImagegenError as err:
        return Row(obj=obj, default_prompt=default, estimate=None, error=str(err))
    model = plan.calls[0].model or plan.provider.model
    return Row(
        obj=obj,
        default_prompt=default,
        estimate=plan.estimated_cost,
        provider=f"{plan.provider.alias}: {model}" if model else plan.provider.alias,
        batch_estimate=services.batch_estimate(plan),
    )


def _estimate_rest(
    queryset: models.QuerySet, shown: list, settings: dict
) -> tuple[Decimal, Decimal]:
    """Estimate the objects not listed on the page, now and in a batch, reading in chunks."""
    total = batch_total = Decimal(0)
    shares: dict[tuple[str, str], Decimal | None] = {}
    rest = queryset.exclude(pk__in=[obj.pk for obj in shown])
    for obj in rest.iterator(chunk_size=500):
        try:
            plan = services.plan(target=obj, field=settings["field"], **_plan_kwargs(settings))
        except ImagegenError:
            continue
        total += plan.estimated_cost
        batch_total += services.batch_estimate(plan, shares) or Decimal(0)
    return total, batch_total


def _dispatch(
    model_admin: ImageGenAdminMixin,
    request: HttpRequest,
    queryset: models.QuerySet,
    settings: dict[str, Any],
    edited: dict[str, str],
) -> HttpResponse:
    batch = uuid.uuid4()
    tally = _Tally()
    outcomes = services.iter_generate_many(
        queryset.iterator(chunk_size=services.BULK_BATCH),
        settings["field"],
        user=request.user,
        prompt_for=lambda obj: edited.get(str(obj.pk)),
        batch=batch,
        **_run_kwargs(settings),
    )
    for obj, outcome in outcomes:
        tally.add(obj, outcome)
    tally.report(model_admin, request)
    if tally.queued:
        opts = model_admin.model._meta
        name = f"{opts.app_label}_{opts.model_name}_imagegen_batch"
        return HttpResponseRedirect(reverse(f"{model_admin.admin_site.name}:{name}", args=[batch]))
    return HttpResponseRedirect(request.get_full_path())


@dataclass
class _Tally:
    """What a bulk run did, for the summary messages."""

    succeeded: int = 0
    queued: int = 0
    failed: int = 0
    cost: Decimal = Decimal(0)
    errors: list[str] = field(default_factory=list)
    stopped: BudgetExceeded | None = None

    def add(self, obj: models.Model, outcome: Generation | ImagegenError) -> None:
        if isinstance(outcome, BudgetExceeded):
            self.stopped = outcome
        elif isinstance(outcome, ImagegenError):
            self.errors.append(f"{obj}: {outcome}")
        elif outcome.status == Status.SUCCEEDED:
            self.succeeded += 1
            self.cost += outcome.cost or Decimal(0)
        elif outcome.status in (Status.QUEUED, Status.RUNNING):
            self.queued += 1
        else:
            self.failed += 1

    def report(self, model_admin: Any, request: HttpRequest) -> None:
        say = model_admin.message_user
        if self.succeeded:
            say(
                request,
                ngettext(
                    "Generated images for %(count)d object, costing %(cost)s.",
                    "Generated images for %(count)d objects, costing %(cost)s.",
                    self.succeeded,
                )
                % {"count": self.succeeded, "cost": format_cost(self.cost)},
                messages.SUCCESS,
            )
        if self.queued:
            say(
                request,
                ngettext(
                    "Queued image generation for %(count)d object.",
                    "Queued image generation for %(count)d objects.",
                    self.queued,
                )
                % {"count": self.queued},
                messages.SUCCESS,
            )
        if self.failed:
            say(
                request,
                ngettext(
                    "%(count)d generation failed; the ledger has the reason.",
                    "%(count)d generations failed; the ledger has the reasons.",
                    self.failed,
                )
                % {"count": self.failed},
                messages.WARNING,
            )
        for error in self.errors[:10]:
            say(request, error, messages.ERROR)
        if len(self.errors) > 10:
            more = len(self.errors) - 10
            say(request, _("…and %(count)d more errors.") % {"count": more}, messages.ERROR)
        if self.stopped is not None:
            say(request, _("Stopped: %(reason)s") % {"reason": self.stopped}, messages.ERROR)
