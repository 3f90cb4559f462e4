"""The spend dashboard ("AI spend"): where the money went, drawn from the rollups.

Five panels, each a chart (:mod:`imagegen.admin.charts`), a table with the same numbers and a
CSV export (``?export=<panel>``): spend over time stacked by provider, model, preset or user;
estimate against actual per model; the top objects by spend; each budget cap's use against its
limit; failures and filtered images per provider. Every panel reads the rollups
(:class:`~imagegen.models.SpendDay`, :class:`~imagegen.models.ObjectSpend`) or the budget
running totals (:class:`~imagegen.models.BudgetUse`), never the ledger, so the page makes the
same few queries at a thousand ledger rows or a million. Confirmed and unconfirmed charges are
shown apart. It needs the ``imagegen.view_generation`` permission.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import F, Q, Sum
from django.db.models.functions import TruncMonth
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from imagegen.admin import charts
from imagegen.models import ObjectSpend, SpendDay
from imagegen.money import format_cost
from imagegen.pipeline import budgets

PERMISSION = "imagegen.view_generation"
GROUPINGS = {
    "provider": gettext_lazy("provider"),
    "model": gettext_lazy("model"),
    "preset": gettext_lazy("preset"),
    "user": gettext_lazy("user"),
}
PERIODS = {"day": gettext_lazy("day"), "month": gettext_lazy("month")}
PANELS = ("spend", "models", "objects", "caps", "failures")
#: Series shown by name in the spend chart; the rest are summed as "other".
MAX_SERIES = 7
TOP_OBJECTS = 10
DEFAULT_DAYS = 30
#: The longest range drawn by day (a longer one is drawn by month).
MAX_DAYS = 400
ZERO = Decimal(0)


@dataclass
class Panel:
    """One panel of the dashboard: a chart, its table and its CSV."""

    slug: str
    title: str
    desc: str = ""
    chart: str = ""
    headers: list[str] = field(default_factory=list)
    #: The table's cells, formatted for people.
    rows: list[list[Any]] = field(default_factory=list)
    #: The same rows for the CSV export: plain numbers, ISO dates; and their column names.
    data: list[list[Any]] = field(default_factory=list)
    data_headers: list[str] = field(default_factory=list)
    note: str = ""
    #: Per table row, the URL of its first cell's link (or "").
    links: list[str] = field(default_factory=list)

    @property
    def table(self) -> list[tuple[str, list[Any]]]:
        links = self.links or [""] * len(self.rows)
        return list(zip(links, self.rows, strict=True))


@dataclass
class Options:
    """The dashboard's controls, read from the query string."""

    start: datetime.date
    end: datetime.date
    period: str
    by: str

    @classmethod
    def from_request(cls, request: HttpRequest) -> Options:
        """Return the options of ``request``; missing or malformed values get the defaults."""
        today = timezone.localdate(timezone=timezone.get_default_timezone())
        end = _date(request.GET.get("end")) or today
        start = _date(request.GET.get("start")) or end - datetime.timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            start, end = end, start
        period = request.GET.get("period")
        if period not in PERIODS:
            period = "day" if (end - start).days < MAX_DAYS else "month"
        if period == "day" and (end - start).days >= MAX_DAYS:
            period = "month"
        by = request.GET.get("by")
        return cls(start=start, end=end, period=period, by=by if by in GROUPINGS else "provider")

    def query(self, **extra: str) -> str:
        """Return the query string of these options (and ``extra``)."""
        params = {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "period": self.period,
            "by": self.by,
            **extra,
        }
        return urlencode(params)


