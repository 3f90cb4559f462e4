"""Tests for ``imagegen_providers``: aliases, catalog status, prices, keys and broken aliases."""

from __future__ import annotations

import datetime
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command

from imagegen import catalog
from imagegen.pricing import PerImage
from imagegen.providers.http import HttpProvider

LOCMEM = "imagegen.providers.locmem.LocmemProvider"
PLACEHOLDER = "imagegen.providers.placeholder.PlaceholderProvider"
FAKE = "tests.commands.test_providers_command.FakeHttpProvider"
SECRET = "sk-secret-123"


class FakeHttpProvider(HttpProvider):
    """An HTTP provider that is never called; only its configuration matters here."""

    catalog_key = "fake"
    display_name = "Fake HTTP"
    default_model = "fake-1"
    api_key_env = "IMAGEGEN_TEST_KEY"


class LeakyProvider(HttpProvider):
    """A provider whose constructor fails with the key in its message, as careless code might."""

    def __init__(self, *, api_key: str | None = None, **options: Any) -> None:
        raise ValueError(f"rejected key {api_key}")


def providers_output(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("imagegen_providers", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def row(output: str, alias: str) -> str:
    """Return the table line of ``alias``."""
    return next(line for line in output.splitlines() if f" {alias} " in f" {line} ")


@pytest.fixture
def configured(settings, monkeypatch):
    monkeypatch.delenv("IMAGEGEN_TEST_KEY", raising=False)
    settings.IMAGEGEN = {
        "DEFAULT_PROVIDER": "default",
        "PROVIDERS": {
            "default": {"BACKEND": PLACEHOLDER},
            "tests": {"BACKEND": LOCMEM},
            "fake": {"BACKEND": FAKE, "OPTIONS": {"api_key": SECRET}},
            "keyless": {"BACKEND": FAKE},
        },
        "PRICES": {"fake-1": {"per_image": "0.04"}},
    }
    return settings.IMAGEGEN


def test_lists_every_alias_with_backend_model_price_and_default(configured) -> None:
    out, err = providers_output()
    default = row(out, "default")
    assert default.startswith("*")
    assert PLACEHOLDER in default
    assert "Offline placeholder" in default
    assert "active" in default
    assert "free" in default
    assert default.split()[-1] == "n/a"
    assert not row(out, "tests").startswith("*")
    fake = row(out, "fake")
    assert "Fake HTTP" in fake
    assert "fake-1" in fake
    assert "$0.04 per image" in fake
    assert err == ""


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_api_key_presence_is_shown_but_never_the_key(configured, fmt: str) -> None:
    out, _ = providers_output("--format", fmt, "--models")
    assert SECRET not in out
    assert "secret" not in out.lower()
    if fmt == "json":
        keys = {p["alias"]: p["api_key"] for p in json.loads(out)["providers"]}
        assert keys == {"default": "n/a", "tests": "n/a", "fake": "yes", "keyless": "no"}
    else:
        assert row(out, "fake").split()[-1] == "yes"
        assert row(out, "keyless").split()[-1] == "no"


def test_key_from_the_environment_counts(configured, monkeypatch) -> None:
    monkeypatch.setenv("IMAGEGEN_TEST_KEY", "env-value-456")
    out, _ = providers_output()
    assert row(out, "keyless").split()[-1] == "yes"
    assert "env-value-456" not in out


def test_broken_aliases_are_listed_with_their_errors(configured) -> None:
    configured["PROVIDERS"]["missing"] = {"BACKEND": "tests.commands.nowhere.Provider"}
    configured["PROVIDERS"]["typo"] = {"BACKEND": LOCMEM, "OPTIONS": {"costt": "1"}}
    configured["PROVIDERS"]["leaky"] = {
        "BACKEND": "tests.commands.test_providers_command.LeakyProvider",
        "OPTIONS": {"api_key": SECRET},
    }
    out, _ = providers_output()
    assert "error" in row(out, "missing")
    assert "missing: Could not import BACKEND 'tests.commands.nowhere.Provider'" in out
    assert "typo: Unknown OPTIONS" in out
    assert "costt" in out
    assert "leaky: rejected key **********" in out
    assert SECRET not in out
    assert "fake-1" in row(out, "fake")  # the working aliases are still listed

    report = json.loads(providers_output("--format", "json")[0])
    errors = {p["alias"]: p["error"] for p in report["providers"]}
    assert errors["default"] is None
    assert "Unknown OPTIONS" in errors["typo"]


def test_catalog_lifecycle_with_dates_and_successor(configured, monkeypatch) -> None:
    past = datetime.date.today() - datetime.timedelta(days=30)
    future = datetime.date.today() + datetime.timedelta(days=60)
    old = catalog.ModelInfo(
        provider="fake", id="fake-0", label="Fake zero", deprecated=past, shutdown=future,
        successor="fake-1", price=PerImage(price=Decimal("0.02")),
    )  # fmt: skip
    monkeypatch.setitem(catalog._CATALOG, ("fake", "fake-0"), old)
    configured["PROVIDERS"]["old"] = {
        "BACKEND": FAKE, "OPTIONS": {"model": "fake-0", "api_key": "x"}
    }  # fmt: skip
    out, _ = providers_output()
    assert f"deprecated since {past}; shuts down {future}; use fake-1" in row(out, "old")
    report = json.loads(providers_output("--format", "json")[0])
    entry = next(p for p in report["providers"] if p["alias"] == "old")
    assert entry["deprecated"] == past.isoformat()
    assert entry["shutdown"] == future.isoformat()
    assert entry["successor"] == "fake-1"
    assert entry["price"] == "$0.02 per image"


def test_uncatalogued_model_says_so(configured) -> None:
    configured["PRICES"] = {}
    out, _ = providers_output()
    assert "not in catalog" in row(out, "fake")
    assert "unknown" in row(out, "fake")


def test_models_lists_the_catalog(configured) -> None:
    out, _ = providers_output("--models")
    models = out.split("Checked", 1)[1]
    placeholder = next(line for line in models.splitlines() if line.startswith("placeholder"))
    assert "Offline placeholder art" in placeholder
    assert placeholder.split()[-2:] == [str(catalog.get_model("placeholder", "placeholder")
                                            .capabilities.max_count), "never"]  # fmt: skip
    # Each entry shows when its sources were last checked, and which facts are unverified.
    flux = next(line for line in models.splitlines() if " flux-2-max " in line)
    assert flux.rstrip().endswith("2026-12-05")
    leonardo = next(line for line in models.splitlines() if line.startswith("leonardo"))
    assert "2026-11-16 (1 unverified: price)" in leonardo
    report = json.loads(providers_output("--format", "json", "--models")[0])
    ids = {(m["provider"], m["id"]) for m in report["models"]}
    assert {("placeholder", "placeholder"), ("locmem", "locmem")} <= ids
    pro = next(m for m in report["models"] if m["id"] == "flux-2-pro")
    assert pro["checked"] == "2026-12-05" and pro["unverified"] == []
    assert pro["sources"]["price"].startswith("https://github.com/black-forest-labs/")
    assert "models" not in json.loads(providers_output("--format", "json")[0])


def test_unknown_default_provider_is_warned_about(configured) -> None:
    configured["DEFAULT_PROVIDER"] = "ghost"
    out, err = providers_output()
    assert "DEFAULT_PROVIDER 'ghost' is not a configured alias" in err
    assert not any(line.startswith("*") for line in out.splitlines()[2:-1])
