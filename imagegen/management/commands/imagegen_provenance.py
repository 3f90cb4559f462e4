"""``imagegen_provenance``: check the Content Credentials of stored files in bulk, for CI or cron.

Each generated image's original is read again from storage and verified (signature, hashes,
signer against ``TRUST_ANCHORS``), and so is each of its derived files. The command prints
how many have valid credentials, an untrusted signer, invalid ones or none; it names every
invalid file and each derived file that lacks credentials its original has (the served file
then drops the provider's credential), and exits non-zero when any file is invalid.

``--record`` writes what it read onto the rows: images stored before the ``c2pa`` extra was
installed ("not checked") get their state, and a file changed in storage since is marked
invalid. ``--ids`` limits the check to some images.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from imagegen import provenance
from imagegen.models import GeneratedImage
from imagegen.types import CredentialState

#: Rows read per query.
CHUNK = 500
INTACT = (CredentialState.VALID, CredentialState.UNTRUSTED)
LABELS = {
    CredentialState.VALID: "valid",
    CredentialState.UNTRUSTED: "untrusted signer",
    CredentialState.INVALID: "invalid",
    CredentialState.NONE: "without credentials",
    CredentialState.NOT_CHECKED: "not readable",
}


@dataclass
class Tally:
    """What one check found."""

    originals: Counter = field(default_factory=Counter)
    derived: Counter = field(default_factory=Counter)
    #: Derived files without credentials whose original has them.
    lacking: int = 0
    missing: int = 0
    recorded: int = 0

    @property
    def invalid(self) -> int:
        return self.originals[CredentialState.INVALID] + self.derived[CredentialState.INVALID]


def summary(counts: Counter) -> str:
    total = sum(counts.values())
    parts = [f"{counts[state]} {label}" for state, label in LABELS.items() if counts[state]]
    return f"{total} checked" + (f": {', '.join(parts)}" if parts else "")


class Command(BaseCommand):
    help = (
        "Verify the C2PA Content Credentials of stored originals and derived files; exit "
        "non-zero when any is invalid."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--record",
            action="store_true",
            help="Save what was read on each image's row (fills in 'not checked' rows).",
        )
        parser.add_argument("--ids", help="Comma-separated GeneratedImage ids to check.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not provenance.is_available():
            raise CommandError(
                f"The c2pa-python bindings are not installed. {provenance.INSTALL_HINT}"
            )
        images = GeneratedImage.objects.order_by("pk")
        if options["ids"]:
            try:
                ids = [int(part) for part in options["ids"].split(",") if part.strip()]
            except ValueError as err:
                raise CommandError("--ids takes comma-separated numbers.") from err
            images = images.filter(pk__in=ids)
        tally = Tally()
        verbose = options["verbosity"] >= 2
        for image in images.iterator(chunk_size=CHUNK):
            self.check_image(image, tally, record=options["record"], verbose=verbose)
        self.stdout.write(f"Originals: {summary(tally.originals)}.")
        self.stdout.write(f"Derived files: {summary(tally.derived)}.")
        if not provenance.signing_configured():
            self.stdout.write(
                "No signer is configured, so derived files carry no Content Credentials: "
                "the provider's credential lives only in each original."
            )
        elif tally.lacking:
            self.stdout.write(
                f"{tally.lacking} derived file(s) lack the credentials their original has."
            )
        if tally.missing:
            self.stdout.write(f"{tally.missing} file(s) are missing from storage.")
        if options["record"]:
            self.stdout.write(f"Recorded {tally.recorded} changed row(s).")
        if tally.invalid:
            raise CommandError(f"{tally.invalid} file(s) have invalid Content Credentials.")

    def check_image(self, image: GeneratedImage, tally: Tally, *, record: bool, verbose: bool):
        """Read and tally the original and the derived files of ``image``."""
        storage = image.file.storage
        found = self.read(storage, image.file.name, image.mime_type, image.pk, tally)
        if found is not None:
            tally.originals[found.state] += 1
            self.report(image, image.file.name, found, verbose)
            changed = (
                found.state != image.content_credentials or found.details() != image.credentials
            )
            if record and changed:
                GeneratedImage.objects.filter(pk=image.pk).update(
                    content_credentials=found.state, credentials=found.details()
                )
                tally.recorded += 1
        original_has = found is not None and found.state in INTACT
        for entry in image.derivatives or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                continue
            derived = self.read(storage, entry["name"], entry.get("mime_type", ""), image.pk, tally)
            if derived is None:
                continue
            tally.derived[derived.state] += 1
            self.report(image, entry["name"], derived, verbose)
            if derived.state == CredentialState.NONE and original_has:
                tally.lacking += 1
                if provenance.signing_configured() or verbose:
                    self.stdout.write(
                        f"LACKING {entry['name']} (image #{image.pk}): no Content Credentials; "
                        "its original has them."
                    )

    def read(self, storage: Any, name: str, mime_type: str, pk: int, tally: Tally):
        """Return the credentials of stored file ``name``, or None when it cannot be opened."""
        try:
            with storage.open(name, "rb") as handle:
                content = handle.read()
        except (OSError, ValueError) as err:
            tally.missing += 1
            self.stderr.write(f"MISSING {name} (image #{pk}): {type(err).__name__}")
            return None
        return provenance.read(content, mime_type)

    def report(self, image: GeneratedImage, name: str, found: Any, verbose: bool) -> None:
        if found.state == CredentialState.INVALID:
            codes = ", ".join(found.failures) or "?"
            self.stdout.write(f"INVALID {name} (image #{image.pk}): {codes}")
        elif verbose:
            who = found.issuer or found.signer
            self.stdout.write(
                f"{LABELS[found.state]:<20} {name} (image #{image.pk})" + (f" {who}" if who else "")
            )
