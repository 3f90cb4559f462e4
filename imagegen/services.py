"""The pipeline's public API: generate, estimate, run, retry and cancel, and what things cost.

Admin views, management commands, template tags and webhooks call these functions; they call
the runners and the :mod:`imagegen.pipeline` package, which do the work: :func:`generate`
plans and records a request (:mod:`~imagegen.pipeline.recording`) and hands it to the task
runner, which runs it with :func:`run_generation` wherever it runs
(:mod:`~imagegen.pipeline.run`). Nothing below calls back up here.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from imagegen.exceptions import BudgetExceeded, ImagegenError, UnsupportedRequest
from imagegen.fields import GeneratedImageField, resolve_field
from imagegen.models import Generation, ProviderBatch, Status
from imagegen.money import format_cost
from imagegen.pipeline import batches, rollups
from imagegen.pipeline.budgets import Budget, settle
from imagegen.pipeline.inputs import current_image, outpaint_padding
from imagegen.pipeline.leases import Lease
from imagegen.pipeline.planning import Offer, Plan, make_plan, offers
from imagegen.pipeline.recording import record_batch, record_request
from imagegen.pipeline.run import is_resumable
from imagegen.pipeline.storing import attach, clear_selected, mark_selected
from imagegen.presets import get_preset
from imagegen.runners import execute, get_runner
from imagegen.signals import announce
from imagegen.types import Spend

logger = logging.getLogger("imagegen")

__all__ = [
    "ALREADY_FITS",
    "BULK_BATCH",
    "MODES",
    "NO_SOURCE",
    "RETRYABLE",
    "BulkResult",
    "NotRetryable",
    "attach",
    "batch_estimate",
    "cancel",
    "cancel_batch",
    "clear_selected",
    "cost_for",
    "estimate",
    "generate",
    "generate_many",
    "iter_generate_many",
    "mark_selected",
    "nothing_to_do",
    "operations_for",
    "plan",
    "poll_batches",
    "resume_job",
    "retry",
    "run_generation",
    "spend_for",
]

#: Rows :func:`generate_many` plans, inserts and dispatches at a time.
BULK_BATCH = 200
#: How a bulk run runs: ``"now"`` (each request as its own call) or ``"batch"`` (the
#: provider's batch API: within 24 hours, at the batch price, about half).
MODES = ("now", "batch")
#: Statuses a generation can be retried from.
RETRYABLE = frozenset({Status.FAILED, Status.CANCELED})
#: :func:`nothing_to_do`'s answers: the field holds no image to work on...
NO_SOURCE = "no_source"
#: ...or an outpaint to the preset's shape has nothing to add.
ALREADY_FITS = "already_fits"


class NotRetryable(ImagegenError):
    """The generation is not failed or canceled (any more), so it cannot be retried."""

    code = "not_retryable"


@dataclass
class BulkResult:
    """What :func:`generate_many` did."""

    #: The rows written (queued, or finished with the immediate runner), in target order.
    generations: list[Generation] = field(default_factory=list)
    #: ``(target, error)`` for each object that could not be generated, such as without a
    #: prompt, or over a budget.
    errors: list[tuple[Any, ImagegenError]] = field(default_factory=list)
    #: The budget error that stopped the run; the objects after it were not looked at.
    stopped: BudgetExceeded | None = None
    #: With ``mode="batch"``, the provider batches the rows were submitted in.
    provider_batches: list[ProviderBatch] = field(default_factory=list)


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

    ``operation`` (default ``"generate"``), ``source``, ``mask`` and ``reference`` in
    ``params`` ask for an edit, inpaint, outpaint, erase, upscale or background removal of a
    source image (by default the target field's current image); see
    :func:`imagegen.pipeline.planning.make_plan` and "Image operations" in the API docs.
    """
    runner = get_runner()
    # The immediate runner runs the row here at once: it is recorded claimed, in the INSERT,
    # rather than claimed by a second statement.
    claimed = runner.claims_on_record
    generation = record_request(
        prompt=prompt, preset=preset, provider=provider, target=target, field=field,
        count=count, user=user, claimed=claimed, **params,
    )  # fmt: skip
    if claimed:
        return runner.run_recorded(generation, target=target)
    if runner.is_immediate:
        # The image is attached to the caller's own instance, so it is up to date on return.
        return runner.enqueue(generation, target=target)
    return runner.enqueue(generation)


