"""The stuck-job sweeper: re-dispatch lost ``queued`` jobs, resume or fail dead ``running`` ones.

Queued runners dispatch a row when its transaction commits, and Celery redelivers a job whose
worker was killed. Both can still lose a job: a process killed between the commit and the
send, a broker restarted without persistence, a Django Tasks backend that does not redeliver,
a retry a backend could not defer. :func:`sweep_jobs` finds such rows and hands them to the
runner again; run it periodically with ``imagegen_sweep --jobs`` (cron) or the
``imagegen.sweep_jobs`` task (Celery beat)::

    CELERY_BEAT_SCHEDULE = {
        "imagegen-sweep-jobs": {"task": "imagegen.sweep_jobs", "schedule": 300.0},
    }

* A row ``queued`` with no change for ``TASK_OPTIONS["QUEUED_TIMEOUT"]`` seconds is
  dispatched again. A duplicate of a job that is in a queue after all does nothing.
* Rows of a provider batch (``mode="batch"``) are left alone: :func:`sweep_batches` (also run
  by the ``imagegen.sweep_jobs`` task, and by ``imagegen_sweep --batches``) submits the
  batches a killed process did not, and polls the open ones, storing their results.
* A row ``running`` whose ``updated_at`` is older than :func:`running_timeout` has lost its
  worker (a live job renews it every ``LEASE / 3`` seconds): it is put back to ``queued`` and
  dispatched, so the next attempt resumes the provider's job if one was accepted, or it is
  failed with code ``worker_lost`` when it has used up ``TASK_OPTIONS["MAX_ATTEMPTS"]``.
* An image whose derived files and placeholders are still pending ``QUEUED_TIMEOUT`` seconds
  after it was stored, and that no follow-up job holds, has lost its job (a process restarted
  before the immediate runner's after-response work ran, a lost task, a storage outage): its
  generation's follow-up job is dispatched again (:mod:`imagegen.pipeline.deriving`).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from django.utils import timezone

from imagegen.models import Generation, Status
from imagegen.pipeline.batches import BatchSweep, poll_batches
from imagegen.pipeline.deriving import stale_pending
from imagegen.pipeline.leases import recover_lost
from imagegen.runners import get_runner
from imagegen.runners.options import task_options

logger = logging.getLogger("imagegen")

#: Rows handled per query and per dispatch batch.
BATCH = 500


@dataclass
class JobSweep:
    """What one sweep of the jobs found and did."""

    #: Rows stuck in ``queued`` dispatched again.
    redispatched: int = 0
    #: Rows of dead workers put back to ``queued`` and dispatched.
    resumed: int = 0
    #: Rows of dead workers failed, out of attempts.
    failed: int = 0
    #: Images whose derived files were still pending, sent to be made again.
    derived: int = 0
    #: What a dry run would do, one line per row.
    lines: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        data = asdict(self)
        data.pop("lines")
        return data


def sweep_batches() -> BatchSweep:
    """Submit the provider batches left unsubmitted and poll the open ones; return a tally."""
    return poll_batches()


def running_timeout(options: dict[str, Any]) -> float:
    """Return the seconds after its last heartbeat at which a ``running`` row is dead.

    Jobs of a queued runner renew their lease every ``LEASE / 3`` seconds, so ``LEASE`` alone
    would do for them; rows run by the immediate runner have no heartbeat, so the sweeper also
    waits out the hard ``TIME_LIMIT``, which no live job can pass.
    """
    return float(options["LEASE"]) + float(options["TIME_LIMIT"] or 0)


def stuck_queued(now: datetime.datetime, seconds: float) -> Any:
    """Return the ``queued`` rows unchanged for ``seconds``."""
    cutoff = now - datetime.timedelta(seconds=seconds)
    # Rows of a provider batch wait for the batch, not for a worker: poll_batches() has them.
    return Generation.objects.filter(
        status=Status.QUEUED, updated_at__lt=cutoff, provider_batch__isnull=True
    )


def stuck_running(now: datetime.datetime, seconds: float) -> Any:
    """Return the ``running`` rows without a heartbeat for ``seconds``."""
    cutoff = now - datetime.timedelta(seconds=seconds)
    return Generation.objects.filter(
        status=Status.RUNNING, updated_at__lt=cutoff, provider_batch__isnull=True
    )


def _chunks(queryset: Any) -> Iterator[list[Generation]]:
    """Yield the rows of ``queryset`` in primary-key pages of :data:`BATCH` (keyset paging)."""
    last = 0
    while True:
        page = list(queryset.filter(pk__gt=last).order_by("pk")[:BATCH])
        if not page:
            return
        yield page
        last = page[-1].pk


def sweep_jobs(
    *,
    queued_after: float | None = None,
    running_after: float | None = None,
    dry_run: bool = False,
    now: datetime.datetime | None = None,
) -> JobSweep:
    """Re-dispatch stuck ``queued`` rows and recover ``running`` rows whose worker died.

    ``queued_after`` and ``running_after`` (seconds) default to ``QUEUED_TIMEOUT`` and
    :func:`running_timeout` of ``TASK_OPTIONS``. With ``dry_run`` nothing is changed and
    :attr:`JobSweep.lines` says what would be.
    """
    options = task_options()
    now = now or timezone.now()
    queued_after = float(options["QUEUED_TIMEOUT"] if queued_after is None else queued_after)
    running_after = running_timeout(options) if running_after is None else float(running_after)
    max_attempts = int(options["MAX_ATTEMPTS"])
    runner, tally = get_runner(), JobSweep()

    # Dead workers first: the rows they put back are not counted as stuck in the queue.
    for page in _chunks(stuck_running(now, running_after)):
        again = []
        for row in page:
            if dry_run:
                action = "fail" if row.attempts >= max_attempts else "resume"
                tally.lines.append(
                    f"Would {action} generation {row.pk} (running, attempt {row.attempts}, "
                    f"last heartbeat {row.updated_at:%Y-%m-%d %H:%M:%S})"
                )
                tally.failed += action == "fail"
                tally.resumed += action == "resume"
            elif recover_lost(row, max_attempts=max_attempts):
                again.append(row)
            elif row.status == Status.FAILED:
                tally.failed += 1
        tally.resumed += len(again)
        if again:
            runner.enqueue_many(again)

    for page in _chunks(stuck_queued(now, queued_after)):
        if dry_run:
            tally.lines.extend(
                f"Would dispatch generation {row.pk} again (queued since "
                f"{row.updated_at:%Y-%m-%d %H:%M:%S})"
                for row in page
            )
            tally.redispatched += len(page)
            continue
        # Touch the rows, so the next sweep gives this dispatch its own QUEUED_TIMEOUT.
        pks = [row.pk for row in page]
        stuck_queued(now, queued_after).filter(pk__in=pks).update(updated_at=timezone.now())
        runner.enqueue_many(page)
        tally.redispatched += len(page)
    sweep_derivations(now, queued_after, runner, tally, dry_run=dry_run)
    if tally.redispatched or tally.resumed or tally.failed or tally.derived:
        logger.info("imagegen: job sweep: %s", tally.as_dict())
    return tally


def sweep_derivations(
    now: datetime.datetime, seconds: float, runner: Any, tally: JobSweep, *, dry_run: bool
) -> None:
    """Dispatch again the follow-up jobs of images still pending ``seconds`` after storing."""
    last = 0
    while True:
        page = list(
            stale_pending(now, seconds)
            .filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "generation_id", "created_at")[:BATCH]
        )
        if not page:
            return
        last = page[-1][0]
        if dry_run:
            tally.lines.extend(
                f"Would make the derived files of image {pk} (stored {created:%Y-%m-%d %H:%M:%S})"
                for pk, _generation, created in page
            )
        else:
            runner.derive_later(list(dict.fromkeys(generation for _pk, generation, _c in page)))
        tally.derived += len(page)
