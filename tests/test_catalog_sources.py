"""Every built-in catalog entry names a provider's own page for its id, price and dates."""

from __future__ import annotations

import datetime

import pytest

from imagegen import catalog
from imagegen.catalog import Source, is_own_source

BUILT_IN = [info for info in catalog.all_models() if info.provider in catalog.OWN_SOURCES]


@pytest.mark.parametrize("info", BUILT_IN, ids=lambda info: f"{info.provider}:{info.id}")
def test_each_fact_names_a_source_of_the_providers_own(info: catalog.ModelInfo) -> None:
    assert info.missing_sources() == []
    for fact, source in info.sources.items():
        assert fact in catalog.FACTS
        assert is_own_source(info.provider, source.url), (fact, source.url)
        assert source.checked <= datetime.date(2026, 12, 5)
        # An unverified value says what was found instead.
        assert source.verified or source.note


def test_offline_providers_need_no_sources() -> None:
    assert catalog.get_model("placeholder", "placeholder").missing_sources() == ["id", "price"]
    assert "placeholder" not in catalog.OWN_SOURCES


@pytest.mark.parametrize(
    ("provider", "url", "own"),
    [
        ("bfl", "https://docs.bfl.ai/quick_start/pricing.md", True),
        ("bfl", "https://github.com/black-forest-labs/skills/blob/x/SKILL.md", True),
        ("bfl", "https://github.com/someone/bfl-api", False),
        ("bfl", "https://docs.laozhang.ai/en/api-capabilities/flux-3-image", False),
        ("google", "https://ai.google.dev/gemini-api/docs/changelog", True),
        ("google", "https://dev.to/akaranjkar08/gemini-api-shutdowns", False),
        ("openai", "https://developers.openai.com/api/docs/deprecations", True),
        ("openai", "http://developers.openai.com/api/docs/deprecations", False),
        ("openai", "https://developers.openai.com.evil.example/x", False),
        ("leonardo", "https://apis.io/apis/leonardo-ai/leonardo-ai-pricing-calculator/", False),
    ],
)
def test_third_party_pages_are_never_a_source(provider: str, url: str, own: bool) -> None:
    assert is_own_source(provider, url) is own


def test_an_entry_is_as_fresh_as_its_stalest_fact() -> None:
    old, new = datetime.date(2026, 11, 16), datetime.date(2026, 12, 5)
    info = catalog.ModelInfo(
        provider="openai",
        id="x",
        shutdown=new,
        sources={
            "id": Source(url="https://developers.openai.com/a", checked=new),
            "price": Source(url="https://developers.openai.com/b", checked=old, verified=False),
        },
    )
    assert info.checked == old
    assert info.missing_sources() == ["shutdown"]
    assert info.unverified() == ["price"]
    assert info.days_to_shutdown(datetime.date(2026, 11, 5)) == 30


def test_a_project_price_drops_the_catalogs_price_source(settings) -> None:
    settings.IMAGEGEN = {"PRICES": {"flux-pro-1.1": {"per_image": "0.035"}}}
    info = catalog.get_model("bfl", "flux-pro-1.1")
    assert "price" not in info.sources and "id" in info.sources
    assert info.missing_sources() == ["price"]
