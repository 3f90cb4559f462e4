"""Writing ledger rows: one for :func:`imagegen.services.generate`, or batches of them.

:func:`imagegen.services.generate_many` plans a batch in memory, checks it against the
budgets with one read of the month's spend, inserts it with one ``bulk_create`` and hands it
to the task runner at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from imagegen import planning
from imagegen.budgets import spent_this_month
from imagegen.conf import imagegen_settings
from imagegen.exceptions import BudgetExceeded, ImagegenError
from imagegen.models import Generation

#: Rows :func:`generate_many` plans, inserts and dispatches at a time.
BULK_BATCH = 200


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


def _generate_batch(
    targets: list[models.Model],
    field: str | None,
    user: Any,
    runner: Any,
    kwargs: dict,
    prompt_for: Callable[[models.Model], str | None] | None = None,
    batch: uuid.UUID | None = None,
) -> list[tuple[models.Model, Generation | ImagegenError]]:
    outcomes: list[tuple[models.Model, Any]] = []
    rows: list[tuple[int, Generation]] = []
    budget = _BatchBudget(user)
    for target in targets:
        own = prompt_for(target) if prompt_for is not None else None
        try:
            plan = planning.make_plan(
                target=target, field=field, **({**kwargs, "prompt": own} if own else kwargs)
            )
            warnings = list(plan.warnings) + budget.check(plan.estimated_cost)
        except BudgetExceeded as err:
            outcomes.append((target, err))
            break
        except ImagegenError as err:
            outcomes.append((target, err))
            continue
        rows.append((len(outcomes), _build_row(plan, user=user, warnings=warnings, batch=batch)))
        outcomes.append((target, None))
    Generation.objects.bulk_create([row for _, row in rows])
    if runner.is_immediate:
        for index, row in rows:
            outcomes[index] = (outcomes[index][0], runner.enqueue(row, target=outcomes[index][0]))
        return outcomes
    runner.enqueue_many([row for _, row in rows])
    for index, row in rows:
        outcomes[index] = (outcomes[index][0], row)
    return outcomes


class _BatchBudget:
    """``check_budget()`` for a batch: the month's spend is read once, then added to."""

    def __init__(self, user: Any) -> None:
        self.budgets = imagegen_settings.BUDGETS or {}
        self.user = user if getattr(user, "pk", None) is not None else None
        self.spent: dict[str, Decimal] = {}
        self.added = Decimal(0)

    def check(self, estimate: Decimal) -> list[str]:
        if not self.budgets or not estimate:
            return []
        caps = [("SITE_MONTHLY", None, "the site's")]
        if self.user is not None:
            caps.append(("USER_MONTHLY", self.user, "your"))
        problems = []
        for key, who, whose in caps:
            if self.budgets.get(key) in (None, ""):
                continue
            cap = Decimal(str(self.budgets[key]))
            if key not in self.spent:
                self.spent[key] = spent_this_month(who)
            spent = self.spent[key] + self.added
            if spent + estimate > cap:
                problems.append(
                    f"This would cost ${estimate:.2f} and bring {whose} spend this month to "
                    f"${spent + estimate:.2f}, over the ${cap:.2f} monthly budget."
                )
        if problems and self.budgets.get("ACTION", "block") == "block":
            raise BudgetExceeded(" ".join(problems))
        self.added += estimate
        return problems


def _record(plan: planning.Plan, *, user: Any, warnings: list[str]) -> Generation:
    generation = _build_row(plan, user=user, warnings=warnings)
    generation.save(force_insert=True)
    return generation


def _build_row(
    plan: planning.Plan, *, user: Any, warnings: list[str], batch: uuid.UUID | None = None
) -> Generation:
    """Return the unsaved ledger row of ``plan``."""
    provider = plan.provider
    params = {**plan.params, "attach": plan.attach, "fallbacks": list(plan.fallbacks)}
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
        params=params,
        count=plan.count,
        estimated_cost=plan.estimated_cost,
        warnings=warnings,
        request_hash=plan.request_hash(),
        batch=batch,
        created_by=user if getattr(user, "pk", None) is not None else None,
    )
