"""Claims, fencing and leases: how one run takes, holds and gives up its ledger row.

A run claims a ``queued`` row with a conditional update (:func:`claim`); every later write is
fenced by the row's ``attempts`` (:meth:`Generation.held <imagegen.models.Generation.held>`),
and with a :class:`Lease` a :class:`Heartbeat` thread keeps a ``running`` row alive, so a row
whose worker died can be taken over or recovered (:func:`recover_lost`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from imagegen.exceptions import ImagegenError
from imagegen.models import Generation, Status
from imagegen.pipeline import rollups
from imagegen.pipeline.budgets import settle
from imagegen.signals import announce

logger = logging.getLogger("imagegen")


class LeaseLost(ImagegenError):
    """Another worker took this generation over; this one stops without writing its result."""

    code = "lease_lost"


@dataclass(frozen=True, kw_only=True)
class Lease:
    """How a worker of a queued runner holds the ``running`` row it claimed.

    While the job runs, a heartbeat thread refreshes the row's ``updated_at`` every third of
    ``seconds``. A ``running`` row whose ``updated_at`` is older than ``seconds`` has lost its
    worker (killed, out of memory, its machine gone): :func:`run_generation` given a lease takes
    such a row over, while a row whose worker is alive is left alone. Every write of a run is
    fenced by the row's ``attempts``, so a worker that was taken over cannot store anything.
    """

    #: Seconds without a heartbeat after which the row's worker is presumed dead.
    seconds: float = 60.0
    #: Runs of one job (first run, retries and takeovers) after which a lost one is failed.
    max_attempts: int | None = None
    #: Stop renewing after this many seconds (the task's hard time limit): a hung job then
    #: loses its lease like a dead one.
    max_hold: float | None = None
    #: Called on every heartbeat, such as to keep a rate-limiter slot.
    on_renew: Callable[[], None] | None = None

    @property
    def interval(self) -> float:
        return max(self.seconds / 3, 0.05)

    def left(self, generation: Generation, now: Any = None) -> float:
        """Return the seconds until the lease of ``generation`` (``running``) runs out."""
        now = now or timezone.now()
        return self.seconds - (now - generation.updated_at).total_seconds()


def claim(generation: Generation, lease: Lease | None) -> bool:
    """Take the row for this run; return False if it is not this run's to take.

    A ``queued`` row is claimed with a conditional update, so of two deliveries only one
    wins. With a ``lease``, a ``running`` row whose heartbeat stopped is taken over (or failed,
    when it has used up ``lease.max_attempts``); a row whose worker is alive, and a finished
    row, are left alone.
    """
    now = timezone.now()
    if generation.status == Status.QUEUED:
        return generation.transition(
            Status.RUNNING, started_at=now, attempts=generation.attempts + 1
        )
    if generation.status != Status.RUNNING or lease is None or lease.left(generation, now) > 0:
        return False
    return recover_lost(generation, max_attempts=lease.max_attempts, to=Status.RUNNING)


def recover_lost(
    generation: Generation, *, max_attempts: int | None = None, to: str = Status.QUEUED
) -> bool:
    """Recover the ``running`` row of a worker that died; return whether it may run again.

    The row is changed only if it is still exactly as read (same attempt, same
    ``updated_at``), so a live worker's heartbeat, or a second recoverer, wins over this. With
    ``to="running"`` this run takes the job over (the next attempt, started now); with
    ``"queued"`` (the sweeper) it waits for a worker. A row that used up ``max_attempts``
    fails with code ``worker_lost`` instead. A warning on the row says what happened: a job
    the provider had accepted is resumed; one without a job id runs again, and its lost call
    may have been charged.
    """
    now, attempt = timezone.now(), generation.attempts
    stale = Generation.objects.filter(
        pk=generation.pk,
        status=Status.RUNNING,
        attempts=attempt,
        updated_at=generation.updated_at,
    )
    if max_attempts is not None and attempt >= max_attempts:
        message = (
            f"The worker running this generation stopped before it finished, {attempt} times "
            "(killed, out of memory, or past its time limit); imagegen gave up."
        )
        # A job the provider accepted has probably been billed, though no answer came back.
        unconfirmed = generation.estimated_cost if generation.provider_job_id else Decimal(0)
        fields = {"status": Status.FAILED, "finished_at": now, "updated_at": now,
                  "error_code": "worker_lost", "error_message": message, "reservation": {},
                  "unconfirmed_cost": generation.unconfirmed_cost + unconfirmed}  # fmt: skip
        held = generation.reservation
        with transaction.atomic():
            won = bool(stale.update(**fields))
            if won:
                settle(held, unconfirmed=unconfirmed)
                # The rollups: a failed run, and the charge it probably made.
                rollups.ended(generation, Status.FAILED)
                if unconfirmed:
                    rollups.charged(generation, unconfirmed=unconfirmed)
        if won:
            for name, value in fields.items():
                setattr(generation, name, value)
            announce(generation)
        return False
    if generation.provider_job_id:
        note = f"resumes provider job {generation.provider_job_id}"
    else:
        note = (
            "runs it again; if the provider had received the request already, it may have "
            "charged for it without a result"
        )
    warning = f"Attempt {attempt} lost its worker; attempt {attempt + 1} {note}."
    fields: dict[str, Any] = {"updated_at": now, "warnings": [*generation.warnings, warning]}
    if to == Status.RUNNING:
        fields.update(attempts=attempt + 1, started_at=now)
    else:
        fields.update(status=Status.QUEUED)
    if not stale.update(**fields):
        return False
    logger.warning("imagegen: generation %s: %s", generation.pk, warning)
    for name, value in fields.items():
        setattr(generation, name, value)
    return True


class Heartbeat:
    """Keep a claimed row's lease alive from a thread while its job runs."""

    def __init__(self, generation: Generation, lease: Lease) -> None:
        self.pk, self.attempts, self.lease = generation.pk, generation.attempts, lease
        #: Set when a renewal found the row no longer this run's.
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"imagegen-lease-{generation.pk}", daemon=True
        )

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def renew(self) -> bool:
        """Refresh the row's ``updated_at``; return False if the row is no longer ours."""
        try:
            held = Generation.objects.filter(
                pk=self.pk, status=Status.RUNNING, attempts=self.attempts
            ).update(updated_at=timezone.now())
        except Exception:  # a database hiccup: try again at the next beat
            logger.warning("imagegen: could not renew the lease of generation %s", self.pk,
                           exc_info=True)  # fmt: skip
            return True
        if held and self.lease.on_renew is not None:
            try:
                self.lease.on_renew()
            except Exception:
                logger.warning("imagegen: lease renewal hook failed", exc_info=True)
        return bool(held)

    def _run(self) -> None:
        began, used_db = time.monotonic(), False
        try:
            while not self._stop.wait(self.lease.interval):
                if self.lease.max_hold and time.monotonic() - began > self.lease.max_hold:
                    return  # over its time limit: let the lease lapse like a dead worker's
                used_db = True
                if not self.renew():
                    self.lost = True
                    return
        finally:
            if used_db:
                connection.close()
