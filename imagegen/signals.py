"""The signals imagegen sends, and the request signals it listens to for after-response work.

:func:`after_response` runs a callable once the HTTP response of the current request has been
sent, or at once outside a request. The immediate runner makes derived files this way
(:meth:`imagegen.runners.BaseRunner.derive_later`): not inside the request, and in the same
process, without a task queue. Django sends ``request_started`` when a request begins and
``request_finished`` when the response is closed, which the WSGI server does after writing its
last byte and the ASGI handler after sending its last body message; work queued during the
request runs from the latter, on the thread that served the request. Work queued there is lost
if the process is killed first: whatever it had to make, the sweeper finds and makes later.
:func:`watch_requests` connects the receivers (``AppConfig.ready`` calls it).
"""

from __future__ import annotations

import logging
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


#: Per thread: the callables waiting for the end of the request being served (None outside one).
_after_response = threading.local()


def after_response(job: Callable[[], Any]) -> None:
    """Run ``job`` after the current request's response is sent; at once outside a request.

    A failing job is logged, never raised: the response, or the caller, is not its concern.
    """
    waiting = getattr(_after_response, "jobs", None)
    if waiting is None:
        _run(job)
    else:
        waiting.append(job)


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
