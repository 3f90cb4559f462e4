"""Running one generation: claim the row, call the provider, store, finish, retry or fall back.

:func:`run_generation` is the work of one row, wherever a runner runs it. It claims the row,
calls the provider (resuming a job the provider accepted earlier), stores the images through a
:class:`~imagegen.pipeline.storing.Store` and records the outcome: succeeded, filtered, failed,
or back to ``queued`` for a runner's retry when that cannot pay twice (:func:`may_retry`).
When a provider failure leaves the preset's next provider to try, the fallback's row is
recorded here and returned in the :class:`RunResult`: dispatching it is the runner's job.
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

from imagegen.exceptions import (
    ImagegenError,
    ModelUnavailable,
    ProviderUnavailable,
    RateLimited,
)
from imagegen.models import JOB_SEPARATOR, Generation, Status
from imagegen.money import format_cost
from imagegen.pipeline import rollups
from imagegen.pipeline.budgets import settle
from imagegen.pipeline.leases import Heartbeat, Lease, LeaseLost, claim
from imagegen.pipeline.planning import inputs_of, params_of
from imagegen.pipeline.recording import record_request
from imagegen.pipeline.storing import Store
from imagegen.providers import get_provider
from imagegen.signals import announce
from imagegen.types import CallContext, ImageOutput

logger = logging.getLogger("imagegen")

#: Errors after which the next provider of a preset's fallback list is tried.
FALLBACK_ERRORS = (ProviderUnavailable, RateLimited, ModelUnavailable)
#: Error codes after which the request may have reached the provider (and been billed): a
#: retry would send it again, so it is retried only to resume an accepted job. ``time_limit``
#: is a task runner's soft time limit interrupting the call.
MAYBE_SENT = frozenset({"timeout", "connection_lost", "time_limit"})
#: Error codes after which the provider may still hold the accepted job: a retry polls it
#: again rather than paying for a new one.
RESUMABLE = MAYBE_SENT | {"worker_lost"}
#: The ledger's precision: costs are stored with six decimals.
CENT_FRACTION = Decimal("0.000001")


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """What :func:`run_generation` did with a row."""

    #: The row, in its final state (or ``queued`` again, or ``running`` if not this run's).
    generation: Generation
    #: The ``queued`` row of the preset's next provider, recorded because this one failed over.
    fallback: Generation | None = None


def run_generation(
    generation: Generation,
    *,
    retrying: bool = False,
    target: models.Model | None = None,
    lease: Lease | None = None,
    deadline: float | None = None,
    claimed: bool = False,
) -> RunResult:
    """Execute the queued ``generation`` once and return what happened.

    See :func:`imagegen.services.run_generation`, which runs the fallback this returns.
    ``claimed`` says the row was recorded already claimed for this run
    (:func:`~imagegen.pipeline.recording.record_request`), so it is not claimed again.
    """
    if not claimed and not claim(generation, lease):
        return RunResult(generation=generation)
    run = _Run(
        resumable=bool(generation.provider_job_id),
        # A run that resumes the job of a call recorded as unconfirmed confirms its charge.
        confirms=generation.unconfirmed_cost if generation.provider_job_id else Decimal(0),
    )
    heartbeat = Heartbeat(generation, lease).start() if lease is not None else None
    try:
        return _execute(generation, run, retrying, target, deadline)
    finally:
        if heartbeat is not None:
            heartbeat.stop()


def is_resumable(generation: Generation) -> bool:
    """Return whether the row's provider job may still finish, so a retry should poll it."""
    single_call = len(params_of(generation).calls or (1,)) == 1
    return bool(generation.provider_job_id) and single_call and generation.error_code in RESUMABLE


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
    ids = generation.job_ids
    if resumable and len(ids) >= call and all(ids[:call]):
        if call < len(ids) and ids[call]:
            return True
        return error.code not in MAYBE_SENT
    if charged:
        return False
    return error.code not in MAYBE_SENT


