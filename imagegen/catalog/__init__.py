"""The model catalog: what each provider's models can do, what they cost and when they retire.

Requests are adapted to a model here, before any money is spent: a size the model does not offer
becomes its nearest native size, a count above the per-call maximum is split, and an unsupported
seed or negative prompt is dropped. Every adaptation is returned as a warning for the ledger.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import replace
from decimal import Decimal

from imagegen.catalog import bfl, google, leonardo, openai, replicate, stability
from imagegen.catalog.entries import (
    ANY_FORMAT,
    FACTS,
    OWN_SOURCES,
    Capabilities,
    ModelInfo,
    OperationSupport,
    Source,
    is_own_source,
    parse_ratio,
    sources,
)
from imagegen.conf import DEFAULTS, imagegen_settings
from imagegen.pricing import price_from_dict
from imagegen.types import ImageRequest

__all__ = [
    "ANY_FORMAT",
    "FACTS",
    "OWN_SOURCES",
    "Capabilities",
    "ModelInfo",
    "OperationSupport",
    "Source",
    "adapt",
    "all_models",
    "estimate_calls",
    "get_model",
    "is_own_source",
    "models_for",
    "parse_ratio",
    "register",
    "retiring",
    "shutdown_warning_days",
    "sources",
]

_CATALOG: dict[tuple[str, str], ModelInfo] = {}


def register(*infos: ModelInfo) -> None:
    """Add models to the catalog (provider modules and projects may add their own)."""
    for info in infos:
        _CATALOG[(info.provider, info.id)] = info


def models_for(provider: str) -> list[ModelInfo]:
    """Return the catalogued models of one provider, in registration order."""
    return [info for (p, _), info in _CATALOG.items() if p == provider]


def all_models() -> list[ModelInfo]:
    """Return every catalogued model."""
    return list(_CATALOG.values())


def get_model(provider: str, model: str) -> ModelInfo | None:
    """Return a model with any ``IMAGEGEN["PRICES"]`` override applied, or None if unknown."""
    info = _CATALOG.get((provider, model))
    override = (imagegen_settings.PRICES or {}).get(model)
    if override is not None:
        base = info or ModelInfo(provider=provider, id=model)
        # The project's price has no provider page behind it, so the catalog's source goes.
        kept = {fact: source for fact, source in base.sources.items() if fact != "price"}
        info = replace(base, price=price_from_dict(override), sources=kept)
    return info


def shutdown_warning_days() -> int:
    """Return ``IMAGEGEN["SHUTDOWN_WARNING_DAYS"]``, or its default when malformed (the system
    check reports that)."""
    days = imagegen_settings.SHUTDOWN_WARNING_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        return DEFAULTS["SHUTDOWN_WARNING_DAYS"]
    return days


def retiring(info: ModelInfo, today: datetime.date | None = None) -> bool:
    """Return whether ``info`` is shut down or shuts down within ``SHUTDOWN_WARNING_DAYS``."""
    left = info.days_to_shutdown(today)
    return left is not None and left <= shutdown_warning_days()


def _ratio(width: int, height: int) -> float:
    return math.log(width / height)


def _nearest_size(width: int, height: int, sizes: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    target, area = _ratio(width, height), width * height
    return min(sizes, key=lambda s: (round(abs(_ratio(*s) - target), 3), abs(s[0] * s[1] - area)))


def _fit_free_size(width: int, height: int, caps: Capabilities) -> tuple[int, int]:
    w0, h0 = _fit_aspect(width, height, caps.max_aspect)
    scale = min(1.0, caps.max_side / max(w0, h0))
    scale = max(scale, caps.min_side / min(w0, h0))
    area = w0 * h0 * scale * scale
    if caps.max_pixels and area > caps.max_pixels:
        scale *= math.sqrt(caps.max_pixels / area)
    if caps.min_pixels and area < caps.min_pixels:
        scale *= math.sqrt(caps.min_pixels / area)
    m = caps.size_multiple
    w = max(caps.min_side, min(caps.max_side, round(w0 * scale / m) * m))
    h = max(caps.min_side, min(caps.max_side, round(h0 * scale / m) * m))
    return _nudge(w, h, caps)


def _nudge(w: int, h: int, caps: Capabilities) -> tuple[int, int]:
    """Step a rounded size by one multiple at a time back inside the pixel and ratio limits."""
    m = caps.size_multiple
    for _ in range(16):
        wide = w >= h
        if (caps.max_aspect and max(w, h) / min(w, h) > caps.max_aspect) or (
            caps.max_pixels and w * h > caps.max_pixels
        ):
            w, h = (w - m, h) if wide else (w, h - m)  # shrink the longer side
        elif caps.min_pixels and w * h < caps.min_pixels:
            w, h = (w, h + m) if wide else (w + m, h)  # grow the shorter side
        else:
            break
    return w, h


def _fit_aspect(width: int, height: int, max_aspect: float | None) -> tuple[float, float]:
    """Return ``width`` x ``height`` squeezed to ``max_aspect``, keeping the pixel count."""
    if not max_aspect or max(width, height) / min(width, height) <= max_aspect:
        return width, height
    area, ratio = width * height, max_aspect if width > height else 1 / max_aspect
    return math.sqrt(area * ratio), math.sqrt(area / ratio)


def adapt(request: ImageRequest, info: ModelInfo) -> tuple[list[ImageRequest], list[str]]:
    """Fit ``request`` to ``info``'s capabilities; return the calls to make and what changed."""
    caps, warnings, changes = info.capabilities, [], {}
    size = (request.width, request.height)
    if caps.sizes:
        size = _nearest_size(*size, caps.sizes)
    elif caps.aspect_ratios:
        ratio = min(caps.aspect_ratios, key=lambda r: abs(_ratio(*parse_ratio(r)) - _ratio(*size)))
        if request.aspect_ratio != ratio:
            changes["aspect_ratio"] = ratio
            if request.aspect_ratio:
                warnings.append(
                    f"{info.id} does not offer aspect ratio {request.aspect_ratio}; using {ratio}."
                )
    else:
        size = _fit_free_size(*size, caps)
    if size != (request.width, request.height):
        changes["width"], changes["height"] = size
        warnings.append(
            f"{info.id} does not offer {request.width}x{request.height}; "
            f"using {size[0]}x{size[1]}, its nearest size."
        )
    if request.seed is not None and not caps.seed:
        changes["seed"] = None
        warnings.append(f"{info.id} does not take a seed; the seed was not sent.")
    if request.negative_prompt and not caps.negative_prompt:
        changes["negative_prompt"] = ""
        warnings.append(f"{info.id} does not take a negative prompt; it was not sent.")
    if request.output_format not in caps.output_formats:
        changes["output_format"] = caps.output_formats[0]
        warnings.append(
            f"{info.id} cannot return {request.output_format}; "
            f"asking for {caps.output_formats[0]} instead."
        )
    adapted = replace(request, **changes) if changes else request
    per_call = max(1, caps.max_count)
    if adapted.count <= per_call:
        return [adapted], warnings
    counts = [per_call] * (adapted.count // per_call)
    if adapted.count % per_call:
        counts.append(adapted.count % per_call)
    warnings.append(
        f"{info.id} makes at most {per_call} image(s) per call; "
        f"the {adapted.count} images are requested in {len(counts)} calls."
    )
    return [replace(adapted, count=c) for c in counts], warnings


def estimate_calls(calls: list[ImageRequest], info: ModelInfo) -> Decimal:
    """Return the estimated cost of a list of adapted calls."""
    return sum((info.price.estimate(call) for call in calls), Decimal(0))


# Offline providers: free, any size, any count.
register(
    ModelInfo(
        provider="placeholder",
        id="placeholder",
        label="Offline placeholder art",
        # It does every operation offline (PlaceholderProvider.operations).
        capabilities=Capabilities(
            min_side=16,
            max_side=8192,
            max_count=16,
            negative_prompt=True,
            edit=True,
            mask=True,
            max_references=4,
        ),
    ),
    ModelInfo(
        provider="locmem",
        id="locmem",
        label="In-memory test provider",
        # A small per-call maximum, so tests exercise request splitting. It edits and inpaints
        # (LocmemProvider.operations), so the capabilities say so.
        capabilities=Capabilities(
            min_side=1,
            max_side=8192,
            max_count=4,
            negative_prompt=True,
            edit=True,
            mask=True,
            max_references=4,
        ),
    ),
)


# The built-in providers' models, one module per provider.
for _module in (bfl, google, leonardo, openai, replicate, stability):
    register(*_module.MODELS)
