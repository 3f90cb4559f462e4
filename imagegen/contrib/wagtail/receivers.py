"""Finishing a bulk run: the first image of each page's generation goes on a new draft.

Bulk runs (rows with a ``batch``) made for a page field that has a ``GeneratedImagePanel`` are
the page listing's "Generate images…" action. When such a row succeeds, wherever it ran (in
the request with the immediate runner, in a worker with a queue), its first image becomes a
library image and is set on the field in a new revision of the page, which an editor reviews
and publishes. The chooser and the panel never get here: their candidates wait for a pick.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import receiver
from wagtail.models import Page

from imagegen import services
from imagegen.contrib.wagtail.images import store_image
from imagegen.contrib.wagtail.panels import find_panel
from imagegen.models import Generation, Status
from imagegen.signals import generation_finished

logger = logging.getLogger("imagegen")


@receiver(generation_finished, dispatch_uid="imagegen.contrib.wagtail.store_bulk_result")
def store_bulk_result(sender: Any, generation: Generation, **kwargs: Any) -> None:
    """Set the first image of a succeeded bulk row on a new draft of its page."""
    if generation.status != Status.SUCCEEDED or generation.batch is None:
        return
    if not generation.content_type_id or not generation.field_name:
        return
    model = generation.content_type.model_class()
    if model is None or not issubclass(model, Page):
        return
    if find_panel(model, generation.field_name) is None:
        return
    first = generation.images.order_by("pk").first()
    page = Page.objects.filter(pk=generation.object_id).first()
    if first is None or page is None:
        return
    user = generation.created_by
    image = store_image(first, user=user, page=page)
    draft = page.specific.get_latest_revision_as_object()
    setattr(draft, generation.field_name, image)
    draft.save_revision(user=user, log_action=True)
    services.mark_selected(first, generation.field_name)
    logger.info("imagegen: generation %s set image %s on a draft of page %s",
                generation.pk, image.pk, page.pk)  # fmt: skip
