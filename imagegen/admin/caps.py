"""The budget caps the dashboard shows, read from ``IMAGEGEN["BUDGETS"]`` and ``BudgetUse`` rows.

:func:`budget_caps` is the one place that turns the setting into caps: add a cap kind there
(group, preset, provider...) and the dashboard shows it, as long as the pipeline keeps a
``BudgetUse`` row for it under the name ``"<kind>:<subject>:<period>"`` (``"site:<period>"``
for the site).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from imagegen.conf import imagegen_settings

#: Setting keys of the caps with one limit for every subject: key -> (kind, period).
SETTING_CAPS = {
    "SITE_MONTHLY": ("site", "month"),
    "USER_MONTHLY": ("user", "month"),
}


@dataclass(frozen=True)
class Cap:
    """One cap rule: the limit of every ``kind`` subject (each user, say) for each ``period``."""

    kind: str
    period: str
    limit: Decimal

    def period_start(self, today: datetime.date | None = None) -> datetime.date:
        """Return the first day of the current period in the site's time zone."""
        today = today or timezone.localdate(timezone=timezone.get_default_timezone())
        return today.replace(day=1) if self.period == "month" else today

    def subject_of(self, cap: str) -> str | None:
        """Return the subject of the ``BudgetUse.cap`` name ``cap`` under this rule, or None.

        ``"user:12:month"`` is subject ``"12"`` of the rule (user, month); ``"site:month"`` is
        subject ``""`` of (site, month).
        """
        parts = cap.split(":")
        if len(parts) < 2 or parts[0] != self.kind or parts[-1] != self.period:
            return None
        return ":".join(parts[1:-1])


def budget_caps(budgets: dict[str, Any] | None = None) -> list[Cap]:
    """Return the caps ``budgets`` (default ``IMAGEGEN["BUDGETS"]``) defines, in setting order.

    Today: the ``SITE_MONTHLY`` and ``USER_MONTHLY`` amounts. A key this function does not know
    (``ACTION``, say), or an amount that is not a number, is left out.
    """
    budgets = imagegen_settings.BUDGETS if budgets is None else budgets
    caps = []
    for key, value in (budgets or {}).items():
        if key not in SETTING_CAPS or value in (None, ""):
            continue
        try:
            limit = Decimal(str(value))
        except InvalidOperation:
            continue
        kind, period = SETTING_CAPS[key]
        caps.append(Cap(kind=kind, period=period, limit=limit))
    return caps