def _date(value: str | None) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def spend_view(request: HttpRequest, model_admin: Any) -> HttpResponse:
    """Render the dashboard, or one panel as CSV with ``?export=<panel>``."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    options = Options.from_request(request)
    export = request.GET.get("export")
    builders = {
        "spend": spend_over_time,
        "models": estimate_vs_actual,
        "objects": top_objects,
        "caps": cap_use,
        "failures": failures,
    }
    if export in builders:
        return csv_response(builders[export](options, model_admin.admin_site.name), options)
    panels = [build(options, model_admin.admin_site.name) for build in builders.values()]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("AI spend"),
        "opts": model_admin.model._meta,
        "options": options,
        "groupings": GROUPINGS,
        "periods": PERIODS,
        "panels": panels,
        "query": options.query(),
        "ledger_url": reverse(f"{model_admin.admin_site.name}:imagegen_generation_changelist"),
    }
    return TemplateResponse(request, "admin/imagegen/spend_dashboard.html", context)


def csv_response(panel: Panel, options: Options) -> HttpResponse:
    """Return ``panel``'s data as a CSV download."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"imagegen-{panel.slug}-{options.start}-{options.end}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response, lineterminator="\n")
    writer.writerow(panel.data_headers)
    writer.writerows(panel.data)
    return response


def _days(options: Options) -> Any:
    return SpendDay.objects.filter(day__gte=options.start, day__lte=options.end)


