"""The docs' model tables are generated from the catalog; this fails when they drift."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from imagegen import catalog
from imagegen.catalog import docs
from imagegen.pricing import PerImage
from imagegen.providers.http import JobProvider
from imagegen.providers.openai import OpenAIProvider

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


def test_the_feature_matrix_is_generated_whole() -> None:
    matrix = (DOCS / "providers" / "feature-matrix.csv").read_text(encoding="utf-8")
    assert matrix == docs.matrix_csv()
    rows = docs.feature_matrix()
    assert rows[0] == ["Feature", *(cls.catalog_key for cls in docs.BACKENDS)]
    assert all(len(row) == len(docs.BACKENDS) + 1 for row in rows)
    # Only the rows of the NOTES table are written by hand.
    names = [row[0] for row in rows[1:]]
    assert set(docs.NOTES) <= set(names)
    for notes in docs.NOTES.values():
        assert set(notes) == {cls.catalog_key for cls in docs.BACKENDS}


def test_a_changed_operation_or_capability_makes_the_matrix_stale(monkeypatch) -> None:
    monkeypatch.setattr(OpenAIProvider, "operations", ("generate",))
    assert docs.stale(DOCS) == ["providers/feature-matrix.csv"]
    monkeypatch.undo()
    info = catalog.get_model("leonardo", catalog.models_for("leonardo")[0].id)
    seeded = replace(info, capabilities=replace(info.capabilities, seed=False))
    monkeypatch.setattr(
        catalog,
        "models_for",
        lambda p: [
            seeded if m.id == info.id else m for m in catalog.all_models() if m.provider == p
        ],
    )
    assert "providers/feature-matrix.csv" in docs.stale(DOCS)


def test_matrix_cells_come_from_the_backends_and_their_models() -> None:
    columns = {row[0]: row[1:] for row in docs.feature_matrix()[1:]}
    keys = [cls.catalog_key for cls in docs.BACKENDS]
    cell = {name: dict(zip(keys, values, strict=True)) for name, values in columns.items()}
    assert cell["Operations"]["openai"] == ", ".join(OpenAIProvider.operations)
    assert cell["Default model"]["google"] == "gemini-nano-banana-2.1 (Nano Banana 2.1)"
    assert cell["Network and API key"]["bfl"] == "yes (BFL_API_KEY)"
    assert cell["Network and API key"]["placeholder"] == "no"
    assert cell["Asynchronous jobs"]["openai"] == "no"
    assert cell["Asynchronous jobs"]["stability"].startswith(
        "yes (upscale, replace_background only)"
    )
    assert cell["Webhooks"] == {key: "yes" if key == "replicate" else "no" for key in keys}
    assert cell["Negative prompt"]["leonardo"] == "1 of 7 models"
    assert cell["Inpaint with a mask"]["bfl"] == "1 of 14 models"
    assert cell["Live model check"]["openai"] == "yes" and cell["Live model check"]["bfl"] == "no"
    assert cell["Catalogued models"]["leonardo"] == str(len(catalog.models_for("leonardo")))


def test_polled_operations_are_declared_by_job_providers_only() -> None:
    for cls in docs.BACKENDS:
        assert set(cls.polled_operations) <= set(cls.operations), cls
        assert bool(cls.polled_operations) is issubclass(cls, JobProvider), cls


def test_a_missing_generated_file_is_stale_and_written(tmp_path) -> None:
    for page in docs.BLOCKS:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text((DOCS / page).read_text(encoding="utf-8"), encoding="utf-8")
    assert docs.stale(tmp_path) == ["providers/feature-matrix.csv"]
    assert docs.update(tmp_path) == ["providers/feature-matrix.csv"]
    assert docs.stale(tmp_path) == []
