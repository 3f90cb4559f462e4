"""Provider batches: group recorded rows, submit each batch once, poll it, ingest its results.

A bulk run "within 24 hours" (``generate_many(..., mode="batch")``) writes its rows as any
run does (``queued``, each holding its estimate at the batch price on the budget caps), and
:class:`Assembler` puts them into :class:`~imagegen.models.ProviderBatch` rows, one per
provider alias, model and kind of request (generations and edits apart), up to the
provider's limits on requests and bytes. Then:

* :func:`submit` sends a batch once. The batch's row, with its key, is committed before the
  provider is called; the provider's batch id is recorded the moment the provider returns
  it, in its own transaction, together with the rows' move to ``running``. A batch whose
  submission was interrupted is looked up by its key (``batch_find``) before it is ever
  submitted again, so it is never paid for twice.
* :func:`poll_batches`, run by the sweeper (``imagegen_sweep --batches`` or the
  ``imagegen.sweep_jobs`` Celery task), polls each open batch, one process at a time per
  batch, and ingests the results it has: images are stored through the run's
  :class:`~imagegen.pipeline.storing.Store`, each row's cost is its reported usage at the
  batch price, and requests that failed inside the batch fail their rows with the provider's
  message. Ingesting is idempotent: a row already finished is skipped. When the batch ends
  (completed, expired, cancelled or failed) the rows it did not finish fail, uncharged, and
  the work it did finish keeps its charge.
* :func:`cancel` cancels a batch at the provider (or, not yet submitted, its rows here).

A provider with a batch API implements :class:`~imagegen.providers.batching.BatchProvider`;
its outcomes' ``result.cost``, when set, is already at the batch price, and when it is None
the result's usage is priced here at the catalog's ``batch_factor``.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from imagegen.exceptions import ImagegenError, UnsupportedRequest
from imagegen.models import BatchStatus, GeneratedImage, Generation, ProviderBatch, Status
from imagegen.pipeline import rollups
from imagegen.pipeline.budgets import settle
from imagegen.pipeline.planning import Plan, params_of
from imagegen.pipeline.storing import Store
from imagegen.providers import get_provider
from imagegen.providers.batching import BatchItem, BatchOutcome, BatchProvider, BatchState
from imagegen.signals import announce
from imagegen.types import ImageRequest, ImageResult

logger = logging.getLogger("imagegen")

#: The ledger's precision.
CENT_FRACTION = Decimal("0.000001")
#: Rows read per query when streaming a batch's requests and ingesting its results.
CHUNK = 500
#: Seconds one sweeper holds a batch it polls; another takes it over after that.
POLL_LOCK = 600
#: Seconds after which a submission that recorded no batch id is taken up again (the
#: provider is asked for the batch by its key first).
SUBMIT_TIMEOUT = 900
#: Share of the provider's byte limit a batch is filled to: the sizes are estimates.
BYTES_MARGIN = Decimal("0.9")
#: Bytes a request's JSON takes besides its prompt and images, for the size estimate.
LINE_OVERHEAD = 600


def batch_provider(alias: str) -> Any:
    """Return the provider of ``alias`` if it has a batch API; raise ``UnsupportedRequest``."""
    provider = get_provider(alias)
    if not isinstance(provider, BatchProvider):
        raise UnsupportedRequest(
            f"Provider {alias!r} has no batch API, so it cannot run a bulk job within 24 hours "
            "at the batch price; run it now instead.",
            provider=alias,
        )
    return provider


def batch_factor(provider: Any, model: str | None) -> Decimal:
    """Return the share of the synchronous price a batch of ``model`` costs, or raise."""
    info = provider.model_info(model)
    if info.batch_factor is None:
        raise UnsupportedRequest(
            f"{provider.alias}'s model {info.id} has no batch price in imagegen's catalog, so it "
            "cannot run in a batch; run it now instead.",
            provider=provider.alias,
        )
    return info.batch_factor


def batch_plan(plan: Plan) -> Plan:
    """Return ``plan`` as a batch request: its estimate at the batch price; raise if it can't.

    A batch sends one request per row, so a row the model cannot serve in one call (more
    images than it makes at once) is refused.
    """
    provider = batch_provider(plan.provider.alias)
    factor = batch_factor(provider, plan.calls[0].model)
    if len(plan.calls) != 1:
        raise UnsupportedRequest(
            f"A batch sends one request per generation; {plan.count} images are more than "
            f"{plan.calls[0].model or provider.model} makes in one request.",
            provider=provider.alias,
        )
    estimate = (plan.estimated_cost * factor).quantize(CENT_FRACTION)
    return replace(plan, estimated_cost=estimate)


# Grouping -----------------------------------------------------------------------------------


@dataclass
class _Open:
    """A batch being filled: its row and how much it holds so far."""

    batch: ProviderBatch
    total: int = 0
    size: int = 0
    estimate: Decimal = Decimal(0)


@dataclass
class Assembler:
    """Puts recorded rows into provider batches, up to each provider's limits.

    Call :meth:`add` with each chunk of rows in the transaction that records them, then
    :meth:`submit_on_commit`. Memory holds one open batch per alias, model and kind.
    """

    batches: list[ProviderBatch] = field(default_factory=list)
    _open: dict[tuple[str, str, str], _Open] = field(default_factory=dict)

    def add(self, rows: Iterable[Generation]) -> None:
        """Assign each of ``rows`` to a batch: one UPDATE per batch touched."""
        members: dict[int, list[int]] = {}
        touched: dict[int, _Open] = {}
        for row in rows:
            kind = "generate" if row.operation == "generate" else "edit"
            group = (row.provider, row.model, kind)
            size = request_size(row)
            current = self._open.get(group)
            provider = batch_provider(row.provider)
            max_bytes = int(provider.batch_max_bytes * BYTES_MARGIN)
            if current is None or (
                current.total + 1 > provider.batch_max_requests or current.size + size > max_bytes
            ):
                current = self._new(row)
                self._open[group] = current
            current.total += 1
            current.size += size
            current.estimate += row.estimated_cost
            members.setdefault(current.batch.pk, []).append(row.pk)
            touched[current.batch.pk] = current
            row.provider_batch = current.batch
        for pk, ids in members.items():
            Generation.objects.filter(pk__in=ids).update(provider_batch_id=pk)
            current = touched[pk]
            ProviderBatch.objects.filter(pk=pk).update(
                total=current.total,
                size=current.size,
                estimated_cost=current.estimate,
                updated_at=timezone.now(),
            )
            current.batch.total, current.batch.size = current.total, current.size
            current.batch.estimated_cost = current.estimate

    def _new(self, row: Generation) -> _Open:
        batch = ProviderBatch.objects.create(
            provider=row.provider, model=row.model, key=uuid.uuid4().hex, currency=row.currency
        )
        self.batches.append(batch)
        return _Open(batch=batch)

    def submit_on_commit(self) -> None:
        """Submit every batch once the transaction that recorded them commits."""
        pks = [batch.pk for batch in self.batches]
        if pks:
            transaction.on_commit(lambda: submit_all(pks))


def request_size(row: Generation) -> int:
    """Return an estimate of the bytes ``row``'s request takes in a batch file."""
    size = len(row.prompt.encode()) + len(row.negative_prompt.encode()) + LINE_OVERHEAD
    if row.operation == "generate":
        return size
    # Images travel base64-encoded: 4 bytes for every 3.
    files = [row.source_file, row.mask_file]
    inputs = sum(_file_size(item) for item in files if item)
    if row.source_image_id:
        inputs += (
            GeneratedImage.objects.filter(pk=row.source_image_id)
            .values_list("bytes", flat=True)
            .first()
            or 0
        )
    return size + inputs * 4 // 3


