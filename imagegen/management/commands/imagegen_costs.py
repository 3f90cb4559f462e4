"""``imagegen_costs``: spend from the Generation ledger, grouped by provider, model, month, etc.

Reports by provider, model, month, preset or user read the daily rollup
(:class:`~imagegen.models.SpendDay`), a few thousand rows at any ledger size; a report by object,
or one restricted to some statuses, reads the ledger itself.

``--batch`` adds a "Batch ($)" column: how much of each group's actual cost was spent in
provider batches (bulk runs "within 24 hours", at the batch price), ``batch_cost`` in CSV and
JSON; one more query, over the batched rows only.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from imagegen.management.output import amount, table
from imagegen.models import GeneratedImage, Generation, SpendDay, Status

GROUPINGS = ("provider", "model", "month", "object", "preset", "user")
FORMATS = ("table", "csv", "json")
NUMBERS = ("generations", "images", "estimated_cost", "cost")


@dataclass
class Row:
    """One group of the report and its totals."""

    group: str
    generations: int
    images: int
    estimated_cost: Decimal
    cost: Decimal
    #: The part of ``cost`` spent in provider batches; None when the report has no batches.
    batch_cost: Decimal | None = None

    def cells(self) -> list[str]:
        """Return the row as printed in the table and the CSV file."""
        counts = [str(self.generations), str(self.images)]
        cells = [self.group, *counts, amount(self.estimated_cost), amount(self.cost)]
        if self.batch_cost is not None:
            cells.append(amount(self.batch_cost))
        return cells


def parse_date(value: str | datetime.date | None, option: str) -> datetime.date | None:
    """Return ``value`` as a date; raise CommandError for anything but YYYY-MM-DD."""
    if value is None or isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(value)
    except ValueError as err:
        raise CommandError(f"{option} must be a date as YYYY-MM-DD, got {value!r}.") from err


def start_of(day: datetime.date) -> datetime.datetime:
    """Return the first instant of ``day`` in the current time zone."""
    moment = datetime.datetime.combine(day, datetime.time.min)
    return timezone.make_aware(moment) if timezone.is_aware(timezone.now()) else moment


def group_keys(by: str, prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """Return the annotations and ``values()`` fields that define the groups for ``by``.

    ``prefix`` (``"generation__"``) groups a query over images by their generations' fields.
    """
    if by == "month":
        return {"month": TruncMonth(f"{prefix}created_at")}, ["month"]
    if by == "object":
        fields = ["content_type__app_label", "content_type__model", "object_id", "field_name"]
    elif by == "user":
        fields = ["created_by", f"created_by__{get_user_model().USERNAME_FIELD}"]
    else:
        fields = [by]
    return {}, [f"{prefix}{field}" for field in fields]


def label(by: str, values: dict[str, Any]) -> str:
    """Return the printed name of one group from its ``values()`` row."""
    if by == "month":
        return values["month"].strftime("%Y-%m")
    if by == "object":
        if values["content_type__app_label"] is None:
            return "(no object)"
        ct = f"{values['content_type__app_label']}.{values['content_type__model']}"
        return f"{ct} #{values['object_id']} {values['field_name']}".rstrip()
    if by == "user":
        name = values[f"created_by__{get_user_model().USERNAME_FIELD}"]
        return str(name) if values["created_by"] is not None else "(no user)"
    return values[by] or "(none)"


def ledger_filters(
    since: datetime.date | None, until: datetime.date | None, statuses: list[str]
) -> dict[str, Any]:
    """Return the ``Generation`` filters of the report's dates (inclusive) and statuses."""
    filters: dict[str, Any] = {}
    if since:
        filters["created_at__gte"] = start_of(since)
    if until:
        filters["created_at__lt"] = start_of(until + datetime.timedelta(days=1))
    if statuses:
        filters["status__in"] = statuses
    return filters


