"""The signals imagegen sends, and the request signals it listens to for after-response work.

:func:`after_response` runs a callable once the HTTP response of the current request has been
sent or, outside a request, on a background thread once the caller goes on. The immediate
runner makes derived files this way (:meth:`imagegen.runners.BaseRunner.derive_later`): not
inside the request or the ``generate()`` call, and in the same process, without a task queue.
Django sends ``request_started`` when a request begins and ``request_finished`` when the
response is closed, which the WSGI server does after writing its last byte and the ASGI
handler after sending its last body message; work queued during the request runs from the
latter, on the thread that served the request. Work queued there is lost if the process is
killed first: whatever it had to make, the sweeper finds and makes later.
:func:`watch_requests` connects the receivers (``AppConfig.ready`` calls it).

Outside a request (a management command, a shell, a script), the work goes to one background
thread per process, started when there is work and gone after a few idle seconds. The
interpreter waits for the work it was given before exiting (up to :data:`EXIT_WAIT` seconds),
so a command's derived files are made before the command ends. :func:`wait_for_background`
waits for it (tests, scripts that read the files at once). On an in-memory SQLite database,
such as Django's test database on SQLite, the work runs at once instead: SQLite cannot share
it between two writing threads.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from django.core.signals import request_finished, request_started
from django.db import connections
from django.dispatch import Signal

logger = logging.getLogger("imagegen")

#: Sent when a generation reaches a final status (succeeded, failed, filtered or canceled).
#: Arguments: ``sender`` (the ``Generation`` class) and ``generation`` (the row).
generation_finished = Signal()


def announce(generation: Any) -> None:
    """Send :data:`generation_finished` for ``generation``; a failing receiver is only logged.

    A receiver's error must not turn a finished generation into an error for the caller.
    """
    for receiver, response in generation_finished.send_robust(
        sender=type(generation), generation=generation
    ):
        if isinstance(response, Exception):
            logger.error("imagegen: generation_finished receiver %r raised %r", receiver, response)


#: Seconds the process waits at exit for the background thread's work.
EXIT_WAIT = 300.0
#: Per thread: the callables waiting for the end of the request being served (None outside one).
_after_response = threading.local()


def after_response(job: Callable[[], Any]) -> None:
    """Run ``job`` after the current request's response is sent; outside one, in the background.

    Outside a request the job runs on the background thread (:func:`wait_for_background`),
    unless it must run on this one (:func:`_must_run_here`). A failing job is logged, never
    raised: the response, or the caller, is not its concern.
    """
    waiting = getattr(_after_response, "jobs", None)
    if waiting is not None:
        waiting.append(job)
    elif _must_run_here():
        _run(job)
    else:
        _background.submit(job)


def _must_run_here() -> bool:
    """Return whether a job outside a request must run at once, on this thread.

    When a connection is inside a transaction (a test capturing on-commit callbacks), only it
    sees the data the job needs. An in-memory SQLite database (Django's test database on
    SQLite) is shared between threads in SQLite's shared-cache mode, where a second writer
    fails at once with "database table is locked" instead of waiting its turn.
    """
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            return True
        if connection.vendor == "sqlite" and connection.is_in_memory_db():
            return True
    return False


def wait_for_background(timeout: float | None = None) -> bool:
    """Wait until the background thread has run every job given to it; False on timeout."""
    return _background.idle.wait(timeout)


class _Background:
    """The background thread of :func:`after_response`: started for work, gone when idle.

    The thread waits :attr:`linger` seconds for more work before it ends, so a run of
    ``generate()`` calls does not start a thread each. It is a daemon, so a lingering thread
    never holds the process up; the work it was given is waited for at exit instead
    (:func:`_finish_at_exit`).
    """

    #: Seconds an idle thread waits for more work before it ends.
    linger = 5.0

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.jobs: collections.deque[Callable[[], Any]] = collections.deque()
        self.thread: threading.Thread | None = None
        #: Set while no job is waiting or running.
        self.idle = threading.Event()
        self.idle.set()

    def submit(self, job: Callable[[], Any]) -> None:
        with self.cond:
            self.jobs.append(job)
            self.idle.clear()
            if self.thread is None:
                self.thread = threading.Thread(
                    target=self.work, name="imagegen-background", daemon=True
                )
                self.thread.start()
            else:
                self.cond.notify()

    def work(self) -> None:
        while (job := self.next_job()) is not None:
            _run(job)

    def next_job(self) -> Callable[[], Any] | None:
        """Return the next job, waiting for one while idle; None when the thread should end."""
        with self.cond:
            if self.jobs:
                return self.jobs.popleft()
        # Idle: the thread's own connections would otherwise stay open while it waits.
        connections.close_all()
        with self.cond:
            if not self.jobs:
                self.idle.set()
            if not self.cond.wait_for(lambda: bool(self.jobs), timeout=self.linger):
                self.thread = None
                return None
            return self.jobs.popleft()


_background = _Background()


def _forget_background() -> None:
    # A forked child has no background thread, whatever the parent's state was.
    global _background
    _background = _Background()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_background)


@atexit.register
def _finish_at_exit() -> None:
    # The work given to the background thread is done before the interpreter goes: a
    # management command's derived files are made before the command ends. A job that hangs
    # (a storage outage) does not hold the process forever: what it leaves, the sweeper makes.
    if not _background.idle.wait(EXIT_WAIT):
        with _background.cond:
            left = len(_background.jobs)
        logger.warning(
            "imagegen: background work still running after %s s at exit (%d more waiting); "
            "imagegen_sweep makes what it leaves",
            EXIT_WAIT,
            left,
        )


def watch_requests() -> None:
    """Connect the request receivers that :func:`after_response` relies on (idempotent)."""
    request_started.connect(_request_started, dispatch_uid="imagegen.request_started")
    request_finished.connect(_request_finished, dispatch_uid="imagegen.request_finished")


def _request_started(**kwargs: Any) -> None:
    # Work left by a request that never finished (its response failed to close) is kept: it
    # runs at the end of this one.
    if getattr(_after_response, "jobs", None) is None:
        _after_response.jobs = []


def _request_finished(**kwargs: Any) -> None:
    jobs = getattr(_after_response, "jobs", None)
    _after_response.jobs = None
    if not jobs:
        return
    for job in jobs:
        _run(job)
    # Django closed the request's connections before this receiver ran; the jobs opened new
    # ones, which would stay open until this thread serves its next request. Close them as
    # Django would (a connection inside a transaction, as in a test, is left alone).
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def _run(job: Callable[[], Any]) -> None:
    try:
        job()
    except Exception:
        logger.exception("imagegen: work run after the response failed")
