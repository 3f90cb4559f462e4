"""Writing ledger rows: one per request, or a batch of them with one insert.

:func:`record_request` plans a request, reserves its estimate on the budget caps and saves its
row, in one transaction; :func:`record_batch` does the same for many objects, reserving the
whole batch at once when it fits and one by one when it does not, with one ``bulk_create``.
Rows come back ``queued`` (or, for the immediate runner, already claimed): handing them to a
runner is the caller's job.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction

from imagegen.exceptions import BudgetExceeded, ImagegenError
from imagegen.models import Generation, Status
from imagegen.pipeline import rollups
from imagegen.pipeline.budgets import Budget, Reservation
from imagegen.pipeline.planning import Plan, make_plan
from imagegen.storage import content_name, get_storage, save_content


def record_request(
    *,
    user: Any = None,
    fallback_of: Generation | None = None,
    claimed: bool = False,
    **kwargs: Any,
) -> Generation:
    """Plan ``generate()``'s keyword arguments, reserve the budgets and save the row; return it.

    The reservation and the row commit together. Raises
    :class:`~imagegen.exceptions.BudgetExceeded` and the planning errors before anything is
    written. With ``claimed`` the row is saved already claimed (``running``, attempt 1), for
    a caller that runs it in this process at once (the immediate runner): no other worker
    ever sees it ``queued``, so the separate claim would only cost a round trip.
    """
    plan = make_plan(**kwargs)
    budget = Budget(user)
    with _with_caps(budget):
        reservation = budget.reserve(
            plan.estimated_cost, preset=_preset(plan), provider=plan.provider.alias
        )
        generation = build_row(plan, user=user, reservation=reservation, fallback_of=fallback_of)
        if claimed:
            # What claim() would write, in the INSERT itself.
            generation.status = Status.RUNNING
            generation.attempts = 1
            generation.started_at = generation.created_at
        rollups.insert([generation])  # saves the row and counts it in the rollups
    return generation


def record_batch(
    targets: list[models.Model],
    field: str | None,
    *,
    user: Any,
    kwargs: dict[str, Any],
    prompt_for: Callable[[models.Model], str | None] | None = None,
    batch: uuid.UUID | None = None,
    adapt: Callable[[Plan], Plan] | None = None,
) -> list[tuple[models.Model, Generation | ImagegenError]]:
    """Plan and save a row for each of ``targets``; return ``(target, row or error)`` in order.

    ``adapt`` may change each plan before it is reserved and saved, or refuse it with an
    ``ImagegenError`` (a batch run prices it at the batch price).

    ``kwargs`` are ``generate()``'s. The batch's estimates are reserved on the budget caps
    together when they fit; otherwise one by one, and the first object that would break a cap
    in "block" mode ends the batch with its ``BudgetExceeded``: the part that fits is recorded.
    An object that cannot be planned gets its error and the others go on. The rows are
    inserted with one ``bulk_create``, in the transaction that holds their reservations.
    """
    outcomes: list[tuple[models.Model, Any]] = []
    plans: list[tuple[int, Plan]] = []
    for target in targets:
        own = prompt_for(target) if prompt_for is not None else None
        try:
            plan = make_plan(
                target=target, field=field, **({**kwargs, "prompt": own} if own else kwargs)
            )
            if adapt is not None:
                plan = adapt(plan)
        except ImagegenError as err:
            outcomes.append((target, err))
            continue
        plans.append((len(outcomes), plan))
        outcomes.append((target, None))
    budget = Budget(user)
    with _with_caps(budget):
        requests = [(p.estimated_cost, _preset(p), p.provider.alias) for _, p in plans]
        reservations = budget.reserve_all(requests)
        if reservations is None:  # the whole batch does not fit: reserve the part that does
            reservations = []
            for index, plan in plans:
                try:
                    reservations.append(
                        budget.reserve(
                            plan.estimated_cost, preset=_preset(plan), provider=plan.provider.alias
                        )
                    )
                except BudgetExceeded as err:
                    outcomes[index] = (outcomes[index][0], err)
                    del outcomes[index + 1 :]
                    break
        rows = [
            (index, build_row(plan, user=user, reservation=reservation, batch=batch))
            for (index, plan), reservation in zip(plans, reservations, strict=False)
        ]
        rollups.insert([row for _, row in rows])  # one bulk_create, counted in the rollups
    for index, row in rows:
        outcomes[index] = (outcomes[index][0], row)
    return outcomes


def _with_caps(budget: Budget) -> Any:
    """Return a transaction for rows and their reservations; none is needed without caps."""
    # The rows' own insert is atomic already; reservations must commit or roll back with it.
    return transaction.atomic() if budget.caps else contextlib.nullcontext()


def _preset(plan: Plan) -> str:
    return plan.preset.name if plan.preset else ""


def build_row(
    plan: Plan,
    *,
    user: Any,
    reservation: Reservation,
    batch: uuid.UUID | None = None,
    fallback_of: Generation | None = None,
) -> Generation:
    """Return the unsaved ledger row of ``plan``, holding ``reservation``.

    The cleaned input images of an operation are stored first: an uploaded source (a
    generated one is linked instead), the mask and the reference images.
    """
    provider = plan.provider
    target = plan.target
    inputs = plan.inputs
    params = plan.params
    files: dict[str, Any] = {}
    if inputs.source is not None or inputs.references:
        references = tuple(_store(item.content) for item in inputs.references)
        params = replace(params, references=references)
        files = {
            "operation": params.operation,
            "source_image": inputs.source_image,
            "source_sha256": params.source_sha256,
        }
        if inputs.source is not None and inputs.source_image is None:
            files["source_file"] = _store(inputs.source.content)
        if inputs.mask is not None:
            files["mask_file"] = _store(inputs.mask.content)
    return Generation(
        content_type=ContentType.objects.get_for_model(target) if target is not None else None,
        object_id=str(target.pk) if target is not None else "",
        field_name=plan.field_name,
        preset=_preset(plan),
        provider=provider.alias,
        backend=f"{type(provider).__module__}.{type(provider).__qualname__}",
        model=plan.calls[0].model or provider.model,
        prompt=plan.prompt,
        negative_prompt=plan.negative_prompt,
        params=params.to_json(),
        count=plan.count,
        estimated_cost=plan.estimated_cost,
        warnings=[*plan.warnings, *reservation.warnings],
        reservation=reservation.as_json(),
        request_hash=plan.request_hash(),
        batch=batch,
        fallback_of=fallback_of,
        created_by=user if getattr(user, "pk", None) is not None else None,
        **files,
    )


def _store(data: bytes) -> str:
    """Save a cleaned input image under its content-addressed name; return the name."""
    name, _created = save_content(get_storage(), content_name(data, "image/png")[1], data)
    return name
