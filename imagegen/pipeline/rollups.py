"""Rollups of the ledger, kept in the same transaction as each write that changes a sum.

Two tables summarise the ledger so that reports never scan it: :class:`~imagegen.models.SpendDay`
(one row per day, provider, model, preset, user and currency) and
:class:`~imagegen.models.ObjectSpend` (one row per target object, the "AI spend" column). The
pipeline writes the ledger through this module at every point that changes a sum:

* :func:`insert` saves new rows (``record_request``, ``record_batch``) and counts them;
* :func:`transition` moves a row to a new status (``run._finish``, ``services.cancel``) and
  adds what that write changed: the charge of the run, unconfirmed charges, images, and a
  failed, filtered or canceled ending;
* :func:`charged` adds a charge written outside a transition, and :func:`ended` an ending
  (``leases.recover_lost`` failing a lost worker's row).

Every change is an increment (``UPDATE ... SET cost = cost + %s``, or an insert of the key when
it is new), so concurrent writers never lose each other's counts. :func:`rebuild` recomputes
both tables from the ledger, for rows written before the rollups existed or by hand.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, models, transaction
from django.db.models import Count, F, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from imagegen.models import GeneratedImage, Generation, ObjectSpend, SpendDay, Status

#: The ending of a run counted in SpendDay, by the status it ends in.
ENDINGS = {Status.FAILED: "failed", Status.FILTERED: "filtered", Status.CANCELED: "canceled"}
#: The SpendDay fields that identify a row.
DAY_KEY = ("day", "provider", "model", "preset", "user_id", "currency")
ZERO = Decimal(0)
#: The fields of the rollups that hold sums (the others are keys).
SUMS = frozenset(
    {"generations", "images", "failed", "filtered", "canceled", "estimated", "cost", "unconfirmed"}
)


def day_of(moment: datetime.datetime) -> datetime.date:
    """Return the day of ``moment`` in the site's time zone (``TIME_ZONE``), as rollups count it."""
    if timezone.is_aware(moment):
        return timezone.localtime(moment, timezone.get_default_timezone()).date()
    return moment.date()


def day_key(generation: Generation) -> tuple[Any, ...]:
    """Return the SpendDay key ``generation`` counts under."""
    return (
        day_of(generation.created_at),
        generation.provider,
        generation.model,
        generation.preset,
        generation.created_by_id or 0,
        generation.currency,
    )


def object_key(generation: Generation) -> tuple[int, str] | None:
    """Return the ObjectSpend key of ``generation``, or None when it has no target."""
    if not generation.content_type_id or not generation.object_id:
        return None
    return generation.content_type_id, generation.object_id


