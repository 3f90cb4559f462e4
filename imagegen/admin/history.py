"""What the admin shows of past generations: JSON for the widget, rows for the history panel.

An image made by an operation (an upscale of an inpaint of a generated image...) shows its
chain, oldest first, and links to its parent, so an editor sees where it came from; every
image of a chain keeps its "Use this image" button, so any link can be put back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Count, Sum
from django.utils import formats
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _

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
#: What each operation did to an image, as a chain of them reads ("generated → upscaled").
MADE_BY = {
    "generate": _("generated"),
    "edit": _("edited"),
    "inpaint": _("inpainted"),
    "outpaint": _("outpainted"),
    "erase": _("erased"),
    "search_replace": _("search and replaced"),
    "search_recolor": _("recolored"),
    "remove_background": _("background removed"),
    "replace_background": _("background replaced"),
    "upscale": _("upscaled"),
    "restyle": _("restyled"),
}


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
        "operation": generation.operation,
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
        # The generated image an operation worked on (its parent), for the lineage.
        "source_image": generation.source_image_id,
        # A failed row may have handed the request on to the preset's next provider; the
        # widget follows that row instead of reporting the failure.
        "fallback": _fallback_id(generation),
    }


def _fallback_id(generation: Generation) -> int | None:
    if generation.status != Status.FAILED:
        return None
    return generation.fallbacks.order_by("-pk").values_list("pk", flat=True).first()


def made_by(operation: str) -> str:
    """Return what ``operation`` did to an image, in words ("upscaled")."""
    return str(MADE_BY.get(operation, operation.replace("_", " ")))


def chain_of(image: GeneratedImage, known: dict[int, GeneratedImage]) -> list[GeneratedImage]:
    """Return ``image`` and its ancestors, oldest first, reading ``known`` before the database.

    ``known`` holds images already loaded with their generations; a parent outside it is read
    (and added), so a long history costs a query per missing link, not one per link.
    """
    chain, seen, current = [image], {image.pk}, image
    while current.parent_id is not None and current.parent_id not in seen:
        parent = known.get(current.parent_id)
        if parent is None:
            parent = (
                GeneratedImage.objects.select_related("generation")
                .filter(pk=current.parent_id)
                .first()
            )
            if parent is None:
                break
            known[parent.pk] = parent
        chain.append(parent)
        seen.add(parent.pk)
        current = parent
    return chain[::-1]


def anchor(field: str, image_id: int) -> str:
    """Return the id of ``image_id``'s figure in ``field``'s history panel."""
    return f"imagegen-{field}-image-{image_id}"


def field_history(obj: models.Model, field: str) -> dict[str, Any]:
    """Return the history panel's context for ``obj.<field>``: recent rows and the totals.

    Each image made by an operation carries its chain (``generated → inpainted → upscaled``)
    and its parent: a link to the parent's place in the panel, or to its file when the parent
    is older than the rows listed.
    """
    rows = list(
        Generation.objects.for_object(obj, field)
        .select_related("created_by", "source_image")
        .prefetch_related("images")[:HISTORY_LIMIT]
    )
    known: dict[int, GeneratedImage] = {}
    for generation in rows:
        for image in generation.images.all():
            image.generation = generation  # the chain reads each link's operation
            known[image.pk] = image
    listed = set(known)
    current = getattr(obj, field).name or ""
    entries = []
    for generation in rows:
        parent = generation.source_image
        entries.append(
            {
                "generation": generation,
                "made_by": made_by(generation.operation),
                "parent": parent,
                "parent_href": (
                    ("#" + anchor(field, parent.pk)) if parent.pk in listed else parent.file.url
                )
                if parent is not None
                else "",
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
                        "anchor": anchor(field, image.pk),
                        "chain": [
                            made_by(link.generation.operation) for link in chain_of(image, known)
                        ],
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
