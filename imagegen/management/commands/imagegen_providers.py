"""``imagegen_providers``: the configured provider aliases, their models, prices and key status."""

from __future__ import annotations

import datetime
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from imagegen import catalog
from imagegen.conf import imagegen_settings
from imagegen.management.output import table
from imagegen.providers import providers
from imagegen.providers.http import HttpProvider
from imagegen.providers.listing import AliasReport, alias_error, run_live_check


def lifecycle(info: catalog.ModelInfo, today: datetime.date) -> str:
    """Return the model's status with its dates and successor, e.g. "deprecated since ..."."""
    status = info.status(today)
    if status == "shut down":
        parts = [f"shut down since {info.shutdown}"]
    elif status == "deprecated":
        parts = [f"deprecated since {info.deprecated}"]
    else:
        parts = ["active"] + ([f"deprecated from {info.deprecated}"] if info.deprecated else [])
    if info.shutdown and status != "shut down":
        parts.append(f"shuts down {info.shutdown}")
    if info.successor and (info.deprecated or info.shutdown):
        parts.append(f"use {info.successor}")
    return "; ".join(parts)


def describe_alias(alias: str, today: datetime.date) -> dict[str, Any]:
    """Return what is known about one alias; a provider that cannot be built gives its error."""
    config = providers.settings.get(alias) or {}
    entry: dict[str, Any] = {
        "alias": alias,
        "default": alias == imagegen_settings.DEFAULT_PROVIDER,
        "backend": str(config.get("BACKEND", "")) if isinstance(config, dict) else "",
    }
    try:
        provider = providers[alias]
    except Exception as err:  # noqa: BLE001 - a broken alias is reported, not fatal
        entry["error"] = alias_error(alias, err)
        return entry
    info = catalog.get_model(provider.catalog_key, provider.model)
    if isinstance(provider, HttpProvider):
        api_key = "yes" if provider.has_api_key else "no"
    else:
        api_key = "n/a"
    entry.update(
        display_name=provider.display_name or type(provider).__name__,
        model=provider.model,
        status=lifecycle(info, today) if info else "not in catalog",
        deprecated=info.deprecated.isoformat() if info and info.deprecated else None,
        shutdown=info.shutdown.isoformat() if info and info.shutdown else None,
        successor=info.successor if info else None,
        price=info.price.describe() if info else "unknown",
        api_key=api_key,
        error=None,
    )
    return entry


def describe_model(info: catalog.ModelInfo, today: datetime.date) -> dict[str, Any]:
    """Return one catalogued model as the ``--models`` listing shows it."""
    # get_model() applies IMAGEGEN["PRICES"], which the raw registry entry does not.
    priced = catalog.get_model(info.provider, info.id) or info
    return {
        "provider": info.provider,
        "id": info.id,
        "label": info.label,
        "status": lifecycle(info, today),
        "price": priced.price.describe(),
        "max_images_per_call": info.capabilities.max_count,
        "checked": info.checked.isoformat() if info.checked else None,
        "unverified": info.unverified(),
        "sources": {fact: source.url for fact, source in info.sources.items()},
    }


def checked_text(model: dict[str, Any]) -> str:
    """Return when a listed model was last checked, and how many of its facts are unverified."""
    text = model["checked"] or "never"
    if model["unverified"]:
        text += f" ({len(model['unverified'])} unverified: {', '.join(model['unverified'])})"
    return text


def live_entry(report: AliasReport) -> dict[str, Any]:
    """Return one alias's live check as ``--format json`` shows it."""
    return {
        "alias": report.alias,
        "provider": report.provider,
        "model": report.model,
        "checkable": report.checkable,
        "served": report.served,
        "shutdown": report.shutdown.isoformat() if report.shutdown else None,
        "catalog_shutdown": (
            report.catalog_shutdown.isoformat() if report.catalog_shutdown else None
        ),
        "unknown_ids": list(report.unknown_ids),
        "estimate": str(report.estimate) if report.estimate is not None else None,
        "provider_price": (
            str(report.provider_price) if report.provider_price is not None else None
        ),
        "error": report.error or None,
        "problems": report.problems,
    }