def _main_currency(rows: list[dict[str, Any]]) -> str:
    """Return the currency with the most spend among ``rows`` (USD when there is none)."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        totals[row["currency"]] += (row["cost"] or ZERO) + (row["unconfirmed"] or ZERO)
    return max(totals, key=lambda c: (totals[c], c == "USD"), default="USD")


def _user_names(ids: set[int]) -> dict[int, str]:
    ids = {pk for pk in ids if pk}
    if not ids:
        return {}
    return {user.pk: user.get_username() for user in get_user_model().objects.filter(pk__in=ids)}


def _periods(options: Options) -> list[datetime.date]:
    """Return the first day of every period from ``options.start`` to ``options.end``."""
    if options.period == "day":
        count = (options.end - options.start).days + 1
        return [options.start + datetime.timedelta(days=n) for n in range(count)]
    months, month = [], options.start.replace(day=1)
    while month <= options.end:
        months.append(month)
        month = (month + datetime.timedelta(days=32)).replace(day=1)
    return months


def _period_label(day: datetime.date, period: str) -> str:
    return day.strftime("%Y-%m") if period == "month" else day.isoformat()


def spend_over_time(options: Options, site: str = "admin") -> Panel:
    """Return spend per day or month, stacked by the chosen grouping, confirmed and unconfirmed."""
    key = "user_id" if options.by == "user" else options.by
    bucket = TruncMonth("day") if options.period == "month" else F("day")
    rows = list(
        _days(options)
        .annotate(bucket=bucket)
        .values("bucket", key, "currency")
        .annotate(cost=Sum("cost"), unconfirmed=Sum("unconfirmed"))
        .order_by("bucket", key, "currency")
    )
    names = _user_names({row["user_id"] for row in rows}) if options.by == "user" else {}

    def label(value: Any) -> str:
        if options.by == "user":
            return names.get(value, f"#{value}") if value else _("(no user)")
        return value or _("(none)")

    currency = _main_currency(rows)
    periods = _periods(options)
    index = {day: n for n, day in enumerate(periods)}
    by_group: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO] * len(periods))
    unconfirmed = [ZERO] * len(periods)
    others: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        bucket_day = row["bucket"]
        if isinstance(bucket_day, datetime.datetime):
            bucket_day = bucket_day.date()
        if row["currency"] != currency:
            others[row["currency"]] += (row["cost"] or ZERO) + (row["unconfirmed"] or ZERO)
            continue
        n = index.get(bucket_day)
        if n is None:
            continue
        by_group[label(row[key])][n] += row["cost"] or ZERO
        unconfirmed[n] += row["unconfirmed"] or ZERO
    ranked = sorted(by_group, key=lambda g: (-sum(by_group[g]), g))
    shown, rest = ranked[:MAX_SERIES], ranked[MAX_SERIES:]
    series = [charts.Series(name=g, values=by_group[g]) for g in shown]
    if rest:
        other = [sum((by_group[g][n] for g in rest), ZERO) for n in range(len(periods))]
        series.append(charts.Series(name=_("other"), values=other, colour=MAX_SERIES))
    series.append(
        charts.Series(name=_("unconfirmed"), values=unconfirmed, colour=MAX_SERIES, hatched=True)
    )

    def fmt(amount: Decimal) -> str:
        return format_cost(amount, currency)

    by_name = str(GROUPINGS[options.by])
    panel = Panel(
        slug="spend",
        title=_("Spend over time by %(grouping)s") % {"grouping": by_name},
        desc=_(
            "Spend per %(period)s from %(start)s to %(end)s in %(currency)s, one stacked column "
            "per %(period)s: confirmed charges by %(grouping)s, and unconfirmed charges (calls "
            "whose outcome is unknown) on top, hatched."
        )
        % {
            "period": PERIODS[options.period],
            "start": options.start,
            "end": options.end,
            "currency": currency,
            "grouping": by_name,
        },
        headers=[str(PERIODS[options.period]), by_name, _("confirmed"), _("unconfirmed")],
        data_headers=[options.period, options.by, "currency", "cost", "unconfirmed"],
    )
    labels = [_period_label(day, options.period) for day in periods]
    panel.chart = charts.stacked_columns(
        title=panel.title, desc=panel.desc, categories=labels, series=series, fmt=fmt
    )
    for row in rows:
        bucket_day = row["bucket"]
        if isinstance(bucket_day, datetime.datetime):
            bucket_day = bucket_day.date()
        cost, pending = row["cost"] or ZERO, row["unconfirmed"] or ZERO
        if not cost and not pending:
            continue
        period = _period_label(bucket_day, options.period)
        panel.rows.append(
            [
                period,
                label(row[key]),
                format_cost(cost, row["currency"]),
                format_cost(pending, row["currency"]),
            ]
        )
        panel.data.append([period, label(row[key]), row["currency"], _plain(cost), _plain(pending)])
    if others:
        panel.note = _("Also spent in other currencies (not in the chart): %(amounts)s.") % {
            "amounts": ", ".join(format_cost(v, c) for c, v in sorted(others.items()))
        }
    return panel


def estimate_vs_actual(options: Options, site: str = "admin") -> Panel:
    """Return each model's estimated and actual spend in the date range."""
    rows = list(
        _days(options)
        .values("provider", "model", "currency")
        .annotate(
            generations=Sum("generations"),
            estimated=Sum("estimated"),
            cost=Sum("cost"),
            unconfirmed=Sum("unconfirmed"),
        )
        .order_by("provider", "model", "currency")
    )
    rows.sort(key=lambda r: -((r["cost"] or ZERO) + (r["estimated"] or ZERO)))
    currency = _main_currency(rows)
    charted = [r for r in rows if r["currency"] == currency]
    panel = Panel(
        slug="models",
        title=_("Estimate against actual per model"),
        desc=_(
            "For each model, from %(start)s to %(end)s: the estimate of every request recorded, "
            "what the provider charged, and unconfirmed charges, side by side."
        )
        % {"start": options.start, "end": options.end},
        headers=[
            _("provider"),
            _("model"),
            _("generations"),
            _("estimated"),
            _("actual"),
            _("unconfirmed"),
            _("actual / estimate"),
        ],
    )
    panel.data_headers = [
        "provider",
        "model",
        "currency",
        "generations",
        "estimated",
        "cost",
        "unconfirmed",
    ]
    labels = [f"{r['provider']} / {r['model'] or '?'}" for r in charted]
    panel.chart = charts.bars(
        title=panel.title,
        desc=panel.desc,
        labels=labels,
        series=[
            charts.Series(
                name=_("estimated"), values=[r["estimated"] or ZERO for r in charted], colour=1
            ),
            charts.Series(name=_("actual"), values=[r["cost"] or ZERO for r in charted], colour=0),
            charts.Series(
                name=_("unconfirmed"),
                values=[r["unconfirmed"] or ZERO for r in charted],
                colour=MAX_SERIES,
                hatched=True,
            ),
        ],
        fmt=lambda amount: format_cost(amount, currency),
        stacked=False,
    )
    for r in rows:
        estimated, cost = r["estimated"] or ZERO, r["cost"] or ZERO
        ratio = f"{cost / estimated:.0%}" if estimated else "—"
        cur = r["currency"]
        panel.rows.append(
            [
                r["provider"],
                r["model"],
                r["generations"],
                format_cost(estimated, cur),
                format_cost(cost, cur),
                format_cost(r["unconfirmed"] or ZERO, cur),
                ratio,
            ]
        )
        panel.data.append(
            [
                r["provider"],
                r["model"],
                cur,
                r["generations"],
                _plain(estimated),
                _plain(cost),
                _plain(r["unconfirmed"] or ZERO),
            ]
        )
    return panel


