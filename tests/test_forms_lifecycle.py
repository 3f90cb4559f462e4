"""The Generate widget's provider choices mark a model close to, or past, its shutdown."""

from __future__ import annotations

import datetime

import pytest

from imagegen import catalog
from imagegen.forms import provider_choices

LOCMEM = "imagegen.providers.locmem.LocmemProvider"
SOON = datetime.date.today() + datetime.timedelta(days=10)
LATER = datetime.date.today() + datetime.timedelta(days=200)
RETIRING = {
    ("locmem", info.id): info
    for info in (
        catalog.ModelInfo(provider="locmem", id="test-retiring-soon", shutdown=SOON),
        catalog.ModelInfo(provider="locmem", id="test-retiring-later", shutdown=LATER),
    )
}


@pytest.fixture(autouse=True)
def retiring_models(monkeypatch) -> None:
    """Add two retiring locmem models for these tests only (the catalog itself is shared: the
    generated docs are checked against it)."""
    known = catalog.get_model
    monkeypatch.setattr(
        catalog,
        "get_model",
        lambda provider, model: RETIRING.get((provider, model)) or known(provider, model),
    )


def test_models_close_to_shutdown_are_marked(settings) -> None:
    settings.IMAGEGEN = {
        "PROVIDERS": {
            "soon": {"BACKEND": LOCMEM, "OPTIONS": {"model": "test-retiring-soon"}},
            "later": {"BACKEND": LOCMEM, "OPTIONS": {"model": "test-retiring-later"}},
            "plain": {"BACKEND": LOCMEM},
        },
        "DEFAULT_PROVIDER": "plain",
    }
    labels = dict(provider_choices())
    assert labels["soon"] == f"soon: test-retiring-soon (shuts down {SOON})"
    assert labels["later"] == "later: test-retiring-later"
    assert labels["plain"] == "plain: locmem"
    settings.IMAGEGEN = {**settings.IMAGEGEN, "SHUTDOWN_WARNING_DAYS": 365}
    assert dict(provider_choices())["later"] == f"later: test-retiring-later (shuts down {LATER})"


def test_a_shut_down_model_says_so(settings) -> None:
    settings.IMAGEGEN = {
        "PROVIDERS": {
            "old": {
                "BACKEND": "imagegen.providers.openai.OpenAIProvider",
                "OPTIONS": {"api_key": "sk-test", "model": "gpt-image-1"},
            }
        },
        "DEFAULT_PROVIDER": "old",
    }
    assert dict(provider_choices())["old"] == "old: gpt-image-1 (shut down 2026-10-23)"
