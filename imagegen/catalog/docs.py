"""Render the catalog's tables into the docs, so the docs and the catalog cannot drift apart.

The provider pages under ``docs/providers/`` and the feature matrix hold generated blocks between
``<!-- catalog:NAME -->`` and ``<!-- /catalog:NAME -->``: each provider's models and prices, the
source of every fact, estimate tables, and the matrix of every model's capabilities. The feature
matrix itself (``docs/providers/feature-matrix.csv``, one column per built-in backend) is a
generated file: every row comes from the backends' identity attributes (``operations``,
``polled_operations``, ``webhooks``, ``api_key_env``...) and their models' catalog entries,
except the two rows of :data:`NOTES`. :func:`update` rewrites them all
(``python scripts/render_catalog_docs.py``); :func:`stale` lists what differs from the code,
which the test suite asserts is empty. Lifecycle dates are printed as dates, never as a status,
so nothing goes stale when a date passes.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from imagegen import catalog
from imagegen.catalog import Capabilities, ModelInfo
from imagegen.providers.base import BaseProvider
from imagegen.providers.bfl import BFLProvider
from imagegen.providers.google import GoogleProvider
from imagegen.providers.http import HttpProvider
from imagegen.providers.leonardo import LeonardoProvider
from imagegen.providers.listing import LIVE_CHECKED
from imagegen.providers.locmem import LocmemProvider
from imagegen.providers.openai import OpenAIProvider
from imagegen.providers.placeholder import PlaceholderProvider
from imagegen.providers.replicate import ReplicateProvider
from imagegen.providers.stability import StabilityProvider
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


# The feature matrix -------------------------------------------------------------------------

#: The built-in backends, one column each of the feature matrix, in its order.
BACKENDS: tuple[type[BaseProvider], ...] = (
    PlaceholderProvider,
    LocmemProvider,
    OpenAIProvider,
    StabilityProvider,
    GoogleProvider,
    ReplicateProvider,
    BFLProvider,
    LeonardoProvider,
)

#: What cannot come from code: how each backend's cost is recorded, and a note. Keyed by
#: ``catalog_key``; the only hand-written cells of the matrix.
NOTES: dict[str, dict[str, str]] = {
    "Cost recorded from": {
        "placeholder": "nothing: free",
        "locmem": 'nothing: free (or the "cost" option)',
        "openai": "the response's token usage, at the catalog's token prices",
        "stability": "the catalog's credits per call, at $0.01 a credit",
        "google": "Gemini: the response's usageMetadata tokens; Imagen: the catalog per image",
        "replicate": "the catalog's price, per image or megapixel",
        "bfl": "the cost the API reports, in credits at $0.01; else the catalog",
        "leonardo": "the apiCreditCost the API reports, at the credit_price option",
    },
    "Notes": {
        "placeholder": "offline and deterministic: the same prompt gives the same image",
        "locmem": "offline and deterministic, for tests",
        "openai": "",
        "stability": (
            "edit (search and replace, recolor), inpaint, outpaint, erase, upscale and "
            "remove_background are endpoints of their own; the models listed generate"
        ),
        "google": "Imagen 4 ids only through gateways that still serve them",
        "replicate": "webhooks need the webhook_url option",
        "bfl": "",
        "leonardo": "v1 endpoint only: model UUIDs, not v2 slugs",
    },
}

#: Words for each price rule's ``kind``.
PRICE_KINDS = {
    "free": "free",
    "per_image": "per image",
    "per_megapixel": "per megapixel",
    "megapixel_tiers": "per megapixel",
    "per_credit": "in credits",
    "per_token": "per token",
}
#: Output formats in the order the matrix names them.
FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP"}


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _share(flags: list[bool]) -> str:
    """Return "yes" when every model has a capability, "no" when none has, else which share."""
    if flags and all(flags):
        return "yes"
    if not any(flags):
        return "no"
    return f"{sum(flags)} of {len(flags)} models"


def _sizes_summary(infos: list[ModelInfo]) -> str:
    free = [i.capabilities for i in infos if not i.capabilities.sizes]
    free = [c for c in free if not c.aspect_ratios]
    fixed = _unique([f"{w}x{h}" for i in infos for w, h in i.capabilities.sizes or ()])
    ratios = _unique([r for i in infos for r in i.capabilities.aspect_ratios or ()])
    parts = []
    if free:
        lo, hi = min(c.min_side for c in free), max(c.max_side for c in free)
        parts.append(f"width and height, {lo} to {hi} px")
    if fixed:
        parts.append("sizes " + ", ".join(fixed))
    if ratios:
        parts.append("aspect ratios " + ", ".join(ratios))
    return "; ".join(parts)


def _per_call(infos: list[ModelInfo]) -> str:
    counts = sorted({i.capabilities.max_count for i in infos})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]} to {counts[-1]}, by model"


def _operation_share(cls: type[BaseProvider], operation: str, flags: list[bool]) -> str:
    """Return which models can do ``operation``; "no" when the backend does not implement it.

    A backend whose catalogued models all lack the capability but which implements the
    operation does so through an endpoint of its own, for any model (Stability's inpaint).
    """
    if operation not in cls.operations:
        return "no"
    return _share(flags) if any(flags) else "yes, through an endpoint of its own"


def _jobs(cls: type[BaseProvider]) -> str:
    if not cls.polled_operations:
        return "no"
    which = (
        ""
        if set(cls.polled_operations) == set(cls.operations)
        else " (" + ", ".join(cls.polled_operations) + " only)"
    )
    return f"yes{which}: polled; a retry resumes the job"


def _batches(cls: type[BaseProvider], infos: list[ModelInfo]) -> str:
    """Return whether the backend runs batches (:mod:`imagegen.providers.batching`), at what share
    of the price, for which models and up to which size."""
    methods = ("batch_submit", "batch_find", "batch_poll", "batch_results", "batch_cancel")
    priced = [i.batch_factor for i in infos if i.batch_factor is not None]
    if not all(hasattr(cls, name) for name in methods) or not priced:
        return "no"
    shares = _unique([f"{factor * 100:.0f}%" for factor in priced])
    which = "" if len(priced) == len(infos) else f", {len(priced)} of {len(infos)} models"
    size = getattr(cls, "batch_max_bytes", 0) // (1024 * 1024)
    limit = f"{getattr(cls, 'batch_max_requests', 0):,} requests and {size} MB a batch"
    return f"yes, at {' or '.join(shares)} of the price{which}; up to {limit}"


def _default_model(cls: type[BaseProvider]) -> str:
    info = catalog.get_model(cls.catalog_key, cls.default_model)
    label = info.label if info else ""
    return (
        f"{cls.default_model} ({label})"
        if label and label != cls.default_model
        else (cls.default_model)
    )


def _column(cls: type[BaseProvider]) -> dict[str, str]:
    """Return one backend's column of the feature matrix: row name to cell."""
    key = cls.catalog_key
    infos = catalog.models_for(key)
    caps = [i.capabilities for i in infos]
    remote = issubclass(cls, HttpProvider)
    formats = {f for c in caps for f in c.output_formats}
    return {
        "Backend": f"{cls.__module__}.{cls.__qualname__}",
        "Name": cls.display_name,
        "Network and API key": f"yes ({cls.api_key_env})" if remote else "no",
        "Default model": _default_model(cls),
        "Catalogued models": str(len(infos)),
        "Priced": ", ".join(_unique([PRICE_KINDS.get(i.price.kind, i.price.kind) for i in infos])),
        "Cost recorded from": NOTES["Cost recorded from"][key],
        "Sizes": _sizes_summary(infos),
        "Images per call": _per_call(infos),
        "Seed": _share([c.seed for c in caps]),
        "Negative prompt": _share([c.negative_prompt for c in caps]),
        "Operations": ", ".join(cls.operations),
        "Edit with source images": _operation_share(cls, "edit", [c.edit for c in caps]),
        "Inpaint with a mask": _operation_share(cls, "inpaint", [c.mask for c in caps]),
        "Output formats": ", ".join(name for f, name in FORMATS.items() if f in formats),
        "Asynchronous jobs": _jobs(cls),
        "Batch runs (within 24 hours)": _batches(cls, infos),
        "Webhooks": "yes" if cls.webhooks else "no",
        "Retirement dates": (
            "yes" if any(i.deprecated or i.shutdown for i in infos) else "none published"
        ),
        "Live model check": "yes" if remote and key in LIVE_CHECKED else "no",
        "Notes": NOTES["Notes"][key],
    }


def feature_matrix() -> list[list[str]]:
    """Return the feature matrix: a header row of catalog keys, then one row per feature."""
    columns = [_column(cls) for cls in BACKENDS]
    rows = [["Feature", *(cls.catalog_key for cls in BACKENDS)]]
    rows += [[name, *(column[name] for column in columns)] for name in columns[0]]
    return rows


def matrix_csv() -> str:
    """Return ``docs/providers/feature-matrix.csv``."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(feature_matrix())
    return out.getvalue()


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

#: Whole files generated from the code, relative to the docs root.
FILES: dict[str, Callable[[], str]] = {"providers/feature-matrix.csv": matrix_csv}


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
    """Return each generated file, and ``page:block`` for each generated block, that is missing
    or differs from the code."""
    found = [
        name
        for name, renderer in FILES.items()
        if not (docs / name).exists() or (docs / name).read_text(encoding="utf-8") != renderer()
    ]
    for page, renderers in BLOCKS.items():
        text = (docs / page).read_text(encoding="utf-8")
        present = {m.group("name"): m.group("body") for m in _BLOCK.finditer(text)}
        for name, renderer in renderers.items():
            if present.get(name) != renderer():
                found.append(f"{page}:{name}")
    return found


def update(docs: Path) -> list[str]:
    """Rewrite the generated files and blocks under ``docs``; return the pages that changed."""
    changed = []
    for name, renderer in FILES.items():
        path, text = docs / name, renderer()
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(name)
    for page in BLOCKS:
        path = docs / page
        text = path.read_text(encoding="utf-8")
        new = render(text, _bodies(page))
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed
