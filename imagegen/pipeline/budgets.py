"""Monthly spending caps for the whole site and per user, checked before a row is written.

``IMAGEGEN["BUDGETS"]`` takes ``"SITE_MONTHLY"`` and ``"USER_MONTHLY"`` (dollar amounts) and
``"ACTION"``: ``"block"`` (the default) refuses a request that would go over a cap with
:class:`~imagegen.exceptions.BudgetExceeded`; ``"warn"`` lets it through with a warning on the row.

Spend counts what generations this month actually cost, plus the estimate of those still
queued or running, so a burst of queued jobs cannot overshoot the cap unnoticed. A
:class:`Budget` reads the month's spend once and adds what it lets through, so a bulk run
checks a whole batch with one query per cap; :func:`check_budget` is one check of one request.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Case, DecimalField, F, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from imagegen.conf import imagegen_settings
from imagegen.exceptions import BudgetExceeded
from imagegen.models import Generation, Status

ACTIONS = ("block", "warn")


def month_start() -> Any:
    """Return the first instant of the current month in the current time zone."""
    now = timezone.localtime() if timezone.is_aware(timezone.now()) else timezone.now()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def spent_this_month(user: Any = None) -> Decimal:
    """Return this month's committed spend (actual costs plus open estimates)."""
    qs = Generation.objects.filter(created_at__gte=month_start())
    if user is not None:
        qs = qs.filter(created_by=user)
    money = DecimalField(max_digits=12, decimal_places=6)
    open_ = Q(status__in=[Status.QUEUED, Status.RUNNING])
    amount = Case(
        When(open_, then=F("estimated_cost")),
        default=Coalesce(F("cost"), Value(Decimal(0), output_field=money)),
        output_field=money,
    )
    return qs.aggregate(total=Sum(amount))["total"] or Decimal(0)


class Budget:
    """The caps that apply to one user's requests, checked request by request.

    The month's spend is read once per cap, on the first request that needs it; every request
    let through adds its estimate, so the requests of one batch count against each other.
    """

    def __init__(self, user: Any = None) -> None:
        self.budgets = imagegen_settings.BUDGETS or {}
        self.user = user if getattr(user, "pk", None) is not None else None
        self.spent: dict[str, Decimal] = {}
        self.added = Decimal(0)

    def check(self, estimate: Decimal) -> list[str]:
        """Let ``estimate`` through and return warnings, or raise BudgetExceeded in "block" mode."""
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


def check_budget(estimate: Decimal, user: Any = None) -> list[str]:
    """Raise BudgetExceeded (or return warnings, in "warn" mode) if ``estimate`` breaks a cap."""
    return Budget(user).check(estimate)
