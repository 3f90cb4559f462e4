"""System checks: every bad setting fails with an id and a hint."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from imagegen.checks import check_settings
from imagegen.providers.http import HttpProvider

PLACEHOLDER = {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"}


class KeyedProvider(HttpProvider):
    """A minimal HTTP provider for checks (never called)."""

    catalog_key = "keyed"
    api_key_env = "IMAGEGEN_TEST_KEY"


def ids(settings, **imagegen):
    settings.IMAGEGEN = imagegen
    return {m.id: m for m in check_settings()}


def test_defaults_pass(settings):
    settings.IMAGEGEN = {}
    assert check_settings() == []
    del settings.IMAGEGEN
    assert check_settings() == []


def test_backend_that_does_not_import(settings):
    found = ids(settings, PROVIDERS={"default": {"BACKEND": "imagegen.providers.nope.Nope"}})
    assert "imagegen.E002" in found
    assert "nope" in found["imagegen.E002"].msg and found["imagegen.E002"].hint


def test_unknown_options_key(settings):
    found = ids(settings, PROVIDERS={"default": {**PLACEHOLDER, "OPTIONS": {"colour": "red"}}})
    assert "imagegen.E003" in found
    assert "colour" in found["imagegen.E003"].msg
    assert "'default'" in found["imagegen.E003"].msg


def test_malformed_alias_entry(settings):
    found = ids(settings, PROVIDERS={"default": {"backend": "x"}})
    assert "imagegen.E001" in found


def test_http_provider_without_key_warns_and_never_shows_key(settings, monkeypatch):
    monkeypatch.delenv("IMAGEGEN_TEST_KEY", raising=False)
    backend = {"BACKEND": "tests.test_checks.KeyedProvider"}
    found = ids(settings, PROVIDERS={"default": backend})
    warning = found["imagegen.W003"]
    assert "IMAGEGEN_TEST_KEY" in warning.hint
    monkeypatch.setenv("IMAGEGEN_TEST_KEY", "sk-live-123456")
    assert "imagegen.W003" not in ids(settings, PROVIDERS={"default": backend})
    found = ids(settings, PROVIDERS={"default": {**backend, "OPTIONS": {"api_key": "sk-x"}}})
    assert "imagegen.W003" not in found


def test_unknown_default_provider(settings):
    found = ids(settings, DEFAULT_PROVIDER="openai", PROVIDERS={"default": PLACEHOLDER})
    assert "imagegen.E004" in found
    assert "default" in found["imagegen.E004"].hint


def test_preset_with_unknown_alias(settings):
    found = ids(settings, PRESETS={"hero": {"providers": ["flux"]}})
    assert "imagegen.E005" in found
    assert "'flux'" in found["imagegen.E005"].msg


@pytest.mark.parametrize(
    "preset", [{"aspect": "16:9"}, {"aspect_ratio": "wide"}, {"aspect_ratio": "16:0"}]
)
def test_malformed_preset(settings, preset):
    assert "imagegen.E006" in ids(settings, PRESETS={"banner": preset})


@pytest.mark.parametrize(
    "runner", ["threads", "imagegen.runners.Nope", "imagegen.models.Generation"]
)
def test_invalid_task_runner(settings, runner):
    found = ids(settings, TASK_RUNNER=runner)
    assert "imagegen.E007" in found
    assert found["imagegen.E007"].hint


@pytest.mark.parametrize("runner", ["immediate", "celery", "imagegen.runners.ImmediateRunner"])
def test_valid_task_runner(settings, runner):
    assert "imagegen.E007" not in ids(settings, TASK_RUNNER=runner)


def test_storage_alias_missing(settings):
    found = ids(settings, STORAGE="generated")
    assert "imagegen.E008" in found
    assert "default" in found["imagegen.E008"].hint


@pytest.mark.parametrize(
    "budgets",
    [{"SITE_MONTHLY": "lots"}, {"USER_MONTHLY": -1}, {"ACTION": "shout"}, {"DAILY": 3}],
)
def test_bad_budgets(settings, budgets):
    assert "imagegen.E009" in ids(settings, BUDGETS=budgets)


def test_bad_prices(settings):
    assert "imagegen.E010" in ids(settings, PRICES={"gpt-image-2": {"per_kilo": 1}})
    assert "imagegen.E010" not in ids(settings, PRICES={"gpt-image-2": {"per_image": "0.05"}})


def test_unknown_top_level_key(settings):
    found = ids(settings, PROVIDER={"default": PLACEHOLDER})
    assert found["imagegen.W001"].msg == 'Unknown IMAGEGEN setting "PROVIDER".'


@pytest.mark.django_db  # Django 6.1's check command touches every database
def test_check_command_fails_on_errors(settings):
    settings.IMAGEGEN = {"TASK_RUNNER": "threads"}
    with pytest.raises(SystemCheckError, match=r"imagegen\.E007"):
        call_command("check")


@pytest.mark.parametrize("formats", [["PNG", "GIF"], []])
def test_bad_allowed_formats(settings, formats):
    assert "imagegen.E012" in ids(settings, ALLOWED_FORMATS=formats)


# Model lifecycle --------------------------------------------------------------------------------

OPENAI_15 = {
    "BACKEND": "imagegen.providers.openai.OpenAIProvider",
    "OPTIONS": {"api_key": "sk-test", "model": "gpt-image-1.5"},
}


@pytest.mark.parametrize(
    ("day", "days", "expected"),
    [
        # gpt-image-1.5: deprecated 2026-06-02, shut down 2026-12-01 (OpenAI's deprecations page).
        ("2026-05-01", None, set()),
        ("2026-09-01", None, {"imagegen.W010"}),  # 91 days left: deprecated only
        ("2026-10-02", None, {"imagegen.W011"}),  # 60 days left: the default window
        ("2026-09-01", 120, {"imagegen.W011"}),
        ("2026-12-01", None, {"imagegen.E011"}),
    ],
)
def test_a_model_close_to_shutdown_warns_and_errors_after(
    settings, monkeypatch, day, days, expected
):
    monkeypatch.setattr("imagegen.checks.today", lambda: datetime.date.fromisoformat(day))
    extra = {} if days is None else {"SHUTDOWN_WARNING_DAYS": days}
    found = ids(settings, PROVIDERS={"default": OPENAI_15}, **extra)
    lifecycle = {key for key in found if key in {"imagegen.W010", "imagegen.W011", "imagegen.E011"}}
    assert lifecycle == expected
    if "imagegen.W011" in found:
        message = found["imagegen.W011"]
        assert "shuts down on 2026-12-01" in message.msg and " days." in message.msg
        assert "gpt-image-2.6-sunburst" in message.hint


def test_a_google_alias_without_a_model_gets_no_deprecation_warning(settings, monkeypatch):
    # The default is gemini-nano-banana-2.1, the successor of the deprecated
    # gemini-3.1-flash-image; naming the old model still warns.
    monkeypatch.setattr("imagegen.checks.today", lambda: datetime.date(2026, 12, 5))
    backend = "imagegen.providers.google.GoogleProvider"
    default = {"BACKEND": backend, "OPTIONS": {"api_key": "k-test"}}
    assert "imagegen.W010" not in ids(settings, PROVIDERS={"default": default})
    old = {"BACKEND": backend, "OPTIONS": {"api_key": "k-test", "model": "gemini-3.1-flash-image"}}
    assert "imagegen.W010" in ids(settings, PROVIDERS={"default": old})


@pytest.mark.parametrize("days", [-1, "60", 1.5, True])
def test_a_malformed_warning_window_is_an_error(settings, days):
    assert "imagegen.E015" in ids(settings, SHUTDOWN_WARNING_DAYS=days)
