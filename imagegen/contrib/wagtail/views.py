"""The JSON endpoints behind the chooser's "Generate" tab and ``GeneratedImagePanel``.

They are mounted under the Wagtail admin (``register_admin_urls``), take POST only, so CSRF
protection covers reads too (a status poll shows prompts and costs), and answer 403 as JSON
unless the user is an active Wagtail admin user with ``imagegen.generate_image`` and the "add"
permission on the generated images' collection; the page endpoints also need the page's edit
permission. Wagtail's admin wrapper already sends an anonymous script a 403 (a browser
navigation is redirected to the login page instead).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Sum
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve, reverse
from django.utils import formats
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from wagtail.models import Page

from imagegen import services
from imagegen.contrib.wagtail.forms import ChooserGenerateForm
from imagegen.contrib.wagtail.images import store_image
from imagegen.contrib.wagtail.panels import GeneratedImagePanel, find_panel
from imagegen.contrib.wagtail.permissions import can_generate, can_generate_for_page
from imagegen.exceptions import ImagegenError
from imagegen.forms import MAX_COUNT
from imagegen.models import FINISHED, GeneratedImage, Generation, Status
from imagegen.money import format_cost

#: Generations one status poll may ask about.
MAX_POLL = 20
#: Ids at or above this fit no primary key (a signed 64-bit integer).
MAX_ID = 2**63
#: Generations listed in a field's history.
HISTORY_LIMIT = 20
#: Derived file types a candidate's thumbnail may use (smaller ones load faster).
THUMB_TYPES = ("image/webp", "image/jpeg")


def forbidden(message: str | None = None) -> JsonResponse:
    return JsonResponse({"error": message or _("You may not generate images here.")}, status=403)


def endpoint(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Guard an endpoint: POST, CSRF, an admin user who may generate into the library."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return JsonResponse({"error": _("Use POST.")}, status=405)
        if not can_generate(request.user):
            return forbidden()
        return view(request, *args, **kwargs)

    return csrf_protect(never_cache(wrapper))


def page_endpoint(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Guard a page field endpoint: as :func:`endpoint`, plus the page's edit permission."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, page_id: int, field: str) -> HttpResponse:
        page = get_object_or_404(Page, pk=page_id).specific
        panel = find_panel(type(page), field)
        if panel is None:
            raise Http404
        if not can_generate_for_page(request.user, page):
            return forbidden()
        return view(request, page, panel)

    return endpoint(wrapper)


def thumbnail_url(image: GeneratedImage) -> str:
    """Return the URL of the smallest derived WebP or JPEG of ``image``, else of the original."""
    derived = [
        entry
        for entry in image.derivatives or []
        if isinstance(entry, dict)
        and entry.get("mime_type") in THUMB_TYPES
        and isinstance(entry.get("width"), int)
        and isinstance(entry.get("name"), str)
    ]
    if derived:
        return image.file.storage.url(min(derived, key=lambda entry: entry["width"])["name"])
    return image.file.url


def image_json(image: GeneratedImage) -> dict[str, Any]:
    return {
        "id": image.pk,
        "thumbnail": thumbnail_url(image),
        "width": image.width,
        "height": image.height,
        "alt": image.alt_text,
    }


def generation_json(generation: Generation, request: HttpRequest) -> dict[str, Any]:
    """Return what the client shows of ``generation``: its state and, once done, candidates."""
    finished = generation.status in FINISHED
    images = list(generation.images.all()) if generation.status == Status.SUCCEEDED else []
    error = ""
    if finished and generation.status != Status.SUCCEEDED:
        error = generation.error_message or str(generation.get_status_display())
    html = ""
    if finished:
        context = {
            "images": [image_json(image) for image in images],
            "cost": format_cost(generation.cost) if generation.cost is not None else "",
            "error": error,
        }
        html = render_to_string("imagegen_wagtail/candidates.html", context, request=request)
    return {
        "id": generation.pk,
        "status": generation.status,
        "status_label": str(generation.get_status_display()),
        "finished": finished,
        "error": error,
        "html": html,
        # A failed row may have handed the request to the preset's next provider.
        "fallback": generation.fallbacks.order_by("-pk").values_list("pk", flat=True).first()
        if generation.status == Status.FAILED
        else None,
    }


def editor_page(request: HttpRequest) -> Page | None:
    """Return the page whose editor the chooser was opened from, if the user may edit it.

    The chooser does not know the page; the client sends the editor's path, which is resolved
    like any URL (so only the page edit view's own pattern counts).
    """
    path = request.POST.get("editor_path", "")
    if not path.startswith("/"):
        return None
    try:
        match = resolve(path)
    except Resolver404:
        return None
    if match.view_name != "wagtailadmin_pages:edit":
        return None
    page = Page.objects.filter(pk=match.kwargs.get("page_id")).first()
    if page is None or not page.permissions_for_user(request.user).can_edit():
        return None
    return page.specific


def _chooser_kwargs(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    form = ChooserGenerateForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
    kwargs = {"prompt": form.cleaned_data["prompt"], **form.generate_kwargs(), "attach": False}
    page = editor_page(request)
    if page is not None:
        # The ledger row is made for the page (no field: a StreamField block has none).
        kwargs["target"] = page
    return kwargs


@endpoint
def estimate_view(request: HttpRequest) -> JsonResponse:
    """Return what the chooser's request would cost, without calling anything."""
    kwargs = _chooser_kwargs(request)
    if isinstance(kwargs, JsonResponse):
        return kwargs
    return _estimate(kwargs)


@endpoint
def generate_view(request: HttpRequest) -> JsonResponse:
    """Generate candidates from the chooser; one becomes a library image when it is picked."""
    kwargs = _chooser_kwargs(request)
    if isinstance(kwargs, JsonResponse):
        return kwargs
    return _generate(request, kwargs)


@endpoint
def status_view(request: HttpRequest) -> JsonResponse:
    """Return the state of the user's own generations ``ids`` (comma-separated)."""
    try:
        ids = [int(i) for i in request.POST.get("ids", "").split(",") if i.strip()][:MAX_POLL]
    except ValueError:
        return JsonResponse({"error": _("ids must be numbers.")}, status=400)
    ids = [i for i in ids if 0 < i < MAX_ID]
    rows = Generation.objects.filter(pk__in=ids, created_by=request.user)
    return JsonResponse(
        {"generations": [generation_json(g, request) for g in rows.prefetch_related("images")]}
    )


@endpoint
def pick_view(request: HttpRequest) -> HttpResponse:
    """Store the picked candidate as a library image and answer as Wagtail's chooser does.

    The answer is a redirect to Wagtail's own "chosen" view for the new image (or its
    "select format" view, for rich text), so the image is inserted exactly like a chosen one.
    """
    try:
        pk = int(request.POST.get("image", ""))
    except ValueError:
        return JsonResponse({"error": _("image must be a number.")}, status=400)
    generated = get_object_or_404(
        GeneratedImage.objects.select_related("generation"), pk=pk if 0 < pk < MAX_ID else 0
    )
    generation = generated.generation
    page = _page_of(generation)
    if generation.created_by_id != request.user.pk and (
        page is None or not can_generate_for_page(request.user, page)
    ):
        # Candidates are the user's own, or those of a page the user may edit.
        return forbidden()
    image = store_image(generated, user=request.user, page=page)
    if page is not None and generation.field_name:
        services.mark_selected(generated, generation.field_name)
    if request.GET.get("select_format"):
        url = reverse("wagtailimages_chooser:select_format", args=[image.pk])
    else:
        url = reverse("wagtailimages_chooser:chosen", args=[image.pk])
    query = request.GET.urlencode()
    return HttpResponseRedirect(f"{url}?{query}" if query else url)


@page_endpoint
def page_estimate_view(
    request: HttpRequest, page: Page, panel: GeneratedImagePanel
) -> JsonResponse:
    """Return what generating the panel's field would cost."""
    kwargs = _page_kwargs(request, page, panel)
    if isinstance(kwargs, JsonResponse):
        return kwargs
    return _estimate(kwargs)


@page_endpoint
def page_generate_view(
    request: HttpRequest, page: Page, panel: GeneratedImagePanel
) -> JsonResponse:
    """Generate candidates for the panel's field, from the page's prompt and the field's preset."""
    kwargs = _page_kwargs(request, page, panel)
    if isinstance(kwargs, JsonResponse):
        return kwargs
    return _generate(request, kwargs)


@page_endpoint
def page_history_view(request: HttpRequest, page: Page, panel: GeneratedImagePanel) -> JsonResponse:
    """Return the field's history, rendered: each generation, its cost and its images."""
    field = panel.field_name
    rows = (
        Generation.objects.for_object(page, field)
        .select_related("created_by")
        .prefetch_related("images__wagtail_link")[:HISTORY_LIMIT]
    )
    current = getattr(page, f"{field}_id", None)
    entries = []
    for generation in rows:
        images = []
        for image in generation.images.all():
            link = getattr(image, "wagtail_link", None)
            images.append(
                {
                    **image_json(image),
                    "current": bool(current and link and link.image_id == current),
                }
            )
        entries.append(
            {
                "subject": generation.params.get("subject") or generation.prompt,
                "status": generation.get_status_display(),
                "cost": format_cost(generation.cost) if generation.cost is not None else "—",
                "when": formats.date_format(localtime(generation.created_at), "DATETIME_FORMAT"),
                "images": images,
            }
        )
    totals = Generation.objects.for_object(page, field).aggregate(
        rows=Count("pk"), cost=Sum("cost")
    )
    html = render_to_string("imagegen_wagtail/history.html", {"entries": entries}, request=request)
    total = format_cost(totals["cost"] or Decimal(0))
    summary = ngettext(
        "History: %(count)d generation, %(total)s",
        "History: %(count)d generations, %(total)s",
        totals["rows"],
    ) % {"count": totals["rows"], "total": total}
    return JsonResponse({"html": html, "count": totals["rows"], "total": total, "summary": summary})


def _page_kwargs(
    request: HttpRequest, page: Page, panel: GeneratedImagePanel
) -> dict[str, Any] | JsonResponse:
    try:
        count = int(request.POST.get("count") or 1)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_COUNT:
        message = _("Ask for 1 to %(max)d images.") % {"max": MAX_COUNT}
        return JsonResponse({"error": message}, status=400)
    try:
        return panel.generate_kwargs(page, count=count)
    except ImagegenError as err:
        return JsonResponse({"error": str(err)}, status=400)


def _estimate(kwargs: dict[str, Any]) -> JsonResponse:
    try:
        amount = services.estimate(**kwargs)
    except (ImagegenError, ValidationError) as err:
        return JsonResponse({"error": str(err)}, status=400)
    return JsonResponse({"estimate": str(amount), "display": format_cost(amount)})


def _generate(request: HttpRequest, kwargs: dict[str, Any]) -> JsonResponse:
    try:
        generation = services.generate(user=request.user, **kwargs)
    except (ImagegenError, ValidationError) as err:
        return JsonResponse({"error": str(err)}, status=400)
    return JsonResponse({"generation": generation_json(generation, request)}, status=201)


def _page_of(generation: Generation) -> Page | None:
    target = generation.target if generation.content_type_id else None
    return target.specific if isinstance(target, Page) else None