def _file_size(file: Any) -> int:
    try:
        return int(file.size)
    except Exception:  # noqa: BLE001 - a storage that cannot tell counts the request alone
        return 0


# Submitting ---------------------------------------------------------------------------------


def submit_all(pks: Iterable[int]) -> list[ProviderBatch]:
    """Submit the batches ``pks``; return them as they are now."""
    return [submit(batch) for batch in ProviderBatch.objects.filter(pk__in=list(pks))]


def submit(batch: ProviderBatch) -> ProviderBatch:
    """Send ``batch`` to its provider unless it was sent already; return it.

    The row is claimed with a conditional UPDATE (so two processes never both submit it); a
    batch an earlier attempt may have created is looked up by its key first. A provider error
    that surely left nothing at the provider keeps the batch pending for the next sweep; any
    other fails the batch and its rows with the provider's message.
    """
    previous = batch.submitted_at
    now = timezone.now()
    claimed = ProviderBatch.objects.filter(
        pk=batch.pk, status=BatchStatus.PENDING, batch_id__isnull=True, submitted_at=previous
    ).update(submitted_at=now, updated_at=now)
    if not claimed:
        batch.refresh_from_db()
        return batch
    batch.submitted_at = now
    try:
        provider = batch_provider(batch.provider)
        if previous is not None:
            found = provider.batch_find(batch.key)
            if found is not None:
                logger.info("imagegen: batch %s was submitted before as %s", batch.pk,
                            found.batch_id)  # fmt: skip
                _record_id(batch, found.batch_id)
                return _save_state(batch, found)
        state = provider.batch_submit(
            _items(batch), key=batch.key, on_created=lambda batch_id: _record_id(batch, batch_id)
        )
    except ImagegenError as err:
        if batch.batch_id:  # created: the sweeper polls it
            return batch
        if err.retryable and err.code not in ("timeout", "connection_lost"):
            logger.warning("imagegen: batch %s not submitted, will retry: %s", batch.pk, err)
            return batch
        if err.code in ("timeout", "connection_lost"):
            # The provider may have created it: the next sweep asks for it by its key.
            logger.warning("imagegen: batch %s submission interrupted: %s", batch.pk, err)
            return batch
        _end(batch, BatchStatus.FAILED, error=str(err), reason=f"The batch was refused: {err}")
        return batch
    return _save_state(batch, state)


