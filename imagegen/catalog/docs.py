"""Render the catalog's tables into the docs, so the docs and the catalog cannot drift apart.

The provider pages under ``docs/providers/`` and the feature matrix hold generated blocks between
``<!-- catalog:NAME -->`` and ``<!-- /catalog:NAME -->``: each provider's models and prices, the
source of every fact, estimate tables, and the matrix of every model's capabilities.
:func:`update` rewrites them (``python scripts/render_catalog_docs.py``); :func:`stale` lists
the blocks that differ from the catalog, which the test suite asserts is empty. Lifecycle dates
are printed as dates, never as a status, so a block does not go stale when a date passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from imagegen import catalog
from imagegen.catalog import Capabilities, ModelInfo
from imagegen.types import ImageRequest

#: The built-in providers with a page under docs/providers/, in the order the matrix lists them.
PROVIDERS = ("openai", "google", "bfl", "replicate", "leonardo", "stability")
_BLOCK = re.compile(
    r"(<!-- catalog:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /catalog:(?P=name) -->)", re.S
)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def _table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def sizes(caps: Capabilities) -> str:
    """Return what sizes a model takes, in words."""
    if caps.sizes:
        return ", ".join(f"{w}x{h}" for w, h in caps.sizes)
    if caps.aspect_ratios:
        return "ratios " + ", ".join(caps.aspect_ratios)
    text = f"{caps.min_side} to {caps.max_side} px"
    if caps.size_multiple > 1:
        text += f", multiples of {caps.size_multiple}"
    if caps.max_pixels:
        text += f", at most {caps.max_pixels / 1_000_000:.1f} million pixels"
    return text


def lifecycle(info: ModelInfo) -> str:
    """Return a model's dates and successor; dates, not a status, so the text stays true."""
    parts = []
    if info.released:
        parts.append(f"released {info.released}")
    if info.deprecated:
        parts.append(f"deprecated {info.deprecated}")
    if info.shutdown:
        parts.append(f"shut down {info.shutdown}")
    if info.successor and (info.deprecated or info.shutdown):
        parts.append(f"successor `{info.successor}`")
    return "; ".join(parts) or "no dates announced"


def _edits(caps: Capabilities) -> str:
    if not caps.edit:
        return "no"
    return "yes, with a mask" if caps.mask else "yes"


def models_table(provider: str) -> str:
    """Return the markdown table of ``provider``'s catalogued models and prices."""
    rows = [
        [
            f"`{info.id}`",
            info.label,
            sizes(info.capabilities),
            info.capabilities.max_count,
            _edits(info.capabilities),
            info.price.describe(),
            lifecycle(info),
        ]
        for info in catalog.models_for(provider)
    ]
    headers = ["model", "name", "sizes", "per call", "edits", "price", "lifecycle"]
    return _table(headers, rows)


def sources_table(provider: str) -> str:
    """Return the markdown table of the source of each fact of ``provider``'s models."""
    rows = []
    for info in catalog.models_for(provider):
        for fact in info.facts():
            source = info.sources.get(fact)
            if source is None:
                rows.append([f"`{info.id}`", fact, "none", "", ""])
                continue
            note = source.note
            if not source.verified:
                note = f"**Unverified.** {note}".strip()
            rows.append([f"`{info.id}`", fact, f"<{source.url}>", source.checked, note])
    return _table(["model", "fact", "source", "checked", "note"], rows)


def estimates_table(provider: str, columns: dict[str, ImageRequest]) -> str:
    """Return the catalog's estimate of one image of each request in ``columns``, per model."""
    rows = []
    for info in catalog.models_for(provider):
        if info.shutdown:  # retired or retiring: not worth an estimate row
            continue
        row: list[object] = [f"`{info.id}`"]
        for request in columns.values():
            row.append(f"${info.price.estimate(request)}")
        rows.append(row)
    return _table(["model", *columns], rows)


def matrix() -> str:
    """Return the capabilities of every built-in model, one row each."""
    rows = []
    for provider in PROVIDERS:
        for info in catalog.models_for(provider):
            caps = info.capabilities
            rows.append(
                [
                    provider,
                    f"`{info.id}`",
                    sizes(caps),
                    caps.max_count,
                    "yes" if caps.seed else "no",
                    "yes" if caps.negative_prompt else "no",
                    _edits(caps),
                    ", ".join(caps.output_formats),
                    info.shutdown or "",
                ]
            )
    headers = [
        "provider",
        "model",
        "sizes",
        "per call",
        "seed",
        "negative prompt",
        "edits",
        "formats",
        "shut down",
    ]
    return _table(headers, rows)


def _square(side: int, **changes: object) -> ImageRequest:
    return replace(ImageRequest(prompt="estimate", width=side, height=side), **changes)


#: The estimate tables each page shows: column label to the request priced.
ESTIMATES: dict[str, dict[str, ImageRequest]] = {
    "bfl": {
        "1024x1024": _square(1024),
        "1536x864 (`hero`)": ImageRequest(prompt="estimate", width=1536, height=864),
        "2048x2048": _square(2048),
    },
    "openai": {q: _square(1024, quality=q) for q in ("low", "medium", "high")},
    "google": {s: _square(1024, quality=s) for s in ("1K", "2K", "4K")},
}

#: The generated blocks of each page, relative to the docs root: block name to its renderer.
BLOCKS: dict[str, dict[str, Callable[[], str]]] = {
    **{
        f"providers/{p}.md": {
            f"models.{p}": (lambda p=p: models_table(p)),
            f"sources.{p}": (lambda p=p: sources_table(p)),
            **(
                {f"estimates.{p}": (lambda p=p: estimates_table(p, ESTIMATES[p]))}
                if p in ESTIMATES
                else {}
            ),
        }
        for p in PROVIDERS
    },
    "providers/feature-matrix.md": {"matrix": matrix},
}


def render(text: str, bodies: dict[str, str]) -> str:
    """Return ``text`` with each named block's body replaced by ``bodies[name]``."""

    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        body = bodies.get(name, match.group("body"))
        return f"{match.group(1)}{body}{match.group(4)}"

    return _BLOCK.sub(fill, text)


def _bodies(page: str) -> dict[str, str]:
    return {name: renderer() for name, renderer in BLOCKS[page].items()}


def stale(docs: Path) -> list[str]:
    """Return ``page:block`` for each generated block that is missing or differs from the
    catalog."""
    found = []
    for page, renderers in BLOCKS.items():
        text = (docs / page).read_text(encoding="utf-8")
        present = {m.group("name"): m.group("body") for m in _BLOCK.finditer(text)}
        for name, renderer in renderers.items():
            if present.get(name) != renderer():
                found.append(f"{page}:{name}")
    return found


def update(docs: Path) -> list[str]:
    """Rewrite the generated blocks under ``docs``; return the pages that changed."""
    changed = []
    for page in BLOCKS:
        path = docs / page
        text = path.read_text(encoding="utf-8")
        new = render(text, _bodies(page))
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed
