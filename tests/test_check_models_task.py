"""The Celery task ``imagegen.check_models``: the live check of ``imagegen_providers --live``,
run periodically, its problems logged as warnings. Every provider talks to a fake."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from django.core.management import call_command

from imagegen import tasks
from imagegen.management.commands import imagegen_providers
from imagegen.providers import listing
from imagegen.testing import MockAPI, fake_provider_settings

OPENAI = "imagegen.providers.openai.OpenAIProvider"
BFL = "imagegen.providers.bfl.BFLProvider"


def openai_models(*ids: str, shutdown: str | None = None) -> dict:
    data = [{"id": model, "object": "model", "shutdown_date": shutdown} for model in ids]
    return {"object": "list", "data": data}


def test_the_task_and_the_command_run_the_same_check() -> None:
    assert tasks.run_live_check is listing.run_live_check
    assert imagegen_providers.run_live_check is listing.run_live_check


def test_the_task_is_a_periodic_task_without_a_result() -> None:
    assert tasks.check_models_task.name == "imagegen.check_models"
    assert tasks.check_models_task.ignore_result is True


def test_problems_are_logged_as_warnings_like_the_command_logs_them(settings, caplog) -> None:
    api = MockAPI()
    api.reply(json=openai_models("gpt-image-2", "gpt-image-3", shutdown="2027-06-01"))
    api.reply(json=openai_models("gpt-image-2", "gpt-image-3", shutdown="2027-06-01"))
    settings.IMAGEGEN = {
        "DEFAULT_PROVIDER": "openai",
        "PROVIDERS": {
            "openai": fake_provider_settings(OPENAI, api, model="gpt-image-2"),
            "bfl": fake_provider_settings(BFL, MockAPI()),  # no listing: never a problem
        },
    }
    with caplog.at_level(logging.WARNING, logger="imagegen.live"):
        assert tasks.check_models_task() == 2
    from_task = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert from_task == [
        (
            "WARNING",
            "openai (gpt-image-2): the provider announces shutdown on 2027-06-01; "
            "the catalog says no date.",
        ),
        (
            "WARNING",
            "openai (gpt-image-2): the provider serves ids the catalog lacks: gpt-image-3.",
        ),
    ]
    assert [r.url.path for r in api.requests] == ["/v1/models"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="imagegen.live"):
        call_command("imagegen_providers", "--live", stdout=io.StringIO())
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == from_task


def test_nothing_to_report_logs_nothing(settings, caplog) -> None:
    api = MockAPI().reply(json=openai_models("gpt-image-2"))
    settings.IMAGEGEN = {
        "DEFAULT_PROVIDER": "openai",
        "PROVIDERS": {"openai": fake_provider_settings(OPENAI, api, model="gpt-image-2")},
    }
    with caplog.at_level(logging.WARNING, logger="imagegen.live"):
        assert tasks.check_models_task() == 0
    assert caplog.records == []


def test_an_unreachable_provider_and_a_broken_alias_are_warnings_not_errors(
    settings, caplog
) -> None:
    api = MockAPI().reply(500, json={"error": {"message": "boom"}}, times=3)
    settings.IMAGEGEN = {
        "DEFAULT_PROVIDER": "openai",
        "PROVIDERS": {
            "openai": fake_provider_settings(OPENAI, api, model="gpt-image-2"),
            "broken": {"BACKEND": "imagegen.providers.nowhere.Provider"},
        },
    }
    with caplog.at_level(logging.WARNING, logger="imagegen.live"):
        assert tasks.check_models_task() == 2
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("openai (gpt-image-2): the live check failed:")
    assert messages[1].startswith("broken: the live check failed: Could not import BACKEND")


def test_the_task_never_raises(monkeypatch, caplog) -> None:
    def explode() -> None:
        raise RuntimeError("settings unreadable")

    monkeypatch.setattr(tasks, "run_live_check", explode)
    with caplog.at_level(logging.WARNING, logger="imagegen.live"):
        assert tasks.check_models_task() == 0
    (record,) = caplog.records
    assert record.levelname == "WARNING"
    assert record.getMessage() == "The live model check could not run."
    assert "settings unreadable" in caplog.text


def test_the_documented_beat_schedules_name_the_task() -> None:
    docs = Path(__file__).resolve().parent.parent / "docs"
    for page in ("deployment.md", "commands.md"):
        text = (docs / page).read_text(encoding="utf-8")
        assert '"task": "imagegen.check_models"' in text, page
        assert 'call_command("imagegen_providers"' not in text, page
