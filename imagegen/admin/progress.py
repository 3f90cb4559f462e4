"""Following a queued bulk run: the progress page and its JSON status endpoint.

A run "within 24 hours" also lists its provider batches: provider, status, when it was
submitted, requests done, failed and pending, expected and actual cost, and a Cancel button
for editors who may generate (it cancels the provider's batch).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, Count, QuerySet, Sum
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from imagegen import services
from imagegen.admin.actions import BY_OPERATION, GENERATE
from imagegen.admin.endpoints import can_generate, forbidden
from imagegen.admin.history import row_json
from imagegen.exceptions import ImagegenError
from imagegen.models import FINISHED, Generation, ProviderBatch, Status
from imagegen.money import format_cost

if TYPE_CHECKING:
    from imagegen.admin.mixin import ImageGenAdminMixin

#: Rows listed on the progress page; the counts cover the whole run.
LISTED = 100


def _rows(model_admin: ImageGenAdminMixin, request: HttpRequest, batch: uuid.UUID) -> QuerySet:
    ct = ContentType.objects.get_for_model(model_admin.model)
    # Only the objects this admin shows the user: get_queryset() may restrict them (per site,
    # per owner), and the run's prompts and costs must not leak past that.
    visible = model_admin.get_queryset(request).order_by()
    visible = visible.annotate(imagegen_key=Cast("pk", CharField())).values("imagegen_key")
    return Generation.objects.filter(batch=batch, content_type=ct, object_id__in=visible)


def summary(rows: QuerySet) -> dict[str, Any]:
    """Return the counts per status of a run, how many are finished, and what it cost so far."""
    counts, cost = dict.fromkeys(Status.values, 0), Decimal(0)
    for row in rows.order_by().values("status").annotate(n=Count("pk"), cost=Sum("cost")):
        counts[row["status"]] = row["n"]
        cost += row["cost"] or 0
    total = sum(counts.values())
    done = sum(n for status, n in counts.items() if status in FINISHED)
    return {
        "counts": counts,
        "total": total,
        "done": done,
        "finished": total > 0 and done == total,
        "cost": format_cost(cost),
    }


def _listed(rows: QuerySet, model: Any = None) -> list[dict[str, Any]]:
    """Return the first rows of a run; with ``model``, each with its object's name too."""
    listed = []
    generations = list(rows.order_by("pk")[:LISTED])
    names: dict[str, str] = {}
    if model is not None:  # the page shows names; the status polls need only the states
        found = model._default_manager.filter(pk__in={g.object_id for g in generations})
        names = {str(obj.pk): str(obj) for obj in found}
    for generation in generations:
        listed.append(
            {
                **row_json(generation),
                "object_id": generation.object_id,
                "object": names.get(generation.object_id, generation.object_id),
            }
        )
    return listed


def provider_batches(rows: QuerySet) -> list[dict[str, Any]]:
    """Return each provider batch the rows ran in, as the progress page shows it."""
    ids = rows.exclude(provider_batch=None).order_by().values("provider_batch")
    shown = []
    for item in ProviderBatch.objects.filter(pk__in=ids).order_by("pk"):
        shown.append(
            {
                "pk": item.pk,
                "provider": f"{item.provider}: {item.model}" if item.model else item.provider,
                "status": item.get_status_display(),
                "provider_status": item.provider_status,
                "submitted": timesince(item.submitted_at) if item.submitted_at else "",
                "done": item.completed,
                "failed": item.failed,
                "pending": item.pending,
                "estimated": format_cost(item.estimated_cost, item.currency),
                "cost": format_cost(item.cost, item.currency),
                "error": item.error,
                "can_cancel": not item.is_finished and item.status != "cancelling",
            }
        )
    return shown


def _cancel_batch(
    request: HttpRequest, model_admin: ImageGenAdminMixin, rows: QuerySet
) -> HttpResponse:
    """Cancel the provider batch the editor chose (one of this run's) and come back."""
    ids = rows.exclude(provider_batch=None).order_by().values("provider_batch")
    chosen = ProviderBatch.objects.filter(
        pk__in=ids, pk=request.POST.get("imagegen_cancel_batch") or 0
    ).first()
    if chosen is None:
        model_admin.message_user(request, _("That batch is not part of this run."), messages.ERROR)
    else:
        try:
            services.cancel_batch(chosen, user=request.user)
        except ImagegenError as err:
            model_admin.message_user(
                request, _("The batch could not be cancelled: %(error)s") % {"error": err},
                messages.ERROR,
            )  # fmt: skip
        else:
            model_admin.message_user(
                request,
                _(
                    "Cancel requested. The provider bills the requests it finished; the others "
                    "fail without charge."
                ),
                messages.SUCCESS,
            )
    return HttpResponseRedirect(request.get_full_path())


def progress_view(
    request: HttpRequest, model_admin: ImageGenAdminMixin, batch: uuid.UUID
) -> HttpResponse:
    """Show a queued bulk run as it progresses (the page polls :func:`status_view`)."""
    if not can_generate(request, model_admin):
        return forbidden()
    opts = model_admin.model._meta
    rows = _rows(model_admin, request, batch)
    if request.method == "POST" and "imagegen_cancel_batch" in request.POST:
        return _cancel_batch(request, model_admin, rows)
    state = summary(rows)
    # A run is one action: its rows share the operation, which names what the page follows.
    operation = rows.order_by().values_list("operation", flat=True).first()
    op = BY_OPERATION.get(operation or "", GENERATE)
    name = f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_"
    context = {
        **model_admin.admin_site.each_context(request),
        "title": op.progress_title,
        "subtitle": None,
        "opts": opts,
        "app_label": opts.app_label,
        "summary": state,
        "count_rows": [(s, label, state["counts"][s]) for s, label in Status.choices],
        "rows": _listed(rows, model_admin.model),
        "provider_batches": provider_batches(rows),
        "status_url": reverse(name + "imagegen_batch_status", args=[batch]),
        "changelist_url": reverse(name + "changelist"),
        "batch": batch,
        "media": model_admin.media,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/imagegen/batch_progress.html", context)


@csrf_protect
@never_cache
def status_view(
    request: HttpRequest, model_admin: ImageGenAdminMixin, batch: uuid.UUID
) -> JsonResponse:
    """Return the counts and listed rows of a bulk run, as JSON."""
    if request.method != "POST":
        return JsonResponse({"error": _("Use POST.")}, status=405)
    if not can_generate(request, model_admin):
        return forbidden()
    rows = _rows(model_admin, request, batch)
    return JsonResponse({**summary(rows), "rows": _listed(rows)})
