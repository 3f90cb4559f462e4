"""Budget caps that hold under concurrency: reserve before recording, settle when a call ends.

``IMAGEGEN["BUDGETS"]`` names caps on spend for the whole site, each user, a group, a preset or
a provider, per day or per month (see :func:`parse_caps`). Each cap keeps a running total per
period in a :class:`~imagegen.models.BudgetUse` row. A request reserves its estimate on the row
of every cap that applies to it with one conditional ``UPDATE`` per cap, in the transaction that
records it, so two requests can never both take the last of a cap: the second one's ``UPDATE``
waits for the first one's row lock and then finds the cap full. When the call ends, the
reservation is settled (:func:`settle`): the estimate is released and what the provider charged
(confirmed, or unconfirmed when the outcome is unknown) is added. Checking a cap reads and
writes one row, however large the ledger grows.

A cap in ``"block"`` mode refuses a request that would go over it with
:class:`~imagegen.exceptions.BudgetExceeded`; in ``"warn"`` mode the request goes through with a
warning on its row. When a cap's use reaches its ``WARN`` percentage,
:data:`budget_threshold_crossed` is sent once for that cap and period, and the addresses in
``ALERT_EMAILS`` get an e-mail.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Case, DecimalField, F, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.dispatch import Signal
from django.utils import timezone

from imagegen.conf import imagegen_settings
from imagegen.exceptions import BudgetExceeded
from imagegen.models import BudgetUse, Generation, MicroAmountField, Status
from imagegen.money import format_cost

logger = logging.getLogger("imagegen")

ACTIONS = ("block", "warn")
SCOPES = ("site", "user", "group", "preset", "provider")
PERIODS = ("day", "month")
#: The shorthand keys of ``BUDGETS`` and the caps they stand for.
SHORTHANDS = {"SITE_MONTHLY": ("site", "month"), "USER_MONTHLY": ("user", "month")}
#: Keys of one entry of ``BUDGETS["CAPS"]``.
CAP_KEYS = {"SCOPE", "KEY", "PERIOD", "LIMIT", "WARN", "ACTION"}
#: Top-level keys of ``BUDGETS``.
BUDGET_KEYS = {*SHORTHANDS, "ACTION", "WARN", "CAPS", "ALERT_EMAILS"}

#: Sent once per cap and period when a cap's use reaches its ``WARN`` percentage, after the
#: transaction that crossed it commits. Arguments: ``sender`` (:class:`BudgetUse`), ``cap``
#: (the :class:`Cap`), ``use`` (the ``BudgetUse`` row), ``used`` and ``limit`` (Decimals).
budget_threshold_crossed = Signal()

MONEY = DecimalField(max_digits=14, decimal_places=6)


@dataclass(frozen=True, kw_only=True)
class Cap:
    """One spending cap: a scope, a period, a limit, and what happens at and over it."""

    #: ``"site"``, ``"user"``, ``"group"``, ``"preset"`` or ``"provider"``.
    scope: str
    #: ``"day"`` or ``"month"``, in the site's time zone.
    period: str
    limit: Decimal
    #: One user name, group name, preset or provider alias; None caps each of them apart.
    key: str | None = None
    #: The percentage of the limit at which the threshold signal and e-mail go out.
    warn: int | None = None
    #: ``"block"`` refuses a request over the cap; ``"warn"`` records a warning on its row.
    action: str = "block"

    def use_key(self, value: str) -> str:
        """Return the ``BudgetUse.cap`` of this cap for one user, group, preset or provider."""
        return f"{self.scope}:{value}:{self.period}"

    def whose(self, label: str) -> str:
        """Return whose spend this is, for messages: "the site's", "your", "the hero preset's"."""
        return {
            "site": "the site's",
            "user": "your",
            "group": f"the {label} group's",
            "preset": f"the {label} preset's",
            "provider": f"the {label} provider's",
        }[self.scope]

    @property
    def when(self) -> str:
        return "today" if self.period == "day" else "this month"

    @property
    def adjective(self) -> str:
        return "daily" if self.period == "day" else "monthly"


@dataclass(frozen=True, kw_only=True)
class Applied:
    """A cap as it applies to one request: which running total it reserves on."""

    cap: Cap
    #: The user's pk, the group's name, the preset or the alias; "" for the site.
    value: str
    #: How messages name it (a user name, a group name...).
    label: str
    period_start: datetime.date

    @property
    def use_key(self) -> str:
        return self.cap.use_key(self.value)


@dataclass
class Reservation:
    """What one request holds against the caps, and what the caps said about it."""

    amount: Decimal = Decimal(0)
    applied: list[Applied] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """Return the value stored in ``Generation.reservation``."""
        if not self.applied:
            return {}
        return {
            "amount": str(self.amount),
            "caps": [[item.use_key, item.period_start.isoformat()] for item in self.applied],
        }


# Settings -----------------------------------------------------------------------------------


def parse_caps(budgets: Any) -> list[Cap]:
    """Return the caps of a ``BUDGETS`` value; raise ``ValueError`` saying what is wrong."""
    if not budgets:
        return []
    if not isinstance(budgets, dict):
        raise ValueError("it must be a dict")
    unknown = sorted(set(budgets) - BUDGET_KEYS)
    if unknown:
        raise ValueError(f'unknown key "{unknown[0]}"')
    action = _action(budgets.get("ACTION", "block"), '"ACTION"')
    warn = _percent(budgets.get("WARN"), '"WARN"')
    caps = []
    for key, (scope, period) in SHORTHANDS.items():
        if budgets.get(key) not in (None, ""):
            limit = _amount(budgets[key], f'"{key}"')
            caps.append(Cap(scope=scope, period=period, limit=limit, warn=warn, action=action))
    entries = budgets.get("CAPS") or []
    if not isinstance(entries, list | tuple):
        raise ValueError('"CAPS" must be a list of caps')
    for index, entry in enumerate(entries):
        caps.append(_cap(entry, f'"CAPS"[{index}]', action=action, warn=warn))
    emails = budgets.get("ALERT_EMAILS") or []
    if not isinstance(emails, list | tuple) or not all(isinstance(e, str) for e in emails):
        raise ValueError('"ALERT_EMAILS" must be a list of e-mail addresses')
    return caps


def _cap(entry: Any, where: str, *, action: str, warn: int | None) -> Cap:
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be a dict")
    unknown = sorted(set(entry) - CAP_KEYS)
    if unknown:
        raise ValueError(f'{where} has an unknown key "{unknown[0]}"')
    scope, period = entry.get("SCOPE"), entry.get("PERIOD", "month")
    if scope not in SCOPES:
        raise ValueError(f'{where}["SCOPE"] must be one of {", ".join(SCOPES)}, not {scope!r}')
    if period not in PERIODS:
        raise ValueError(f'{where}["PERIOD"] must be "day" or "month", not {period!r}')
    key = entry.get("KEY")
    if key is not None and (scope == "site" or not isinstance(key, str) or not key):
        raise ValueError(f'{where}["KEY"] must be a name (and the site scope takes none)')
    return Cap(
        scope=scope,
        period=period,
        limit=_amount(entry.get("LIMIT"), f'{where}["LIMIT"]'),
        key=key,
        warn=_percent(entry.get("WARN", warn), f'{where}["WARN"]'),
        action=_action(entry.get("ACTION", action), f'{where}["ACTION"]'),
    )


def _amount(value: Any, where: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f'{where} must be an amount such as "50.00", not {value!r}') from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{where} must be an amount of 0 or more, not {value!r}")
    return amount


def _percent(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 100:
        raise ValueError(f"{where} must be a whole percentage from 1 to 100, not {value!r}")
    return value


def _action(value: Any, where: str) -> str:
    if value not in ACTIONS:
        raise ValueError(f'{where} must be "block" or "warn", not {value!r}')
    return value


def caps() -> list[Cap]:
    """Return the configured caps (read on every call: settings may change in tests)."""
    return parse_caps(imagegen_settings.BUDGETS)


def alert_emails() -> list[str]:
    """Return the addresses that get an e-mail when a cap crosses its threshold."""
    budgets = imagegen_settings.BUDGETS or {}
    return list(budgets.get("ALERT_EMAILS") or []) if isinstance(budgets, dict) else []


# Periods and the caps of one request --------------------------------------------------------


def today() -> datetime.date:
    """Return today's date in the current time zone."""
    return timezone.localdate() if timezone.is_aware(timezone.now()) else datetime.date.today()


