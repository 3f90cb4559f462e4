"""Storing a run's images: decode, save, derive, record and attach them, or undo it all.

Everything here writes on behalf of one run of :func:`imagegen.services.run_generation`; the
files a run creates are remembered on its ``_Run`` so that :func:`_undo` can delete them.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from django.db import models

from imagegen import derivatives, images, lqip
from imagegen.exceptions import ImagegenError
from imagegen.models import GeneratedImage, Generation
from imagegen.storage import content_name, delete_unreferenced, get_storage, save_content
from imagegen.types import ImageOutput

if TYPE_CHECKING:
    from imagegen.execution import _Run

logger = logging.getLogger("imagegen")


def _store(run: _Run) -> list[tuple[ImageOutput, images.DecodedImage, str, str, dict[str, Any]]]:
    storage = get_storage()
    stored = []
    # One image at a time: each is decoded once, and its pixels feed the derived files.
    for output in run.outputs:
        started = time.monotonic()
        info, image = images.decode_and_open(output.content)
        run.timed("decode_ms", started)
        with image:
            started = time.monotonic()
            digest, name = content_name(output.content, info.mime_type)
            name = _save_file(run, storage, name, output.content)
            run.timed("storage_ms", started)
            extras = _derive(run, storage, image)
        stored.append((output, info, digest, name, extras))
    return stored


def _save_file(run: _Run, storage: Any, name: str, data: bytes) -> str:
    """Save ``data`` under its content name; a file this run creates is deleted if it fails."""
    try:
        name, created = save_content(storage, name, data)
    except Exception as err:
        # Storage errors can carry bucket names or paths: log them, show a summary.
        logger.exception("imagegen: could not save %s", name)
        raise ImagegenError(
            f"The image could not be saved to storage ({type(err).__name__}); see the server log.",
            code="storage_error",
            retryable=True,
        ) from err
    if created:
        run.created_files.append((storage, name))
    return name


def _derive(run: _Run, storage: Any, decoded: Any) -> dict[str, Any]:
    """Make and store the derived files and placeholders of one stored original.

    A Pillow failure here keeps the original (it passed the checks and was paid for) and leaves
    a warning; a storage failure fails the run like the original's would.
    """
    started = time.monotonic()
    try:
        image = images.clean(decoded)
        placeholders = lqip.make_placeholders(image)
        made = derivatives.make_derivatives(image)
    except Exception as err:
        logger.exception("imagegen: could not make derivatives")
        run.warnings.append(
            f"Derived files and placeholders could not be made ({type(err).__name__}); "
            "the original was kept."
        )
        return {}
    finally:
        run.timed("derivatives_ms", started)
    started = time.monotonic()
    records = []
    for derivative in made:
        _digest, name = content_name(derivative.content, derivative.mime_type)
        records.append(derivative.record(_save_file(run, storage, name, derivative.content)))
    run.timed("storage_ms", started)
    return {
        "derivatives": records,
        "dominant_color": placeholders.dominant_color,
        "lqip": placeholders.lqip,
        "thumbhash": placeholders.thumbhash,
    }


def _save_images(generation: Generation, stored: list, run: _Run, target: Any = None) -> None:
    rows = [
        GeneratedImage(
            generation=generation,
            file=name,
            width=info.width,
            height=info.height,
            mime_type=info.mime_type,
            bytes=len(output.content),
            sha256=digest,
            seed=output.seed,
            revised_prompt=output.revised_prompt or "",
            alt_text=_alt_text(generation),
            **extras,
        )
        for output, info, digest, name, extras in stored
    ]
    field_name = generation.field_name
    attaching = bool(rows and field_name and generation.params.get("attach"))
    if attaching:
        rows[0].selected = True
    GeneratedImage.objects.bulk_create(rows)
    if not attaching or not generation.content_type_id:
        return
    if target is None:
        target = generation.target
    if target is None:  # the object was deleted while the job ran
        return
    run.restore = (target, field_name, getattr(target, field_name).name)
    attach(target, field_name, rows[0] if rows[0].pk else generation.images.order_by("pk")[0])


def attach(target: models.Model, field_name: str, image: GeneratedImage) -> None:
    """Set ``image`` on ``target.<field_name>`` and mark it as the selected image of that field."""
    setattr(target, field_name, image.file.name)
    target.save(update_fields=[field_name])
    mark_selected(image, field_name)


def mark_selected(image: GeneratedImage, field_name: str | None = None) -> None:
    """Record ``image`` as the one its target's field shows, and no other image of that field."""
    generation = image.generation
    siblings = GeneratedImage.objects.filter(
        generation__content_type_id=generation.content_type_id,
        generation__object_id=generation.object_id,
        generation__field_name=field_name or generation.field_name,
    )
    siblings.exclude(pk=image.pk).filter(selected=True).update(selected=False)
    if not image.selected:
        GeneratedImage.objects.filter(pk=image.pk).update(selected=True)
        image.selected = True


def clear_selected(target: models.Model, field_name: str) -> int:
    """Record that ``target.<field_name>`` shows no generated image (an upload replaced it)."""
    from django.contrib.contenttypes.models import ContentType

    return GeneratedImage.objects.filter(
        generation__content_type=ContentType.objects.get_for_model(target),
        generation__object_id=str(target.pk),
        generation__field_name=field_name,
        selected=True,
    ).update(selected=False)


def _alt_text(generation: Generation, limit: int = 125) -> str:
    # The subject, without the preset's style parts, describes what the image shows; screen
    # reader guidance keeps alt text short, so cut long subjects at a word boundary.
    text = generation.params.get("subject") or generation.prompt.split(",")[0].strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,.;:") + "…"


def _undo(run: _Run) -> None:
    """Undo what a failed run left behind: its new files and the caller's attached field."""
    run.undo_attach()
    files, run.created_files = run.created_files, []
    if not files:
        return
    try:
        # Another row may have stored the same bytes meanwhile: those files are kept.
        delete_unreferenced(files)
    except Exception:  # cleanup must not hide the original error
        logger.warning(
            "imagegen: could not clean up %d file(s) after a failure; imagegen_sweep removes "
            "unused files later",
            len(files),
            exc_info=True,
        )
