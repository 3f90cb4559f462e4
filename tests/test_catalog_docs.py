"""The docs' model tables are generated from the catalog; this fails when they drift."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from imagegen import catalog
from imagegen.catalog import docs
from imagegen.pricing import PerImage

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_generated_blocks_match_the_catalog() -> None:
    assert docs.stale(DOCS) == [], "run: python scripts/render_catalog_docs.py"


def test_a_changed_price_makes_the_docs_stale(monkeypatch) -> None:
    info = catalog.get_model("bfl", "flux-pro-1.1")
    changed = replace(info, price=PerImage(price=Decimal("0.05")))
    monkeypatch.setattr(
        catalog,
        "models_for",
        lambda p: [
            changed if m.id == info.id else m for m in catalog.all_models() if m.provider == p
        ],
    )
    stale = docs.stale(DOCS)
    assert "providers/bfl.md:models.bfl" in stale
    assert "providers/bfl.md:estimates.bfl" in stale


def test_render_replaces_only_the_named_blocks() -> None:
    keep = "<!-- catalog:y -->\nkeep\n<!-- /catalog:y -->\n"
    text = f"a\n<!-- catalog:x -->\nold\n<!-- /catalog:x -->\nb\n{keep}"
    new = f"a\n<!-- catalog:x -->\nnew\n<!-- /catalog:x -->\nb\n{keep}"
    assert docs.render(text, {"x": "new\n"}) == new


def test_every_source_is_listed_on_its_providers_page() -> None:
    for provider in docs.PROVIDERS:
        page = (DOCS / "providers" / f"{provider}.md").read_text(encoding="utf-8")
        for info in catalog.models_for(provider):
            for source in info.sources.values():
                assert f"<{source.url}>" in page, (provider, info.id, source.url)
