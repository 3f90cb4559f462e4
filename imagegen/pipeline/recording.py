"""Writing ledger rows: one per request, or a batch of them with one insert.

:func:`record_request` plans a request, checks it against the budgets and saves its row;
:func:`record_batch` does the same for many objects with one read of the month's spend and one
``bulk_create``. Rows come back ``queued``: handing them to a runner is the caller's job.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from imagegen.exceptions import BudgetExceeded, ImagegenError
from imagegen.models import Generation
from imagegen.pipeline import rollups
from imagegen.pipeline.budgets import Budget, check_budget
from imagegen.pipeline.planning import Plan, make_plan


def record_request(
    *, user: Any = None, fallback_of: Generation | None = None, **kwargs: Any
) -> Generation:
    """Plan ``generate()``'s keyword arguments, check the budgets and save the row; return it.

    Raises :class:`~imagegen.exceptions.BudgetExceeded` and the planning errors before
    anything is written.
    """
    plan = make_plan(**kwargs)
    warnings = list(plan.warnings) + check_budget(plan.estimated_cost, user)
    generation = build_row(plan, user=user, warnings=warnings, fallback_of=fallback_of)
    rollups.insert([generation])  # saves the row and counts it in the rollups, atomically
    return generation


def record_batch(
    targets: list[models.Model],
    field: str | None,
    *,
    user: Any,
    kwargs: dict[str, Any],
    prompt_for: Callable[[models.Model], str | None] | None = None,
    batch: uuid.UUID | None = None,
) -> list[tuple[models.Model, Generation | ImagegenError]]:
    """Plan and save a row for each of ``targets``; return ``(target, row or error)`` in order.

    ``kwargs`` are ``generate()``'s. The rows are inserted with one ``bulk_create``. An object
    that cannot be planned gets its error and the others go on; the first one that would break
    a budget in "block" mode ends the batch with its ``BudgetExceeded``.
    """
    outcomes: list[tuple[models.Model, Any]] = []
    rows: list[tuple[int, Generation]] = []
    budget = Budget(user)
    for target in targets:
        own = prompt_for(target) if prompt_for is not None else None
        try:
            plan = make_plan(
                target=target, field=field, **({**kwargs, "prompt": own} if own else kwargs)
            )
            warnings = list(plan.warnings) + budget.check(plan.estimated_cost)
        except BudgetExceeded as err:
            outcomes.append((target, err))
            break
        except ImagegenError as err:
            outcomes.append((target, err))
            continue
        rows.append((len(outcomes), build_row(plan, user=user, warnings=warnings, batch=batch)))
        outcomes.append((target, None))
    rollups.insert([row for _, row in rows])  # one bulk_create, counted in the rollups
    for index, row in rows:
        outcomes[index] = (outcomes[index][0], row)
    return outcomes


def build_row(
    plan: Plan,
    *,
    user: Any,
    warnings: list[str],
    batch: uuid.UUID | None = None,
    fallback_of: Generation | None = None,
) -> Generation:
    """Return the unsaved ledger row of ``plan``."""
    provider = plan.provider
    target = plan.target
    return Generation(
        content_type=ContentType.objects.get_for_model(target) if target is not None else None,
        object_id=str(target.pk) if target is not None else "",
        field_name=plan.field_name,
        preset=plan.preset.name if plan.preset else "",
        provider=provider.alias,
        backend=f"{type(provider).__module__}.{type(provider).__qualname__}",
        model=plan.calls[0].model or provider.model,
        prompt=plan.prompt,
        negative_prompt=plan.negative_prompt,
        params=plan.params.to_json(),
        count=plan.count,
        estimated_cost=plan.estimated_cost,
        warnings=warnings,
        request_hash=plan.request_hash(),
        batch=batch,
        fallback_of=fallback_of,
        created_by=user if getattr(user, "pk", None) is not None else None,
    )
