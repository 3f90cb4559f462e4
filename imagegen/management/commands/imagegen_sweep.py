"""``imagegen_sweep``: delete stored files that nothing uses any more (orphans), with a dry run.

Orphans are rare: a failed generation deletes its files, and so does a rolled-back transaction.
They are left by workers killed mid-job, by cleanups that failed (storage down) and by
interpreters that do not free objects at once.

``imagegen_sweep --batches`` polls the provider batches of bulk runs "within 24 hours" (see
:mod:`imagegen.pipeline.batches`): it submits those a killed process did not, and stores the
results of the open ones. Run it from cron every few minutes when Celery beat does not.

``imagegen_sweep --jobs`` sweeps stuck jobs instead (see :mod:`imagegen.runners.sweeper`): rows left
``queued`` are dispatched again, ``running`` rows whose worker died are resumed or failed, and
images whose derived files are still missing have them made.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.files.storage import Storage
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models
from django.utils import timezone

from imagegen.conf import imagegen_settings
from imagegen.models import GeneratedImage
from imagegen.pipeline.cleanup import referenced_names
from imagegen.runners.sweeper import sweep_batches, sweep_jobs
from imagegen.storage import get_storage, upload_prefix, walk

#: Rows read from the database per query, and unused files checked and deleted per batch.
CHUNK = 2000
BATCH = 200


@dataclass
class Tally:
    """What one sweep found."""

    scanned: int = 0
    in_use: int = 0
    recent: int = 0
    unknown_age: int = 0
    unused: int = 0
    unused_bytes: int = 0
    deleted: int = 0
    deleted_bytes: int = 0
    errors: list[str] = field(default_factory=list)


def file_fields() -> list[tuple[type[models.Model], str]]:
    """Return (model, column attribute) of every file field of every installed model.

    ``GeneratedImage.file`` is left out: :func:`in_use` reads it together with the derivatives.
    """
    found = []
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, models.FileField) and not (
                model is GeneratedImage and model_field.name == "file"
            ):
                found.append((model, model_field.attname))
    return found


def in_use(prefix: str) -> set[str]:
    """Return every name under ``prefix`` that a row uses.

    That is each ``GeneratedImage`` file and derivative, and the value of any file field of any
    model (an image set on a target field stays in use even if its ledger rows are deleted).
    Rows are streamed in chunks; only the names are kept, about 150 bytes each.
    """
    names: set[str] = set()
    rows = GeneratedImage._base_manager.order_by().values_list("file", "derivatives")
    for file, derivatives in rows.iterator(chunk_size=CHUNK):
        if file.startswith(prefix):
            names.add(file)
        for item in derivatives or ():
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and name.startswith(prefix):
                names.add(name)
    for model, attname in file_fields():
        values = (
            model._base_manager.order_by()
            .filter(**{f"{attname}__startswith": prefix})
            .values_list(attname, flat=True)
        )
        names.update(values.iterator(chunk_size=CHUNK))
    return names


def still_unused(names: list[str]) -> list[str]:
    """Return those of ``names`` that no row uses now, checked again right before deleting."""
    used = referenced_names(names)
    for model, attname in file_fields():
        used.update(
            model._base_manager.order_by()
            .filter(**{f"{attname}__in": names})
            .values_list(attname, flat=True)
        )
    return [name for name in names if name not in used]


def count_bytes(number: int) -> str:
    """Return ``number`` as "1,234 bytes"."""
    return f"{number:,} byte" + ("" if number == 1 else "s")


def count_files(number: int) -> str:
    """Return ``number`` as "3 files"."""
    return f"{number:,} file" + ("" if number == 1 else "s")


class Command(BaseCommand):
    help = (
        "Delete unused files from imagegen's storage: files under the fixed folder of "
        'IMAGEGEN["UPLOAD_TO"] (such as imagegen/) that no GeneratedImage row (file or '
        "derivative) and no file field of any model uses, once they are older than a grace "
        "period. --dry-run only lists them. With --jobs, sweep stuck jobs instead: dispatch "
        "again the generations left queued, and resume (or fail, when out of attempts) the "
        "running ones whose worker died, and have the missing derived files of images made."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List the files that would be deleted, with their sizes; delete nothing.",
        )
        parser.add_argument(
            "--older-than",
            type=int,
            default=60,
            metavar="MINUTES",
            help="Only files last modified at least this many minutes ago, so that files of "
            "jobs still running are never touched (default: 60). 0 means every unused file, "
            "including those of unknown age.",
        )
        parser.add_argument(
            "--jobs",
            action="store_true",
            help="Sweep stuck jobs instead of files: queued ones are dispatched again, running "
            "ones without a heartbeat are resumed or failed, images still without their derived "
            'files have them made (IMAGEGEN["TASK_OPTIONS"]).',
        )
        parser.add_argument(
            "--batches",
            action="store_true",
            help="Poll the provider batches instead of sweeping files: submit those left "
            "unsubmitted, store the results of the open ones, close the finished ones.",
        )
        parser.add_argument(
            "--queued-after",
            type=float,
            metavar="SECONDS",
            help="With --jobs: dispatch again the rows queued and unchanged this long "
            '(default: TASK_OPTIONS["QUEUED_TIMEOUT"], 900).',
        )
        parser.add_argument(
            "--running-after",
            type=float,
            metavar="SECONDS",
            help="With --jobs: recover the running rows without a heartbeat this long "
            '(default: TASK_OPTIONS["LEASE"] + ["TIME_LIMIT"], 720).',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["batches"]:
            return self.sweep_batches(options)
        if options["jobs"]:
            return self.sweep_jobs(options)
        if options["queued_after"] is not None or options["running_after"] is not None:
            raise CommandError("--queued-after and --running-after go with --jobs.")
        minutes = options["older_than"]
        if minutes < 0:
            raise CommandError("--older-than must be 0 or more minutes.")
        prefix = upload_prefix()
        if not prefix:
            raise CommandError(
                f'IMAGEGEN["UPLOAD_TO"] is {imagegen_settings.UPLOAD_TO!r}, which does not start '
                "with a fixed folder (such as imagegen/%Y/%m/). Sweeping would look at every "
                "file in the storage, so imagegen_sweep refuses to run."
            )
        dry_run, self.verbosity = options["dry_run"], options["verbosity"]
        storage = get_storage()
        cutoff = timezone.now() - datetime.timedelta(minutes=minutes) if minutes else None
        tally = Tally()
        used = in_use(prefix)
        batch: list[tuple[str, int]] = []
        for name in walk(storage, prefix):
            tally.scanned += 1
            if name in used:
                tally.in_use += 1
                continue
            stat = self.stat(storage, name, cutoff, tally)
            if stat is None:
                continue
            batch.append((name, stat))
            if len(batch) >= BATCH:
                self.sweep(storage, batch, dry_run, tally)
                batch = []
        if batch:
            self.sweep(storage, batch, dry_run, tally)
        self.report(prefix, minutes, dry_run, tally)

    def sweep_batches(self, options: dict[str, Any]) -> None:
        self.verbosity = options["verbosity"]
        tally = sweep_batches()
        self.say(
            f"Batches: {tally.polled:,} polled, {tally.submitted:,} submitted, "
            f"{tally.finished:,} finished; {tally.succeeded:,} generations stored, "
            f"{tally.failed:,} failed."
        )

    def sweep_jobs(self, options: dict[str, Any]) -> None:
        for key in ("queued_after", "running_after"):
            if options[key] is not None and options[key] < 0:
                raise CommandError(f"--{key.replace('_', '-')} must be 0 or more seconds.")
        self.verbosity = options["verbosity"]
        dry_run = options["dry_run"]
        tally = sweep_jobs(
            queued_after=options["queued_after"],
            running_after=options["running_after"],
            dry_run=dry_run,
        )
        for line in tally.lines:
            self.say(line)
        done = "would be" if dry_run else "were"
        self.say(
            f"Jobs: {tally.redispatched:,} stuck in the queue {done} dispatched again; "
            f"{tally.resumed:,} of lost workers {done} resumed, {tally.failed:,} {done} failed."
        )
        self.say(
            f"Images: {tally.derived:,} still waiting for their derived files {done} sent to "
            "have them made."
        )

    def stat(
        self, storage: Storage, name: str, cutoff: datetime.datetime | None, tally: Tally
    ) -> int | None:
        """Return the size of an unused file old enough to go, or None to keep it."""
        try:
            if cutoff is not None:
                try:
                    modified = storage.get_modified_time(name)
                except NotImplementedError:
                    tally.unknown_age += 1
                    return None
                if modified > cutoff:
                    tally.recent += 1
                    return None
            return storage.size(name)
        except FileNotFoundError:  # deleted meanwhile
            return None
        except Exception as err:  # noqa: BLE001 - one unreadable file must not stop the sweep
            tally.errors.append(f"{name}: {type(err).__name__}: {err}")
            return None

    def sweep(
        self, storage: Storage, batch: list[tuple[str, int]], dry_run: bool, tally: Tally
    ) -> None:
        """Check ``batch`` against the database once more, then delete (or list) its files."""
        sizes = dict(batch)
        # A generation may have reused one of these files (same bytes) since the names in use
        # were read.
        for name in still_unused(list(sizes)):
            tally.unused += 1
            tally.unused_bytes += sizes[name]
            if dry_run:
                self.say(f"Would delete {name} ({count_bytes(sizes[name])})")
                continue
            try:
                storage.delete(name)
            except Exception as err:  # noqa: BLE001 - reported, and the command fails at the end
                tally.errors.append(f"{name}: {type(err).__name__}: {err}")
                continue
            tally.deleted += 1
            tally.deleted_bytes += sizes[name]
            self.say(f"Deleted {name} ({count_bytes(sizes[name])})")

    def say(self, line: str) -> None:
        if self.verbosity >= 1:
            self.stdout.write(line)

    def report(self, prefix: str, minutes: int, dry_run: bool, tally: Tally) -> None:
        parts = [f"{tally.in_use:,} in use"]
        if minutes:
            parts.append(f"{tally.recent:,} newer than {minutes} minutes")
        if tally.unknown_age:
            parts.append(
                f"{tally.unknown_age:,} of unknown age (the storage cannot tell; "
                "--older-than 0 includes them)"
            )
        parts.append(f"{tally.unused:,} unused ({count_bytes(tally.unused_bytes)})")
        self.say(
            f"Scanned {count_files(tally.scanned)} under {prefix} in storage "
            f'"{imagegen_settings.STORAGE}": {", ".join(parts)}.'
        )
        if dry_run:
            self.say(
                f"Dry run: would delete {count_files(tally.unused)} "
                f"({count_bytes(tally.unused_bytes)}); nothing was deleted."
            )
        else:
            self.say(f"Deleted {count_files(tally.deleted)} ({count_bytes(tally.deleted_bytes)}).")
        for error in tally.errors:
            self.stderr.write(f"Error: {error}")
        if tally.errors:
            raise CommandError(f"{count_files(len(tally.errors))} could not be checked or deleted.")