@dataclass
class _Run:
    """What one execution has produced so far, so a failure can be undone and billed."""

    cost: Decimal = Decimal(0)
    charged: bool = False
    #: Estimates of calls the provider probably billed, without saying what.
    unconfirmed: Decimal = Decimal(0)
    #: The estimate of the call in progress, charged as unconfirmed if its outcome is unknown.
    call_estimate: Decimal = Decimal(0)
    #: The row's unconfirmed charges that this run's resumed jobs confirm when they report.
    confirms: Decimal = Decimal(0)
    usage: dict[str, Any] = field(default_factory=dict)
    outputs: list[ImageOutput] = field(default_factory=list)
    filtered: bool = False
    timings: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: Whether the provider accepted a job this run (or an earlier one) can resume by polling.
    resumable: bool = False
    #: The index of the provider call in progress (of a split request), or the last one made.
    call: int = 0
    #: The files and the field this run wrote, to undo on failure.
    store: Store = field(default_factory=Store)
    started: float = field(default_factory=time.monotonic)

    def bill(self, error: ImagegenError) -> None:
        """Keep the charge of a call the provider billed before its answer was refused."""
        self.charged = True
        self.add_usage(dict(error.usage))
        if error.cost is not None:
            self.cost += error.cost
            return
        self.unconfirmed += self.call_estimate
        self.warnings.append(
            f"The provider billed this call before its answer was refused ({error.code}); its "
            f"estimate, {format_cost(self.call_estimate)}, is recorded as an unconfirmed charge."
        )

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
    retrying: bool,
    target: models.Model | None,
    deadline: float | None,
) -> RunResult:
    try:
        _call_provider(generation, run, deadline)
        if run.filtered and not run.outputs:
            return RunResult(generation=_finish(generation, run, Status.FILTERED))
        stored = run.store.store(run.outputs)
        try:
            with transaction.atomic():
                run.store.save_images(generation, stored, target)
                finished = _finish(generation, run, Status.SUCCEEDED, images=len(stored))
        except Exception:
            # The writes rolled back: read the row again, so its failure is recorded from the
            # state the database holds, not from the succeeded one this process had set.
            generation.refresh_from_db()
            raise
        # The rows are saved, but a caller's transaction may still roll them back: the new
        # files go with them then. Outside a transaction this does nothing.
        run.store.delete_on_rollback()
        return RunResult(generation=finished)
    except ImagegenError as err:
        return _failed(generation, run, err, retrying, target)
    except ImproperlyConfigured as err:
        # A missing key or a broken alias: the editor needs the message, not a traceback.
        run.store.undo()
        failure = ImagegenError(str(err), code="configuration_error")
        return RunResult(generation=_finish(generation, run, Status.FAILED, error=failure))
    except Exception as err:
        if _is_time_limit(err):
            failure = ImagegenError(
                "The generation ran out of the time its task runner allows.",
                code="time_limit",
                retryable=True,
            )
            return _failed(generation, run, failure, retrying, target)
        run.store.undo()
        logger.exception("imagegen: generation %s failed unexpectedly", generation.pk)
        failure = ImagegenError(
            f"Unexpected error ({type(err).__name__}); see the server log.", code="internal_error"
        )
        return RunResult(generation=_finish(generation, run, Status.FAILED, error=failure))


def _call_provider(generation: Generation, run: _Run, deadline: float | None = None) -> None:
    provider = get_provider(generation.provider)
    requests = params_of(generation).requests(generation)
    total = sum(request.count for request in requests) or 1
    # One job id per call of a split request, by position ("" for a call not yet accepted):
    # a redelivered task resumes every accepted job, finished ones included (their results
    # are fetched again), and submits only the calls the provider never accepted.
    known = generation.job_ids
    ids = [known[index] if index < len(known) else "" for index in range(len(requests))]

    for index, request in enumerate(requests):

        def on_job_accepted(job_id: str, index: int = index) -> None:
            # Persist before the first poll, so a redelivered task resumes instead of
            # resubmitting. Fenced like every write of a run: a worker that was taken over
            # learns it here.
            ids[index] = job_id
            value = _joined(ids)
            if not generation.held().update(provider_job_id=value, updated_at=timezone.now()):
                raise LeaseLost(f"Generation {generation.pk} was taken over by another worker.")
            generation.provider_job_id = value
            run.resumable = True

        context = CallContext(
            resume_job_id=ids[index] or None,
            on_job_accepted=on_job_accepted,
            deadline=deadline,
        )
        run.call, started = index, time.monotonic()
        share = generation.estimated_cost * request.count / total
        run.call_estimate = share.quantize(CENT_FRACTION)
        try:
            result = provider.generate(request, context=context)
        except ImagegenError as err:
            if err.billed:
                run.bill(err)
            raise
        finally:
            run.timed("provider_ms", started)
        run.charged = True
        run.cost += result.cost or Decimal(0)
        run.add_usage(dict(result.usage))
        run.warnings.extend(result.warnings)
        run.filtered = run.filtered or result.filtered
        run.outputs.extend(result.images)
        if result.job_id:
            ids[index] = result.job_id
    generation.provider_job_id = _joined(ids)


def _joined(ids: list[str]) -> str:
    """Return the stored form of per-call job ids: positions kept, trailing blanks dropped."""
    return JOB_SEPARATOR.join(ids).rstrip(JOB_SEPARATOR)