def _items(batch: ProviderBatch) -> Iterator[BatchItem]:
    """Yield the requests of ``batch``'s rows, read in chunks: never the whole batch at once."""
    rows = Generation.objects.filter(provider_batch=batch, status=Status.QUEUED).order_by("pk")
    for row in rows.iterator(chunk_size=CHUNK):
        (request,) = params_of(row).requests(row)
        yield BatchItem(custom_id=str(row.pk), request=request)


def _record_id(batch: ProviderBatch, batch_id: str) -> None:
    """Record the provider's batch id and move the rows to ``running``, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        ProviderBatch.objects.filter(pk=batch.pk).update(
            batch_id=batch_id, status=BatchStatus.VALIDATING, updated_at=now
        )
        Generation.objects.filter(provider_batch=batch, status=Status.QUEUED).update(
            status=Status.RUNNING,
            started_at=now,
            attempts=F("attempts") + 1,
            provider_job_id=batch_id,
            updated_at=now,
        )
    batch.batch_id, batch.status = batch_id, BatchStatus.VALIDATING


def _save_state(batch: ProviderBatch, state: BatchState) -> ProviderBatch:
    """Record what the provider says of ``batch``; its final status waits for the ingest."""
    fields: dict[str, Any] = {
        "provider_status": state.provider_status[:64],
        "completed": state.completed,
        "failed": state.failed,
        "output": state.output,
        "error": state.error,
        "polled_at": timezone.now(),
        "updated_at": timezone.now(),
    }
    if state.total:
        fields["total"] = state.total
    if not state.done:
        fields["status"] = state.status
    ProviderBatch.objects.filter(pk=batch.pk).update(**fields)
    for name, value in fields.items():
        setattr(batch, name, value)
    return batch


# Polling and ingesting ----------------------------------------------------------------------


@dataclass
class BatchSweep:
    """What one :func:`poll_batches` did."""

    polled: int = 0
    submitted: int = 0
    succeeded: int = 0
    failed: int = 0
    finished: int = 0
    #: Batches whose poll failed (a provider outage); they are polled again next time.
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def open_batches() -> Any:
    """Return the batches not finished yet."""
    return ProviderBatch.objects.exclude(
        status__in=[
            BatchStatus.COMPLETED,
            BatchStatus.FAILED,
            BatchStatus.EXPIRED,
            BatchStatus.CANCELLED,
        ]
    )


def poll_batches(*, now: datetime.datetime | None = None) -> BatchSweep:
    """Submit interrupted batches and poll open ones, ingesting their results; return a tally."""
    now = now or timezone.now()
    tally = BatchSweep()
    stale = now - datetime.timedelta(seconds=SUBMIT_TIMEOUT)
    # Pending batches the process that made them did not submit (killed first), or whose
    # submission stopped before the provider's id was recorded.
    pending = open_batches().filter(status=BatchStatus.PENDING, batch_id__isnull=True)
    for batch in pending.filter(
        Q(submitted_at__isnull=True, updated_at__lt=stale) | Q(submitted_at__lt=stale)
    ):
        submit(batch)
        tally.submitted += batch.batch_id is not None
    for batch in open_batches().filter(batch_id__isnull=False).order_by("pk"):
        if not _lock(batch, now):
            continue
        try:
            poll(batch, tally)
        except ImagegenError as err:
            # A provider outage: the batch stays open and the next sweep polls it again.
            logger.warning("imagegen: batch %s could not be polled: %s", batch.pk, err)
            tally.errors += 1
        finally:
            ProviderBatch.objects.filter(pk=batch.pk).update(locked_until=None)
    if tally.polled:
        logger.info("imagegen: batch sweep: %s", tally.as_dict())
    return tally


def _lock(batch: ProviderBatch, now: datetime.datetime) -> bool:
    """Claim ``batch`` for this process's poll; False when another sweeper holds it."""
    until = now + datetime.timedelta(seconds=POLL_LOCK)
    free = Q(locked_until__isnull=True) | Q(locked_until__lt=now)
    return bool(ProviderBatch.objects.filter(free, pk=batch.pk).update(locked_until=until))


