"""The admin's JSON endpoints: estimate, generate, status and history for one image field.

Every endpoint is mounted by :class:`imagegen.admin.ImageGenAdminMixin` under its model's admin
URLs, takes POST only (so CSRF protection covers reads too: a status poll shows prompts and
costs), and answers 403 as JSON unless the user has an active staff session, the
``imagegen.generate_image`` permission and the right to change the object.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404, HttpRequest, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from imagegen import services
from imagegen.admin.history import field_history, generation_json
from imagegen.exceptions import ImagegenError
from imagegen.fields import generated_fields
from imagegen.forms import GenerateForm
from imagegen.models import Generation
from imagegen.money import format_cost

if TYPE_CHECKING:
    from imagegen.admin.mixin import ImageGenAdminMixin

#: Generations one status poll may ask about.
MAX_POLL = 50
#: Ids at or above this fit no primary key (a signed 64-bit integer).
MAX_ID = 2**63


def can_generate(
    request: HttpRequest, model_admin: ImageGenAdminMixin, obj: models.Model | None = None
) -> bool:
    """Return whether the user may generate images for ``obj`` (or for the model)."""
    user = request.user
    return bool(
        model_admin.admin_site.has_permission(request)
        and user.has_perm("imagegen.generate_image")
        and model_admin.has_change_permission(request, obj)
    )


def forbidden(message: str | None = None) -> JsonResponse:
    return JsonResponse({"error": message or _("You may not generate images here.")}, status=403)


def endpoint(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """Guard a field endpoint: POST, CSRF, staff, permission, object and field."""

    @functools.wraps(view)
    def wrapper(
        request: HttpRequest, model_admin: ImageGenAdminMixin, object_id: str, field: str
    ) -> JsonResponse:
        if request.method != "POST":
            return JsonResponse({"error": _("Use POST.")}, status=405)
        if not can_generate(request, model_admin):
            return forbidden()
        obj = model_admin.get_object(request, object_id)
        if obj is None or field not in {f.name for f in generated_fields(model_admin.model)}:
            raise Http404
        if not can_generate(request, model_admin, obj):
            return forbidden()
        return view(request, model_admin, obj, field)

    # The admin's own views get csrf_protect from admin_view(); these are wrapped here instead,
    # so a missing session answers 403 rather than redirecting a script to the login page.
    return csrf_protect(never_cache(wrapper))


def _requested(
    request: HttpRequest, obj: models.Model, field: str, call: Callable[..., Any]
) -> Any:
    """Validate the posted request and pass it to ``call``; errors become a 400 response."""
    form = GenerateForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    try:
        return call(
            prompt=form.cleaned_data["prompt"] or None,
            target=obj,
            field=field,
            **form.generate_kwargs(),
        )
    except (ImagegenError, ValidationError) as err:
        return JsonResponse({"error": str(err)}, status=400)


@endpoint
def estimate_view(
    request: HttpRequest, model_admin: Any, obj: models.Model, field: str
) -> JsonResponse:
    """Return what the requested generation would cost, without calling anything."""
    amount = _requested(request, obj, field, services.estimate)
    if isinstance(amount, JsonResponse):
        return amount
    return JsonResponse({"estimate": str(amount), "display": format_cost(amount)})


@endpoint
def generate_view(
    request: HttpRequest, model_admin: Any, obj: models.Model, field: str
) -> JsonResponse:
    """Generate candidates for the field; they are attached only when the editor saves one."""
    generation = _requested(
        request, obj, field, functools.partial(services.generate, user=request.user, attach=False)
    )
    if isinstance(generation, JsonResponse):
        return generation
    return JsonResponse({"generation": generation_json(generation)}, status=201)


@endpoint
def status_view(
    request: HttpRequest, model_admin: Any, obj: models.Model, field: str
) -> JsonResponse:
    """Return the state of some of this field's generations (``ids``, comma-separated)."""
    try:
        ids = [int(i) for i in request.POST.get("ids", "").split(",") if i.strip()][:MAX_POLL]
    except ValueError:
        return JsonResponse({"error": _("ids must be numbers.")}, status=400)
    # An id no primary key can have matches nothing (and would overflow SQLite's integers).
    ids = [i for i in ids if 0 < i < MAX_ID]
    rows = (
        Generation.objects.for_object(obj, field)
        .filter(pk__in=ids)
        .select_related("created_by")
        .prefetch_related("images")
    )
    return JsonResponse({"generations": [generation_json(g) for g in rows]})


@endpoint
def history_view(
    request: HttpRequest, model_admin: Any, obj: models.Model, field: str
) -> JsonResponse:
    """Return the field's history panel, rendered, for the widget to swap in."""
    context = field_history(obj, field)
    html = render_to_string("imagegen/widgets/history.html", context, request=request)
    return JsonResponse({"html": html, "total": context["total_display"]})