def plan(*, mode: str = "now", **kwargs: Any) -> Plan:
    """Return what :func:`generate` with the same arguments would do; call and write nothing.

    The plan names the provider, the full prompt, the calls adapted to the model and their
    estimated cost. With ``mode="batch"`` the estimate is the batch price (raises
    ``UnsupportedRequest`` when the provider or model has no batch API).
    """
    _check_mode(mode)
    kwargs.pop("user", None)
    result = make_plan(**kwargs)
    return batches.batch_plan(result) if mode == "batch" else result


def estimate(*, mode: str = "now", **kwargs: Any) -> Decimal:
    """Return what :func:`generate` with the same arguments would cost; call and write nothing.

    ``mode="batch"`` gives the price of the same request in a provider batch (about half).
    """
    return plan(mode=mode, **kwargs).estimated_cost


def batch_estimate(
    planned: Plan, cache: dict[tuple[str, str], Decimal | None] | None = None
) -> Decimal | None:
    """Return what ``planned`` would cost in a provider batch, or None if it cannot run in one.

    ``cache`` (a dict the caller keeps) remembers each alias and model's batch price share,
    for estimating many objects at once.
    """
    if len(planned.calls) != 1:
        return None
    key = (planned.provider.alias, planned.calls[0].model or "")
    if cache is None or key not in cache:
        try:
            factor: Decimal | None = batches.batch_factor(
                batches.batch_provider(key[0]), key[1] or None
            )
        except ImagegenError:
            factor = None
        if cache is None:
            cache = {}
        cache[key] = factor
    factor = cache[key]
    if factor is None:
        return None
    return (planned.estimated_cost * factor).quantize(batches.CENT_FRACTION)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise UnsupportedRequest(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")


def operations_for(target: models.Model, field: str | None = None) -> tuple[Offer, ...]:
    """Return the operations on a source image that an editor can ask for on ``target``'s field.

    A field that names its own provider offers only that provider's operations (an editor's
    choice of provider is checked when planning); otherwise every configured provider counts.
    """
    model_field = resolve_field(target, field)
    alias = getattr(model_field, "provider", None)
    return offers((alias,) if alias else None)


def generate_many(
    targets: Iterable[models.Model],
    field: str | None = None,
    *,
    user: Any = None,
    batch_size: int = BULK_BATCH,
    prompt_for: Callable[[models.Model], str | None] | None = None,
    batch: uuid.UUID | None = None,
    mode: str = "now",
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

    ``mode="batch"`` runs the requests through the provider's batch API instead: within 24
    hours, at the batch price (about half). The rows are written the same way, each holding
    its batch-price estimate on the budget caps, then grouped into provider batches (per
    alias, model and kind of request, up to the provider's limits) and submitted when the
    transaction commits; the sweeper (``imagegen_sweep --batches``) polls them and stores the
    images. An alias or model without a batch API is refused per object, like any request
    that cannot be planned.
    """
    result = BulkResult()
    assembler = batches.Assembler() if mode == "batch" else None
    for target, outcome in _iter_generate(
        targets,
        field,
        user=user,
        batch_size=batch_size,
        prompt_for=prompt_for,
        batch=batch,
        mode=mode,
        assembler=assembler,
        **kwargs,
    ):
        if isinstance(outcome, Generation):
            result.generations.append(outcome)
        else:
            result.errors.append((target, outcome))
            if isinstance(outcome, BudgetExceeded):
                result.stopped = outcome
    if assembler is not None:
        result.provider_batches = assembler.batches
    return result


def iter_generate_many(
    targets: Iterable[models.Model],
    field: str | None = None,
    *,
    user: Any = None,
    batch_size: int = BULK_BATCH,
    prompt_for: Callable[[models.Model], str | None] | None = None,
    batch: uuid.UUID | None = None,
    mode: str = "now",
    **kwargs: Any,
) -> Iterator[tuple[models.Model, Generation | ImagegenError]]:
    """Yield ``(target, row or error)`` for each target, as :func:`generate_many` makes them.

    Outcomes come a batch at a time, in target order. A ``BudgetExceeded`` outcome is the
    last one. With ``mode="batch"`` the provider batches are submitted once the iteration
    ends (or is abandoned), when the transaction commits.
    """
    assembler = batches.Assembler() if mode == "batch" else None
    yield from _iter_generate(
        targets,
        field,
        user=user,
        batch_size=batch_size,
        prompt_for=prompt_for,
        batch=batch,
        mode=mode,
        assembler=assembler,
        **kwargs,
    )


def _iter_generate(
    targets: Iterable[models.Model],
    field: str | None,
    *,
    user: Any,
    batch_size: int,
    prompt_for: Callable[[models.Model], str | None] | None,
    batch: uuid.UUID | None,
    mode: str,
    assembler: batches.Assembler | None,
    **kwargs: Any,
) -> Iterator[tuple[models.Model, Generation | ImagegenError]]:
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    _check_mode(mode)
    runner, chunk = get_runner(), []
    run = (runner, assembler)
    try:
        for target in targets:
            chunk.append(target)
            if len(chunk) >= batch_size:
                outcomes = _generate_batch(chunk, field, user, run, kwargs, prompt_for, batch)
                yield from outcomes
                if outcomes and isinstance(outcomes[-1][1], BudgetExceeded):
                    return
                chunk = []
        if chunk:
            yield from _generate_batch(chunk, field, user, run, kwargs, prompt_for, batch)
    finally:
        if assembler is not None:
            assembler.submit_on_commit()


def _generate_batch(
    targets: list[models.Model],
    field: str | None,
    user: Any,
    run: tuple[Any, batches.Assembler | None],
    kwargs: dict[str, Any],
    prompt_for: Callable[[models.Model], str | None] | None,
    batch: uuid.UUID | None,
) -> list[tuple[models.Model, Generation | ImagegenError]]:
    """Record one batch of rows and hand it to the runner (or the assembler of provider
    batches); return the outcomes in order."""
    runner, assembler = run
    if assembler is not None:
        # The rows and their provider batch commit together: a row is never left queued
        # outside a batch for the job sweeper to run at the synchronous price.
        with transaction.atomic():
            outcomes = record_batch(
                targets, field, user=user, kwargs=kwargs, prompt_for=prompt_for, batch=batch,
                adapt=batches.batch_plan,
            )  # fmt: skip
            assembler.add(row for _, row in outcomes if isinstance(row, Generation))
        return outcomes
    outcomes = record_batch(
        targets, field, user=user, kwargs=kwargs, prompt_for=prompt_for, batch=batch
    )
    rows = [(index, row) for index, (_, row) in enumerate(outcomes) if isinstance(row, Generation)]
    if not runner.is_immediate:
        runner.enqueue_many([row for _, row in rows])
        return outcomes
    for index, row in rows:
        target = outcomes[index][0]
        outcomes[index] = (target, runner.enqueue(row, target=target))
    return outcomes


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
    code and a readable message, files written for it are deleted and the target is untouched;
    when the preset has another provider to fall back to, its row is run (or dispatched) and
    returned instead. With ``retrying=True`` a retryable error puts the row back to ``queued``
    and re-raises, for a task runner to schedule a retry, unless retrying could pay twice (see
    :func:`imagegen.pipeline.run.may_retry`). ``target`` is the row's target instance when the
    caller has it (the immediate runner): the image is set on it directly, and its field is
    restored if the generation fails. In-process runners may pass the row itself instead of
    its primary key, saving a query.

    Queued runners pass a :class:`~imagegen.pipeline.leases.Lease`: the row is kept alive by a
    heartbeat while the job runs, and a ``running`` row whose worker died is taken over (a job
    the provider accepted resumes polling, never submitting again). ``deadline`` is a
    ``time.monotonic()`` value by which the provider must give up, such as just before the
    task's soft time limit.
    """
    generation = pk if isinstance(pk, Generation) else Generation.objects.get(pk=pk)
    return execute(generation, retrying=retrying, target=target, lease=lease, deadline=deadline)


def retry(generation: Generation, *, user: Any = None) -> Generation:
    """Put a failed or canceled ``generation`` back in the queue and run it again; return it.

    The same row runs again (its history is kept in ``warnings``): with the immediate runner it
    comes back finished (or, like :func:`generate`, as its fallback's row when it failed over
    to the preset's next provider); with a queued runner it comes back ``queued`` and is
    dispatched when the transaction commits.

    Raises :class:`~imagegen.exceptions.BudgetExceeded` before changing anything if the row's
    estimate would break a budget, and :class:`NotRetryable` if the row is not failed or
    canceled, or was changed meanwhile (by another retry, say).
    """
    if generation.status not in RETRYABLE:
        raise NotRetryable(
            f"Generation {generation.pk} is {generation.status}, not failed or canceled."
        )
    fields: dict[str, Any] = {
        "error_code": "",
        "error_message": "",
        "started_at": None,
        "finished_at": None,
        "warnings": [*generation.warnings, _retry_note(generation, user)],
    }
    if not is_resumable(generation):
        # The old job ended at the provider (or there was none): this run sends a new request.
        fields["provider_job_id"] = ""
    estimate = generation.estimated_cost
    if generation.provider_batch_id is not None:
        # Its batch has ended: the retry is an ordinary call (at the synchronous price), which
        # the job sweeper looks after like any other, and the caps hold that price for it.
        estimate = _synchronous_estimate(generation)
        fields["provider_batch"] = None
        fields["provider_job_id"] = ""
        fields["warnings"].append(
            f"It ran in provider batch #{generation.provider_batch_id} before; the retry is "
            f"a call of its own, at the synchronous price (estimated {format_cost(estimate)})."
        )
    # ``attempts`` is left alone. It is the fencing token: the claim of the next run makes it
    # attempts + 1, and a worker of an earlier attempt that is still alive (one failed as
    # "worker_lost" while it hung) stays fenced out only if the number never comes back. The
    # runner does not refuse a queued row for its attempt count: ``work()`` runs a row that
    # used up TASK_OPTIONS["MAX_ATTEMPTS"] once more, as a final attempt (no automatic retry,
    # and a lost worker fails it rather than being taken over); a row with attempts left gets
    # the rest of them. So an editor's retry always runs, and the token never goes back.
    # The filter on ``attempts`` is also what stops a second retry that read the row before
    # the first one requeued it, ran it and it failed again: the attempt number has moved on.
    with transaction.atomic():
        # A failed row had no images and, once queued, holds its estimate against the caps,
        # as a new request would.
        reservation = Budget(user).reserve(
            estimate, preset=generation.preset, provider=generation.provider
        )
        fields["warnings"] += reservation.warnings
        fields["reservation"] = reservation.as_json()
        if not generation.transition(Status.QUEUED, **fields):
            raise NotRetryable(f"Generation {generation.pk} changed meanwhile; it was not retried.")
    return get_runner().enqueue(generation)


def _synchronous_estimate(generation: Generation) -> Decimal:
    """Return the estimate of a row recorded at a batch price, as a call of its own.

    The row's estimate was the synchronous one times the model's batch share; when the alias
    no longer has a batch price to divide by, the recorded estimate is all there is.
    """
    try:
        provider = batches.batch_provider(generation.provider)
        factor = batches.batch_factor(provider, generation.model or None)
    except ImagegenError:
        return generation.estimated_cost
    return (generation.estimated_cost / factor).quantize(batches.CENT_FRACTION)


def cancel(generation: Generation, *, user: Any = None) -> bool:
    """Cancel ``generation`` if it is still ``queued``; return whether it was canceled.

    A running or finished row is left alone. A task delivered later for a canceled row finds
    it finished and does nothing, so the provider is never called for it. Sends
    ``generation_finished`` like any other end of a generation.
    """
    if generation.status != Status.QUEUED:
        return False
    by = f" by {user.get_username()}" if _named(user) else ""
    held = generation.reservation
    try:
        with transaction.atomic():
            # It never ran: its reservation goes back to the caps (locked before the rollups,
            # in the order recording the row took them).
            settle(held)
            won = rollups.transition(  # the transition, counted in the rollups
                generation,
                Status.CANCELED,
                finished_at=timezone.now(),
                error_code="canceled",
                error_message=f"Canceled{by} before it ran.",
                reservation={},
            )
            if not won:
                raise _Changed
    except _Changed:
        won = False
    if won:
        announce(generation)
    return won


def resume_job(job_id: str, *, aliases: Iterable[str]) -> int:
    """Dispatch the queued generations waiting on provider job ``job_id``; return how many.

    A provider's completion webhook calls this. Only rows of the given aliases are considered.
    ``running`` rows are being polled by their worker and are left to it; finished rows are
    never touched. The runner's claim (queued -> running) is conditional, so a task runner's
    retry that comes later, or a second delivery racing this one, finds the row taken and
    does nothing.
    """
    rows = Generation.objects.waiting_on(job_id).filter(
        provider__in=list(aliases), status__in=[Status.QUEUED, Status.RUNNING]
    )
    runner, resumed = get_runner(), 0
    for generation in rows.order_by("pk"):
        if generation.status != Status.QUEUED:
            logger.info("imagegen: generation %s is running; its worker finishes it",
                        generation.pk)  # fmt: skip
            continue
        runner.enqueue(generation)
        resumed += 1
    return resumed


def nothing_to_do(
    target: models.Model,
    field: str | None,
    operation: str,
    *,
    preset: str | None = None,
    padding: Any = None,
) -> str:
    """Return why ``operation`` on ``target``'s current image would do nothing, else ``""``.

    :data:`NO_SOURCE` when the field holds no image, and :data:`ALREADY_FITS` for an outpaint
    without ``padding`` (fit to the preset, the field's by default) of an image that already
    has the preset's aspect ratio. A bulk operation skips such objects instead of refusing
    them one by one. Reads the image's size from its ``GeneratedImage`` row when it has one,
    else from the file's header.
    """
    model_field = resolve_field(target, field)
    if operation == "generate" or model_field is None:
        return ""
    source = current_image(target, model_field.name)
    if source is None:
        return NO_SOURCE
    if operation != "outpaint" or padding is not None:
        return ""
    is_generated = isinstance(model_field, GeneratedImageField)
    chosen = get_preset(preset or (model_field.preset if is_generated else None))
    if chosen is None:
        return ""
    try:
        # A GeneratedImage row knows its size; an ImageFieldFile reads its file's header.
        width, height = source.width, source.height
    except (OSError, ValueError):  # an unreadable file: the plan says what is wrong with it
        return ""
    if width and height and not any(outpaint_padding(width, height, chosen.aspect_ratio)):
        return ALREADY_FITS
    return ""


def poll_batches() -> batches.BatchSweep:
    """Submit interrupted provider batches and poll the open ones, storing their results.

    The sweeper runs this (``imagegen_sweep --batches``, or the ``imagegen.sweep_jobs`` Celery
    task); see :mod:`imagegen.pipeline.batches`.
    """
    return batches.poll_batches()


def cancel_batch(provider_batch: ProviderBatch, *, user: Any = None) -> ProviderBatch:
    """Cancel a provider batch: at the provider once submitted, its rows here before that.

    The provider bills the requests it finished before the cancel; the next poll stores them
    and fails the others.
    """
    by = f" by {user.get_username()}" if _named(user) else ""
    logger.info("imagegen: provider batch %s cancelled%s", provider_batch.pk, by)
    return batches.cancel(provider_batch)


def cost_for(obj: models.Model) -> Decimal:
    """Return the total confirmed cost of every generation made for ``obj``.

    Charges that are probable but not confirmed (a call that timed out) are not in it: see
    :func:`spend_for`.
    """
    return Generation.objects.for_object(obj).total_cost()


def spend_for(obj: models.Model) -> Spend:
    """Return what every generation made for ``obj`` cost: confirmed and unconfirmed, apart."""
    return Generation.objects.for_object(obj).spend()


class _Changed(Exception):
    """The row changed meanwhile: roll back the cancel's release of its reservation."""


def _retry_note(generation: Generation, user: Any) -> str:
    # Stored on the row, so plain text in the site's language of record, like error messages.
    by = f" by {user.get_username()}" if _named(user) else ""
    reason = (generation.error_message or generation.error_code or generation.status).rstrip(".")
    note = f"Retried{by} after: {reason}"
    if generation.cost:
        # The row's cost keeps adding up over its runs; say what this one had cost so far.
        note += f" (that run cost {format_cost(generation.cost, generation.currency)})"
    if is_resumable(generation):
        note += f"; resumes provider job {generation.provider_job_id}"
    return note + "."


def _named(user: Any) -> bool:
    return user is not None and getattr(user, "pk", None) is not None
