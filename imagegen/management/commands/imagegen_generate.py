"""``imagegen_generate``: generate images for many objects of a model, or estimate what it costs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models
from django.db.models import Count, Q

from imagegen import services
from imagegen.exceptions import BudgetExceeded, ImagegenError
from imagegen.management.output import amount
from imagegen.models import Generation, Status
from imagegen.presets import get_preset
from imagegen.providers import providers
from imagegen.runners import get_runner

#: Objects loaded per query, for the run and for the estimate.
CHUNK = 500
BAR_WIDTH = 30


@dataclass
class Outcome:
    """What generating for one object came to, fallbacks included."""

    status: str
    images: int = 0
    cost: Decimal = Decimal(0)
    detail: str = ""


@dataclass
class Tally:
    """Running totals of a run, for the progress bar and the summary."""

    done: int = 0
    objects: int = 0
    images: int = 0
    failed: int = 0
    queued: int = 0
    cost: Decimal = Decimal(0)

    def add(self, outcome: Outcome) -> None:
        self.done += 1
        self.images += outcome.images
        self.cost += outcome.cost
        if outcome.status == Status.SUCCEEDED:
            self.objects += 1
        elif outcome.status == Status.QUEUED:
            self.queued += 1
        else:
            self.failed += 1


def plural(n: int, word: str) -> str:
    """Return "1 image" or "3 images"."""
    return f"{n} {word}{'' if n == 1 else 's'}"


class Command(BaseCommand):
    help = (
        "Generate images into an image field for many objects of a model (or, with --estimate, "
        "only print what that would cost). Each object gets one generation through "
        "imagegen.generate(); a failure is reported on stderr and the run goes on. The command "
        "exits with status 0 unless every generation failed, a budget stopped the run, or the "
        "arguments are invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model", help="The model, as app_label.ModelName (e.g. blog.Article).")
        parser.add_argument("field", help="The image field of that model to fill (e.g. hero).")
        parser.add_argument(
            "--ids", help="Comma-separated primary keys to process (e.g. 1,2,3); default: all."
        )
        parser.add_argument(
            "--missing",
            action="store_true",
            help="Only process objects whose field is empty; combines with --ids.",
        )
        parser.add_argument("--preset", help="Preset to use instead of the field's own.")
        parser.add_argument("--provider", help="Provider alias to use instead of the default.")
        parser.add_argument(
            "--count", type=int, default=1, help="Images per object, 1 to 16 (default 1)."
        )
        parser.add_argument(
            "--prompt", help="Subject prompt for every object, instead of the field's template."
        )
        parser.add_argument(
            "--estimate",
            action="store_true",
            help="Print the estimated cost only: no provider is called and nothing is written.",
        )
        parser.add_argument(
            "--batch",
            action="store_true",
            help="Run through the provider's batch API: within 24 hours, at the batch price "
            "(about half). imagegen_sweep --batches (or the Celery sweeper) collects the "
            "images. With --estimate, print the batch price.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        model, field = self.resolve_field(options["model"], options["field"])
        self.verbosity = int(options["verbosity"])
        self.validate(options)
        queryset = self.select(model, field, options["ids"], options["missing"])
        total = queryset.count()
        name = model._meta.object_name
        if self.verbosity > 0:
            self.stdout.write(f"Processing {plural(total, name + ' object')}." if total else
                              f"No {name} objects to process.")  # fmt: skip
        if not total:
            return
        kwargs = {key: options[key] for key in ("preset", "provider", "count", "prompt")}
        kwargs["field"] = field
        if options["batch"]:
            kwargs["mode"] = "batch"
        if options["estimate"]:
            self.estimate(queryset, kwargs)
        elif options["batch"]:
            self.enqueue(queryset, kwargs, total)
        else:
            self.run(queryset, kwargs, total)

    def resolve_field(self, label: str, field: str) -> tuple[type[models.Model], str]:
        """Return the model for ``label`` and check that ``field`` is one of its image fields."""
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError) as err:
            raise CommandError(f"Unknown model {label!r}; use app_label.ModelName.") from err
        image_fields = [
            f.name for f in model._meta.concrete_fields if isinstance(f, models.ImageField)
        ]
        if field not in image_fields:
            choices = ", ".join(image_fields) or "none"
            raise CommandError(
                f"{model._meta.label} has no image field {field!r}; its image fields: {choices}."
            )
        return model, field

    def validate(self, options: dict[str, Any]) -> None:
        # Checked once here rather than failing identically for every object.
        if not 1 <= options["count"] <= 16:
            raise CommandError("--count must be between 1 and 16.")
        try:
            get_preset(options["preset"])
        except ValueError as err:
            raise CommandError(str(err)) from err
        if options["provider"] and options["provider"] not in providers:
            known = ", ".join(sorted(providers)) or "none"
            raise CommandError(
                f"Unknown provider alias {options['provider']!r}; configured aliases: {known}."
            )

    def select(
        self, model: type[models.Model], field: str, ids: str | None, missing: bool
    ) -> models.QuerySet:
        """Return the objects chosen by ``--ids`` and ``--missing``, in primary-key order."""
        queryset = model._default_manager.order_by("pk")
        if ids:
            pk_field = model._meta.pk
            try:
                pks = [pk_field.to_python(pk.strip()) for pk in ids.split(",") if pk.strip()]
            except ValidationError as err:
                raise CommandError(f"Invalid --ids {ids!r}: {' '.join(err.messages)}") from err
            queryset = queryset.filter(pk__in=pks)
            found = {str(pk) for pk in queryset.values_list("pk", flat=True)}
            absent = [str(pk) for pk in pks if str(pk) not in found]
            if absent:
                self.stderr.write(f"No {model._meta.object_name} with id {', '.join(absent)}.")
        if missing:
            queryset = queryset.filter(Q(**{field: ""}) | Q(**{f"{field}__isnull": True}))
        return queryset

    def estimate(self, queryset: models.QuerySet, kwargs: dict[str, Any]) -> None:
        """Print the estimated cost per provider and model; call nothing and write nothing."""
        groups: dict[tuple[str, str], list[Any]] = {}  # (alias, model) -> [objects, total]
        refused = 0
        for obj in queryset.iterator(chunk_size=CHUNK):
            try:
                plan = services.plan(target=obj, **kwargs)
            except ImagegenError as err:
                refused += 1
                self.stderr.write(f"{self.label(obj)}: cannot generate ({err.code}: {err})")
                continue
            except ImproperlyConfigured as err:
                raise CommandError(str(err)) from err
            group = groups.setdefault((plan.provider.alias, plan.calls[0].model), [0, Decimal(0)])
            group[0] += 1
            group[1] += plan.estimated_cost
        price = " at the batch price" if kwargs.get("mode") == "batch" else ""
        lines = [
            f"Estimated cost for {plural(n, 'object')}{price}: ${amount(total)} ({alias} / {model})"
            for (alias, model), (n, total) in groups.items()
        ]
        if len(groups) > 1:
            n, total = (sum(values) for values in zip(*groups.values(), strict=True))
            lines.append(f"Estimated cost for {plural(n, 'object')}: ${amount(total)}")
        if refused:
            lines.append(f"{plural(refused, 'object')} cannot be generated (see above).")
        if self.verbosity > 0:
            self.stdout.write("\n".join(lines))

    def run(self, queryset: models.QuerySet, kwargs: dict[str, Any], total: int) -> None:
        """Generate for every selected object, report each, and print the summary."""
        try:
            immediate = get_runner().is_immediate
        except ImproperlyConfigured as err:
            raise CommandError(str(err)) from err
        if not immediate:
            return self.enqueue(queryset, kwargs, total)
        tally, bar = Tally(), self.verbosity > 0 and self.stdout.isatty()
        for obj in pages(queryset):
            try:
                generation = services.generate(target=obj, **kwargs)
            except ImagegenError as err:
                outcome = Outcome(Status.FAILED, detail=f"{err.code}: {err}")
                if isinstance(err, BudgetExceeded):  # every later object would be refused too
                    self.report(obj, outcome, bar)
                    self.summary(tally, bar)
                    left = plural(total - tally.done, "object")
                    raise CommandError(f"Stopped by the budget with {left} left: {err}") from err
            except ImproperlyConfigured as err:
                raise CommandError(str(err)) from err
            else:
                outcome = outcome_of(generation, obj, kwargs["field"])
            tally.add(outcome)
            self.report(obj, outcome, bar)
            if bar:
                self.draw(tally, total)
        self.summary(tally, bar)
        if tally.failed and tally.failed == tally.done:
            raise CommandError(f"{plural(tally.failed, 'generation')} failed.")

    def enqueue(self, queryset: models.QuerySet, kwargs: dict[str, Any], total: int) -> None:
        """Queue a generation for every selected object, a batch at a time, and summarise.

        With a queued runner the rows are written with one ``bulk_create`` per batch and
        dispatched from one ``on_commit`` callback (:func:`imagegen.services.generate_many`),
        so the queries per batch stay constant however many objects there are.
        """
        tally, bar = Tally(), self.verbosity > 0 and self.stdout.isatty()
        field = kwargs.pop("field")
        try:
            for obj, result in services.iter_generate_many(pages(queryset), field, **kwargs):
                if isinstance(result, Generation):
                    batched = " in a provider batch" if kwargs.get("mode") == "batch" else ""
                    outcome = Outcome(Status.QUEUED, detail=f"generation #{result.pk}{batched}")
                else:
                    outcome = Outcome(Status.FAILED, detail=f"{result.code}: {result}")
                    if isinstance(result, BudgetExceeded):
                        self.report(obj, outcome, bar)
                        self.summary(tally, bar)
                        left = plural(total - tally.done, "object")
                        raise CommandError(f"Stopped by the budget with {left} left: {result}")
                tally.add(outcome)
                self.report(obj, outcome, bar)
                if bar:
                    self.draw(tally, total)
        except ImproperlyConfigured as err:
            raise CommandError(str(err)) from err
        self.summary(tally, bar)
        if kwargs.get("mode") == "batch" and tally.queued and self.verbosity > 0:
            self.stdout.write(
                "Submitted as provider batches: the images arrive within 24 hours; "
                "imagegen_sweep --batches (or the Celery sweeper) stores them."
            )
        if tally.failed and tally.failed == tally.done:
            raise CommandError(f"{plural(tally.failed, 'generation')} failed.")

    def report(self, obj: models.Model, outcome: Outcome, bar: bool) -> None:
        """Write one object's result: failures to stderr always, the rest one line each."""
        if outcome.status not in (Status.SUCCEEDED, Status.QUEUED):
            if bar:
                self.stdout.write("\r\033[K", ending="")  # clear the bar before the message
            self.stderr.write(f"{self.label(obj)}: {outcome.status} ({outcome.detail})")
        elif self.verbosity > 0 and not bar:
            extra = f", {outcome.detail}" if outcome.detail else ""
            self.stdout.write(
                f"{self.label(obj)}: {outcome.status} (${amount(outcome.cost)}{extra})"
            )

    def draw(self, tally: Tally, total: int) -> None:
        done = min(tally.done, total)
        filled = round(BAR_WIDTH * done / total) if total else BAR_WIDTH
        self.stdout.write(
            f"\r[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done}/{total}  ${amount(tally.cost)}",
            ending="",
        )
        self.stdout.flush()

    def summary(self, tally: Tally, bar: bool) -> None:
        if self.verbosity == 0:
            return
        if bar:
            self.stdout.write("")  # end the progress bar's line
        parts = [f"Made {plural(tally.images, 'image')} for {plural(tally.objects, 'object')}"]
        parts.append(f"{tally.failed} failed")
        if tally.queued:
            parts.append(f"{tally.queued} queued")
        parts.append(f"total cost ${amount(tally.cost)}.")
        self.stdout.write("; ".join(parts))

    @staticmethod
    def label(obj: models.Model) -> str:
        return f"{obj._meta.object_name} {obj.pk}"


