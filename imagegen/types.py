"""Value types that cross the boundary between imagegen and a provider adapter.

Providers receive an :class:`ImageRequest` and return an :class:`ImageResult`; both are frozen,
keyword-only dataclasses so they can be logged, compared and cached without surprises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

#: Operations a provider may implement. ``generate`` is text-to-image; the rest work on a source
#: image (``restyle`` gives it the look of a reference image, or of the prompt).
OPERATIONS = (
    "generate",
    "edit",
    "inpaint",
    "outpaint",
    "erase",
    "search_replace",
    "search_recolor",
    "remove_background",
    "replace_background",
    "upscale",
    "restyle",
)


@dataclass(frozen=True, kw_only=True)
class ImageRequest:
    """What to generate: a prompt, a size, a count and provider-independent options."""

    prompt: str
    negative_prompt: str = ""
    width: int = 1024
    height: int = 1024
    #: The aspect ratio the size was derived from ("16:9"), for providers that take ratios.
    aspect_ratio: str | None = None
    count: int = 1
    seed: int | None = None
    #: The provider's model id; None means the provider's configured default.
    model: str | None = None
    #: "png", "webp" or "jpeg".
    output_format: str = "png"
    #: Provider quality tier ("low", "medium", "high", ...); None means the provider default.
    quality: str | None = None
    operation: str = "generate"
    #: Input images for edits and image-to-image, as encoded bytes.
    source_images: tuple[bytes, ...] = ()
    mask: bytes | None = None
    #: What ``search_replace`` and ``search_recolor`` look for in the source ("the blue bottle").
    search: str = ""
    #: Pixels ``outpaint`` adds around the source: (left, top, right, bottom).
    padding: tuple[int, int, int, int] | None = None
    #: Provider-specific fields passed through to the vendor API unchanged.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"Image size must be positive, got {self.width}x{self.height}.")
        if self.count < 1:
            raise ValueError(f"count must be at least 1, got {self.count}.")

    @property
    def megapixels(self) -> Decimal:
        """Return the output size in megapixels (10**6 pixels), as providers bill it."""
        return Decimal(self.width * self.height) / Decimal(1_000_000)


@dataclass(frozen=True, kw_only=True)
class ImageOutput:
    """One image a provider returned, as the provider's own encoded bytes."""

    content: bytes
    mime_type: str = ""
    seed: int | None = None
    #: The prompt as the provider rewrote it, when it reports one.
    revised_prompt: str | None = None


@dataclass(frozen=True, kw_only=True)
class ImageResult:
    """Everything a provider call produced: images, what it cost and what the provider reported."""

    images: tuple[ImageOutput, ...]
    model: str
    #: The actual cost in ``currency``, or None when the provider did not report enough to say.
    cost: Decimal | None = None
    currency: str = "USD"
    #: Usage as the provider reported it (tokens, credits, megapixels, ...).
    usage: Mapping[str, Any] = field(default_factory=dict)
    #: The provider's id for the job, for asynchronous providers and support requests.
    job_id: str | None = None
    #: True when the provider charged for the call but withheld the image (a safety filter).
    filtered: bool = False
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Spend:
    """What something cost: charges the providers reported, and charges that are probable.

    ``unconfirmed`` holds the estimates of calls whose outcome is unknown (a timeout after the
    request was sent): the provider has probably billed them, but did not say what.
    """

    confirmed: Decimal = Decimal(0)
    unconfirmed: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        """Return confirmed and unconfirmed charges together."""
        return self.confirmed + self.unconfirmed


@dataclass(frozen=True, kw_only=True)
class CallContext:
    """How one provider call relates to the ledger: resume a job, report a new one, stop in time.

    Providers that submit a job and poll for it call :attr:`on_job_accepted` with the provider's
    job id as soon as it is known, so the id is persisted before the first poll; a redelivered
    task passes that id back as :attr:`resume_job_id` and the provider polls instead of
    submitting (and paying) again.
    """

    resume_job_id: str | None = None
    on_job_accepted: Callable[[str], None] | None = None
    #: ``time.monotonic()`` value after which the provider must give up.
    deadline: float | None = None


class CredentialState(StrEnum):
    """What reading an image's C2PA Content Credentials found, as ``GeneratedImage`` records it."""

    #: Not read: the ``c2pa`` extra is not installed, or the row is older than the reading.
    NOT_CHECKED = "not_checked"
    #: Read: the file carries no C2PA manifest.
    NONE = "none"
    #: A manifest whose signature, hashes and signer all check out against the trust anchors.
    VALID = "valid"
    #: A manifest that is intact, signed by a certificate that no configured anchor vouches for.
    UNTRUSTED = "untrusted"
    #: A manifest that fails validation: the file was changed, or the manifest is broken.
    INVALID = "invalid"
