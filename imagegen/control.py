"""Retry and cancel: what an editor can do to a ledger row the pipeline has left or not started.

Both change the row with a conditional update fenced like every write of a run (same status,
same ``attempts``), so of two editors, or an editor and a worker, only one wins.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from imagegen.budgets import check_budget
from imagegen.exceptions import ImagegenError
from imagegen.execution import MAYBE_SENT
from imagegen.leases import _announce, _transition
from imagegen.models import Generation, Status
from imagegen.money import format_cost

#: Statuses a generation can be retried from.
RETRYABLE = frozenset({Status.FAILED, Status.CANCELED})
#: Error codes after which the provider may still hold the accepted job: a retry polls it
#: again rather than paying for a new one.
RESUMABLE = MAYBE_SENT | {"worker_lost"}


class NotRetryable(ImagegenError):
    """The generation is not failed or canceled (any more), so it cannot be retried."""

    code = "not_retryable"


def retry(generation: Generation, *, user: Any = None) -> Generation:
    """Put a failed or canceled ``generation`` back in the queue and run it again; return it.

    The same row runs again (its history is kept in ``warnings``): with the immediate runner it
    comes back finished (or, like :func:`~imagegen.services.generate`, as its fallback's row
    when it failed over to the preset's next provider); with a queued runner it comes back
    ``queued`` and is dispatched when the transaction commits.

    Raises :class:`~imagegen.exceptions.BudgetExceeded` before changing anything if the row's
    estimate would break a budget, and :class:`NotRetryable` if the row is not failed or
    canceled, or was changed meanwhile (by another retry, say).
    """
    if generation.status not in RETRYABLE:
        raise NotRetryable(
            f"Generation {generation.pk} is {generation.status}, not failed or canceled."
        )
    # A failed row had no images and, once queued, counts at its estimate in the budget, as
    # a new request would.
    budget_warnings = check_budget(generation.estimated_cost, user)
    fields: dict[str, Any] = {
        "error_code": "",
        "error_message": "",
        "started_at": None,
        "finished_at": None,
        "warnings": [*generation.warnings, _retry_note(generation, user), *budget_warnings],
    }
    if not _resumable(generation):
        # The old job ended at the provider (or there was none): this run sends a new request.
        fields["provider_job_id"] = ""
    # ``attempts`` is left alone. It is the fencing token: the claim of the next run makes it
    # attempts + 1, and a worker of an earlier attempt that is still alive (one failed as
    # "worker_lost" while it hung) stays fenced out only if the number never comes back. The
    # runner does not refuse a queued row for its attempt count: ``work()`` runs a row that
    # used up TASK_OPTIONS["MAX_ATTEMPTS"] once more, as a final attempt (no automatic retry,
    # and a lost worker fails it rather than being taken over); a row with attempts left gets
    # the rest of them. So an editor's retry always runs, and the token never goes back.
    # The filter on ``attempts`` is also what stops a second retry that read the row before
    # the first one requeued it, ran it and it failed again: the attempt number has moved on.
    if not _transition(generation, Status.QUEUED, **fields):
        raise NotRetryable(f"Generation {generation.pk} changed meanwhile; it was not retried.")
    from imagegen.runners import get_runner

    return get_runner().enqueue(generation)


def cancel(generation: Generation, *, user: Any = None) -> bool:
    """Cancel ``generation`` if it is still ``queued``; return whether it was canceled.

    A running or finished row is left alone. A task delivered later for a canceled row finds
    it finished and does nothing, so the provider is never called for it. Sends
    ``generation_finished`` like any other end of a generation.
    """
    if generation.status != Status.QUEUED:
        return False
    by = f" by {user.get_username()}" if _named(user) else ""
    won = _transition(
        generation,
        Status.CANCELED,
        finished_at=timezone.now(),
        error_code="canceled",
        error_message=f"Canceled{by} before it ran.",
    )
    if won:
        _announce(generation)
    return won


def _resumable(generation: Generation) -> bool:
    """Return whether the row's provider job may still finish, so a retry should poll it."""
    single_call = len(generation.params.get("calls") or [1]) == 1
    return bool(generation.provider_job_id) and single_call and generation.error_code in RESUMABLE


def _retry_note(generation: Generation, user: Any) -> str:
    # Stored on the row, so plain text in the site's language of record, like error messages.
    by = f" by {user.get_username()}" if _named(user) else ""
    reason = (generation.error_message or generation.error_code or generation.status).rstrip(".")
    note = f"Retried{by} after: {reason}"
    if generation.cost:
        # The row's cost keeps adding up over its runs; say what this one had cost so far.
        note += f" (that run cost {format_cost(generation.cost, generation.currency)})"
    if _resumable(generation):
        note += f"; resumes provider job {generation.provider_job_id}"
    return note + "."


def _named(user: Any) -> bool:
    return user is not None and getattr(user, "pk", None) is not None
