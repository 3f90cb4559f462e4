"""System checks for the IMAGEGEN setting; each message has an id and a hint.

========  =================================================================
id        problem
========  =================================================================
E001      ``PROVIDERS`` or one alias entry is malformed
E002      a provider ``BACKEND`` does not import
E003      a provider cannot be built from its ``OPTIONS`` (unknown key, bad value)
W003      an HTTP provider has no API key
E004      ``DEFAULT_PROVIDER`` names no configured alias
E005      a preset names an unknown provider alias
E006      a preset is malformed
E007      ``TASK_RUNNER`` is invalid
E008      ``STORAGE`` is not a ``STORAGES`` alias
E014      the ``STORAGE`` backend does not import (S3 without the ``s3`` extra)
E009      ``BUDGETS`` is malformed
E010      ``PRICES`` is malformed
E012      ``ALLOWED_FORMATS`` names a format imagegen cannot store
E013      ``DERIVATIVE_WIDTHS`` or ``DERIVATIVE_FORMATS`` is malformed
E020      ``TASK_OPTIONS`` is malformed
E021      ``TASK_RUNNER`` is Celery, which is not installed (the ``celery`` extra)
W020      ``TASK_OPTIONS["RATE_LIMITS"]`` are kept in a cache workers do not share
W021      the Celery broker's ``visibility_timeout`` is not above ``TASK_OPTIONS["TIME_LIMIT"]``
W013      ``DERIVATIVE_FORMATS`` asks for AVIF, which this Pillow cannot write
E030      ``CONTENT_CREDENTIALS`` is malformed, or a certificate, key or anchor source is unreadable
E031      ``CONTENT_CREDENTIALS`` configures signing or trust, but the ``c2pa`` extra is missing
W030      an HTTP provider is configured and the ``c2pa`` extra is missing: no credentials are read
W031      a signer is configured, but a ``DERIVATIVE_FORMATS`` type cannot carry a C2PA manifest
W001      ``IMAGEGEN`` has an unknown key
W010      a configured model is deprecated
W011      a configured model shuts down within ``SHUTDOWN_WARNING_DAYS``
E011      a configured model is shut down
E015      ``SHUTDOWN_WARNING_DAYS`` is not a whole number of days
========  =================================================================
"""

from __future__ import annotations

import datetime
from decimal import InvalidOperation

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from PIL import features

from imagegen import provenance
from imagegen.catalog import shutdown_warning_days
from imagegen.conf import DEFAULTS, imagegen_settings
from imagegen.derivatives import FORMATS
from imagegen.images import MIME_TYPES
from imagegen.pipeline.budgets import parse_caps
from imagegen.presets import BUILTIN, build_preset
from imagegen.pricing import price_from_dict
from imagegen.providers import providers
from imagegen.providers.http import HttpProvider
from imagegen.runners import load_runner_class
from imagegen.runners.options import check_task_options, task_options
from imagegen.storage import UnavailableStorage, get_storage

PROVIDER_KEYS = {"BACKEND", "OPTIONS"}


