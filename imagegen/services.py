"""The pipeline's entry points: request -> provider -> image checks -> storage -> ledger.

:func:`generate` plans and records a request and hands it to the task runner;
:func:`run_generation` does the work for one row, wherever the runner runs it. It is the only
code that touches the ORM, storage and signals on behalf of providers. The work itself lives in
:mod:`imagegen.bulk` (writing ledger rows), :mod:`imagegen.leases` (claims, fencing and
heartbeats), :mod:`imagegen.execution` (calling the provider, finishing, retries and
fallbacks) and :mod:`imagegen.storing` (saving and attaching images); the names other code
imports from here are re-exported.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.db import models

from imagegen import planning
from imagegen.budgets import check_budget
from imagegen.bulk import BULK_BATCH, BulkResult, _BatchBudget, _build_row, _generate_batch, _record
from imagegen.exceptions import BudgetExceeded, ImagegenError
from imagegen.execution import (
    FALLBACK_ERRORS,
    MAYBE_SENT,
    _call_provider,
    _execute,
    _failed,
    _fall_back,
    _finish,
    _is_time_limit,
    _requeue,
    _Run,
    may_retry,
)
from imagegen.leases import (
    Lease,
    LeaseLost,
    _announce,
    _claim,
    _fenced,
    _Heartbeat,
    _transition,
    recover_lost,
)
from imagegen.models import Generation
from imagegen.signals import generation_finished
from imagegen.storing import _alt_text, _derive, _save_file, _save_images, _store, _undo, attach

__all__ = [
    "BULK_BATCH",
    "FALLBACK_ERRORS",
    "MAYBE_SENT",
    "BulkResult",
    "Lease",
    "LeaseLost",
    "attach",
    "cost_for",
    "estimate",
    "generate",
    "generate_many",
    "generation_finished",
    "iter_generate_many",
    "may_retry",
    "recover_lost",
    "run_generation",
]

# Internal helpers that tests, benchmarks and older callers import from this module. To patch
# one, patch it where it is looked up (e.g. ``imagegen.execution._store``), not here.
_REEXPORTED = (
    _BatchBudget, _build_row, _generate_batch, _record, _call_provider, _execute, _fall_back,
    _failed, _finish, _is_time_limit, _requeue, _Run, _announce, _claim, _fenced, _Heartbeat,
    _transition, _alt_text, _derive, _save_file, _save_images, _store, _undo,
)  # fmt: skip


def generate(
    *,
    prompt: str | None = None,
    preset: str | None = None,
    provider: str | None = None,
    target: models.Model | None = None,
    field: str | None = None,
    count: int = 1,
    user: Any = None,
    **params: Any,
) -> Generation:
    """Generate ``count`` images and return the ledger row.

    ``prompt`` is the subject (a ``GeneratedImageField``'s prompt template supplies it when a
    ``target`` is given); the preset adds style, details, lighting and quality. With the
    immediate runner the row comes back finished; with a queue it comes back ``queued`` and is
    dispatched when the current transaction commits. Raises
    :class:`~imagegen.exceptions.BudgetExceeded` before writing anything if a budget would be
    broken, and :class:`~imagegen.exceptions.UnsupportedRequest` for requests that cannot work.
    """
    plan = planning.make_plan(
        prompt=prompt, preset=preset, provider=provider, target=target, field=field,
        count=count, **params,
    )  # fmt: skip
    warnings = list(plan.warnings) + check_budget(plan.estimated_cost, user)
    generation = _record(plan, user=user, warnings=warnings)
    from imagegen.runners import get_runner

    runner = get_runner()
    if runner.is_immediate:
        # The image is attached to the caller's own instance, so it is up to date on return.
        return runner.enqueue(generation, target=target)
    return runner.enqueue(generation)


def estimate(**kwargs: Any) -> Decimal:
    """Return what :func:`generate` with the same arguments would cost; call and write nothing."""
    kwargs.pop("user", None)
    return planning.make_plan(**kwargs).estimated_cost


def generate_many(
    targets: Iterable[models.Model],
    field: str | None = None,
    *,
    user: Any = None,
    batch_size: int = BULK_BATCH,
    prompt_for: Callable[[models.Model], str | None] | None = None,
    batch: uuid.UUID | None = None,
    **kwargs: Any,
) -> BulkResult:
    """Generate for many objects at once, like :func:`generate` for each, in batches.

    ``kwargs`` are :func:`generate`'s (``preset``, ``provider``, ``count``, ``prompt``...).
    Each batch of ``batch_size`` objects is planned in memory, written with one
    ``bulk_create`` and dispatched from one ``on_commit`` callback, so a thousand objects
    take a handful of queries per batch and memory stays flat (``targets`` is read lazily:
    pass a generator or ``queryset.iterator()`` for large selections). With the immediate
    runner each row still runs in turn. A budget is checked against the month's spend once
    per batch; in "block" mode the first object that would break it stops the run.
    ``prompt_for(target)`` may return a subject prompt of the target's own (an editor's edit),
    used instead of ``prompt`` or the field's template; ``None`` or ``""`` keeps the default.
    ``batch`` is stored on every row, so the run can be followed and found in the ledger.
    """
    result = BulkResult()
    for target, outcome in iter_generate_many(
        targets,
        field,
        user=user,
        batch_size=batch_size,
        prompt_for=prompt_for,
        batch=batch,
        **kwargs,
    ):
        if isinstance(outcome, Generation):
            result.generations.append(outcome)
        else:
            result.errors.append((target, outcome))
            if isinstance(outcome, BudgetExceeded):
                result.stopped = outcome
    return result


def iter_generate_many(
    targets: Iterable[models.Model],
    field: str | None = None,
    *,
    user: Any = None,
    batch_size: int = BULK_BATCH,
    prompt_for: Callable[[models.Model], str | None] | None = None,
    batch: uuid.UUID | None = None,
    **kwargs: Any,
) -> Iterator[tuple[models.Model, Generation | ImagegenError]]:
    """Yield ``(target, row or error)`` for each target, as :func:`generate_many` makes them.

    Outcomes come a batch at a time, in target order. A ``BudgetExceeded`` outcome is the
    last one.
    """
    from imagegen.runners import get_runner

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    runner, chunk = get_runner(), []
    for target in targets:
        chunk.append(target)
        if len(chunk) >= batch_size:
            outcomes = _generate_batch(chunk, field, user, runner, kwargs, prompt_for, batch)
            yield from outcomes
            if outcomes and isinstance(outcomes[-1][1], BudgetExceeded):
                return
            chunk = []
    if chunk:
        yield from _generate_batch(chunk, field, user, runner, kwargs, prompt_for, batch)


def run_generation(
    pk: int | Generation,
    *,
    retrying: bool = False,
    target: models.Model | None = None,
    lease: Lease | None = None,
    deadline: float | None = None,
) -> Generation:
    """Execute the queued generation ``pk`` once; return the row in its final (or queued) state.

    Claiming the row is a conditional update, so a duplicate delivery of the same job does
    nothing, and a finished job is never run again. On failure the row ends ``failed`` with a
    code and a readable message, files written for it are deleted and the target is untouched.
    With ``retrying=True`` a retryable error puts the row back to ``queued`` and re-raises, for a
    task runner to schedule a retry, unless retrying could pay twice (see :func:`may_retry`).
    ``target`` is the row's target instance when the caller has it (the immediate runner): the
    image is set on it directly, and its field is restored if the generation fails. In-process
    runners may pass the row itself instead of its primary key, saving a query.

    Queued runners pass a :class:`Lease`: the row is kept alive by a heartbeat while the job
    runs, and a ``running`` row whose worker died is taken over (a job the provider accepted
    resumes polling, never submitting again). ``deadline`` is a ``time.monotonic()`` value by
    which the provider must give up, such as just before the task's soft time limit.
    """
    generation = pk if isinstance(pk, Generation) else Generation.objects.get(pk=pk)
    if not _claim(generation, lease):
        return generation
    run, started = _Run(resumable=bool(generation.provider_job_id)), time.monotonic()
    heartbeat = _Heartbeat(generation, lease).start() if lease is not None else None
    try:
        return _execute(generation, run, started, retrying, target, deadline)
    finally:
        if heartbeat is not None:
            heartbeat.stop()


def cost_for(obj: models.Model) -> Decimal:
    """Return the total actual cost of every generation made for ``obj``."""
    return Generation.objects.for_object(obj).total_cost()
