"""What a catalog entry is: a model's capabilities, its price rule, lifecycle and sources.

The provider modules of this package describe their models with these types; the package
itself (:mod:`imagegen.catalog`) gathers them and answers lookups.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlsplit

from imagegen.pricing import PriceRule

ANY_FORMAT = ("png", "jpeg", "webp")


@dataclass(frozen=True, kw_only=True)
class OperationSupport:
    """What a model takes for one operation on a source image (see ``Capabilities.operations``)."""

    #: "none", "optional" or "required".
    mask: str = "none"
    #: Reference images (style, subject) the operation may carry besides its source.
    max_references: int = 0
    #: Pixel limit of the source image (width x height); None means imagegen's own cap only.
    max_input_pixels: int | None = None

    def __post_init__(self) -> None:
        if self.mask not in ("none", "optional", "required"):
            raise ValueError(f"mask must be none, optional or required, not {self.mask!r}.")


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
    #: Reference images (style, subject) a request may carry besides its source.
    max_references: int = 0
    #: Pixel limit of a source image (width x height); None means imagegen's own cap only.
    max_input_pixels: int | None = None
    output_formats: tuple[str, ...] = ANY_FORMAT
    #: What each operation on a source image takes, by operation name; a model that lists
    #: none is described by ``edit``, ``mask``, ``max_references`` and ``max_input_pixels``.
    operations: Mapping[str, OperationSupport] = field(default_factory=dict)

    def support(self, operation: str) -> OperationSupport | None:
        """Return what ``operation`` takes on this model, or None if the catalog says it cannot.

        Without an ``operations`` table, every operation is described by the general fields
        (the provider's own ``operations`` list says which it implements).
        """
        if self.operations:
            if operation == "generate":
                return OperationSupport(max_references=self.max_references)
            return self.operations.get(operation)
        return OperationSupport(
            mask="optional" if self.mask else "none",
            max_references=self.max_references,
            max_input_pixels=self.max_input_pixels,
        )


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


#: The facts of an entry that each need a source: its id, its price, every lifecycle date set and
#: its batch price (``batch_factor``) when it has one.
FACTS = ("id", "price", "released", "deprecated", "shutdown", "batch_factor")

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
    #: The share of the synchronous price a batch run costs (``Decimal("0.5")``); None when the
    #: model has no batch API (:mod:`imagegen.providers.batching`).
    batch_factor: Decimal | None = None
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


def parse_ratio(ratio: str) -> tuple[int, int]:
    """Parse "16:9" into (16, 9); raise ValueError for anything else."""
    w, sep, h = ratio.partition(":")
    if not sep or not w.strip().isdigit() or not h.strip().isdigit() or not int(w) or not int(h):
        raise ValueError(f"Invalid aspect ratio {ratio!r}; expected the form '16:9'.")
    return int(w), int(h)
