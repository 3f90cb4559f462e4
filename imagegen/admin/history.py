"""What the admin shows of past generations: JSON for the widget, rows for the history panel."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Count, Sum
from django.utils import formats
from django.utils.timezone import localtime

from imagegen.models import FINISHED, GeneratedImage, Generation, Status
from imagegen.money import format_cost
from imagegen.pipeline.planning import params_of
from imagegen.rendering.credentials import credentials_line

#: Generations listed in a field's history panel.
HISTORY_LIMIT = 20
#: Widest derived file used as a thumbnail in the admin (smaller ones load faster).
THUMB_WIDTH = 480
#: Derived file types a thumbnail may use.
THUMB_TYPES = ("image/webp", "image/jpeg")


def thumbnail_url(image: GeneratedImage) -> str:
    """Return the URL of the smallest derived WebP or JPEG of ``image``, else of the original."""
    smallest = None
    for entry in image.derivatives or []:
        if not isinstance(entry, dict) or entry.get("mime_type") not in THUMB_TYPES:
            continue
        width = entry.get("width")
        if isinstance(width, int) and (smallest is None or width < smallest["width"]):
            smallest = entry
    if smallest is not None and isinstance(smallest.get("name"), str):
        return image.file.storage.url(smallest["name"])
    return image.file.url


def image_json(image: GeneratedImage) -> dict[str, Any]:
    return {
        "id": image.pk,
        "url": image.file.url,
        "thumbnail": thumbnail_url(image),
        "width": image.width,
        "height": image.height,
        "alt": image.alt_text,
        "selected": image.selected,
    }


def subject_of(generation: Generation) -> str:
    """Return the subject the editor asked for, without the preset's style parts."""
    return params_of(generation).subject or generation.prompt


def row_json(generation: Generation) -> dict[str, Any]:
    """Return the state of one generation, as every admin page that follows one shows it."""
    return {
        "id": generation.pk,
        "status": generation.status,
        "status_label": str(generation.get_status_display()),
        "finished": generation.status in FINISHED,
        "prompt": subject_of(generation),
        "cost": format_cost(generation.cost) if generation.cost is not None else "",
        "error": generation.error_message if generation.status != Status.SUCCEEDED else "",
    }


def generation_json(generation: Generation) -> dict[str, Any]:
    """Return what the widget needs to show one generation (never keys or provider payloads)."""
    images = list(generation.images.all()) if generation.status == Status.SUCCEEDED else []
    return {
        **row_json(generation),
        "preset": generation.preset,
        "provider": generation.provider,
        "model": generation.model,
        "estimated_cost": format_cost(generation.estimated_cost),
        "images": [image_json(image) for image in images],
        # A failed row may have handed the request on to the preset's next provider; the
        # widget follows that row instead of reporting the failure.
        "fallback": _fallback_id(generation),
    }


def _fallback_id(generation: Generation) -> int | None:
    if generation.status != Status.FAILED:
        return None
    return generation.fallbacks.order_by("-pk").values_list("pk", flat=True).first()


def field_history(obj: models.Model, field: str) -> dict[str, Any]:
    """Return the history panel's context for ``obj.<field>``: recent rows and the totals."""
    rows = (
        Generation.objects.for_object(obj, field)
        .select_related("created_by")
        .prefetch_related("images")[:HISTORY_LIMIT]
    )
    current = getattr(obj, field).name or ""
    entries = []
    for generation in rows:
        entries.append(
            {
                "generation": generation,
                "subject": subject_of(generation),
                "cost": format_cost(generation.cost) if generation.cost is not None else "—",
                "when": formats.date_format(localtime(generation.created_at), "DATETIME_FORMAT"),
                "images": [
                    {
                        "image": image,
                        "thumbnail": thumbnail_url(image),
                        # Content-addressed files are shared by identical images, so the
                        # name alone would mark every copy; the selected flag picks one.
                        "current": image.selected and image.file.name == current,
                        "credentials": credentials_line(image),
                    }
                    for image in generation.images.all()
                ],
            }
        )
    totals = Generation.objects.for_object(obj, field).aggregate(rows=Count("pk"), cost=Sum("cost"))
    total = totals["cost"] or Decimal(0)
    return {
        "entries": entries,
        "count": totals["rows"],
        "total": total,
        "total_display": format_cost(total),
        "field": field,
    }
