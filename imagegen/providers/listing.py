"""The live check: what each configured provider's own model-listing endpoint serves today.

``imagegen_providers --live`` and the periodic task ``imagegen.check_models`` both call
:func:`run_live_check`, which asks, per configured alias:

* OpenAI ``GET /v1/models``: the ids served and each one's ``shutdown_date`` (OpenAI's
  deprecations page: "call the List models endpoint (GET /v1/models) and check each model's
  optional shutdown_date field", a YYYY-MM-DD string or null);
* Gemini ``models.list`` (``GET /v1beta/models``, paged by ``nextPageToken``): the ids served;
* Replicate ``GET /v1/models/{owner}/{name}``: whether the model is still there (404: gone);
* Leonardo ``GET /api/rest/v1/platformModels``: the platform models served, and its pricing
  calculator (``POST /api/rest/v1/pricing-calculator``, Leonardo's pricing-calculator guide)
  for the exact credits of one 1024x1024 image, set against the catalog's estimate.

Black Forest Labs and Stability AI publish no model-listing endpoint, so their aliases are
reported as not checkable. Nothing here raises for a provider's answer: an error is reported on
its alias, so the check never fails a deploy by itself.
"""

from __future__ import annotations

import datetime
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from imagegen import catalog
from imagegen.exceptions import ImagegenError, ProviderError
from imagegen.pricing import money
from imagegen.providers import providers as configured
from imagegen.providers.base import BaseProvider
from imagegen.providers.http import HttpProvider
from imagegen.types import ImageRequest

logger = logging.getLogger("imagegen.live")

#: OPTIONS whose values are credentials; they are masked in any error message shown.
SECRET_OPTION = re.compile(r"key|token|secret|password", re.IGNORECASE)
#: The Gemini listing is paged; more pages than this are not read (a guard, not a limit met).
MAX_PAGES = 20
#: The request whose price is compared with the provider's calculator.
PRICED_REQUEST = ImageRequest(prompt="price check", width=1024, height=1024)
#: Leonardo pricing-calculator flags of the catalogued models (``IMAGE_GENERATION`` params).
LEONARDO_CALCULATOR_FLAGS: dict[str, dict[str, Any]] = {
    # Leonardo Lightning XL, priced with Alchemy as the catalog estimate is.
    "b24e16ff-06e3-43eb-8d33-4416c2d75876": {"isSDXLLightning": True, "alchemyMode": True},
}


@dataclass(frozen=True, kw_only=True)
class Served:
    """What one provider's listing says it serves: image-model ids and announced shutdowns."""

    ids: frozenset[str]
    shutdowns: dict[str, datetime.date] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AliasReport:
    """What the live check found for one configured alias."""

    alias: str
    provider: str = ""
    model: str = ""
    #: Whether the provider has a listing endpoint imagegen can ask.
    checkable: bool = False
    #: Whether the model is served; None when unknown (no listing, or the listing failed).
    served: bool | None = None
    #: The shutdown date the provider announces for the model, if any.
    shutdown: datetime.date | None = None
    #: The catalog's shutdown date for the model, if any.
    catalog_shutdown: datetime.date | None = None
    #: Ids the provider serves that the catalog does not know.
    unknown_ids: tuple[str, ...] = ()
    #: The catalog's estimate and the provider's own price of :data:`PRICED_REQUEST`.
    estimate: Decimal | None = None
    provider_price: Decimal | None = None
    #: Why the provider could not be asked (redacted), or why the alias could not be built.
    error: str = ""

    @property
    def problems(self) -> list[str]:
        """Return what an operator should act on: each problem as one sentence."""
        found = []
        where = f"{self.alias} ({self.model})" if self.model else self.alias
        if self.error:
            found.append(f"{where}: the live check failed: {self.error}")
        if self.served is False:
            found.append(f"{where}: the provider no longer lists this model.")
        if self.shutdown and self.shutdown != self.catalog_shutdown:
            catalogued = self.catalog_shutdown or "no date"
            found.append(
                f"{where}: the provider announces shutdown on {self.shutdown}; "
                f"the catalog says {catalogued}."
            )
        if self.unknown_ids:
            found.append(
                f"{where}: the provider serves ids the catalog lacks: "
                f"{', '.join(self.unknown_ids)}."
            )
        priced = self.estimate is not None and self.provider_price is not None
        if priced and self.estimate != self.provider_price:
            found.append(
                f"{where}: the catalog estimates ${self.estimate} for one 1024x1024 image; "
                f"the provider's calculator says ${self.provider_price}."
            )
        return found


# Listing endpoints ---------------------------------------------------------------------------


def _openai_served(provider: HttpProvider) -> Served:
    data = provider.json_object(provider.request("GET", "/models")).get("data")
    ids, shutdowns = set(), {}
    for entry in data if isinstance(data, list) else []:
        model = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(model, str) or not model.startswith(("gpt-image", "chatgpt-image")):
            continue
        ids.add(model)
        date = _date(entry.get("shutdown_date"))
        if date:
            shutdowns[model] = date
    return Served(ids=frozenset(ids), shutdowns=shutdowns)


def _google_served(provider: HttpProvider) -> Served:
    ids: set[str] = set()
    params: dict[str, Any] = {"pageSize": 1000}
    for _page in range(MAX_PAGES):
        body = provider.json_object(provider.request("GET", "/models", params=params))
        for entry in body.get("models") or []:
            name = entry.get("name") if isinstance(entry, dict) else None
            model = name.removeprefix("models/") if isinstance(name, str) else ""
            # Image models: "...-image", Imagen and the "Nano Banana" ids (no "image" in them).
            if "image" in model or "banana" in model:
                ids.add(model)
        token = body.get("nextPageToken")
        if not isinstance(token, str) or not token:
            break
        params = {**params, "pageToken": token}
    return Served(ids=frozenset(ids))