class Command(BaseCommand):
    help = (
        "List the configured imagegen provider aliases: backend, model, the model's lifecycle "
        "status and price from the catalog, and whether an API key is set (the key itself is "
        "never printed). An alias that cannot be built is listed with its error."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--format",
            choices=("table", "json"),
            default="table",
            help="table (aligned columns, the default alias marked *) or json. Default: table.",
        )
        parser.add_argument(
            "--models",
            action="store_true",
            help="Also list every catalogued model per provider: id, label, status, price, "
            "the most images one call can make, and when its sources were last checked.",
        )
        parser.add_argument(
            "--live",
            action="store_true",
            help="Ask each configured provider's own model-listing endpoint what it serves "
            "now: whether each alias's model is still served, any shutdown date it announces, "
            "ids the catalog lacks and, where the provider has a price calculator, its price "
            "against the catalog's estimate. Sends requests; never fails unless --strict.",
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="With --live: exit with status 1 when anything needs attention.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["live"]:
            self.handle_live(options["format"], strict=options["strict"])
            return
        today = datetime.date.today()
        # Building the aliases first imports their backends, which register their models.
        aliases = [describe_alias(alias, today) for alias in providers.settings]
        models = [describe_model(info, today) for info in catalog.all_models()]
        models.sort(key=lambda m: m["provider"])  # stable: keeps registration order per provider
        default = imagegen_settings.DEFAULT_PROVIDER
        if default not in providers.settings:
            self.stderr.write(f"DEFAULT_PROVIDER {default!r} is not a configured alias.")
        if options["format"] == "json":
            report: dict[str, Any] = {"default_provider": default, "providers": aliases}
            if options["models"]:
                report["models"] = models
            self.stdout.write(json.dumps(report, indent=2))
            return
        self.write_aliases(aliases)
        if options["models"]:
            self.stdout.write("")
            self.write_models(models)

    def handle_live(self, fmt: str, *, strict: bool) -> None:
        # The same check as the task imagegen.check_models: each problem is logged too.
        reports, problems = run_live_check()
        if fmt == "json":
            self.stdout.write(json.dumps({"live": [live_entry(r) for r in reports]}, indent=2))
        else:
            self.write_live(reports)
        if strict and problems:
            raise CommandError(f"The live check found {problems} problem(s).", returncode=1)

    def write_live(self, reports: list[AliasReport]) -> None:
        headers = ["Alias", "Model", "Served", "Shutdown", "Catalog", "Not in catalog", "Price"]
        rows = []
        for r in reports:
            served = {True: "yes", False: "NO", None: "?"}[r.served]
            if not r.checkable and not r.error:
                served = "no listing"
            price = ""
            if r.estimate is not None and r.provider_price is not None:
                price = f"${r.estimate} est. / ${r.provider_price} provider"
            rows.append(
                [
                    r.alias,
                    r.model,
                    "error" if r.error else served,
                    str(r.shutdown or ""),
                    str(r.catalog_shutdown or ""),
                    str(len(r.unknown_ids)) if r.unknown_ids else "",
                    price,
                ]
            )
        self.stdout.write(table(headers, rows))
        problems = [problem for r in reports for problem in r.problems]
        self.stdout.write("")
        if problems:
            self.stdout.write("Needs attention:")
            for problem in problems:
                self.stdout.write(f"  {problem}")
        else:
            self.stdout.write("Nothing needs attention.")

    def write_aliases(self, aliases: list[dict[str, Any]]) -> None:
        headers = ["", "Alias", "Backend", "Name", "Model", "Status", "Price", "API key"]
        rows = []
        for entry in aliases:
            marker = "*" if entry["default"] else ""
            if entry["error"]:
                rows.append([marker, entry["alias"], entry["backend"], "", "", "error", "", ""])
                continue
            rows.append(
                [
                    marker,
                    entry["alias"],
                    entry["backend"],
                    entry["display_name"],
                    entry["model"],
                    entry["status"],
                    entry["price"],
                    entry["api_key"],
                ]
            )
        self.stdout.write(table(headers, rows))
        self.stdout.write("* default provider")
        broken = [entry for entry in aliases if entry["error"]]
        if broken:
            self.stdout.write("")
            self.stdout.write("Errors:")
            for entry in broken:
                self.stdout.write(f"  {entry['alias']}: {entry['error']}")

    def write_models(self, models: list[dict[str, Any]]) -> None:
        headers = ["Provider", "Model", "Label", "Status", "Price", "Max/call", "Checked"]
        rows = [
            [
                m["provider"],
                m["id"],
                m["label"],
                m["status"],
                m["price"],
                str(m["max_images_per_call"]),
                checked_text(m),
            ]
            for m in models
        ]
        self.stdout.write(table(headers, rows, right={5}))