def batch_costs(
    by: str, since: datetime.date | None, until: datetime.date | None, statuses: list[str]
) -> dict[str, Decimal]:
    """Return the actual cost spent in provider batches per group label."""
    filters = {**ledger_filters(since, until, statuses), "provider_batch__isnull": False}
    annotations, fields = group_keys(by)
    groups = (
        Generation.objects.filter(**filters)
        .annotate(**annotations)
        .values(*fields)
        .annotate(actual=Coalesce(Sum("cost"), Value(Decimal(0))))
        .order_by(*fields)
    )
    costs: dict[str, Decimal] = {}
    for values in groups:
        name = label(by, values)
        costs[name] = costs.get(name, Decimal(0)) + Decimal(values["actual"])
    return costs


def natural(text: str) -> list[Any]:
    """Return a sort key that orders "#9" before "#10"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


class Command(BaseCommand):
    help = (
        "Report spend from the imagegen ledger: for each group, the number of generations, the "
        "images they made, the estimated total and the actual total (what providers charged). "
        "Amounts are in the ledger's currency (USD) with six decimal places."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--by",
            choices=GROUPINGS,
            default="provider",
            help="Group by provider alias, model, month, target object and field, preset or "
            "user who asked (default: provider).",
        )
        parser.add_argument(
            "--format",
            choices=FORMATS,
            default="table",
            help="table (aligned, with a TOTAL row), csv (one row per group, no total row) or "
            "json (amounts as exact decimal strings, with a total). Default: table.",
        )
        parser.add_argument(
            "--since", help="Only generations created on or after this day (YYYY-MM-DD)."
        )
        parser.add_argument(
            "--until", help="Only generations created on or before this day (YYYY-MM-DD)."
        )
        parser.add_argument(
            "--status",
            action="append",
            choices=Status.values,
            help="Only generations in this status; repeat for several (default: every status).",
        )
        parser.add_argument(
            "--batch",
            action="store_true",
            help="Add a Batch column: the part of each group's actual cost spent in provider "
            "batches (bulk runs within 24 hours, at the batch price).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        by, fmt = options["by"], options["format"]
        if by not in GROUPINGS:
            raise CommandError(f"--by must be one of {', '.join(GROUPINGS)}.")
        if fmt not in FORMATS:
            raise CommandError(f"--format must be one of {', '.join(FORMATS)}.")
        since = parse_date(options["since"], "--since")
        until = parse_date(options["until"], "--until")
        if since and until and since > until:
            raise CommandError("--since is after --until; the report would be empty.")
        rows = self.report(by, since, until, options["status"] or [])
        batch = batch_costs(by, since, until, options["status"] or []) if options["batch"] else None
        if batch is not None:
            for row in rows:
                row.batch_cost = batch.get(row.group, Decimal(0))
        total = Row(
            group="TOTAL",
            generations=sum(r.generations for r in rows),
            images=sum(r.images for r in rows),
            estimated_cost=sum((r.estimated_cost for r in rows), Decimal(0)),
            cost=sum((r.cost for r in rows), Decimal(0)),
            batch_cost=sum(batch.values(), Decimal(0)) if batch is not None else None,
        )
        writer = {"table": self.write_table, "csv": self.write_csv, "json": self.write_json}
        writer[fmt](by, rows, total)

    def report(
        self,
        by: str,
        since: datetime.date | None,
        until: datetime.date | None,
        statuses: list[str],
    ) -> list[Row]:
        """Return one row per group, from a single aggregate query."""
        if not statuses and by != "object":
            return self.report_from_rollup(by, since, until)
        filters = ledger_filters(since, until, statuses)
        annotations, fields = group_keys(by)
        zero = Value(Decimal(0))
        groups = (
            Generation.objects.filter(**filters)
            .annotate(**annotations)
            .values(*fields)
            .annotate(
                generations=Count("pk"),
                estimated=Coalesce(Sum("estimated_cost"), zero),
                actual=Coalesce(Sum("cost"), zero),
            )
            .order_by(*fields)  # also drops Meta.ordering, which would split the groups
        )
        # Images are counted by a second query grouped the same way: joining them into the
        # first would repeat each generation's cost once per image inside Sum(), and a
        # subquery per generation row reads the images table once per row.
        image_annotations, image_fields = group_keys(by, prefix="generation__")
        images = {
            tuple(values[f] for f in image_fields): values["n"]
            for values in GeneratedImage.objects.filter(
                **{f"generation__{lookup}": value for lookup, value in filters.items()}
            )
            .annotate(**image_annotations)
            .values(*image_fields)
            .annotate(n=Count("pk"))
            .order_by()
        }
        rows = [
            Row(
                group=label(by, values),
                generations=values["generations"],
                images=images.get(tuple(values[f] for f in fields), 0),
                estimated_cost=Decimal(values["estimated"]),
                cost=Decimal(values["actual"]),
            )
            for values in groups
        ]
        if by == "object":
            rows.sort(key=lambda row: natural(row.group))
        return rows

    def report_from_rollup(
        self, by: str, since: datetime.date | None, until: datetime.date | None
    ) -> list[Row]:
        """Return one row per group from the daily rollup (one query, two for users' names).

        Its days are days of ``TIME_ZONE``, as ``--since`` and ``--until`` are.
        """
        qs = SpendDay.objects.all()
        if since:
            qs = qs.filter(day__gte=since)
        if until:
            qs = qs.filter(day__lte=until)
        key = {"month": "month", "user": "user_id"}.get(by, by)
        annotations = {"month": TruncMonth("day")} if by == "month" else {}
        zero = Value(Decimal(0))
        groups = list(
            qs.annotate(**annotations)
            .values(key)
            .annotate(
                generations=Coalesce(Sum("generations"), 0),
                images=Coalesce(Sum("images"), 0),
                estimated=Coalesce(Sum("estimated"), zero),
                actual=Coalesce(Sum("cost"), zero),
            )
            .order_by(key)
        )
        names: dict[int, str] = {}
        if by == "user":
            users = get_user_model()
            ids = [values["user_id"] for values in groups if values["user_id"]]
            names = {user.pk: str(user.get_username()) for user in users.objects.filter(pk__in=ids)}
        rows = []
        for values in groups:
            if by == "user":
                user_id = values["user_id"]
                group = names.get(user_id, f"#{user_id}") if user_id else "(no user)"
            elif by == "month":
                group = values["month"].strftime("%Y-%m")
            else:
                group = values[by] or "(none)"
            rows.append(
                Row(
                    group=group,
                    generations=values["generations"],
                    images=values["images"],
                    estimated_cost=Decimal(values["estimated"]),
                    cost=Decimal(values["actual"]),
                )
            )
        if by == "user":  # as the ledger report sorts: by user id, which the names hide
            rows.sort(key=lambda row: (row.group == "(no user)", row.group))
        return rows

    def write_table(self, by: str, rows: list[Row], total: Row) -> None:
        headers = [by.capitalize(), "Generations", "Images", "Estimated ($)", "Actual ($)"]
        right = {1, 2, 3, 4}
        if total.batch_cost is not None:
            headers.append("Batch ($)")
            right.add(5)
        body = [row.cells() for row in rows]
        self.stdout.write(table(headers, body, right=right, footer=total.cells()))

    def write_csv(self, by: str, rows: list[Row], total: Row) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        batch = ["batch_cost"] if total.batch_cost is not None else []
        writer.writerow([by, *NUMBERS, *batch])
        writer.writerows(row.cells() for row in rows)
        self.stdout.write(buffer.getvalue(), ending="")

    def write_json(self, by: str, rows: list[Row], total: Row) -> None:
        def data(row: Row) -> dict[str, Any]:
            values = {
                "generations": row.generations,
                "images": row.images,
                "estimated_cost": amount(row.estimated_cost),
                "cost": amount(row.cost),
            }
            if row.batch_cost is not None:
                values["batch_cost"] = amount(row.batch_cost)
            return values

        report = {
            "by": by,
            "groups": [{by: row.group, **data(row)} for row in rows],
            "total": data(total),
        }
        self.stdout.write(json.dumps(report, indent=2))
