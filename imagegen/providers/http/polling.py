"""Asynchronous provider jobs: submit once and record the job id; the clock polling runs on.

A billable submission is never repeated: :func:`submit_or_resume` hands the provider's job id to
``CallContext.on_job_accepted`` before anything else happens, and a redelivered task that carries
``CallContext.resume_job_id`` skips the submission and polls the stored job instead.
:meth:`HttpProvider.poll_until <imagegen.providers.http.HttpProvider.poll_until>` then waits
between polls with growing intervals, up to :data:`DEFAULT_POLL_TIMEOUT` and tolerating
:data:`MAX_POLL_ERRORS` temporary failures in a row. Time goes through a :class:`Clock`, so tests
swap in a :class:`ManualClock` and never sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from imagegen.types import CallContext

__all__ = ["DEFAULT_POLL_TIMEOUT", "MAX_POLL_ERRORS", "Clock", "ManualClock", "submit_or_resume"]

#: Seconds a job may take from the first poll when the caller gives no ``timeout``.
DEFAULT_POLL_TIMEOUT = 600.0
#: Temporary poll failures in a row (429, 503, a dropped connection) tolerated before giving up.
MAX_POLL_ERRORS = 3


class Clock:
    """The real monotonic clock, read and slept on while polling."""

    def now(self) -> float:
        """Return the current ``time.monotonic()`` value."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds``."""
        time.sleep(seconds)


class ManualClock(Clock):
    """A clock for tests: sleeping advances it at once and records each wait in :attr:`sleeps`.

    It starts at the real ``time.monotonic()``, so a ``CallContext.deadline`` computed from the
    real clock keeps its meaning.
    """

    def __init__(self, start: float | None = None) -> None:
        self.time = time.monotonic() if start is None else float(start)
        #: Every wait requested, in order.
        self.sleeps: list[float] = []

    def now(self) -> float:
        """Return the clock's current reading."""
        return self.time

    def sleep(self, seconds: float) -> None:
        """Record ``seconds`` and move the clock on by as much, without blocking."""
        self.sleeps.append(seconds)
        self.time += seconds


def submit_or_resume(context: CallContext, submit: Callable[[], str]) -> str:
    """Return the job id to poll: ``context.resume_job_id``, or submit once and record the id.

    On resume ``submit`` is not called at all, so nothing is paid for twice. Otherwise the new id
    goes to ``context.on_job_accepted`` at once, before the first poll, so a worker that dies
    while polling leaves the id on the ledger row for the retry.
    """
    if context.resume_job_id:
        return context.resume_job_id
    job_id = submit()
    if context.on_job_accepted is not None:
        context.on_job_accepted(job_id)
    return job_id