@checks.register("imagegen")
def check_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Run every imagegen settings check."""
    messages: list[checks.CheckMessage] = []

    unknown = set(imagegen_settings.user_settings) - set(DEFAULTS)
    for key in sorted(unknown):
        messages.append(
            checks.Warning(
                f'Unknown IMAGEGEN setting "{key}".',
                hint=f"Known settings: {', '.join(sorted(DEFAULTS))}.",
                id="imagegen.W001",
            )
        )
    aliases, remote = _check_providers(messages)
    _check_default(aliases, messages)
    _check_presets(aliases, messages)
    _check_runner(messages)
    _check_storage(messages)
    _check_budgets(messages)
    _check_prices(messages)
    _check_formats(messages)
    _check_derivatives(messages)
    _check_shutdown_days(messages)
    _check_credentials(remote, messages)
    return messages


def today() -> datetime.date:
    """Return the date lifecycle checks are made for (a seam for tests)."""
    return datetime.date.today()


def _check_shutdown_days(messages: list) -> None:
    days = imagegen_settings.SHUTDOWN_WARNING_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        messages.append(
            checks.Error(
                f'IMAGEGEN["SHUTDOWN_WARNING_DAYS"] is {days!r}.',
                hint="Give a whole number of days, 0 or more (default 60).",
                id="imagegen.E015",
            )
        )


def _check_providers(messages: list) -> tuple[set[str], list[str]]:
    """Check each alias; return the aliases and those whose provider is an HTTP API."""
    remote: list[str] = []
    config = imagegen_settings.PROVIDERS
    if not isinstance(config, dict) or not config:
        messages.append(
            checks.Error(
                'IMAGEGEN["PROVIDERS"] must be a non-empty dict: alias -> {"BACKEND", "OPTIONS"}.',
                hint='Remove it to use the offline placeholder provider as "default".',
                id="imagegen.E001",
            )
        )
        return set(), remote
    for alias, entry in config.items():
        where = f'IMAGEGEN["PROVIDERS"]["{alias}"]'
        if not isinstance(entry, dict) or "BACKEND" not in entry or set(entry) - PROVIDER_KEYS:
            messages.append(
                checks.Error(
                    f'{where} must be a dict with "BACKEND" and optional "OPTIONS".',
                    hint='For example {"BACKEND": "imagegen.providers.openai.OpenAIProvider"}.',
                    id="imagegen.E001",
                )
            )
            continue
        try:
            import_string(entry["BACKEND"])
        except ImportError as err:
            messages.append(
                checks.Error(
                    f'{where}["BACKEND"] {entry["BACKEND"]!r} does not import: {err}',
                    hint="Check the dotted path; built-in backends live in imagegen.providers.",
                    id="imagegen.E002",
                )
            )
            continue
        try:
            provider = providers.create(alias)
        except (ImproperlyConfigured, TypeError, ValueError) as err:
            messages.append(
                checks.Error(
                    f"{where} cannot be built: {err}",
                    hint="OPTIONS are the provider's keyword arguments; see its docs page.",
                    id="imagegen.E003",
                )
            )
            continue
        messages.extend(provider.check())
        messages.extend(_check_lifecycle(where, provider))
        if isinstance(provider, HttpProvider):
            remote.append(alias)
        provider.close()
    return set(config), remote


def _check_lifecycle(where: str, provider) -> list[checks.CheckMessage]:
    info = provider.model_info()
    day = today()
    status = info.status(day)
    successor = f" Use {info.successor!r} instead." if info.successor else ""
    if status == "shut down":
        return [
            checks.Error(
                f"{where} uses model {info.id!r}, shut down on {info.shutdown}.",
                hint=f'Change OPTIONS["model"].{successor}',
                id="imagegen.E011",
            )
        ]
    left = info.days_to_shutdown(day)
    if left is not None and left <= shutdown_warning_days():
        return [
            checks.Warning(
                f"{where} uses model {info.id!r}, which shuts down on {info.shutdown}, "
                f"in {left} day{'' if left == 1 else 's'}.",
                hint=f'Change OPTIONS["model"] before then.{successor}',
                id="imagegen.W011",
            )
        ]
    if status == "deprecated":
        when = f", and shuts down on {info.shutdown}" if info.shutdown else ""
        return [
            checks.Warning(
                f"{where} uses model {info.id!r}, deprecated since {info.deprecated}{when}.",
                hint=f'Plan to change OPTIONS["model"].{successor}',
                id="imagegen.W010",
            )
        ]
    return []


def _check_default(aliases: set[str], messages: list) -> None:
    default = imagegen_settings.DEFAULT_PROVIDER
    if aliases and default not in aliases:
        messages.append(
            checks.Error(
                f'IMAGEGEN["DEFAULT_PROVIDER"] is {default!r}, which is not a configured alias.',
                hint=f"Configured aliases: {', '.join(sorted(aliases))}.",
                id="imagegen.E004",
            )
        )


def _check_presets(aliases: set[str], messages: list) -> None:
    presets = imagegen_settings.PRESETS or {}
    if not isinstance(presets, dict):
        messages.append(
            checks.Error(
                'IMAGEGEN["PRESETS"] must be a dict of name -> preset fields.',
                hint='For example {"hero": {"aspect_ratio": "21:9"}}.',
                id="imagegen.E006",
            )
        )
        return
    for name, data in presets.items():
        try:
            preset = build_preset(name, data or {}, BUILTIN.get(name))
        except (ImproperlyConfigured, ValueError, TypeError) as err:
            messages.append(
                checks.Error(
                    f'IMAGEGEN["PRESETS"]["{name}"] is invalid: {err}',
                    hint="See the presets section of the settings reference.",
                    id="imagegen.E006",
                )
            )
            continue
        for alias in preset.providers:
            if aliases and alias not in aliases:
                messages.append(
                    checks.Error(
                        f'IMAGEGEN["PRESETS"]["{name}"] names unknown provider alias {alias!r}.',
                        hint=f"Configured aliases: {', '.join(sorted(aliases))}.",
                        id="imagegen.E005",
                    )
                )


def _check_runner(messages: list) -> None:
    try:
        runner = load_runner_class(imagegen_settings.TASK_RUNNER)()
    except ImproperlyConfigured as err:
        missing = getattr(err.__cause__, "name", None) or ""
        if missing.split(".")[0] == "celery":
            # The Celery runner lives beside its task, which imports Celery: an optional extra.
            messages.append(
                checks.Error(
                    f'IMAGEGEN["TASK_RUNNER"] is {imagegen_settings.TASK_RUNNER!r}, which sends '
                    "jobs to Celery, but Celery is not installed.",
                    hint='Install the celery extra: pip install "django-imagegen[celery]"',
                    id="imagegen.E021",
                )
            )
            return
        messages.append(
            checks.Error(
                str(err),
                hint=(
                    "Install what the runner needs (the message names it)."
                    if isinstance(err.__cause__, ImportError)
                    else 'Use "immediate" (default), "celery", "django" or a BaseRunner path.'
                ),
                id="imagegen.E007",
            )
        )
        return
    messages.extend(runner.check())
    _check_task_options(runner, messages)


#: Cache backends whose counters are not shared by workers, or not atomic.
UNSHARED_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
    "django.core.cache.backends.db.DatabaseCache",
    "django.core.cache.backends.filebased.FileBasedCache",
)


def _check_task_options(runner, messages: list) -> None:
    problems = check_task_options(imagegen_settings.TASK_OPTIONS)
    for problem in problems:
        messages.append(
            checks.Error(
                problem,
                hint="See the TASK_OPTIONS section of the deployment guide.",
                id="imagegen.E020",
            )
        )
    options = task_options()
    if problems or runner.is_immediate or not options["RATE_LIMITS"]:
        return
    cache = settings.CACHES.get(options["CACHE"], {}) if hasattr(settings, "CACHES") else {}
    backend = cache.get("BACKEND", "django.core.cache.backends.locmem.LocMemCache")
    if options["CACHE"] not in getattr(settings, "CACHES", {"default": {}}):
        messages.append(
            checks.Error(
                f'IMAGEGEN["TASK_OPTIONS"]["CACHE"] is {options["CACHE"]!r}, which is not a '
                "CACHES alias.",
                hint=f"Configured aliases: {', '.join(sorted(settings.CACHES))}.",
                id="imagegen.E020",
            )
        )
    elif backend in UNSHARED_CACHES:
        messages.append(
            checks.Warning(
                f'The rate limits of IMAGEGEN["TASK_OPTIONS"]["RATE_LIMITS"] are kept in cache '
                f'"{options["CACHE"]}" ({backend.rsplit(".", 1)[-1]}), which workers do not '
                "share or cannot count in atomically, so each worker may use the whole limit.",
                hint='Point TASK_OPTIONS["CACHE"] at a Redis or Memcached cache.',
                id="imagegen.W020",
            )
        )


def _check_storage(messages: list) -> None:
    alias = imagegen_settings.STORAGE
    if alias not in settings.STORAGES:
        messages.append(
            checks.Error(
                f'IMAGEGEN["STORAGE"] is {alias!r}, which is not an alias in STORAGES.',
                hint=f"STORAGES defines: {', '.join(sorted(settings.STORAGES))}.",
                id="imagegen.E008",
            )
        )
        return
    storage = get_storage()
    if isinstance(storage, UnavailableStorage):
        backend = str(settings.STORAGES[alias].get("BACKEND", ""))
        messages.append(
            checks.Error(
                f'The backend of storage {alias!r} (IMAGEGEN["STORAGE"]) does not import: '
                f"{storage.error}",
                hint=_storage_hint(backend),
                id="imagegen.E014",
            )
        )


def _storage_hint(backend: str) -> str:
    if backend.startswith(("storages.backends.s3.", "storages.backends.s3boto3.")):
        return 'Install the s3 extra (django-storages and boto3): pip install "django-imagegen[s3]"'
    if backend.startswith("storages."):
        return (
            "Install django-storages with the extra of your backend, as its documentation "
            'says (for example pip install "django-storages[google]").'
        )
    return "Check the dotted path in STORAGES, and install the package that provides it."


def _check_budgets(messages: list) -> None:
    try:
        parse_caps(imagegen_settings.BUDGETS)
    except ValueError as err:
        messages.append(
            checks.Error(
                f'IMAGEGEN["BUDGETS"] is invalid: {err}.',
                hint='For example {"SITE_MONTHLY": "100", "CAPS": [{"SCOPE": "provider", '
                '"KEY": "openai", "PERIOD": "day", "LIMIT": "5", "WARN": 80}]}.',
                id="imagegen.E009",
            )
        )


def _check_prices(messages: list) -> None:
    for model, data in (imagegen_settings.PRICES or {}).items():
        try:
            price_from_dict(data)
        except (ValueError, TypeError, InvalidOperation) as err:
            messages.append(
                checks.Error(
                    f'IMAGEGEN["PRICES"]["{model}"] is invalid: {err}',
                    hint='For example {"per_image": "0.04"} or {"per_megapixel": "0.015"}.',
                    id="imagegen.E010",
                )
            )


def _check_formats(messages: list) -> None:
    allowed = imagegen_settings.ALLOWED_FORMATS
    unknown = [f for f in allowed or [] if str(f).upper() not in MIME_TYPES]
    if not allowed or unknown:
        messages.append(
            checks.Error(
                f'IMAGEGEN["ALLOWED_FORMATS"] must list some of {", ".join(MIME_TYPES)}; '
                f"got {list(allowed or [])!r}.",
                hint="Provider output in other formats is refused; convert it in a provider.",
                id="imagegen.E012",
            )
        )


def _check_derivatives(messages: list) -> None:

    widths = imagegen_settings.DERIVATIVE_WIDTHS
    formats = imagegen_settings.DERIVATIVE_FORMATS
    problems = []
    if not isinstance(widths, (list, tuple)) or not all(
        isinstance(w, int) and not isinstance(w, bool) and 0 < w <= 10_000 for w in widths
    ):
        problems.append(f'["DERIVATIVE_WIDTHS"] must list widths from 1 to 10000, not {widths!r}')
    if not isinstance(formats, (list, tuple)) or not all(
        isinstance(f, str) and f.lower() in FORMATS for f in formats
    ):
        problems.append(
            f'["DERIVATIVE_FORMATS"] must list some of {", ".join(FORMATS)}, not {formats!r}'
        )
    for problem in problems:
        messages.append(
            checks.Error(
                f"IMAGEGEN{problem}.",
                hint='For example "DERIVATIVE_WIDTHS": [480, 960, 1600] and '
                '"DERIVATIVE_FORMATS": ["webp", "avif"]; [] for either makes no derived files.',
                id="imagegen.E013",
            )
        )
    if problems:
        return
    if widths and "avif" in [f.lower() for f in formats] and not features.check("avif"):
        messages.append(
            checks.Warning(
                'IMAGEGEN["DERIVATIVE_FORMATS"] lists "avif", but this Pillow cannot write AVIF; '
                "no AVIF files will be made.",
                hint="Install Pillow 11.2 or later from a wheel (it bundles libavif), "
                'or remove "avif".',
                id="imagegen.W013",
            )
        )


def _check_credentials(remote: list[str], messages: list) -> None:
    problems = provenance.check_options()
    for problem in problems:
        messages.append(
            checks.Error(
                f'IMAGEGEN["CONTENT_CREDENTIALS"] is invalid: {problem}.',
                hint="See the Content Credentials section of the settings reference.",
                id="imagegen.E030",
            )
        )
    config = provenance.options()
    if not provenance.is_available():
        if provenance.signing_configured() or config.get("TRUST_ANCHORS"):
            messages.append(
                checks.Error(
                    'IMAGEGEN["CONTENT_CREDENTIALS"] configures a signer or trust anchors, '
                    "but the c2pa-python bindings are not installed.",
                    hint=provenance.INSTALL_HINT,
                    id="imagegen.E031",
                )
            )
        elif remote:
            # Only a site that calls real providers gets images that may carry credentials:
            # the offline placeholder's never do, so a bare install stays free of warnings.
            messages.append(
                checks.Warning(
                    f"Images from {', '.join(sorted(remote))} may carry C2PA Content "
                    "Credentials, but the c2pa-python bindings are not installed: they are "
                    'recorded as "not checked".',
                    hint=provenance.INSTALL_HINT,
                    id="imagegen.W030",
                )
            )
        return
    if problems or not provenance.signing_configured():
        return
    formats = imagegen_settings.DERIVATIVE_FORMATS
    if not isinstance(formats, (list, tuple)):
        return  # E013 reports it
    bare = [
        str(name)
        for name in formats
        if str(name).lower() in FORMATS and not provenance.can_embed(FORMATS[str(name).lower()][1])
    ]
    if bare and imagegen_settings.DERIVATIVE_WIDTHS:
        messages.append(
            checks.Warning(
                f'IMAGEGEN["DERIVATIVE_FORMATS"] lists {", ".join(bare)}, which the installed '
                "c2pa-python bindings cannot embed a manifest in: those files carry IPTC "
                "metadata only, and the provider's credential only the original.",
                hint="Use webp, avif or jpeg (each can carry a manifest), or upgrade c2pa-python.",
                id="imagegen.W031",
            )
        )
