"""``imagegen_rollups``: recompute the ledger's rollups (daily spend and per-object spend)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from imagegen.pipeline import rollups


class Command(BaseCommand):
    help = (
        "Recompute the spend rollups (imagegen.SpendDay and imagegen.ObjectSpend) from the "
        "Generation ledger. The pipeline keeps them up to date by itself; run this after "
        "writing or editing ledger rows by hand, or after restoring a backup of the ledger."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        days, objects = rollups.rebuild()
        self.stdout.write(f"Rebuilt the rollups: {days} day rows, {objects} object rows.")