def _finish(
    generation: Generation,
    run: _Run,
    status: str,
    *,
    error: ImagegenError | None = None,
    images: int = 0,
) -> Generation:
    timings = {**run.timings}
    for step, value in run.store.timings.items():
        timings[step] = timings.get(step, 0) + value
    timings["total_ms"] = round((time.monotonic() - run.started) * 1000)
    if error is not None and error.code in MAYBE_SENT and not error.billed:
        # The request may have reached the provider, which then billed it without an answer.
        run.unconfirmed += run.call_estimate
        run.warnings.append(
            f"The provider may have charged for the call that ended in {error.code}; its "
            f"estimate, {format_cost(run.call_estimate)}, is recorded as an unconfirmed charge."
        )
    # A row run again (a retry from the admin after a charged failure) keeps what its earlier
    # runs were charged: the ledger's totals are what the provider billed, every time.
    prior = generation.cost
    cost = run.cost + (prior or Decimal(0)) if run.charged else prior
    unconfirmed = run.unconfirmed - (run.confirms if run.charged else Decimal(0))
    held = generation.reservation
    fields: dict[str, Any] = {
        "finished_at": timezone.now(),
        "usage": run.usage,
        "timings": timings,
        "warnings": list(generation.warnings) + run.warnings + run.store.warnings,
        "cost": cost,
        "unconfirmed_cost": generation.unconfirmed_cost + unconfirmed,
        "reservation": {},
        "provider_job_id": generation.provider_job_id,
    }
    if error is not None:
        fields["error_code"] = error.code
        fields["error_message"] = str(error)[:2000]
    else:  # an earlier attempt's retryable error is history once the job succeeds
        fields["error_code"] = fields["error_message"] = ""
    # A success is written inside _execute's transaction, which the LeaseLost below rolls back
    # whole: a savepoint of its own would protect nothing. Any other ending may be written
    # inside a caller's transaction, which must go on when this row was taken over.
    try:
        with transaction.atomic(savepoint=status != Status.SUCCEEDED):
            # The caps' running totals change in the transaction that records the charge, and
            # first: recording a row locks them before the rollups too, so two transactions
            # never wait for each other's locks in opposite orders.
            settle(held, charged=run.cost if run.charged else Decimal(0), unconfirmed=unconfirmed)
            # The fenced update, counted in the rollups.
            if not rollups.transition(generation, status, images=images, **fields):
                raise _TakenOver
    except _TakenOver:
        if status == Status.SUCCEEDED:  # roll back the images and the attached field
            raise LeaseLost(
                f"Generation {generation.pk} was taken over by another worker."
            ) from None
        return generation
    announce(generation)
    return generation


class _TakenOver(Exception):
    """The row changed under this run: roll back what its outcome would have written."""


def _failed(
    generation: Generation,
    run: _Run,
    err: ImagegenError,
    retrying: bool,
    target: models.Model | None,
) -> RunResult:
    """Undo the run and record ``err``: requeue and re-raise it for a retry, or fail the row."""
    run.store.undo()
    if isinstance(err, LeaseLost):
        logger.warning("imagegen: generation %s: %s", generation.pk, err)
        return RunResult(generation=generation)
    if retrying and may_retry(
        generation, err, charged=run.charged, resumable=run.resumable, call=run.call
    ):
        # This run's charges are not recorded: a row is only requeued when the next run cannot
        # pay twice, that is when every charged call is a job the next run resumes, and the
        # provider reports those jobs' cost again when they are polled.
        if generation.transition(Status.QUEUED, error_code=err.code, error_message=str(err)[:2000]):
            raise err
        return RunResult(generation=generation)  # taken over: the other worker owns the row
    _finish(generation, run, Status.FAILED, error=err)
    return RunResult(generation=generation, fallback=_fall_back(generation, err, target))


def _is_time_limit(err: BaseException) -> bool:
    """Return whether ``err`` is a task runner's soft time limit (Celery's, not imported)."""
    return any(cls.__name__ == "SoftTimeLimitExceeded" for cls in type(err).__mro__)


def _fall_back(
    generation: Generation, error: ImagegenError, target: models.Model | None
) -> Generation | None:
    """Record the row of the preset's next provider after ``error``, or return None."""
    params = params_of(generation)
    if not params.fallbacks or not isinstance(error, FALLBACK_ERRORS):
        return None
    logger.info("imagegen: generation %s failed on %s; trying %s", generation.pk,
                generation.provider, params.fallbacks[0])  # fmt: skip
    if target is None and generation.content_type_id:
        target = generation.target
    try:
        return record_request(
            prompt=params.subject,
            preset=generation.preset,
            provider=params.fallbacks[0],
            target=target,
            field=generation.field_name or None,
            count=generation.count,
            user=generation.created_by,
            attach=params.attach,
            fallback_of=generation,
            **inputs_of(generation),
            **params.args,
        )
    except ImagegenError as err:
        logger.warning("imagegen: fallback for generation %s failed: %s", generation.pk, err)
        return None
