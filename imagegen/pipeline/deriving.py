"""The follow-up job of a stored image: make its placeholders and derived files, once.

A run stores the original and writes its ``GeneratedImage`` row with ``pending`` set
(:data:`~imagegen.pipeline.storing.PENDING`); nothing slow happens inside ``generate()``. The
runner then dispatches :func:`derive_generation` (:meth:`imagegen.runners.BaseRunner.derive_later`):
a Celery or Django Tasks task with a queued runner; with the immediate runner, in the same
process after the transaction commits and after the HTTP response is sent
(:func:`imagegen.signals.after_response`), or on a background thread outside a request. The
sweeper (:func:`imagegen.runners.sweeper.sweep_jobs`) dispatches again the images still pending
after a while (:func:`stale_pending`): a process restarted, a job lost, a storage outage.

:func:`derive` is idempotent and safe to run concurrently. It claims the row with a conditional
update of ``deriving_since`` and writes its result only while it still holds that claim, so two
jobs never both make an image's files; a job whose claim was taken over, or that failed, deletes
the files it created unless a row uses them (content-addressed names make identical files one).
The original is read once, its Content Credentials read from those bytes, and it is decoded
once; every derived file and placeholder comes from those pixels
(:meth:`~imagegen.pipeline.storing.Store.derive`), with C2PA signatures when a signer is
configured. A failure is logged and leaves the row pending for the sweeper; the generation's
status and charge are never touched, only its ``timings`` and ``warnings`` gain this job's. An
original whose pixel data turns out damaged is not pending any more: it keeps a warning.
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from imagegen import images
from imagegen.exceptions import InvalidResponse
from imagegen.models import GeneratedImage, Generation
from imagegen.pipeline.storing import Store

logger = logging.getLogger("imagegen")

#: Seconds after which a claim is presumed to belong to a dead job and may be taken over; a
#: 1024 px image takes well under a second.
CLAIM_TIMEOUT = 300.0
#: Store step -> the key it is added to in ``Generation.timings`` (the run has its own
#: ``check_ms`` and ``storage_ms``).
TIMING_KEYS = {
    "read_ms": "derive_read_ms",
    "decode_ms": "derive_decode_ms",
    "credentials_ms": "credentials_ms",
    "derivatives_ms": "derivatives_ms",
    "signing_ms": "signing_ms",
    "storage_ms": "derive_storage_ms",
}

#: Outcomes of :func:`derive`.
DONE, SKIPPED, FAILED = "done", "skipped", "failed"


def derive(image_id: int) -> str:
    """Make the pending placeholders and derived files of image ``image_id``; return the outcome.

    :data:`DONE` when this call made them; :data:`SKIPPED` when nothing was pending, another
    job holds the row, or the row is gone; :data:`FAILED` when reading or storing failed (the
    row stays pending, for the sweeper). A failure of the work is logged, not raised; only the
    database being unreachable for the claim itself raises.
    """
    claimed_at = timezone.now()
    if not _claim(image_id, claimed_at):
        return SKIPPED
    image = (
        GeneratedImage.objects.filter(pk=image_id)
        .only("file", "generation_id", "mime_type", "pending")
        .first()
    )
    if image is None:  # deleted between the claim and the read
        return SKIPPED
    store = Store(storage=image.file.storage)
    try:
        extras = _make(image, store)
        with transaction.atomic():
            finished = GeneratedImage.objects.filter(pk=image_id, deriving_since=claimed_at).update(
                pending="", deriving_since=None, **extras
            )
            if finished:
                _note(image.generation_id, store)
    except Exception:
        logger.exception("imagegen: could not make the derived files of image %s", image_id)
        store.undo()
        _release(image_id, claimed_at)
        return FAILED
    if not finished:
        # The claim lapsed and another job took the row over: its files are the ones kept.
        logger.warning("imagegen: image %s was derived by another job meanwhile", image_id)
        store.undo()
        return SKIPPED
    store.delete_on_rollback()
    return DONE


def derive_generation(generation_id: int) -> list[str]:
    """Run :func:`derive` for each pending image of generation ``generation_id``."""
    pending = GeneratedImage.objects.filter(generation_id=generation_id).exclude(pending="")
    return [derive(pk) for pk in pending.order_by("pk").values_list("pk", flat=True)]


def derive_generations(generation_ids: list[int]) -> list[str]:
    """Run :func:`derive_generation` for each of ``generation_ids``."""
    return [outcome for pk in generation_ids for outcome in derive_generation(pk)]


def stale_pending(now: datetime.datetime, seconds: float) -> QuerySet[GeneratedImage]:
    """Return the images still pending ``seconds`` after they were stored, and held by no job."""
    cutoff = now - datetime.timedelta(seconds=seconds)
    unclaimed = Q(deriving_since__isnull=True) | Q(
        deriving_since__lt=now - datetime.timedelta(seconds=CLAIM_TIMEOUT)
    )
    return GeneratedImage.objects.exclude(pending="").filter(unclaimed, created_at__lt=cutoff)


def _claim(image_id: int, claimed_at: datetime.datetime) -> bool:
    """Mark the row as held by this job, unless nothing is pending or a live job holds it."""
    stale = claimed_at - datetime.timedelta(seconds=CLAIM_TIMEOUT)
    free = Q(deriving_since__isnull=True) | Q(deriving_since__lt=stale)
    rows = GeneratedImage.objects.filter(free, pk=image_id).exclude(pending="")
    return bool(rows.update(deriving_since=claimed_at))


def _release(image_id: int, claimed_at: datetime.datetime) -> None:
    """Give the claim back after a failure, so the sweeper can dispatch the row again."""
    try:
        GeneratedImage.objects.filter(pk=image_id, deriving_since=claimed_at).update(
            deriving_since=None
        )
    except Exception:  # the database is down too: the claim lapses after CLAIM_TIMEOUT
        logger.warning("imagegen: could not release image %s", image_id, exc_info=True)


def _make(image: GeneratedImage, store: Store) -> dict[str, Any]:
    """Read and decode the original once; return the field values of what was made from it.

    An original whose pixels cannot be decoded (a crafted file: its chunks passed the run's
    check) keeps its row and charge; the job ends with a warning, not pending, since another
    try would fail the same way.
    """
    started = time.monotonic()
    with image.file.storage.open(image.file.name, "rb") as handle:
        content = handle.read()
    store.timed("read_ms", started)
    extras: dict[str, Any] = {}
    if "credentials" in image.pending.split(","):
        credentials = store.read_credentials(content, image.mime_type)
        extras.update(content_credentials=credentials.state, credentials=credentials.details())
    started = time.monotonic()
    try:
        info, decoded = images.decode_and_open(content)
    except InvalidResponse as err:
        logger.warning("imagegen: image %s could not be decoded: %s", image.pk, err.code)
        store.warnings.append(
            "The image's pixel data could not be decoded: the file is damaged, so it has no "
            "placeholders or derived files. Generate it again, or use an earlier image."
        )
        return extras
    finally:
        store.timed("decode_ms", started)
    with decoded:
        extras.update(store.derive(decoded, original=content, original_type=info.mime_type))
    return extras


def _note(generation_id: int, store: Store) -> None:
    """Add this job's timings and warnings to its generation's (in the caller's transaction)."""
    row = (
        Generation.objects.select_for_update()
        .filter(pk=generation_id)
        .values("timings", "warnings")
        .first()
    )
    if row is None:
        return
    timings = dict(row["timings"] or {})
    for step, value in store.timings.items():
        key = TIMING_KEYS.get(step, f"derive_{step}")
        timings[key] = timings.get(key, 0) + value
    warnings = list(row["warnings"] or []) + store.warnings
    Generation.objects.filter(pk=generation_id).update(timings=timings, warnings=warnings)