def insert(rows: list[Generation]) -> list[Generation]:
    """Save new ledger ``rows`` and count them in the rollups, in one transaction; return them."""
    # No savepoint inside a caller's transaction: a failure here fails the caller's write too.
    with transaction.atomic(savepoint=False):
        if len(rows) == 1:
            rows[0].save(force_insert=True)
        elif rows:
            Generation.objects.bulk_create(rows)
        days: dict[tuple, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
        objects: dict[tuple, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
        for row in rows:
            for sums, key in ((days, day_key(row)), (objects, object_key(row))):
                if key is not None:
                    sums[key]["generations"] += 1
                    sums[key]["estimated"] += row.estimated_cost or ZERO
        _apply(days, objects)
    return rows


def transition(
    generation: Generation, to: str, *, images: int | None = None, **fields: Any
) -> bool:
    """Do ``generation.transition(to, **fields)`` and count what it changed; return success.

    The row's cost and unconfirmed cost before the write are taken from the instance (the
    fenced transition only succeeds if the row is still as this process saw it), so the
    rollups get the difference: a retried row's second charge is added, never its total.
    Images are counted when the row succeeds: ``images`` is how many image rows the caller
    saved in the same transaction, or, when it is not given, they are counted (one query).
    """
    cost_before = generation.cost or ZERO
    unconfirmed_before = generation.unconfirmed_cost or ZERO
    # No savepoint: a fenced update that loses writes nothing, and an error fails the
    # caller's transaction anyway.
    with transaction.atomic(savepoint=False):
        if not generation.transition(to, **fields):
            return False
        if to != Status.SUCCEEDED:
            images = 0
        elif images is None:
            images = GeneratedImage.objects.filter(generation=generation).count()
        _count_change(
            generation,
            cost=(generation.cost or ZERO) - cost_before,
            unconfirmed=(generation.unconfirmed_cost or ZERO) - unconfirmed_before,
            images=images,
            ending=ENDINGS.get(to),
        )
    return True


def charged(generation: Generation, *, cost: Decimal = ZERO, unconfirmed: Decimal = ZERO) -> None:
    """Count a charge written to ``generation`` outside :func:`transition`.

    Call it in the transaction of that write, with the amounts the write added.
    """
    _count_change(generation, cost=cost, unconfirmed=unconfirmed)


def ended(generation: Generation, status: str) -> None:
    """Count a run of ``generation`` that ended in ``status`` outside :func:`transition`.

    For a status written by a plain UPDATE (a lost worker's row failed by the sweeper). Call it
    in the transaction of that write.
    """
    _count_change(generation, ending=ENDINGS.get(status))


def count_row(generation: Generation, images: int | None = None) -> None:
    """Count a whole saved row, as if recorded and finished now: for rows written by hand.

    ``images`` defaults to the number of the row's image rows (one query).
    """
    if images is None:
        images = GeneratedImage.objects.filter(generation=generation).count()
    days: dict[tuple, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    objects: dict[tuple, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    sums = _row_sums(generation, images)
    days[day_key(generation)].update(sums)
    key = object_key(generation)
    if key is not None:
        objects[key].update(_object_sums(sums))
    with transaction.atomic():
        _apply(days, objects)


def rebuild(apps: Any = None) -> tuple[int, int]:
    """Recompute both rollups from the ledger; return the number of day and object rows.

    One transaction: readers see the old totals or the new ones. Failed, filtered and canceled
    runs are counted from the rows' present status (the ledger keeps no history of endings).
    ``apps`` is a migration's app registry, whose historical models are used instead.
    """
    names = ("Generation", "GeneratedImage", "SpendDay", "ObjectSpend")
    ledger, images_, days_, objects_ = (
        (Generation, GeneratedImage, SpendDay, ObjectSpend)
        if apps is None
        else tuple(apps.get_model("imagegen", name) for name in names)
    )
    money = models.DecimalField(max_digits=16, decimal_places=6)
    zero = models.Value(ZERO, output_field=money)
    day = TruncDate("created_at", tzinfo=timezone.get_default_timezone())
    with transaction.atomic():
        days_.objects.all().delete()
        objects_.objects.all().delete()
        keys = ["day", "provider", "model", "preset", "created_by_id", "currency"]
        groups = (
            ledger.objects.annotate(day=day)
            .values(*keys)
            .annotate(
                generations=Count("pk"),
                estimated=Coalesce(Sum("estimated_cost"), zero),
                cost=Coalesce(Sum("cost"), zero),
                unconfirmed=Coalesce(Sum("unconfirmed_cost"), zero),
                **{
                    field: Count("pk", filter=Q(status=status)) for status, field in ENDINGS.items()
                },
            )
            .order_by()
        )
        images = {
            (row["day"], *(row[f"generation__{k}"] for k in keys[1:])): row["n"]
            for row in images_.objects.annotate(
                day=TruncDate("generation__created_at", tzinfo=timezone.get_default_timezone())
            )
            .values("day", *(f"generation__{k}" for k in keys[1:]))
            .annotate(n=Count("pk"))
            .order_by()
        }
        days = []
        for row in groups:
            key = (row["day"], *(row[k] for k in keys[1:]))
            days.append(
                days_(
                    day=row["day"],
                    provider=row["provider"],
                    model=row["model"],
                    preset=row["preset"],
                    user_id=row["created_by_id"] or 0,
                    currency=row["currency"],
                    generations=row["generations"],
                    images=images.get(key, 0),
                    estimated=row["estimated"],
                    cost=row["cost"],
                    unconfirmed=row["unconfirmed"],
                    **{field: row[field] for field in ENDINGS.values()},
                )
            )
        days_.objects.bulk_create(days, batch_size=1000)
        objects = [
            objects_(
                content_type_id=row["content_type_id"],
                object_id=row["object_id"],
                **{k: row[k] for k in ("generations", "estimated", "cost", "unconfirmed")},
            )
            for row in ledger.objects.exclude(content_type=None)
            .exclude(object_id="")
            .values("content_type_id", "object_id")
            .annotate(
                generations=Count("pk"),
                estimated=Coalesce(Sum("estimated_cost"), zero),
                cost=Coalesce(Sum("cost"), zero),
                unconfirmed=Coalesce(Sum("unconfirmed_cost"), zero),
            )
            .order_by()
        ]
        objects_.objects.bulk_create(objects, batch_size=1000)
    return len(days), len(objects)


# --- internals ---------------------------------------------------------------------------------


def _row_sums(generation: Generation, images: int) -> dict[str, Any]:
    sums: dict[str, Any] = {
        "generations": 1,
        "estimated": generation.estimated_cost or ZERO,
        "cost": generation.cost or ZERO,
        "unconfirmed": generation.unconfirmed_cost or ZERO,
        "images": images,
    }
    ending = ENDINGS.get(generation.status)
    if ending:
        sums[ending] = 1
    return sums


def _object_sums(sums: dict[str, Any]) -> dict[str, Any]:
    return {k: sums[k] for k in ("generations", "estimated", "cost", "unconfirmed") if k in sums}


def _count_change(
    generation: Generation,
    *,
    cost: Decimal = ZERO,
    unconfirmed: Decimal = ZERO,
    images: int = 0,
    ending: str | None = None,
) -> None:
    sums: dict[str, Any] = {"cost": cost, "unconfirmed": unconfirmed, "images": images}
    if ending:
        sums[ending] = 1
    days = {day_key(generation): sums}
    key = object_key(generation)
    objects = {key: _object_sums(sums)} if key is not None else {}
    with transaction.atomic(savepoint=False):  # the caller's transaction, if any, is enough
        _apply(days, objects)


def _apply(days: dict[tuple, dict[str, Any]], objects: dict[tuple, dict[str, Any]]) -> None:
    """Add the sums to the rollup rows of their keys, creating the rows that are missing."""
    _upsert(SpendDay, DAY_KEY, days)
    _upsert(ObjectSpend, ("content_type_id", "object_id"), objects)


def _upsert(
    model: type[models.Model], key_fields: tuple[str, ...], changes: dict[tuple, dict[str, Any]]
) -> None:
    """Add each key's sums to its row, creating the rows that are missing.

    On PostgreSQL and SQLite this is ``INSERT ... ON CONFLICT DO UPDATE SET x = x + excluded.x``,
    a few hundred keys per statement: atomic per row, so concurrent writers never lose each
    other's counts, and a batch of a thousand new objects costs a few queries, not thousands.
    Other databases get an UPDATE per key, or an INSERT in a savepoint when the key is new.
    """
    changes = {key: {f: v for f, v in sums.items() if v} for key, sums in changes.items()}
    changes = {key: sums for key, sums in changes.items() if sums}
    if not changes:
        return
    connection = transaction.get_connection()
    if connection.vendor not in ("postgresql", "sqlite"):
        for key, sums in changes.items():
            _add(model, dict(zip(key_fields, key, strict=True)), sums)
        return
    # Every sum, not just the ones that changed: a raw INSERT gets no model defaults.
    fields = [f.name for f in model._meta.concrete_fields if f.name in SUMS]
    qn = connection.ops.quote_name
    columns = [model._meta.get_field(f).column for f in (*key_fields, *fields)]
    keys = ", ".join(qn(model._meta.get_field(f).column) for f in key_fields)
    table = qn(model._meta.db_table)
    updates = ", ".join(
        f"{qn(c)} = {table}.{qn(c)} + excluded.{qn(c)}" for c in columns[len(key_fields) :]
    )
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    # In key order: two batches locking overlapping keys in different orders could deadlock.
    items = sorted(changes.items())
    with connection.cursor() as cursor:
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            params: list[Any] = []
            for key, sums in chunk:
                params.extend(key)
                params.extend(_db_value(sums.get(f, 0)) for f in fields)
            # Only quoted names of this model's table and columns are formatted in; the
            # values are parameters.
            names = ", ".join(qn(c) for c in columns)
            values = ", ".join([row] * len(chunk))
            sql = (
                f"INSERT INTO {table} ({names}) VALUES {values} ON CONFLICT ({keys}) DO UPDATE SET "  # noqa: S608
            )
            cursor.execute(sql + updates, params)


def _db_value(value: Any) -> Any:
    # SQLite's driver has no adapter for Decimal by itself; a string keeps every digit.
    return str(value) if isinstance(value, Decimal) else value


def _add(model: type[models.Model], key: dict[str, Any], sums: dict[str, Any]) -> None:
    """Add ``sums`` to the row of ``key``: one UPDATE, or an INSERT when the key is new.

    Two writers that both find the key missing both try to insert it: the unique constraint
    lets one in, and the other (in a savepoint, so its transaction goes on) updates instead.
    """
    increments = {field: F(field) + value for field, value in sums.items()}
    if model.objects.filter(**key).update(**increments):
        return
    try:
        with transaction.atomic():
            model.objects.create(**key, **sums)
    except IntegrityError:
        model.objects.filter(**key).update(**increments)


def counted_rows(generations: Iterable[Generation]) -> None:
    """Count each of ``generations`` with :func:`count_row` (test fixtures, imports by hand)."""
    for generation in generations:
        count_row(generation)
