"""Storing a run's images: check, save, record and attach them; the rest comes later.

A :class:`Store` does the writes of one run and remembers them: the files it created and the
target field it set, so that :meth:`Store.undo` can take them back when the run fails, and
:meth:`Store.delete_on_rollback` when the caller's transaction rolls back. :func:`attach`,
:func:`mark_selected` and :func:`clear_selected` keep a field and the ledger's ``selected``
flags in step, for runs and for editors alike.

A run stores the original and its rows only: each row is written with ``pending`` set to
:data:`PENDING`, and the rest is done afterwards by the follow-up job
(:mod:`imagegen.pipeline.deriving`), which calls :meth:`Store.read_credentials` and
:meth:`Store.derive`: the original's C2PA manifest is read (:func:`imagegen.provenance.read`),
its pixels decoded once, its placeholders and derived files made and, with a signer
configured, each derived file signed with the original as its parent before it is saved under
its content name. None of it ever fails the run: a problem leaves the file as it was and a
warning on the row.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.files.storage import Storage
from django.db import connections, models, router

from imagegen import derivatives, images, lqip, provenance
from imagegen.exceptions import ImagegenError
from imagegen.models import GeneratedImage, Generation
from imagegen.pipeline.cleanup import delete_on_rollback, delete_unreferenced
from imagegen.pipeline.planning import params_of
from imagegen.storage import content_name, get_storage, save_content
from imagegen.types import ImageOutput

logger = logging.getLogger("imagegen")

#: The post-processing a new image waits for, as ``GeneratedImage.pending`` records it.
PENDING = "credentials,placeholders,derivatives"


@dataclass(frozen=True, kw_only=True)
class StoredImage:
    """One provider output, checked and saved, with what the ledger row needs of it."""

    output: ImageOutput
    info: images.DecodedImage
    sha256: str
    name: str


class Store:
    """The storage writes of one run, and how to take them back."""

    def __init__(self, storage: Storage | None = None) -> None:
        self._storage = storage
        #: (storage, name) of each file this run created (files it reused are not listed).
        self.created: list[tuple[Storage, str]] = []
        #: Milliseconds spent per step, added up over the run's images.
        self.timings: dict[str, int] = {}
        #: Problems that did not fail the run, for the row's warnings.
        self.warnings: list[str] = []
        #: (instance, field name, previous file name) to put back if the run fails.
        self.restore: tuple[Any, str, str] | None = None

    @property
    def storage(self) -> Storage:
        """Return the storage the run writes to: ``IMAGEGEN["STORAGE"]`` unless one was given."""
        # Resolved on first use, so a broken STORAGE setting fails the run like any other step.
        if self._storage is None:
            self._storage = get_storage()
        return self._storage

    def store(self, outputs: list[ImageOutput]) -> list[StoredImage]:
        """Check and save each of ``outputs``; raise on a refused or unsaved image.

        Each image is checked without decoding its pixels (:func:`imagegen.images.check`).
        Its Content Credentials, placeholders and derived files are not made here: the rows
        are written with ``pending`` set, and the follow-up job makes them from one decode
        (:mod:`imagegen.pipeline.deriving`).
        """
        stored = []
        for output in outputs:
            started = time.monotonic()
            info = images.check(output.content)
            self.timed("check_ms", started)
            started = time.monotonic()
            digest, name = content_name(output.content, info.mime_type)
            name = self.save_file(name, output.content)
            self.timed("storage_ms", started)
            stored.append(
                StoredImage(
                    output=output,
                    info=info,
                    sha256=digest,
                    name=name,
                )
            )
        return stored

    def read_credentials(self, content: bytes, mime_type: str) -> provenance.Credentials:
        """Return what the C2PA manifest of a stored original says; never raise."""
        started = time.monotonic()
        try:
            return provenance.read(content, mime_type)
        except Exception as err:
            logger.exception("imagegen: could not read Content Credentials")
            self.warnings.append(
                f"Content Credentials could not be read ({type(err).__name__}); "
                "the image is recorded as not checked."
            )
            return provenance.Credentials()
        finally:
            self.timed("credentials_ms", started)

    def save_file(self, name: str, data: bytes) -> str:
        """Save ``data`` under its content name and return the name it got."""
        try:
            name, created = save_content(self.storage, name, data)
        except Exception as err:
            # Storage errors can carry bucket names or paths: log them, show a summary.
            logger.exception("imagegen: could not save %s", name)
            raise ImagegenError(
                "The image could not be saved to storage "
                f"({type(err).__name__}); see the server log.",
                code="storage_error",
                retryable=True,
            ) from err
        if created:
            self.created.append((self.storage, name))
        return name

    def derive(
        self, decoded: Any, *, original: bytes = b"", original_type: str = ""
    ) -> dict[str, Any]:
        """Make and save the derived files and placeholders of one stored original.

        ``decoded`` is the original, decoded once (:func:`imagegen.images.decode_and_open`);
        every file and placeholder is made from its pixels. A Pillow failure here keeps the
        original (it passed the checks and was paid for) and leaves a warning; a storage
        failure raises, so that the follow-up job is tried again. With a signer configured and
        the ``original`` bytes given, each file is signed first (:meth:`sign_derivatives`).
        """
        started = time.monotonic()
        try:
            image = images.clean(decoded)
            placeholders = lqip.make_placeholders(image)
            made = derivatives.make_derivatives(image)
        except Exception as err:
            logger.exception("imagegen: could not make derivatives")
            self.warnings.append(
                f"Derived files and placeholders could not be made ({type(err).__name__}); "
                "the original was kept."
            )
            return {}
        finally:
            self.timed("derivatives_ms", started)
        if made and original and provenance.signing_configured():
            made = self.sign_derivatives(made, original, original_type, image.width)
        started = time.monotonic()
        records = []
        for derivative in made:
            _digest, name = content_name(derivative.content, derivative.mime_type)
            records.append(derivative.record(self.save_file(name, derivative.content)))
        self.timed("storage_ms", started)
        return {
            "derivatives": records,
            "dominant_color": placeholders.dominant_color,
            "lqip": placeholders.lqip,
            "thumbhash": placeholders.thumbhash,
        }

    def sign_derivatives(
        self,
        made: list[derivatives.Derivative],
        original: bytes,
        original_type: str,
        width: int,
    ) -> list[derivatives.Derivative]:
        """Return ``made`` with each file signed, the original as parent; unsigned on failure.

        A file the signer cannot sign keeps its IPTC XMP and the run leaves a warning: the
        derived files still serve, and ``imagegen_provenance`` lists them as unsigned.
        """
        started = time.monotonic()
        signed = []
        failed: Exception | None = None
        for derivative in made:
            if failed is None:
                try:
                    content = provenance.sign_derived(
                        derivative.content,
                        derivative.mime_type,
                        original=original,
                        original_type=original_type,
                        resized=derivative.width != width,
                        converted=derivative.mime_type != original_type,
                    )
                except Exception as err:
                    # One failure (no extra, a bad key, a KMS outage) would repeat for every
                    # file: stop signing this image's files, say so once.
                    logger.exception("imagegen: could not sign a derived file")
                    failed = err
                else:
                    derivative = dataclasses.replace(derivative, content=content, signed=True)
            signed.append(derivative)
        if failed is not None:
            self.warnings.append(
                f"Derived files could not be signed ({type(failed).__name__}); they carry "
                "IPTC metadata only. See the server log."
            )
        self.timed("signing_ms", started)
        return signed

    def save_images(
        self, generation: Generation, stored: list[StoredImage], target: Any = None
    ) -> None:
        """Write the ``GeneratedImage`` rows of ``stored`` and attach the first to the target.

        ``target`` is the caller's instance of the row's target, if it has one: the image is
        set on it, and :meth:`undo` puts its field back.
        """
        params = params_of(generation)
        alt_text = alt_text_for(generation)
        rows = [
            GeneratedImage(
                generation=generation,
                file=item.name,
                width=item.info.width,
                height=item.info.height,
                mime_type=item.info.mime_type,
                bytes=len(item.output.content),
                sha256=item.sha256,
                seed=item.output.seed,
                revised_prompt=item.output.revised_prompt or "",
                alt_text=alt_text,
                parent_id=generation.source_image_id,
                pending=PENDING,  # what the follow-up job still has to do
            )
            for item in stored
        ]
        field_name = generation.field_name
        attaching = bool(rows and field_name and params.attach)
        if attaching:
            rows[0].selected = True
        if len(rows) == 1:  # most runs: a plain INSERT costs less ORM work than a bulk one
            rows[0].save(force_insert=True)
        else:
            GeneratedImage.objects.bulk_create(rows)
        if not attaching or not generation.content_type_id:
            return
        if target is None:
            target = generation.target
        if target is None:  # the object was deleted while the job ran
            return
        self.restore = (target, field_name, getattr(target, field_name).name)
        attach(target, field_name, rows[0] if rows[0].pk else generation.images.order_by("pk")[0])

    def undo(self) -> None:
        """Take back what a failed run left behind: its new files and the field it set."""
        if self.restore is not None:
            target, field_name, previous = self.restore
            setattr(target, field_name, previous)
            self.restore = None
        files, self.created = self.created, []
        if not files:
            return
        try:
            # Another row may have stored the same bytes meanwhile: those files are kept.
            delete_unreferenced(files)
        except Exception:  # cleanup must not hide the original error
            logger.warning(
                "imagegen: could not clean up %d file(s) after a failure; imagegen_sweep "
                "removes unused files later",
                len(files),
                exc_info=True,
            )

    def delete_on_rollback(self) -> None:
        """Delete this run's new files if the caller's transaction rolls its rows back."""
        delete_on_rollback(self.created)

    def timed(self, step: str, started: float) -> None:
        self.timings[step] = self.timings.get(step, 0) + round((time.monotonic() - started) * 1000)


def attach(target: models.Model, field_name: str, image: GeneratedImage) -> None:
    """Set ``image`` on ``target.<field_name>`` and mark it as the selected image of that field."""
    setattr(target, field_name, image.file.name)
    target.save(update_fields=[field_name])
    mark_selected(image, field_name)


def mark_selected(image: GeneratedImage, field_name: str | None = None) -> None:
    """Record ``image`` as the one its target's field shows, and no other image of that field."""
    generation = image.generation
    field_name = field_name or generation.field_name
    if generation.content_type_id is None:
        siblings = GeneratedImage.objects.filter(
            generation__content_type__isnull=True,
            generation__object_id=generation.object_id,
            generation__field_name=field_name,
        )
        siblings.exclude(pk=image.pk).filter(selected=True).update(selected=False)
    else:
        _unselect_others(image.pk, generation.content_type_id, generation.object_id, field_name)
    if not image.selected:
        GeneratedImage.objects.filter(pk=image.pk).update(selected=True)
        image.selected = True


