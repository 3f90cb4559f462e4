"""The changelist's bulk actions: "Generate images…" and the operations on current images.

Each action posts back to the changelist like Django's own "Delete selected" does: the first
post renders a confirmation page with each object's estimate and the total, "Update estimate"
renders it again with the editor's changes, and the confirm button writes the rows through
:func:`imagegen.services.iter_generate_many` (batched inserts, one dispatch per batch) and
redirects: to the changelist when the immediate runner has already finished them, or to a
progress page that follows a queued run.

"Upscale images…", "Remove backgrounds…" and "Fit images to the preset…"
(:data:`BULK_OPERATIONS`) work on each object's current image. Objects with nothing to do (no
image, or already the preset's shape) are listed and skipped; a page on which the pipeline
refuses every object shows its reason (which names the providers that could) and offers no
button to confirm.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_ngettext
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, ngettext_lazy

from imagegen import services
from imagegen.exceptions import BudgetExceeded, ImagegenError
from imagegen.fields import generated_fields, resolve_field
from imagegen.forms import BulkGenerateForm, provider_choices
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
class BulkOperation:
    """One bulk action: the operation it asks the pipeline for, and what its pages say."""

    #: The action's name, as the changelist posts it.
    action: str
    #: One of :data:`imagegen.types.OPERATIONS`.
    operation: str
    #: The confirmation page's heading.
    title: Any
    #: The confirmation page's opening sentence (``%(count)d`` and ``%(name)s``).
    intro: Any
    #: The label of the button that spends the money.
    button: Any
    #: The progress page's heading while a queued run of it goes on.
    progress_title: Any
    #: The summary of the finished objects (``%(count)d`` and ``%(cost)s``).
    done: Any
    #: The summary of the queued objects (``%(count)d``).
    queued: Any


GENERATE = BulkOperation(
    action="generate_images",
    operation="generate",
    title=gettext_lazy("Generate images"),
    intro=ngettext_lazy(
        "Generate images for %(count)d %(name)s. Check the prompts and the estimate, then confirm.",
        "Generate images for %(count)d %(name)s. Check the prompts and the estimate, then confirm.",
        "count",
    ),
    button=gettext_lazy("Generate"),
    progress_title=gettext_lazy("Generating images"),
    done=ngettext_lazy(
        "Generated images for %(count)d object, costing %(cost)s.",
        "Generated images for %(count)d objects, costing %(cost)s.",
        "count",
    ),
    queued=ngettext_lazy(
        "Queued image generation for %(count)d object.",
        "Queued image generation for %(count)d objects.",
        "count",
    ),
)
UPSCALE = BulkOperation(
    action="upscale_images",
    operation="upscale",
    title=gettext_lazy("Upscale images"),
    intro=ngettext_lazy(
        "Upscale the current image of %(count)d %(name)s. Check the estimate, then confirm.",
        "Upscale the current images of %(count)d %(name)s. Check the estimate, then confirm.",
        "count",
    ),
    button=gettext_lazy("Upscale"),
    progress_title=gettext_lazy("Upscaling images"),
    done=ngettext_lazy(
        "Upscaled the image of %(count)d object, costing %(cost)s.",
        "Upscaled the images of %(count)d objects, costing %(cost)s.",
        "count",
    ),
    queued=ngettext_lazy(
        "Queued upscaling for %(count)d object.",
        "Queued upscaling for %(count)d objects.",
        "count",
    ),
)
REMOVE_BACKGROUNDS = BulkOperation(
    action="remove_backgrounds",
    operation="remove_background",
    title=gettext_lazy("Remove backgrounds"),
    intro=ngettext_lazy(
        "Remove the background of the current image of %(count)d %(name)s. Check the "
        "estimate, then confirm.",
        "Remove the backgrounds of the current images of %(count)d %(name)s. Check the "
        "estimate, then confirm.",
        "count",
    ),
    button=gettext_lazy("Remove backgrounds"),
    progress_title=gettext_lazy("Removing backgrounds"),
    done=ngettext_lazy(
        "Removed the background of %(count)d object's image, costing %(cost)s.",
        "Removed the backgrounds of %(count)d objects' images, costing %(cost)s.",
        "count",
    ),
    queued=ngettext_lazy(
        "Queued background removal for %(count)d object.",
        "Queued background removal for %(count)d objects.",
        "count",
    ),
)
FIT = BulkOperation(
    action="fit_images",
    operation="outpaint",
    title=gettext_lazy("Fit images to the preset"),
    intro=ngettext_lazy(
        "Extend the current image of %(count)d %(name)s to its preset's shape (outpaint). "
        "Check the estimate, then confirm.",
        "Extend the current images of %(count)d %(name)s to their preset's shape (outpaint). "
        "Check the estimate, then confirm.",
        "count",
    ),
    button=gettext_lazy("Fit images"),
    progress_title=gettext_lazy("Fitting images to the preset"),
    done=ngettext_lazy(
        "Fitted the image of %(count)d object to its preset, costing %(cost)s.",
        "Fitted the images of %(count)d objects to their preset, costing %(cost)s.",
        "count",
    ),
    queued=ngettext_lazy(
        "Queued fitting for %(count)d object.",
        "Queued fitting for %(count)d objects.",
        "count",
    ),
)
#: The operations the changelist offers on many objects' current images, by action name.
BULK_OPERATIONS = {op.action: op for op in (UPSCALE, REMOVE_BACKGROUNDS, FIT)}
#: Every bulk action's words, by the operation its rows record (for the progress page).
BY_OPERATION = {op.operation: op for op in (GENERATE, *BULK_OPERATIONS.values())}
#: Why an object was left out of an operation, in words.
SKIP_REASONS = {
    services.NO_SOURCE: gettext_lazy("no current image"),
    services.ALREADY_FITS: gettext_lazy("already the preset's shape"),
}
#: The scales "Upscale images…" offers.
SCALES = [
    ("2", gettext_lazy("2x: twice as wide and as high")),
    ("4", gettext_lazy("4x: four times as wide and as high")),
]


@dataclass(frozen=True, kw_only=True)
class Row:
    """One selected object on a confirmation page."""

    obj: models.Model
    estimate: Decimal | None
    default_prompt: str = ""
    provider: str = ""
    #: Source and result size of an operation ("1024 x 1024 px → 2048 x 2048 px").
    size: str = ""
    error: str = ""
    #: The estimate at the provider's batch price; None when it has no batch API.
    batch_estimate: Decimal | None = None

    @property
    def estimate_display(self) -> str:
        return format_cost(self.estimate) if self.estimate is not None else "—"


class BulkOperationForm(forms.Form):
    """An operation's settings on its confirmation page: the field, the provider, the scale."""

    field = forms.ChoiceField(label=gettext_lazy("Image field"))
    provider = forms.ChoiceField(label=gettext_lazy("Provider"), required=False)
    scale = forms.TypedChoiceField(
        label=gettext_lazy("Scale"), choices=SCALES, coerce=int, initial="2"
    )

    def __init__(self, *args: Any, model: type[models.Model], operation: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        fields = generated_fields(model)
        self.fields["field"].choices = [(f.name, f.verbose_name) for f in fields]
        self.fields["field"].initial = fields[0].name if fields else None
        if len(fields) < 2:
            self.fields["field"].widget = forms.HiddenInput()
        self.fields["provider"].choices = provider_choices()
        if operation != "upscale":
            del self.fields["scale"]

    def settings(self, valid: bool) -> dict[str, Any]:
        """Return the field and the ``generate()`` arguments chosen, or the defaults."""
        if not valid:
            chosen = {"field": self.fields["field"].initial, "provider": None}
            if "scale" in self.fields:
                chosen["scale"] = int(self.fields["scale"].initial)
            return chosen
        data = self.cleaned_data
        chosen = {"field": data["field"], "provider": data.get("provider") or None}
        if "scale" in data:
            chosen["scale"] = data["scale"]
        return chosen


def generate_images_action(
    model_admin: ImageGenAdminMixin, request: HttpRequest, queryset: models.QuerySet
) -> HttpResponse | None:
    """Render the confirmation page, or generate for ``queryset`` once the editor confirms."""
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
    kwargs = {k: settings[k] for k in ("field", "preset", "provider", "count")}

    # "now", or "batch": the provider's batch API, within 24 hours at about half the price.
    mode = request.POST.get("imagegen_mode", "now")
    mode = mode if mode in services.MODES else "now"
    if valid and request.POST.get("imagegen_step") == "generate":
        return _dispatch(
            model_admin,
            request,
            GENERATE,
            queryset.iterator(chunk_size=services.BULK_BATCH),
            {**kwargs, "mode": mode},
            prompt_for=lambda obj: edited.get(str(obj.pk)),
        )

    rows = [
        _row(obj, default_prompt=defaults[str(obj.pk)], prompt=edited.get(str(obj.pk)), **kwargs)
        for obj in shown
    ]
    rest = _estimate_rest(queryset, shown, lambda obj, shares: _estimate(obj, shares, **kwargs))
    context = _page_context(
        model_admin, request, GENERATE, form, total=total, rows=rows, rest=rest, mode=mode
    )
    context.update(
        {
            "rows": [(row, form.prompt_field(row.obj)) for row in rows],
            "prompts_for": settings["field"],
        }
    )
    return TemplateResponse(request, "admin/imagegen/generate_images.html", context)


def operation_action(
    op: BulkOperation,
    model_admin: ImageGenAdminMixin,
    request: HttpRequest,
    queryset: models.QuerySet,
) -> HttpResponse | None:
    """Render ``op``'s confirmation page, or run it on the current images once confirmed."""
    total = queryset.count()
    shown = list(queryset[:EDITABLE_ROWS])
    data = request.POST if "imagegen_form" in request.POST else None
    form = BulkOperationForm(data, model=model_admin.model, operation=op.operation)
    valid = form.is_valid() if data is not None else False
    kwargs = {"operation": op.operation, **form.settings(valid)}

    if valid and request.POST.get("imagegen_step") == "generate":
        skipped: list[models.Model] = []
        targets = _to_do(queryset.iterator(chunk_size=services.BULK_BATCH), kwargs, skipped)
        return _dispatch(model_admin, request, op, targets, kwargs, skipped=skipped)

    rows, skipped_rows = [], []
    for obj in shown:
        reason = _skip_reason(obj, kwargs)
        if reason:
            skipped_rows.append((obj, SKIP_REASONS[reason]))
        else:
            rows.append(_row(obj, **kwargs))
    rest = _estimate_rest(
        queryset,
        shown,
        lambda obj, shares: None if _skip_reason(obj, kwargs) else _estimate(obj, shares, **kwargs),
    )
    context = _page_context(model_admin, request, op, form, total=total, rows=rows, rest=rest)
    # Nothing to spend money on: every listed object is skipped, or refused by the pipeline
    # (no configured provider can do the operation: its message names the ones that could).
    refusals = sorted({row.error for row in rows if row.error})
    refused = bool(rows) and all(row.error for row in rows) and total == len(shown)
    context.update(
        {
            "rows": [(row, None) for row in rows],
            "skipped": skipped_rows,
            "refusals": refusals if refused else [],
            "can_run": (bool(rows) and not refused) or total > len(shown),
        }
    )
    return TemplateResponse(request, "admin/imagegen/operate_images.html", context)


def _page_context(
    model_admin: ImageGenAdminMixin,
    request: HttpRequest,
    op: BulkOperation,
    form: forms.Form,
    *,
    total: int,
    rows: list[Row],
    rest: tuple[Decimal, Decimal | None],
    mode: str = "now",
) -> dict[str, Any]:
    """Return what every bulk confirmation page shows: the selection, the form, the totals.

    ``rest`` is the estimate of the objects not listed, now and in a provider batch (None
    when one of them cannot run in a batch).
    """
    opts = model_admin.model._meta
    estimate = sum((r.estimate or Decimal(0) for r in rows), Decimal(0)) + rest[0]
    batchable = rest[1] is not None and all(
        r.batch_estimate is not None for r in rows if r.estimate is not None
    )
    batch_estimate = sum((r.batch_estimate or Decimal(0) for r in rows), Decimal(0))
    batch_estimate += rest[1] or Decimal(0)
    request.current_app = model_admin.admin_site.name
    return {
        **model_admin.admin_site.each_context(request),
        "title": op.title,
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        "action_name": op.action,
        "intro": op.intro % {"count": total, "name": model_ngettext(opts, total)},
        "button": op.button,
        "form": form,
        "total": total,
        "objects_name": model_ngettext(opts, total),
        "hidden_count": max(total - EDITABLE_ROWS, 0),
        "estimate": format_cost(estimate),
        # "Within 24 hours, about half the price": the provider's batch API, when it has one.
        "batch_estimate": format_cost(batch_estimate) if batchable else None,
        "mode": mode if batchable else "now",
        # The immediate runner works while the editor's request waits: a long run can
        # outlast the web server's timeout, so say so before anything is spent.
        "in_request": total > IMMEDIATE_WARNING and get_runner().is_immediate,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "select_across": request.POST.get("select_across", "0"),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "media": model_admin.media + form.media,
    }


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


def _skip_reason(obj: models.Model, kwargs: dict[str, Any]) -> str:
    """Return why an operation leaves ``obj`` alone; an error is left for the plan to say."""
    try:
        return services.nothing_to_do(obj, kwargs["field"], kwargs["operation"])
    except ImagegenError:
        return ""


def _to_do(
    objects: Iterable[models.Model], kwargs: dict[str, Any], skipped: list[models.Model]
) -> Iterator[models.Model]:
    """Yield the objects an operation has work on; append the others to ``skipped``."""
    for obj in objects:
        if _skip_reason(obj, kwargs):
            skipped.append(obj)
        else:
            yield obj


def _row(obj: models.Model, *, default_prompt: str = "", **kwargs: Any) -> Row:
    """Plan ``generate(target=obj, **kwargs)`` and return the page's row: estimate or error."""
    try:
        plan = services.plan(target=obj, **kwargs)
    except ImagegenError as err:
        return Row(obj=obj, default_prompt=default_prompt, estimate=None, error=str(err))
    model = plan.calls[0].model or plan.provider.model
    size = ""
    source = plan.inputs.source
    if source is not None:
        size = _("%(before)s → %(after)s") % {
            "before": _size(source.width, source.height),
            "after": _size(plan.params.width, plan.params.height),
        }
    return Row(
        obj=obj,
        default_prompt=default_prompt,
        estimate=plan.estimated_cost,
        provider=f"{plan.provider.alias}: {model}" if model else plan.provider.alias,
        size=size,
        batch_estimate=services.batch_estimate(plan),
    )


def _size(width: int | None, height: int | None) -> str:
    return _("%(width)d x %(height)d px") % {"width": width or 0, "height": height or 0}


def _estimate(
    obj: models.Model, shares: dict, **kwargs: Any
) -> tuple[Decimal, Decimal | None] | None:
    """Return the estimate of ``generate(target=obj, **kwargs)``, now and in a batch."""
    try:
        plan = services.plan(target=obj, **kwargs)
    except ImagegenError:
        return None
    return plan.estimated_cost, services.batch_estimate(plan, shares)


def _estimate_rest(
    queryset: models.QuerySet,
    shown: list,
    estimate_of: Callable[[models.Model, dict], tuple[Decimal, Decimal | None] | None],
) -> tuple[Decimal, Decimal | None]:
    """Estimate the objects not listed on the page, now and in a batch, reading in chunks.

    The batch total is None when an object that can run cannot run in a batch.
    ``estimate_of`` gets a dict to keep each alias and model's batch price share in.
    """
    total, batch_total = Decimal(0), Decimal(0)
    shares: dict[tuple[str, str], Decimal | None] = {}
    rest = queryset.exclude(pk__in=[obj.pk for obj in shown])
    for obj in rest.iterator(chunk_size=500):
        estimated = estimate_of(obj, shares)
        if estimated is None:
            continue
        total += estimated[0]
        if batch_total is not None:
            batch_total = None if estimated[1] is None else batch_total + estimated[1]
    return total, batch_total


def _dispatch(
    model_admin: ImageGenAdminMixin,
    request: HttpRequest,
    op: BulkOperation,
    targets: Iterable[models.Model],
    kwargs: dict[str, Any],
    *,
    prompt_for: Callable[[models.Model], str | None] | None = None,
    skipped: list[models.Model] | None = None,
) -> HttpResponse:
    """Write and dispatch the rows of one bulk run, report it, and follow it if queued."""
    batch = uuid.uuid4()
    tally = _Tally(op=op)
    kwargs = dict(kwargs)
    field = kwargs.pop("field")
    outcomes = services.iter_generate_many(
        targets, field, user=request.user, prompt_for=prompt_for, batch=batch, **kwargs
    )
    for obj, outcome in outcomes:
        tally.add(obj, outcome)
    tally.skipped = [str(obj) for obj in skipped or []]
    tally.report(model_admin, request)
    if tally.queued:
        opts = model_admin.model._meta
        name = f"{opts.app_label}_{opts.model_name}_imagegen_batch"
        return HttpResponseRedirect(reverse(f"{model_admin.admin_site.name}:{name}", args=[batch]))
    return HttpResponseRedirect(request.get_full_path())


@dataclass
class _Tally:
    """What a bulk run did, for the summary messages."""

    op: BulkOperation = GENERATE
    succeeded: int = 0
    queued: int = 0
    failed: int = 0
    cost: Decimal = Decimal(0)
    errors: list[str] = field(default_factory=list)
    stopped: BudgetExceeded | None = None
    #: The objects left alone, with nothing to do (an operation's only).
    skipped: list[str] = field(default_factory=list)

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
            done = {"count": self.succeeded, "cost": format_cost(self.cost)}
            say(request, self.op.done % done, messages.SUCCESS)
        if self.queued:
            say(request, self.op.queued % {"count": self.queued}, messages.SUCCESS)
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
        if self.skipped:
            say(
                request,
                ngettext(
                    "Skipped %(count)d object with nothing to do: %(names)s.",
                    "Skipped %(count)d objects with nothing to do: %(names)s.",
                    len(self.skipped),
                )
                % {"count": len(self.skipped), "names": _names(self.skipped)},
                messages.INFO,
            )
        for error in self.errors[:10]:
            say(request, error, messages.ERROR)
        if len(self.errors) > 10:
            more = len(self.errors) - 10
            say(request, _("…and %(count)d more errors.") % {"count": more}, messages.ERROR)
        if self.stopped is not None:
            say(request, _("Stopped: %(reason)s") % {"reason": self.stopped}, messages.ERROR)


def _names(names: list[str], most: int = 10) -> str:
    """Return up to ``most`` names joined by commas, and how many more there are."""
    shown = ", ".join(names[:most])
    if len(names) > most:
        shown += " " + _("and %(count)d more") % {"count": len(names) - most}
    return shown