def period_start(period: str, day: datetime.date | None = None) -> datetime.date:
    """Return the first day of the ``"day"`` or ``"month"`` period containing ``day``."""
    day = day or today()
    return day if period == "day" else day.replace(day=1)


def period_bounds(period: str, start: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    """Return the first instant of a period and of the next one, in the current time zone."""
    if period == "day":
        end = start + datetime.timedelta(days=1)
    else:
        end = (start.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    as_time = datetime.datetime.combine
    begin, finish = as_time(start, datetime.time()), as_time(end, datetime.time())
    if timezone.is_aware(timezone.now()):
        begin, finish = timezone.make_aware(begin), timezone.make_aware(finish)
    return begin, finish


def applicable(
    configured: Sequence[Cap],
    *,
    user: Any = None,
    preset: str = "",
    provider: str = "",
    day: datetime.date | None = None,
) -> list[Applied]:
    """Return the caps that apply to a request of ``user`` for ``preset`` on ``provider``.

    The order is the running totals' keys, so concurrent requests lock their rows in the same
    order and cannot deadlock.
    """
    has_user = user is not None and getattr(user, "pk", None) is not None
    groups: list[str] | None = None
    found = []
    for cap in configured:
        start = period_start(cap.period, day)
        if cap.scope == "site":
            found.append(Applied(cap=cap, value="", label="site", period_start=start))
        elif cap.scope == "user" and has_user:
            name = user.get_username()
            if cap.key is None or cap.key == name:
                found.append(Applied(cap=cap, value=str(user.pk), label=name, period_start=start))
        elif cap.scope == "group" and has_user:
            if groups is None:
                groups = list(user.groups.values_list("name", flat=True))
            for group in groups:
                if cap.key is None or cap.key == group:
                    found.append(Applied(cap=cap, value=group, label=group, period_start=start))
        elif cap.scope in ("preset", "provider"):
            value = preset if cap.scope == "preset" else provider
            if value and (cap.key is None or cap.key == value):
                found.append(Applied(cap=cap, value=value, label=value, period_start=start))
    # Two caps on one running total (every preset's, and the hero preset's, say) reserve on it
    # once, under the lower limit.
    tightest: dict[tuple[str, datetime.date], Applied] = {}
    for item in found:
        key = (item.use_key, item.period_start)
        if key not in tightest or item.cap.limit < tightest[key].cap.limit:
            tightest[key] = item
    return [tightest[key] for key in sorted(tightest)]


# Reserving ----------------------------------------------------------------------------------


class Budget:
    """The caps of one user's requests, reserved request by request or a batch at once.

    Call it inside the transaction that records the rows: the reservations commit or roll
    back with them.
    """

    def __init__(self, user: Any = None) -> None:
        self.user = user if getattr(user, "pk", None) is not None else None
        self.caps = caps()

    def reserve(self, estimate: Decimal, *, preset: str = "", provider: str = "") -> Reservation:
        """Reserve ``estimate`` on every cap that applies; raise BudgetExceeded in "block" mode."""
        if not self.caps or not estimate:
            return Reservation()
        applied = applicable(self.caps, user=self.user, preset=preset, provider=provider)
        reservation = Reservation(amount=estimate, applied=applied)
        problems = []
        for item in applied:
            problem = _take(item, estimate)
            if problem and item.cap.action == "block":
                raise BudgetExceeded(problem)
            if problem:
                problems.append(problem)
        reservation.warnings = problems
        return reservation

    def reserve_all(self, requests: Sequence[tuple[Decimal, str, str]]) -> list[Reservation] | None:
        """Reserve ``(estimate, preset, provider)`` requests together; None if they do not fit.

        One conditional ``UPDATE`` per running total for the whole batch. When the batch does
        not fit under every cap, nothing is reserved and None comes back: reserve the requests
        one by one to find the part that fits, and which ones go over a "warn" cap.
        """
        if not self.caps:
            return [Reservation() for _ in requests]
        reservations, totals = [], {}
        for estimate, preset, provider in requests:
            applied = applicable(self.caps, user=self.user, preset=preset, provider=provider)
            reservations.append(Reservation(amount=estimate, applied=applied if estimate else []))
            for item in applied if estimate else ():
                key = (item.use_key, item.period_start)
                totals[key] = (item, totals.get(key, (item, Decimal(0)))[1] + estimate)
        try:
            with transaction.atomic():
                for key in sorted(totals):
                    item, total = totals[key]
                    if _take(item, total, strict=True):
                        raise _DoesNotFit
        except _DoesNotFit:
            return None
        return reservations


class _DoesNotFit(Exception):
    """A batch does not fit under a cap in "block" mode: roll its reservations back."""


def _take(item: Applied, amount: Decimal, *, strict: bool = False) -> str:
    """Reserve ``amount`` on one running total; return a message if that goes over the cap.

    In "block" mode (or ``strict``) the reservation is one conditional UPDATE that succeeds
    only while the cap has room, so nothing is reserved when the message comes back.
    """
    cap, use = item.cap, _use(item)
    rows = BudgetUse.objects.filter(pk=use.pk)
    if cap.action == "block" or strict:
        room = _amount_value(cap.limit - amount) - F("unconfirmed") - F("reserved")
        if not rows.filter(spent__lte=room).update(reserved=F("reserved") + _amount_value(amount)):
            use.refresh_from_db()
            return _over(item, amount, use.used)
        if cap.warn is None or use.warned or not cap.limit:
            # The conditional update kept the total under the cap, and no threshold signal is
            # due: reading the row back would tell nothing.
            return ""
    else:
        rows.update(reserved=F("reserved") + _amount_value(amount))
    use.refresh_from_db()
    _check_threshold(item.cap, use)
    if use.used > cap.limit:
        return _over(item, amount, use.used - amount)
    return ""


def _amount_value(amount: Decimal) -> Value:
    """Return ``amount`` for a running total's SQL arithmetic: whole millionths, exact."""
    return Value(amount, output_field=MicroAmountField())


def _over(item: Applied, amount: Decimal, used: Decimal) -> str:
    cap = item.cap
    return (
        f"This would cost {format_cost(amount)} and bring {cap.whose(item.label)} "
        f"spend {cap.when} to {format_cost(used + amount)}, over the "
        f"{format_cost(cap.limit)} {cap.adjective} budget."
    )


def _use(item: Applied) -> BudgetUse:
    """Return the running total of ``item``'s cap and period, creating it from the ledger."""
    found = BudgetUse.objects.filter(cap=item.use_key, period_start=item.period_start).first()
    if found is not None:
        return found
    opening = _opening_balance(item)
    try:
        with transaction.atomic():
            return BudgetUse.objects.create(
                cap=item.use_key, period_start=item.period_start, spent=opening
            )
    except IntegrityError:  # another request created it a moment ago
        return BudgetUse.objects.get(cap=item.use_key, period_start=item.period_start)


def _opening_balance(item: Applied) -> Decimal:
    """Return what the ledger already holds for a cap's period when its total is first made.

    A running total starts the first time a request of its period needs it, so the spend of
    rows recorded before (before the cap was configured, say) is read once, here: charges of
    finished rows and the estimates of open ones.
    """
    begin, end = period_bounds(item.cap.period, item.period_start)
    rows = Generation.objects.filter(created_at__gte=begin, created_at__lt=end)
    scope, value = item.cap.scope, item.value
    if scope == "user":
        rows = rows.filter(created_by_id=value)
    elif scope == "group":
        rows = rows.filter(created_by__groups__name=value)
    elif scope == "preset":
        rows = rows.filter(preset=value)
    elif scope == "provider":
        rows = rows.filter(provider=value)
    open_ = Q(status__in=[Status.QUEUED, Status.RUNNING])
    amount = Case(
        When(open_, then=F("estimated_cost")),
        default=Coalesce(F("cost"), Value(Decimal(0), output_field=MONEY)) + F("unconfirmed_cost"),
        output_field=MONEY,
    )
    return rows.aggregate(total=Sum(amount))["total"] or Decimal(0)


# Settling -----------------------------------------------------------------------------------


def settle(
    held: dict[str, Any] | None,
    *,
    charged: Decimal = Decimal(0),
    unconfirmed: Decimal = Decimal(0),
) -> None:
    """Release a row's reservation ``held`` and add what its run charged to the caps.

    ``held`` is the row's ``reservation`` as it was before the run's outcome was written; call
    this in the transaction that writes it, after the row's own update won. A row without a
    reservation (no cap applied, or recorded before caps were set) changes no running total.
    """
    held = held or {}
    if not held.get("caps"):
        return
    amount = Decimal(str(held.get("amount") or 0))
    for key, start in _held_caps(held):
        rows = BudgetUse.objects.filter(cap=key, period_start=start)
        rows.update(
            reserved=F("reserved") - _amount_value(amount),
            spent=F("spent") + _amount_value(charged),
            unconfirmed=F("unconfirmed") + _amount_value(unconfirmed),
        )
    configured = caps() if charged or unconfirmed else []
    # The totals are read back only when a threshold signal may be due.
    if any(cap.warn is not None for cap in configured):
        for use in BudgetUse.objects.filter(_any_of(_held_caps(held)), warned=False):
            cap = cap_for(use.cap, configured)
            if cap is not None:
                _check_threshold(cap, use)


def _held_caps(held: dict[str, Any]) -> list[tuple[str, datetime.date]]:
    return [(key, datetime.date.fromisoformat(start)) for key, start in held.get("caps") or []]


def _any_of(pairs: Iterable[tuple[str, datetime.date]]) -> Q:
    query = Q(pk__in=[])
    for key, start in pairs:
        query |= Q(cap=key, period_start=start)
    return query


def cap_for(use_key: str, configured: Sequence[Cap] | None = None) -> Cap | None:
    """Return the configured cap a ``BudgetUse.cap`` belongs to: the lowest limit that names it."""
    scope, _, rest = use_key.partition(":")
    value, _, period = rest.rpartition(":")
    matching = [
        cap
        for cap in (configured if configured is not None else caps())
        if cap.scope == scope
        and cap.period == period
        and (cap.key is None or scope == "user" or cap.key == value)
    ]
    return min(matching, key=lambda cap: cap.limit, default=None)


# Thresholds ---------------------------------------------------------------------------------


def _check_threshold(cap: Cap, use: BudgetUse) -> None:
    """Send the threshold signal once per cap and period when ``use`` reaches ``cap.warn``."""
    if cap.warn is None or use.warned or not cap.limit:
        return
    used = use.used
    if used * 100 < cap.limit * cap.warn:
        return
    # Of concurrent requests that cross the threshold together, one sends the signal.
    if not BudgetUse.objects.filter(pk=use.pk, warned=False).update(warned=True):
        return
    use.warned = True
    transaction.on_commit(lambda: _announce_threshold(cap, use, used))


def _announce_threshold(cap: Cap, use: BudgetUse, used: Decimal) -> None:
    for receiver, response in budget_threshold_crossed.send_robust(
        sender=BudgetUse, cap=cap, use=use, used=used, limit=cap.limit
    ):
        if isinstance(response, Exception):
            logger.error("imagegen: budget_threshold_crossed receiver %r raised %r",
                         receiver, response)  # fmt: skip
    logger.warning("imagegen: budget %s reached %s of %s", use.cap, used, cap.limit)
    recipients = alert_emails()
    if recipients:
        subject = f"[imagegen] Budget {describe(use.cap)} at {percent(used, cap.limit)}%"
        body = (
            f"The {cap.adjective} budget {describe(use.cap)} has used {format_cost(used)} of "
            f"{format_cost(cap.limit)} in the period from {use.period_start:%Y-%m-%d}.\n"
            f"Requests {'over it are refused' if cap.action == 'block' else 'still run'}."
        )
        try:
            send_mail(subject=subject, message=body, from_email=None, recipient_list=recipients)
        except Exception:  # an alert must never fail the request that crossed the threshold
            logger.exception("imagegen: could not send the budget alert for %s", use.cap)


def describe(use_key: str) -> str:
    """Return a ``BudgetUse.cap`` for people: "site, month", "provider openai, day"."""
    scope, _, rest = use_key.partition(":")
    value, _, period = rest.rpartition(":")
    return f"{scope} {value}, {period}".replace(" ,", ",")


def percent(used: Decimal, limit: Decimal) -> int:
    """Return ``used`` as a whole percentage of ``limit`` (100 for a zero limit)."""
    return int(used * 100 / limit) if limit else 100


@dataclass(frozen=True, kw_only=True)
class CapUse:
    """A configured cap's running total in the current period, for the admin and the banner."""

    cap: Cap
    use: BudgetUse

    @property
    def percent(self) -> int:
        return percent(self.use.used, self.cap.limit)

    @property
    def over_threshold(self) -> bool:
        return self.cap.warn is not None and self.percent >= self.cap.warn


def current_uses(*, over_threshold: bool = False) -> list[CapUse]:
    """Return the running totals of the current periods with their caps: one query."""
    configured = caps()
    if not configured:
        return []
    starts = {period_start(period) for period in PERIODS}
    rows = BudgetUse.objects.filter(period_start__in=starts).order_by("cap")
    if over_threshold:
        rows = rows.filter(warned=True)
    found = []
    for use in rows:
        cap = cap_for(use.cap, configured)
        if cap is not None and use.period_start == period_start(cap.period):
            found.append(CapUse(cap=cap, use=use))
    return [item for item in found if item.over_threshold or not over_threshold]