def pages(queryset: models.QuerySet) -> Iterator[models.Model]:
    """Yield the objects of ``queryset`` (ordered by pk) in pages of :data:`CHUNK`.

    Keyset pages instead of ``.iterator()``: no cursor stays open while generation writes to
    the very table being read (SQLite gives no isolation between the two), and memory stays flat.
    """
    last = None
    while True:
        page = list((queryset if last is None else queryset.filter(pk__gt=last))[:CHUNK])
        yield from page
        if len(page) < CHUNK:
            return
        last = page[-1].pk


def outcome_of(generation: Generation, obj: models.Model, field: str) -> Outcome:
    """Return what the generation for ``obj`` came to, including the failed rows it replaced.

    ``generate()`` returns the last row of a fallback chain; the rows it fell back from are
    linked through ``fallback_of`` and count towards the cost.
    """
    rows, row = [], generation
    while row is not None:
        rows.insert(0, row)
        row = row.fallback_of
    counts = dict(
        Generation.objects.filter(pk__in=[r.pk for r in rows])
        .annotate(image_count=Count("images"))
        .values_list("pk", "image_count")
    )
    for row in rows:
        row.image_count = counts.get(row.pk, 0)
    images = sum(getattr(row, "image_count", 0) for row in rows)
    cost = sum((row.cost or Decimal(0) for row in rows), Decimal(0))
    last = rows[-1]
    if any(row.status == Status.SUCCEEDED for row in rows):
        detail = f"on fallback {last.provider!r}" if len(rows) > 1 else ""
        return Outcome(Status.SUCCEEDED, images, cost, detail)
    if last.status in (Status.QUEUED, Status.RUNNING):
        return Outcome(Status.QUEUED, images, cost, f"generation #{last.pk}")
    if last.status == Status.FILTERED:
        return Outcome(last.status, images, cost, "the provider's safety filter withheld it")
    failure = last.error_message or "no image was returned"
    return Outcome(last.status, images, cost, f"{last.error_code or last.status}: {failure}")
