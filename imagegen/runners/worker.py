"""The worker side shared by the Celery task and the Django Tasks task: :func:`work`.

:func:`work` loads the row, asks the shared limiter for room, claims the row under a lease and
runs it, and says when to try again (an :class:`Outcome`). :func:`monotonic_deadline` turns a
job's soft time limit into the deadline the provider is given.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from imagegen.exceptions import ImagegenError
from imagegen.models import Generation, Status
from imagegen.pipeline.leases import Lease
from imagegen.runners import execute
from imagegen.runners.options import limit_for, retry_delay, task_options
from imagegen.runners.ratelimit import acquire

logger = logging.getLogger("imagegen")


@dataclass
class Outcome:
    """What :func:`work` did with a job, and whether the runner must run it again later."""

    #: "done" (ran, or found finished), "missing", "waiting" (held by a live worker or not
    #: claimable yet), "limited" (no room under the shared limits), "retry" (a retryable error).
    state: str
    generation: Generation | None = None
    #: Seconds after which the task must run again; None when nothing is left to do.
    retry_in: float | None = None
    error: ImagegenError | None = None


def work(
    pk: int,
    *,
    deadline: float | None = None,
    deferrals: int = 0,
    options: dict[str, Any] | None = None,
) -> Outcome:
    """Run generation ``pk`` as a queued runner's worker; return what to do next.

    The row is read once. A finished row is left alone; a ``running`` row whose worker is alive
    is left alone until its lease could lapse (a duplicate delivery waits, it never calls the
    provider); a ``running`` row whose worker died is taken over. Before claiming, the
    provider's shared limits must have room, else the job is retried later without calling
    anything. ``deferrals`` counts the earlier waits of this delivery, to back them off.
    """
    options = options or task_options()
    generation = Generation.objects.filter(pk=pk).first()
    if generation is None:
        logger.warning("imagegen: generation %s no longer exists; nothing to run", pk)
        return Outcome("missing")
    if generation.is_finished:
        return Outcome("done", generation)

    max_attempts = int(options["MAX_ATTEMPTS"])
    lease = Lease(
        seconds=float(options["LEASE"]),
        max_attempts=max_attempts,
        max_hold=float(options["TIME_LIMIT"]) if options["TIME_LIMIT"] else None,
    )
    if generation.status == Status.RUNNING and lease.left(generation) > 0:
        return wait_for_lease(generation, lease.left(generation))
    if generation.status not in (Status.QUEUED, Status.RUNNING):
        return Outcome("done", generation)
    ticket = acquire(limit_for(generation.provider, options))
    if not ticket.granted:
        wait = backoff(ticket.retry_after, deferrals)
        logger.info("imagegen: generation %s waits %.1f s for the %s limit of %r", pk, wait,
                    ticket.reason, generation.provider)  # fmt: skip
        return Outcome("limited", generation, retry_in=wait)
    lease = Lease(
        seconds=lease.seconds,
        max_attempts=lease.max_attempts,
        max_hold=lease.max_hold,
        on_renew=ticket.renew if ticket.slot else None,
    )
    # The claim makes this attempt number attempts + 1; the last one fails instead of retrying.
    final = generation.attempts + 1 >= max_attempts
    try:
        result = execute(generation, retrying=not final, lease=lease, deadline=deadline)
    except ImagegenError as err:
        wait = retry_delay(err, generation.attempts, options)
        logger.info("imagegen: generation %s attempt %s failed (%s); retrying in %.1f s",
                    pk, generation.attempts, err.code, wait)  # fmt: skip
        return Outcome("retry", generation, retry_in=wait, error=err)
    finally:
        ticket.release()
    if result.status == Status.RUNNING:
        # Not claimed (another delivery holds it, or took it over a moment ago), or taken over
        # from this one while it ran.
        return wait_for_lease(result, lease.left(result))
    if result.status == Status.QUEUED:  # lost a race with a requeue: look again soon
        return Outcome("waiting", result, retry_in=backoff(1.0, deferrals))
    return Outcome("done", result)


def wait_for_lease(generation: Generation, left: float) -> Outcome:
    """Return a "waiting" outcome that comes back once the row's lease (``left`` s) could lapse."""
    # Come back just after the lease could have lapsed: by then the live worker has finished
    # (and this delivery finds the row done) or is dead (and this delivery takes over).
    return Outcome("waiting", generation, retry_in=max(left, 0.0) + random.uniform(0.2, 1.0))


def backoff(base: float, deferrals: int) -> float:
    """Return a wait of at least ``base`` seconds that grows with repeated deferrals."""
    grown = min(max(base, 0.05) * 1.5 ** min(deferrals, 10), max(base, 30.0))
    return grown + random.uniform(0, grown / 4)


def monotonic_deadline(soft_time_limit: float | None, margin: float = 5.0) -> float | None:
    """Return the ``time.monotonic()`` deadline a job must stop by, ``margin`` before its limit."""
    if not soft_time_limit:
        return None
    return time.monotonic() + max(float(soft_time_limit) - margin, float(soft_time_limit) * 0.8)
