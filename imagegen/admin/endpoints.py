"""The admin's JSON endpoints: estimate, generate, edit, status and history for one image field.

``estimate``, ``generate`` and ``edit`` take the Generate widget's request as a form, multipart
when it carries files (an uploaded photo, a painted mask, a reference image); a body over
:func:`upload_cap` is refused before it is read. ``edit`` is ``generate`` for an operation on a
source image.

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
from imagegen.conf import imagegen_settings
from imagegen.exceptions import ImagegenError
from imagegen.fields import generated_fields
from imagegen.forms import EditForm
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.money import format_cost

if TYPE_CHECKING:
    from imagegen.admin.mixin import ImageGenAdminMixin

#: Generations one status poll may ask about.
MAX_POLL = 50
#: Ids at or above this fit no primary key (a signed 64-bit integer).
MAX_ID = 2**63
#: Room in a request for its form fields and multipart framing, besides its files.
FORM_ROOM = 1024 * 1024
#: A stand-in mask for estimating an operation that needs one before it is painted: the cost
#: does not depend on the mask, only on the source and the output.
ESTIMATE_MASK = (0, 0, 1, 1)


def upload_cap() -> int:
    """Return the largest request body the widget's endpoints read: three images and the form."""
    return 3 * int(imagegen_settings.MAX_IMAGE_BYTES) + FORM_ROOM


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
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > upload_cap():
            return JsonResponse(
                {
                    "error": _("The upload is too large: at most %(size)s MB in all.")
                    % {"size": upload_cap() // (1024 * 1024)}
                },
                status=413,
            )
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
    request: HttpRequest,
    obj: models.Model,
    field: str,
    call: Callable[..., Any],
    *,
    estimating: bool = False,
    editing: bool = False,
) -> Any:
    """Validate the posted request and pass it to ``call``; errors become a 400 response.

    Field errors come back as ``{"errors": {field: [{"message": ...}]}}`` so the widget can put
    each next to its control; a refusal of the pipeline (no provider can, a budget) as
    ``{"error": message}``.
    """
    succeeded = Generation.objects.for_object(obj, field).filter(status=Status.SUCCEEDED)
    form = EditForm(
        request.POST,
        request.FILES,
        images=GeneratedImage.objects.filter(generation__in=succeeded),
        has_current=bool(getattr(obj, field)),
    )
    if not form.is_valid():
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    kwargs = form.generate_kwargs()
    if editing and "operation" not in kwargs:
        message = _("Choose what to do with the image.")
        return JsonResponse({"errors": {"operation": [{"message": message}]}}, status=400)
    if form.needs_mask():
        if not estimating:
            message = _("Paint the area to change first.")
            return JsonResponse({"errors": {"mask": [{"message": message}]}}, status=400)
        kwargs["mask"] = ESTIMATE_MASK
    try:
        return call(prompt=form.cleaned_data["prompt"] or None, target=obj, field=field, **kwargs)
    except (ImagegenError, ValidationError) as err:
        return JsonResponse({"error": str(err)}, status=400)


@endpoint
def estimate_view(
    request: HttpRequest, model_admin: Any, obj: models.Model, field: str
) -> JsonResponse:
    """Return what the requested generation would cost, without calling anything."""
    amount = _requested(request, obj, field, services.estimate, estimating=True)
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
def edit_view(
    request: HttpRequest, model_admin: Any, obj: models.Model, field: str
) -> JsonResponse:
    """Run an operation on a source image; the results are candidates, as for generate."""
    generation = _requested(
        request,
        obj,
        field,
        functools.partial(services.generate, user=request.user, attach=False),
        editing=True,
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
