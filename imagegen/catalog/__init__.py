"""The model catalog: what each provider's models can do, what they cost and when they retire.

Requests are adapted to a model here, before any money is spent: a size the model does not offer
becomes its nearest native size, a count above the per-call maximum is split, and an unsupported
seed or negative prompt is dropped. Every adaptation is returned as a warning for the ledger.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from urllib.parse import urlsplit

from imagegen.conf import DEFAULTS, imagegen_settings
from imagegen.pricing import PriceRule, price_from_dict
from imagegen.types import ImageRequest

ANY_FORMAT = ("png", "jpeg", "webp")


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What a model accepts; anything else is adapted or refused before the call."""

    #: Native sizes; None means any size within the side limits.
    sizes: tuple[tuple[int, int], ...] | None = None
    #: Aspect ratios the API takes instead of pixel sizes ("16:9"); None when it takes sizes.
    aspect_ratios: tuple[str, ...] | None = None
    min_side: int = 64
    max_side: int = 4096
    #: Width and height are rounded to a multiple of this.
    size_multiple: int = 1
    #: Pixel-count limits of free sizes (width x height); None means only the side limits apply.
    min_pixels: int | None = None
    max_pixels: int | None = None
    #: Widest long-to-short side ratio of free sizes (3.0 means 3:1 to 1:3); None means any.
    max_aspect: float | None = None
    max_count: int = 1
    seed: bool = True
    negative_prompt: bool = False
    edit: bool = False
    mask: bool = False
    output_formats: tuple[str, ...] = ANY_FORMAT


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where one fact of a catalog entry comes from: a page of the provider's own, and when it
    was last read."""

    #: The provider's own page or API reference; third-party pages are never a source.
    url: str
    #: The day the page was last read for this fact.
    checked: datetime.date
    #: False when the provider's page did not confirm the value; ``note`` says what was found.
    verified: bool = True
    note: str = ""


#: The facts of an entry that each need a source: its id, its price and every lifecycle date set.
FACTS = ("id", "price", "released", "deprecated", "shutdown")

#: The hosts (and GitHub organisations) each built-in provider publishes its own pages on.
OWN_SOURCES: dict[str, tuple[str, ...]] = {
    "openai": ("developers.openai.com", "platform.openai.com", "openai.com", "github.com/openai/"),
    "google": (
        "ai.google.dev",
        "cloud.google.com",
        "docs.cloud.google.com",
        "firebase.google.com",
        "blog.google",
    ),
    "bfl": ("docs.bfl.ai", "bfl.ai", "github.com/black-forest-labs/"),
    "replicate": ("replicate.com", "github.com/replicate/"),
    "leonardo": ("docs.leonardo.ai", "leonardo.ai", "github.com/Leonardo-Interactive/"),
    "stability": ("platform.stability.ai", "stability.ai", "github.com/Stability-AI/"),
}


def is_own_source(provider: str, url: str) -> bool:
    """Return whether ``url`` is on a host ``provider`` publishes its own pages on."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return False
    where = f"{parts.hostname}{parts.path}"
    for own in OWN_SOURCES.get(provider, ()):
        host, slash, _ = own.partition("/")
        on_host = parts.hostname == host or parts.hostname.endswith(f".{host}")
        # A GitHub entry names an organisation: only its repositories count.
        if on_host and (not slash or where.startswith(own)):
            return True
    return False


def sources(checked: datetime.date, **facts: str | Source) -> dict[str, Source]:
    """Return the sources of an entry's facts; a bare URL is a page that confirmed the fact on
    ``checked``."""
    return {
        name: value if isinstance(value, Source) else Source(url=value, checked=checked)
        for name, value in facts.items()
    }


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """One model of one provider: capabilities, price rule and lifecycle."""

    provider: str
    id: str
    label: str = ""
    capabilities: Capabilities = field(default_factory=Capabilities)
    price: PriceRule = field(default_factory=PriceRule)
    released: datetime.date | None = None
    deprecated: datetime.date | None = None
    shutdown: datetime.date | None = None
    successor: str | None = None
    notes: str = ""
    #: Where each fact comes from, keyed by the names in :data:`FACTS`.
    sources: Mapping[str, Source] = field(default_factory=dict)

    def status(self, today: datetime.date | None = None) -> str:
        """Return "active", "deprecated" or "shut down" as of ``today``."""
        today = today or datetime.date.today()
        if self.shutdown and today >= self.shutdown:
            return "shut down"
        if self.deprecated and today >= self.deprecated:
            return "deprecated"
        return "active"

    def days_to_shutdown(self, today: datetime.date | None = None) -> int | None:
        """Return the days left before the shutdown date (negative once past), or None."""
        if self.shutdown is None:
            return None
        return (self.shutdown - (today or datetime.date.today())).days

    def facts(self) -> tuple[str, ...]:
        """Return the facts of this entry that need a source: id, price and each date set."""
        return tuple(name for name in FACTS if name in ("id", "price") or getattr(self, name))

    def missing_sources(self) -> list[str]:
        """Return the facts of this entry that name no source."""
        return [name for name in self.facts() if name not in self.sources]

    def unverified(self) -> list[str]:
        """Return the facts whose source did not confirm the value."""
        return [name for name, source in self.sources.items() if not source.verified]

    @property
    def checked(self) -> datetime.date | None:
        """Return the day this entry was last checked: the oldest check of any of its facts."""
        return min((source.checked for source in self.sources.values()), default=None)


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


def parse_ratio(ratio: str) -> tuple[int, int]:
    """Parse "16:9" into (16, 9); raise ValueError for anything else."""
    w, sep, h = ratio.partition(":")
    if not sep or not w.strip().isdigit() or not h.strip().isdigit() or not int(w) or not int(h):
        raise ValueError(f"Invalid aspect ratio {ratio!r}; expected the form '16:9'.")
    return int(w), int(h)


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
        capabilities=Capabilities(min_side=16, max_side=8192, max_count=16, negative_prompt=True),
    ),
    ModelInfo(
        provider="locmem",
        id="locmem",
        label="In-memory test provider",
        # A small per-call maximum, so tests exercise request splitting.
        capabilities=Capabilities(min_side=1, max_side=8192, max_count=4, negative_prompt=True),
    ),
)


# The built-in providers' models register themselves on import, one module per provider.
from imagegen.catalog import bfl, google, leonardo, openai, replicate, stability  # noqa: E402, F401