def _unselect_others(pk: int, content_type_id: int, object_id: str, field_name: str) -> None:
    """Clear ``selected`` on every image of the target's field but image ``pk``, in one UPDATE.

    Written out because every generation that attaches its image runs it: the ORM's version of
    this UPDATE (a filter across the relation, compiled to the same subquery) costs ten times
    the statement itself, about 0.8 ms of a 10 ms ``generate()`` (benchmarks/sdk_path.py).
    """
    images, generations = GeneratedImage._meta, Generation._meta
    connection = connections[router.db_for_write(GeneratedImage)]
    qn = connection.ops.quote_name

    def column(meta: Any, name: str) -> str:
        return qn(meta.get_field(name).column)

    selected = column(images, "selected")
    # Only quoted names of the two tables and their columns are formatted in; the values are
    # parameters.
    sql = (
        f"UPDATE {qn(images.db_table)} SET {selected} = %s "  # noqa: S608
        f"WHERE {selected} = %s AND {column(images, 'id')} <> %s "
        f"AND {column(images, 'generation')} IN (SELECT {column(generations, 'id')} "
        f"FROM {qn(generations.db_table)} WHERE {column(generations, 'content_type')} = %s "
        f"AND {column(generations, 'object_id')} = %s AND {column(generations, 'field_name')} = %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [False, True, pk, content_type_id, object_id, field_name])


def clear_selected(target: models.Model, field_name: str) -> int:
    """Record that ``target.<field_name>`` shows no generated image (an upload replaced it)."""
    return GeneratedImage.objects.filter(
        generation__content_type=ContentType.objects.get_for_model(target),
        generation__object_id=str(target.pk),
        generation__field_name=field_name,
        selected=True,
    ).update(selected=False)


def alt_text_for(generation: Generation, limit: int = 125) -> str:
    """Return the alt text of ``generation``'s images: its subject, cut short at a word."""
    # The subject, without the preset's style parts, describes what the image shows; screen
    # reader guidance keeps alt text short, so cut long subjects at a word boundary.
    text = params_of(generation).subject or generation.prompt.split(",")[0].strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,.;:") + "…"