def top_objects(options: Options, site: str = "admin") -> Panel:
    """Return the objects whose generations cost the most, all time, linked to their pages.

    One query for the totals, then one per model among them for the objects' names: at most
    ``TOP_OBJECTS`` more, whatever the size of the ledger.
    """
    top = list(ObjectSpend.objects.order_by("-cost", "content_type_id", "object_id")[:TOP_OBJECTS])
    by_type: dict[int, list[str]] = defaultdict(list)
    for spend in top:
        by_type[spend.content_type_id].append(spend.object_id)
    names: dict[tuple[int, str], Any] = {}
    for ct_id, ids in by_type.items():
        ct = ContentType.objects.get_for_id(ct_id)
        model = ct.model_class()
        if model is None:
            continue
        pks = []
        for pk in ids:
            # An id the model would never have is shown without a name.
            with contextlib.suppress(ValidationError):
                pks.append(model._meta.pk.to_python(pk))
        for obj in model._default_manager.filter(pk__in=pks):
            names[(ct_id, str(obj.pk))] = obj
    panel = Panel(
        slug="objects",
        title=_("Top objects by spend"),
        desc=_(
            "The %(count)d objects whose generations cost the most since the ledger began: "
            "confirmed charges, and unconfirmed charges hatched."
        )
        % {"count": TOP_OBJECTS},
        headers=[_("object"), _("type"), _("generations"), _("confirmed"), _("unconfirmed")],
    )
    panel.data_headers = ["object", "type", "object_id", "generations", "cost", "unconfirmed"]
    labels = []
    for spend in top:
        ct = ContentType.objects.get_for_id(spend.content_type_id)
        obj = names.get((spend.content_type_id, spend.object_id))
        name = str(obj) if obj is not None else _("#%(id)s (deleted)") % {"id": spend.object_id}
        url = ""
        if obj is not None:
            try:
                url = reverse(f"{site}:{ct.app_label}_{ct.model}_change", args=[obj.pk])
            except NoReverseMatch:
                url = ""
        labels.append(name)
        panel.links.append(url)
        panel.rows.append(
            [
                name,
                ct.name,
                spend.generations,
                format_cost(spend.cost),
                format_cost(spend.unconfirmed),
            ]
        )
        panel.data.append(
            [
                name,
                f"{ct.app_label}.{ct.model}",
                spend.object_id,
                spend.generations,
                _plain(spend.cost),
                _plain(spend.unconfirmed),
            ]
        )
    panel.chart = charts.bars(
        title=panel.title,
        desc=panel.desc,
        labels=labels,
        series=[
            charts.Series(name=_("confirmed"), values=[s.cost for s in top], colour=0),
            charts.Series(
                name=_("unconfirmed"),
                values=[s.unconfirmed for s in top],
                colour=MAX_SERIES,
                hatched=True,
            ),
        ],
        fmt=format_cost,
    )
    return panel