def _leonardo_served(provider: HttpProvider) -> Served:
    body = provider.json_object(provider.request("GET", "/platformModels"))
    models = body.get("custom_models")
    entries = models if isinstance(models, list) else []
    ids = {
        entry["id"]
        for entry in entries
        if isinstance(entry, dict) and isinstance(entry.get("id"), str)
    }
    return Served(ids=frozenset(ids))


#: The listing of each provider (by catalog key) that serves a list of its models.
LISTINGS: dict[str, Callable[[HttpProvider], Served]] = {
    "openai": _openai_served,
    "google": _google_served,
    "leonardo": _leonardo_served,
}
#: The providers the live check can ask: those with a listing, and Replicate's model metadata.
LIVE_CHECKED = frozenset({*LISTINGS, "replicate"})


def _replicate_served(provider: HttpProvider, model: str) -> bool:
    """Return whether Replicate still has ``model`` (its model metadata answers, not 404)."""
    try:
        provider.request("GET", f"/models/{provider.base_model(model)}")
    except ProviderError as err:
        if err.status_code == 404:
            return False
        raise
    return True


def _leonardo_price(provider: HttpProvider, model: str) -> Decimal | None:
    """Return the dollars Leonardo's pricing calculator asks for :data:`PRICED_REQUEST`."""
    flags = LEONARDO_CALCULATOR_FLAGS.get(model)
    if flags is None:
        return None
    params = {
        "imageWidth": PRICED_REQUEST.width,
        "imageHeight": PRICED_REQUEST.height,
        "numImages": PRICED_REQUEST.count,
        **flags,
    }
    body = provider.json_object(
        provider.request(
            "POST",
            "/pricing-calculator",
            json={"service": "IMAGE_GENERATION", "serviceParams": {"IMAGE_GENERATION": params}},
        )
    )
    answer = body.get("calculateProductionApiServiceCost")
    credits = answer.get("cost") if isinstance(answer, dict) else None
    if not isinstance(credits, int | float) or isinstance(credits, bool):
        return None
    price = getattr(provider.model_info().price, "credit_price", None)
    if price is None:
        return None
    return money(Decimal(str(credits)) * Decimal(price))


# Reports -------------------------------------------------------------------------------------


def check_alias(alias: str, provider: BaseProvider) -> AliasReport:
    """Return what the provider of ``alias`` serves today, set against the catalog.

    Each alias asks with its own key: a provider may serve different models to different
    projects (Google keeps some retired models for projects that used them).
    """
    key, model = provider.catalog_key, provider.model
    info = provider.model_info()
    report = AliasReport(alias=alias, provider=key, model=model, catalog_shutdown=info.shutdown)
    listing = LISTINGS.get(key)
    if not isinstance(provider, HttpProvider) or key not in LIVE_CHECKED:
        return report
    try:
        if listing is None:
            return replace(report, checkable=True, served=_replicate_served(provider, model))
        served = listing(provider)
        known = {entry.id for entry in catalog.models_for(key)}
        report = replace(
            report,
            checkable=True,
            served=model in served.ids,
            shutdown=served.shutdowns.get(model),
            unknown_ids=tuple(sorted(served.ids - known)),
        )
        if key == "leonardo":
            report = replace(
                report,
                estimate=info.price.estimate(PRICED_REQUEST),
                provider_price=_leonardo_price(provider, model),
            )
        return report
    except ImagegenError as err:
        return replace(report, checkable=True, error=str(err))


def check_aliases(providers: Iterable[tuple[str, BaseProvider]]) -> list[AliasReport]:
    """Return the live report of each ``(alias, provider)``."""
    return [check_alias(alias, provider) for alias, provider in providers]


def redact(message: str, options: dict[str, Any]) -> str:
    """Return ``message`` with the values of credential-like OPTIONS masked."""
    for key, value in options.items():
        if SECRET_OPTION.search(str(key)) and isinstance(value, str) and len(value) >= 4:
            message = message.replace(value, "**********")
    return message


def alias_error(alias: str, err: Exception) -> str:
    """Return why ``alias`` could not be built, its credential-like OPTIONS masked."""
    config = configured.settings.get(alias) or {}
    options = config.get("OPTIONS") if isinstance(config, dict) else None
    return redact(str(err) or type(err).__name__, dict(options or {}))


def live_reports() -> list[AliasReport]:
    """Return the live check of every configured alias; an alias that cannot be built says why."""
    reports = []
    for alias in configured.settings:
        try:
            provider = configured[alias]
        except Exception as err:  # noqa: BLE001 - a broken alias is reported, not fatal
            reports.append(AliasReport(alias=alias, error=alias_error(alias, err)))
            continue
        reports.append(check_alias(alias, provider))
    return reports


def run_live_check() -> tuple[list[AliasReport], int]:
    """Check every configured alias, log each problem; return the reports and the problems.

    This is the whole of ``imagegen_providers --live`` but the printing, and all of the
    periodic task ``imagegen.check_models``.
    """
    reports = live_reports()
    return reports, log_live_report(reports)


def log_live_report(reports: Iterable[AliasReport]) -> int:
    """Log each problem of ``reports`` as a warning on ``imagegen.live``; return how many.

    A periodic run (the Celery task ``imagegen.check_models``, or cron running
    ``imagegen_providers --live``) is told of retirements and catalog drift between releases.
    """
    count = 0
    for report in reports:
        for problem in report.problems:
            logger.warning("%s", problem)
            count += 1
    return count


def _date(value: Any) -> datetime.date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.date.fromisoformat(value[:10])
    except ValueError:
        return None