def poll(batch: ProviderBatch, tally: BatchSweep | None = None) -> ProviderBatch:
    """Poll one submitted batch, ingest what it has and, once it has ended, close it."""
    tally = tally if tally is not None else BatchSweep()
    provider = batch_provider(batch.provider)
    state = provider.batch_poll(batch.batch_id)
    tally.polled += 1
    _save_state(batch, state)
    if state.output:
        ingest(batch, provider, provider.batch_results(state), tally)
    if state.done:
        _end(batch, state.status, error=state.error, reason=_unfinished_reason(state))
        tally.finished += 1
    return batch


def ingest(
    batch: ProviderBatch,
    provider: Any,
    outcomes: Iterable[BatchOutcome],
    tally: BatchSweep | None = None,
) -> None:
    """Store and settle each outcome's row that is still running; skip the others."""
    tally = tally if tally is not None else BatchSweep()
    factor = batch_factor(provider, batch.model or None)
    for chunk in _chunks(outcomes, CHUNK):
        ids = [int(o.custom_id) for o in chunk if o.custom_id.isdigit()]
        rows = {
            row.pk: row
            for row in Generation.objects.filter(
                provider_batch=batch, pk__in=ids, status=Status.RUNNING
            )
        }
        for outcome in chunk:
            row = rows.get(int(outcome.custom_id)) if outcome.custom_id.isdigit() else None
            if row is None:
                continue  # ingested already, or not this batch's
            if outcome.result is not None:
                ended = _succeed(row, outcome.result, provider, factor, refusal=outcome.error)
            else:
                ended = _fail(row, outcome)
            tally.succeeded += ended == Status.SUCCEEDED
            tally.failed += ended in (Status.FAILED, Status.FILTERED)
    _total_cost(batch)


def _chunks(items: Iterable[BatchOutcome], size: int) -> Iterator[list[BatchOutcome]]:
    chunk: list[BatchOutcome] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _cost(row: Generation, result: ImageResult, provider: Any, factor: Decimal) -> Decimal:
    """Return what ``result`` cost: its own cost, or its usage at the batch price."""
    if result.cost is not None:
        return result.cost
    params = params_of(row)
    request = ImageRequest(
        prompt=row.prompt,
        width=params.width,
        height=params.height,
        count=row.count,
        model=row.model or None,
        quality=params.quality,
        output_format=params.output_format,
        operation=row.operation,
    )
    info = provider.model_info(row.model or None)
    actual = info.price.actual(request, result.usage, len(result.images))
    return (actual * factor).quantize(CENT_FRACTION)


def _succeed(
    row: Generation, result: ImageResult, provider: Any, factor: Decimal, *, refusal: str = ""
) -> str:
    """Store ``result``'s images for ``row`` and finish it; return the status it wrote, or ""
    when another process finished the row first.

    A result without images that the provider filtered (and billed) ends the row ``filtered``
    with the provider's message, ``refusal``."""
    cost = _cost(row, result, provider, factor)
    store = Store()
    status = Status.FILTERED if result.filtered and not result.images else Status.SUCCEEDED
    try:
        stored = store.store(list(result.images)) if status == Status.SUCCEEDED else []
    except ImagegenError as err:
        # The provider billed the request: the row fails with its charge recorded.
        store.undo()
        return _finish(row, Status.FAILED, cost=cost, error=err, warnings=store.warnings)
    held = row.reservation
    fields = _fields(row, cost=cost, usage=dict(result.usage), warnings=[
        *result.warnings, *store.warnings])  # fmt: skip
    if status == Status.FILTERED:
        fields["error_code"] = "content_rejected"
        fields["error_message"] = refusal or "The provider withheld the image (its content filter)."
    try:
        with transaction.atomic():
            if stored:
                store.save_images(row, stored)
            settle(held, charged=cost)
            if not rollups.transition(row, status, **fields):
                raise _TakenOver
    except _TakenOver:
        # Another sweeper ingested it: the files are content-addressed and may be its too.
        return ""
    store.delete_on_rollback()
    announce(row)
    return status