def cap_use(options: Options, site: str = "admin") -> Panel:
    """Return each budget cap's use in its current period against its limit (``BudgetUse``)."""
    caps = budgets.caps()
    # One query: the running totals of the current periods, each with the cap that binds it.
    matched: list[tuple[Any, str, Any]] = []
    user_ids: set[int] = set()
    for item in budgets.current_uses():
        subject = item.use.cap.partition(":")[2].rpartition(":")[0]
        matched.append((item.cap, subject, item.use))
        if item.cap.scope == "user" and subject.isdigit():
            user_ids.add(int(subject))
    names = _user_names(user_ids)
    matched.sort(key=lambda item: (caps.index(item[0]), -item[2].used))
    panel = Panel(
        slug="caps",
        title=_("Budget caps"),
        desc=_(
            "Each budget cap's use in its current period against its limit: spent, "
            "unconfirmed and reserved (requests not finished yet), with a mark at the limit."
        ),
        headers=[
            _("cap"),
            _("period from"),
            _("spent"),
            _("unconfirmed"),
            _("reserved"),
            _("limit"),
            _("used"),
        ],
    )
    panel.data_headers = ["cap", "period_start", "spent", "unconfirmed", "reserved", "limit"]
    labels = []
    for cap, subject, use in matched:
        who = _("site") if cap.scope == "site" else f"{cap.scope} {subject}"
        if cap.scope == "user" and subject.isdigit():
            who = _("user %(name)s") % {"name": names.get(int(subject), f"#{subject}")}
        label = _("%(who)s, per %(period)s") % {"who": who, "period": PERIODS[cap.period]}
        labels.append(label)
        share = f"{use.used / cap.limit:.0%}" if cap.limit else "—"
        panel.rows.append(
            [
                label,
                use.period_start.isoformat(),
                format_cost(use.spent),
                format_cost(use.unconfirmed),
                format_cost(use.reserved),
                format_cost(cap.limit),
                share,
            ]
        )
        panel.data.append(
            [
                use.cap,
                use.period_start.isoformat(),
                _plain(use.spent),
                _plain(use.unconfirmed),
                _plain(use.reserved),
                _plain(cap.limit),
            ]
        )
    if not caps:
        panel.note = _('No budget caps are set (IMAGEGEN["BUDGETS"]).')
    elif not matched:
        panel.note = _("Nothing has been spent against the caps in their current periods.")
    panel.chart = (
        charts.bars(
            title=panel.title,
            desc=panel.desc,
            labels=labels,
            series=[
                charts.Series(name=_("spent"), values=[u.spent for _c, _s, u in matched], colour=0),
                charts.Series(
                    name=_("unconfirmed"),
                    values=[u.unconfirmed for _c, _s, u in matched],
                    colour=MAX_SERIES,
                    hatched=True,
                ),
                charts.Series(
                    name=_("reserved"),
                    values=[u.reserved for _c, _s, u in matched],
                    colour=3,
                    hatched=True,
                ),
            ],
            fmt=format_cost,
            limits=[c.limit for c, _s, _u in matched],
        )
        if matched
        else ""
    )
    return panel


def failures(options: Options, site: str = "admin") -> Panel:
    """Return each provider's requests, failed and filtered runs and images in the date range."""
    rows = list(
        _days(options)
        .filter(Q(generations__gt=0) | Q(failed__gt=0) | Q(filtered__gt=0) | Q(canceled__gt=0))
        .values("provider")
        .annotate(
            generations=Sum("generations"),
            images=Sum("images"),
            failed=Sum("failed"),
            filtered=Sum("filtered"),
            canceled=Sum("canceled"),
        )
        .order_by("provider")
    )
    panel = Panel(
        slug="failures",
        title=_("Failures and filtered images by provider"),
        desc=_(
            "For each provider, from %(start)s to %(end)s: runs that failed and runs the "
            "provider's safety filter stopped."
        )
        % {"start": options.start, "end": options.end},
        headers=[
            _("provider"),
            _("generations"),
            _("images"),
            _("failed"),
            _("filtered"),
            _("canceled"),
            _("failure rate"),
        ],
    )
    panel.data_headers = ["provider", "generations", "images", "failed", "filtered", "canceled"]
    for r in rows:
        rate = (
            f"{(r['failed'] + r['filtered']) / r['generations']:.1%}" if r["generations"] else "—"
        )
        panel.rows.append(
            [
                r["provider"],
                r["generations"],
                r["images"],
                r["failed"],
                r["filtered"],
                r["canceled"],
                rate,
            ]
        )
        panel.data.append(
            [
                r["provider"],
                r["generations"],
                r["images"],
                r["failed"],
                r["filtered"],
                r["canceled"],
            ]
        )
    panel.chart = charts.bars(
        title=panel.title,
        desc=panel.desc,
        labels=[r["provider"] for r in rows],
        series=[
            charts.Series(name=_("failed"), values=[Decimal(r["failed"]) for r in rows], colour=5),
            charts.Series(
                name=_("filtered"), values=[Decimal(r["filtered"]) for r in rows], colour=2
            ),
        ],
        fmt=lambda n: str(int(n)),
    )
    return panel


def _plain(amount: Decimal) -> str:
    """Return ``amount`` for CSV: six decimals, no currency sign."""
    return f"{Decimal(amount or 0):.6f}"
