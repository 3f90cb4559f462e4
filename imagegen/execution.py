"""Executing one claimed generation: call the provider, store, finish, retry or fall back.

:func:`imagegen.services.run_generation` claims the row and hands it to :func:`_execute`, which
records the outcome on the row: succeeded, filtered, failed (then maybe a fallback provider),
or back to ``queued`` for a task runner's retry when that cannot pay twice (:func:`may_retry`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models, transaction
from django.utils import timezone

from imagegen import planning
from imagegen.exceptions import (
    ImagegenError,
    ModelUnavailable,
    ProviderUnavailable,
    RateLimited,
)
from imagegen.leases import LeaseLost, _announce, _fenced, _transition
from imagegen.models import Generation, Status
from imagegen.providers import get_provider
from imagegen.storage import delete_on_rollback
from imagegen.storing import _save_images, _store, _undo
from imagegen.types import CallContext, ImageOutput

logger = logging.getLogger("imagegen")

#: Errors after which the next provider of a preset's fallback list is tried.
FALLBACK_ERRORS = (ProviderUnavailable, RateLimited, ModelUnavailable)
#: Error codes after which the request may have reached the provider (and been billed): a
#: retry would send it again, so it is retried only to resume an accepted job. ``time_limit``
#: is a task runner's soft time limit interrupting the call.
MAYBE_SENT = frozenset({"timeout", "connection_lost", "time_limit"})


@dataclass
class _Run:
    """What one execution has produced so far, so a failure can be undone and billed."""

    cost: Decimal = Decimal(0)
    charged: bool = False
    usage: dict[str, Any] = field(default_factory=dict)
    outputs: list[ImageOutput] = field(default_factory=list)
    filtered: bool = False
    created_files: list[tuple[Any, str]] = field(default_factory=list)
    timings: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: (instance, field name, previous file name) to put back if the run fails after attaching.
    restore: tuple[Any, str, str] | None = None
    #: Whether the provider accepted a job this run (or an earlier one) can resume by polling.
    resumable: bool = False
    #: The index of the provider call in progress (of a split request), or the last one made.
    call: int = 0

    def undo_attach(self) -> None:
        if self.restore is not None:
            target, field_name, previous = self.restore
            setattr(target, field_name, previous)
            self.restore = None

    def add_usage(self, usage: dict[str, Any]) -> None:
        for key, value in usage.items():
            if isinstance(value, (int, float)) and isinstance(self.usage.get(key, 0), (int, float)):
                self.usage[key] = self.usage.get(key, 0) + value
            else:
                self.usage[key] = value

    def timed(self, step: str, started: float) -> None:
        self.timings[step] = self.timings.get(step, 0) + round((time.monotonic() - started) * 1000)


def _execute(
    generation: Generation,
    run: _Run,
    started: float,
    retrying: bool,
    target: models.Model | None,
    deadline: float | None,
) -> Generation:
    try:
        _call_provider(generation, run, deadline)
        if run.filtered and not run.outputs:
            return _finish(generation, run, started, Status.FILTERED)
        stored = _store(run)
        with transaction.atomic():
            _save_images(generation, stored, run, target)
            finished = _finish(generation, run, started, Status.SUCCEEDED)
        # The rows are saved, but a caller's transaction may still roll them back: the new
        # files go with them then. Outside a transaction this does nothing.
        delete_on_rollback(run.created_files)
        return finished
    except ImagegenError as err:
        return _failed(generation, run, started, err, retrying)
    except ImproperlyConfigured as err:
        # A missing key or a broken alias: the editor needs the message, not a traceback.
        _undo(run)
        failure = ImagegenError(str(err), code="configuration_error")
        return _finish(generation, run, started, Status.FAILED, error=failure)
    except Exception as err:
        if _is_time_limit(err):
            failure = ImagegenError(
                "The generation ran out of the time its task runner allows.",
                code="time_limit",
                retryable=True,
            )
            return _failed(generation, run, started, failure, retrying)
        _undo(run)
        logger.exception("imagegen: generation %s failed unexpectedly", generation.pk)
        failure = ImagegenError(
            f"Unexpected error ({type(err).__name__}); see the server log.", code="internal_error"
        )
        return _finish(generation, run, started, Status.FAILED, error=failure)


def _call_provider(generation: Generation, run: _Run, deadline: float | None = None) -> None:
    provider = get_provider(generation.provider)
    requests = planning.requests_from_row(generation)
    # One job id per call of a split request, by position ("" for a call not yet accepted):
    # a redelivered task resumes every accepted job, finished ones included (their results
    # are fetched again), and submits only the calls the provider never accepted.
    known = generation.provider_job_id.split(JOB_SEPARATOR) if generation.provider_job_id else []
    job_ids = [known[index] if index < len(known) else "" for index in range(len(requests))]

    for index, request in enumerate(requests):

        def on_job_accepted(job_id: str, index: int = index) -> None:
            # Persist before the first poll, so a redelivered task resumes instead of
            # resubmitting. Fenced like every write of a run: a worker that was taken over
            # learns it here.
            job_ids[index] = job_id
            value = _joined(job_ids)
            if not _fenced(generation).update(provider_job_id=value, updated_at=timezone.now()):
                raise LeaseLost(f"Generation {generation.pk} was taken over by another worker.")
            generation.provider_job_id = value
            run.resumable = True

        context = CallContext(
            resume_job_id=job_ids[index] or None,
            on_job_accepted=on_job_accepted,
            deadline=deadline,
        )
        run.call, started = index, time.monotonic()
        result = provider.generate(request, context=context)
        run.timed("provider_ms", started)
        run.charged = True
        run.cost += result.cost or Decimal(0)
        run.add_usage(dict(result.usage))
        run.warnings.extend(result.warnings)
        run.filtered = run.filtered or result.filtered
        run.outputs.extend(result.images)
        if result.job_id:
            job_ids[index] = result.job_id
    generation.provider_job_id = _joined(job_ids)


#: Between the job ids of a split request's calls on ``Generation.provider_job_id``.
JOB_SEPARATOR = ","


def _joined(job_ids: list[str]) -> str:
    """Return the stored form of per-call job ids: positions kept, trailing blanks dropped."""
    return JOB_SEPARATOR.join(job_ids).rstrip(JOB_SEPARATOR)


def _finish(
    generation: Generation,
    run: _Run,
    started: float,
    status: str,
    *,
    error: ImagegenError | None = None,
) -> Generation:
    run.timings["total_ms"] = round((time.monotonic() - started) * 1000)
    # A row run again (a retry from the admin after a charged failure) keeps what its earlier
    # runs were charged: the ledger's totals are what the provider billed, every time.
    prior = generation.cost
    cost = run.cost + (prior or Decimal(0)) if run.charged else prior
    fields: dict[str, Any] = {
        "finished_at": timezone.now(),
        "usage": run.usage,
        "timings": run.timings,
        "warnings": list(generation.warnings) + run.warnings,
        "cost": cost,
        "provider_job_id": generation.provider_job_id,
    }
    if error is not None:
        fields["error_code"] = error.code
        fields["error_message"] = str(error)[:2000]
    else:  # an earlier attempt's retryable error is history once the job succeeds
        fields["error_code"] = fields["error_message"] = ""
    if not _transition(generation, status, **fields):
        if status == Status.SUCCEEDED:  # roll back the images and the attached field
            raise LeaseLost(f"Generation {generation.pk} was taken over by another worker.")
        return generation
    _announce(generation)
    return generation


def _requeue(generation: Generation, error: ImagegenError) -> bool:
    # This run's charges are not recorded: a row is only requeued when the next run cannot pay
    # twice, that is when every charged call is a job the next run resumes, and the provider
    # reports those jobs' cost again when they are polled. Recording it here would count it
    # twice.
    return _transition(
        generation, Status.QUEUED, error_code=error.code, error_message=str(error)[:2000]
    )


def _failed(
    generation: Generation, run: _Run, started: float, err: ImagegenError, retrying: bool
) -> Generation:
    """Undo the run and record ``err``: requeue and re-raise it for a retry, or fail the row."""
    _undo(run)
    if isinstance(err, LeaseLost):
        logger.warning("imagegen: generation %s: %s", generation.pk, err)
        return generation
    if retrying and may_retry(
        generation, err, charged=run.charged, resumable=run.resumable, call=run.call
    ):
        if _requeue(generation, err):
            raise err
        return generation  # taken over meanwhile: the other worker owns the row
    _finish(generation, run, started, Status.FAILED, error=err)
    return _fall_back(generation, err) or generation


def may_retry(
    generation: Generation,
    error: ImagegenError,
    *,
    charged: bool,
    resumable: bool,
    call: int = 0,
) -> bool:
    """Return whether running ``generation`` again after ``error`` cannot pay twice.

    A billable request is never blindly sent again: a retry is allowed when the error is
    retryable and either the provider accepted a job the retry resumes by polling, or nothing
    was charged and the request surely did not reach the provider (``connection_failed``, a
    refusal such as 429...). After ``timeout``, ``connection_lost`` or ``time_limit`` without
    an accepted job the provider may have billed the request, and after a charged call (a
    storage failure) it has: the row fails with that code instead, and an editor decides
    whether to try again.

    A split request (``call`` is the index of the call that failed) is resumable when every
    call before it was accepted as a job: the retry polls those again and fetches their
    results instead of buying them twice. The failing call itself must have been accepted
    too, or surely not have reached the provider.
    """
    if not error.retryable:
        return False
    ids = generation.provider_job_id.split(JOB_SEPARATOR) if generation.provider_job_id else []
    if resumable and len(ids) >= call and all(ids[:call]):
        if call < len(ids) and ids[call]:
            return True
        return error.code not in MAYBE_SENT
    if charged:
        return False
    return error.code not in MAYBE_SENT


def _is_time_limit(err: BaseException) -> bool:
    """Return whether ``err`` is a task runner's soft time limit (Celery's, not imported)."""
    return any(cls.__name__ == "SoftTimeLimitExceeded" for cls in type(err).__mro__)


def _fall_back(generation: Generation, error: ImagegenError) -> Generation | None:
    fallbacks = list(generation.params.get("fallbacks") or [])
    if not fallbacks or not isinstance(error, FALLBACK_ERRORS):
        return None
    logger.info("imagegen: generation %s failed on %s; trying %s", generation.pk,
                generation.provider, fallbacks[0])  # fmt: skip
    from imagegen.services import generate

    target = generation.target if generation.content_type_id else None
    try:
        fallback = generate(
            prompt=generation.params.get("subject"),
            preset=generation.preset,
            provider=fallbacks[0],
            target=target,
            field=generation.field_name or None,
            count=generation.count,
            user=generation.created_by,
            attach=bool(generation.params.get("attach", True)),
            **(generation.params.get("args") or {}),
        )
    except ImagegenError as err:
        logger.warning("imagegen: fallback for generation %s failed: %s", generation.pk, err)
        return None
    # ``generate`` returned the last row of its own chain; link the first one to this row.
    head = fallback
    while head.fallback_of is not None:
        head = head.fallback_of
    Generation.objects.filter(pk=head.pk).update(fallback_of=generation)
    head.fallback_of = generation
    return fallback