def _fail(row: Generation, outcome: BatchOutcome) -> str:
    """Fail ``row`` with the provider's message for its request; return the status written."""
    code = "content_rejected" if outcome.refused else "batch_request_failed"
    error = ImagegenError(outcome.error or "The provider gave no reason.", code=code)
    return _finish(row, Status.FAILED, cost=None, error=error)


def _fields(
    row: Generation, *, cost: Decimal | None, usage: dict[str, Any], warnings: list[str]
) -> dict[str, Any]:
    prior = row.cost or Decimal(0)
    return {
        "finished_at": timezone.now(),
        "usage": usage,
        "warnings": [*row.warnings, *warnings],
        "cost": prior + cost if cost is not None else row.cost,
        "reservation": {},
        "error_code": "",
        "error_message": "",
    }


def _finish(
    row: Generation,
    status: str,
    *,
    cost: Decimal | None,
    error: ImagegenError,
    warnings: Iterable[str] = (),
) -> str:
    """Finish ``row`` with ``status`` and ``error``; return the status, or "" if taken over."""
    held = row.reservation
    fields = _fields(row, cost=cost, usage=dict(row.usage), warnings=list(warnings))
    fields["error_code"], fields["error_message"] = error.code, str(error)[:2000]
    try:
        with transaction.atomic():
            settle(held, charged=cost or Decimal(0))
            if not rollups.transition(row, status, **fields):
                raise _TakenOver
    except _TakenOver:
        return ""
    announce(row)
    return status


def _unfinished_reason(state: BatchState) -> str:
    if state.status == BatchStatus.EXPIRED:
        return (
            "The provider's batch expired (24-hour window) before this request ran; it was not "
            "charged."
        )
    if state.status == BatchStatus.CANCELLED:
        return "The batch was cancelled before this request ran; it was not charged."
    if state.status == BatchStatus.FAILED:
        return f"The provider's batch failed: {state.error or 'no reason given'}"
    return "The provider's batch ended without a result for this request."


def _end(batch: ProviderBatch, status: str, *, error: str, reason: str) -> None:
    """Fail the rows ``batch`` did not finish, then record its final ``status``."""
    rows = Generation.objects.filter(
        provider_batch=batch, status__in=[Status.QUEUED, Status.RUNNING]
    ).order_by("pk")
    code = f"batch_{status}"
    failure = ImagegenError(reason, code=code)
    for row in rows.iterator(chunk_size=CHUNK):
        _finish(row, Status.FAILED, cost=None, error=failure)
    now = timezone.now()
    ProviderBatch.objects.filter(pk=batch.pk).update(
        status=status, finished_at=now, error=error[:2000], updated_at=now
    )
    batch.status, batch.finished_at, batch.error = status, now, error[:2000]
    _total_cost(batch)


def _total_cost(batch: ProviderBatch) -> None:
    """Record the batch's actual cost so far: the sum of its rows' charges."""
    cost = Generation.objects.filter(provider_batch=batch).aggregate(total=Sum("cost"))["total"]
    batch.cost = cost or Decimal(0)
    ProviderBatch.objects.filter(pk=batch.pk).update(cost=batch.cost)


class _TakenOver(Exception):
    """The row changed under this ingest (another sweeper finished it): roll back."""


# Cancelling ---------------------------------------------------------------------------------


def cancel(batch: ProviderBatch) -> ProviderBatch:
    """Cancel ``batch``: at the provider once submitted, here (its rows) when not yet.

    A submitted batch goes to ``cancelling``; the next poll ingests what it finished and
    fails the rest. Raises the provider's error if it refuses.
    """
    if batch.batch_id is None:
        now = timezone.now()
        won = ProviderBatch.objects.filter(
            pk=batch.pk, batch_id__isnull=True, submitted_at__isnull=True
        ).update(status=BatchStatus.CANCELLING, submitted_at=now, updated_at=now)
        if won:
            _end(
                batch,
                BatchStatus.CANCELLED,
                error="",
                reason="The batch was cancelled before it was submitted; nothing was charged.",
            )
            return batch
        batch.refresh_from_db()
        if batch.batch_id is None:
            raise ImagegenError(
                "The batch is being submitted right now; cancel it again in a minute.",
                code="batch_submitting",
            )
    if batch.is_finished:
        return batch
    state = batch_provider(batch.provider).batch_cancel(batch.batch_id)
    return _save_state(batch, state)
