"""The ledger's totals, filter choices and date navigation, read from the rollups when they can be.

A changelist URL whose filters are all ones the daily rollup (:class:`~imagegen.models.SpendDay`)
knows (provider, model, preset, user and whole days of ``created_at``) is answered from the
rollup: the count and the sums cost a few milliseconds at any ledger size. Any other filter (a
status, a search, a target object) is answered from the ledger itself, with one aggregate query
for the count and the sums together.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from imagegen.models import Generation, SpendDay
from imagegen.money import format_cost

#: Query parameters that do not filter rows: ordering, page, "show all", popups and errors.
NOT_FILTERS = frozenset({"o", "p", "all", "e", "_to_field", "_popup"})
#: Ledger filter parameters and the rollup field each one filters.
ROLLUP_FIELDS = {
    "provider": "provider",
    "provider__exact": "provider",
    "model": "model",
    "model__exact": "model",
    "preset": "preset",
    "preset__exact": "preset",
    "created_by__id__exact": "user_id",
}
DATE_FIELD = "created_at"


@dataclass
class Sums:
    """The count and the summed money of some ledger rows, one entry per currency."""

    count: int = 0
    #: currency -> {"cost", "estimated", "unconfirmed"}
    money: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    #: Whether the numbers came from the rollup (True) or the ledger (False).
    from_rollup: bool = False

    def formatted(self, kind: str) -> str:
        """Return the sums of ``kind`` as "$1.20 + 3.00 EUR" ("$0.00" when there are none)."""
        if not self.money:
            return format_cost(Decimal(0))
        return " + ".join(format_cost(sums[kind], cur) for cur, sums in sorted(self.money.items()))

    @property
    def has_unconfirmed(self) -> bool:
        return any(sums["unconfirmed"] for sums in self.money.values())


def rollup_filter(params: Any, *, dates: bool = True) -> Q | None:
    """Return the rollup filter equal to the ledger filter ``params``, or None if there is none.

    ``params`` are a changelist's query parameters. With ``dates=False`` the date parameters
    are left out (for the date navigation, which lists dates under the other filters).
    """
    # Rollup days are days of TIME_ZONE; a request in another time zone cuts days elsewhere.
    if timezone.get_current_timezone_name() != timezone.get_default_timezone_name():
        return None
    q = Q()
    for key in params:
        if key in NOT_FILTERS:
            continue
        values = params.getlist(key) if hasattr(params, "getlist") else [params[key]]
        if len(values) != 1:  # several values of one filter: an IN the rollup is not asked
            return None
        value = values[0]
        if key in ROLLUP_FIELDS:
            if key == "created_by__id__exact":
                if not value.isdigit():
                    return None
                value = int(value)
            q &= Q(**{ROLLUP_FIELDS[key]: value})
        elif key.startswith(f"{DATE_FIELD}__"):
            if not dates:
                continue
            lookup = key.removeprefix(f"{DATE_FIELD}__")
            if lookup in ("year", "month", "day"):
                if not value.isdigit():
                    return None
                q &= Q(**{f"day__{lookup}": int(value)})
            elif lookup in ("gte", "lt"):
                day = whole_day(value)
                if day is None:
                    return None
                q &= Q(**{f"day__{lookup}": day})
            else:
                return None
        else:
            return None
    return q


def whole_day(value: str) -> datetime.date | None:
    """Return the day that ``value`` (a date, or a datetime at local midnight) starts, or None."""
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment, timezone.get_default_timezone())
    if moment.time() != datetime.time.min:
        return None
    return moment.date()


def sums_of(request: Any, queryset: QuerySet) -> Sums:
    """Return the count and sums of the changelist rows ``queryset``, with one query.

    From the rollup when the request's filters allow it, else from ``queryset`` (the
    changelist's rows with every filter applied).
    """
    q = rollup_filter(request.GET) if request is not None else None
    if q is not None:
        rows = (
            SpendDay.objects.filter(q)
            .values("currency")
            .annotate(
                n=Sum("generations"),
                cost=Sum("cost"),
                estimated=Sum("estimated"),
                unconfirmed=Sum("unconfirmed"),
            )
            .order_by()
        )
    else:
        rows = (
            queryset.order_by()
            .values("currency")
            .annotate(
                n=Count("pk"),
                cost=Sum("cost"),
                estimated=Sum("estimated_cost"),
                unconfirmed=Sum("unconfirmed_cost"),
            )
            .order_by()
        )
    sums = Sums(from_rollup=q is not None)
    for row in rows:
        if not row["n"]:
            continue
        sums.count += row["n"]
        sums.money[row["currency"]] = {
            kind: Decimal(row[kind] or 0) for kind in ("cost", "estimated", "unconfirmed")
        }
    return sums


class CountedPaginator(Paginator):
    """A paginator told its count (from :func:`sums_of`), so it never runs ``COUNT(*)``."""

    def __init__(self, *args: Any, sums: Sums, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sums = sums

    @cached_property
    def count(self) -> int:
        return self.sums.count


class RollupValuesFilter(admin.AllValuesFieldListFilter):
    """A sidebar filter of a field's values, listed from the daily rollup, not the ledger.

    ``AllValuesFieldListFilter`` runs ``SELECT DISTINCT`` over the whole ledger; the rollup has
    the same values in a few thousand rows.
    """

    def __init__(self, field: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(field, *args, **kwargs)
        self.lookup_choices = (
            SpendDay.objects.order_by(field.name).values_list(field.name, flat=True).distinct()
        )


def date_navigation(changelist: Any) -> dict[str, Any]:
    """Return the context of ``admin/date_hierarchy.html`` for the ledger, from the rollup.

    Like the admin's date hierarchy (years, then months, then days), but the dates come from
    the rollup: with the other filters when the rollup knows them, else every day with any
    generation. The admin's own reads ``DISTINCT`` dates from the whole ledger.
    """
    navigation = _levels(changelist)
    # Django 6.1's template labels the navigation "Filter by <field>".
    navigation["field_name"] = Generation._meta.get_field(DATE_FIELD).verbose_name
    return navigation


def _levels(changelist: Any) -> dict[str, Any]:
    params = changelist.params
    year = params.get(f"{DATE_FIELD}__year")
    month = params.get(f"{DATE_FIELD}__month")
    day = params.get(f"{DATE_FIELD}__day")
    days = SpendDay.objects.filter(rollup_filter(params, dates=False) or Q())
    generic = f"{DATE_FIELD}__"

    def link(filters: dict[str, Any]) -> str:
        return changelist.get_query_string(filters, [generic])

    y, m, d = f"{DATE_FIELD}__year", f"{DATE_FIELD}__month", f"{DATE_FIELD}__day"
    try:
        if year and month and day:
            date = datetime.date(int(year), int(month), int(day))
            return {
                "show": True,
                "back": {
                    "link": link({y: year, m: month}),
                    "title": capfirst(formats.date_format(date, "YEAR_MONTH_FORMAT")),
                },
                "choices": [{"title": capfirst(formats.date_format(date, "MONTH_DAY_FORMAT"))}],
            }
        if year and month:
            dates = days.filter(day__year=int(year), day__month=int(month)).dates("day", "day")
            return {
                "show": True,
                "back": {"link": link({y: year}), "title": str(year)},
                "choices": [
                    {
                        "link": link({y: year, m: month, d: date.day}),
                        "title": capfirst(formats.date_format(date, "MONTH_DAY_FORMAT")),
                    }
                    for date in dates
                ],
            }
        if year:
            months = days.filter(day__year=int(year)).dates("day", "month")
            return {
                "show": True,
                "back": {"link": link({}), "title": _("All dates")},
                "choices": [
                    {
                        "link": link({y: year, m: date.month}),
                        "title": capfirst(formats.date_format(date, "YEAR_MONTH_FORMAT")),
                    }
                    for date in months
                ],
            }
    except ValueError:  # a hand-made URL with a month 13: no navigation, like a bad filter
        return {"show": False}
    years = days.dates("day", "year")
    return {
        "show": True,
        "back": None,
        "choices": [{"link": link({y: str(date.year)}), "title": str(date.year)} for date in years],
    }
