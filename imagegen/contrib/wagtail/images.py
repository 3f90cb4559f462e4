"""Storing ledger images as images of the site's Wagtail image model.

A generated image becomes a Wagtail image the way an upload does: the file is copied into the
image model's own storage and folder, title, collection, tags and the uploading user are set,
and file size and hash are recorded, so renditions, the library, search and usage counts work
as for any other image. The focal point is left for the editor to set.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.db import models, transaction
from wagtail.images import get_image_model
from wagtail.models import Collection, Page
from wagtail.search import index as search_index

from imagegen.contrib.wagtail.conf import wagtail_settings
from imagegen.contrib.wagtail.models import WagtailImageLink
from imagegen.models import GeneratedImage, Generation


def cut(text: str, limit: int) -> str:
    """Return ``text`` on one line, cut at a word boundary to at most ``limit`` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if text[limit - 1] != " ":  # the cut falls inside a word: drop that word
        head = head.rsplit(" ", 1)[0]
    return head.rstrip(" ,.;:") + "…"


def find_collection() -> Collection:
    """Return the collection generated images go to, or the root it will be made under."""
    name = wagtail_settings()["COLLECTION"]
    root = Collection.get_first_root_node()
    if not name:
        return root
    return root.get_children().filter(name=name).first() or root


def target_collection() -> Collection:
    """Return the collection generated images go to, making it under the root if missing."""
    found = find_collection()
    name = wagtail_settings()["COLLECTION"]
    if not name or not found.is_root():
        return found
    with transaction.atomic():
        return found.add_child(instance=Collection(name=name))


def title_for(generated: GeneratedImage) -> str:
    """Return the library title of ``generated``: its subject prompt, cut at a word."""
    generation = generated.generation
    subject = generated.alt_text or generation.prompt.split(",")[0]
    return cut(subject, int(wagtail_settings()["TITLE_LENGTH"])) or f"Generation {generation.pk}"


def store_image(
    generated: GeneratedImage,
    *,
    user: Any = None,
    page: Page | None = None,
    collection: Collection | None = None,
) -> models.Model:
    """Return the Wagtail image made from ``generated``, making it on the first call.

    The file is copied (Wagtail deletes an image's file with the image, and the ledger keeps
    its own). ``page`` is recorded on the link; the ledger row's target already names it when
    the generation was made for a page.
    """
    link = WagtailImageLink.objects.filter(generated_image=generated).select_related("image")
    found = link.first()
    if found is not None and found.image is not None:
        return found.image
    config = wagtail_settings()
    image_model = get_image_model()
    image = image_model(
        title=title_for(generated),
        collection=collection or target_collection(),
        uploaded_by_user=user if getattr(user, "pk", None) else None,
    )
    alt_field = config["ALT_TEXT_FIELD"]
    if alt_field and generated.alt_text and _has_field(image_model, alt_field):
        limit = image_model._meta.get_field(alt_field).max_length or len(generated.alt_text)
        setattr(image, alt_field, cut(generated.alt_text, limit))
    with generated.file.open("rb") as source:
        data = source.read()
    name = os.path.basename(generated.file.name)
    with transaction.atomic():
        image.file.save(name, ContentFile(data), save=False)
        image.width, image.height = generated.width, generated.height
        image.file_size = len(data)
        image.save()
        image.get_file_hash()  # computes and saves the hash duplicate detection uses
        if config["TAGS"]:
            image.tags.add(*config["TAGS"])
            # Saving indexed the image before it had tags; Wagtail's image form reindexes too.
            search_index.insert_or_update_object(image)
        page_id = page.pk if page is not None else _page_id(generated.generation)
        WagtailImageLink.objects.update_or_create(
            generated_image=generated,
            defaults={
                "image": image,
                "page_id": page_id,
                "created_by": user if getattr(user, "pk", None) else None,
            },
        )
    return image


def _has_field(model: type[models.Model], name: str) -> bool:
    return any(field.name == name for field in model._meta.get_fields())


def _page_id(generation: Generation) -> int | None:
    """Return the id of the page ``generation`` was made for, if its target is a page."""
    if not generation.content_type_id or not generation.object_id:
        return None
    model = generation.content_type.model_class()
    if model is None or not issubclass(model, Page):
        return None
    return int(generation.object_id)


def generated_for(image: models.Model) -> models.QuerySet:
    """Return the ledger images ``image`` (a Wagtail image) was made from."""
    return GeneratedImage.objects.filter(wagtail_link__image=image)


def image_cost(image: models.Model) -> Decimal:
    """Return what the generations behind the Wagtail ``image`` cost.

    A generation of four candidates costs the same whichever of them became library images:
    each image made from it counts the generation's whole cost, once.
    """
    rows = Generation.objects.filter(images__wagtail_link__image=image).distinct()
    return rows.aggregate(total=models.Sum("cost"))["total"] or Decimal("0")
