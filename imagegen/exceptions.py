"""Exceptions: one runtime tree under ImagegenError and one configuration tree.

Runtime errors carry a stable ``code`` (stored as ``Generation.error_code``), a ``retryable`` flag
that the task runners obey, and a message an editor can read. Configuration errors subclass
``ImproperlyConfigured`` and deliberately not ``ImagegenError``, so nothing that handles provider
failures can swallow a broken settings file.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Self

from django.core.exceptions import ImproperlyConfigured


class ImagegenError(Exception):
    """Base class of every runtime failure imagegen reports."""

    #: Stable machine-readable identifier, stored on the ledger row.
    code: str = "error"
    #: Whether trying the same request again later may succeed.
    retryable: bool = False

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        provider: str | None = None,
        status_code: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message or self.default_message())
        self.message = message or self.default_message()
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.provider = provider
        self.status_code = status_code
        #: Whether the provider billed the call before this error refused its answer.
        self.billed = False
        #: What the provider charged for it, when known (``billed`` without a cost: unknown).
        self.cost: Decimal | None = None
        #: What the provider reported it consumed (tokens, megapixels...).
        self.usage: dict[str, Any] = {}

    def charged(self, cost: Decimal | None = None, usage: Mapping[str, Any] | None = None) -> Self:
        """Mark this error as raised after the provider billed the call; return it.

        Providers call it when they refuse an answer they were charged for (a body too large,
        bad base64, a result download refused), so the ledger keeps the charge: ``cost`` when
        the provider reported it, else the call's estimate as an unconfirmed charge.
        """
        self.billed = True
        if cost is not None:
            self.cost = cost
        self.usage.update(usage or {})
        return self

    @classmethod
    def default_message(cls) -> str:
        return (cls.__doc__ or cls.__name__).strip().splitlines()[0]

    def __str__(self) -> str:
        return self.message


class ProviderError(ImagegenError):
    """The provider failed to produce an image."""

    code = "provider_error"


class RateLimited(ProviderError):
    """The provider is rate limiting requests; try again later."""

    code = "rate_limited"
    retryable = True

    def __init__(self, message: str = "", *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        #: Seconds the provider asked us to wait, when it said so.
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or had a temporary failure."""

    code = "provider_unavailable"
    retryable = True


class ContentRejected(ProviderError):
    """The provider's safety system refused the prompt or the image."""

    code = "content_rejected"


class QuotaExceeded(ProviderError):
    """The provider account has no credit or quota left."""

    code = "quota_exceeded"


class ModelUnavailable(ProviderError):
    """The requested model is not available (retired, unknown or not enabled for this account)."""

    code = "model_unavailable"

    def __init__(self, message: str = "", *, successor: str | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        #: The model that replaces the unavailable one, when known.
        self.successor = successor


class InvalidResponse(ProviderError):
    """The provider answered with something that is not a usable image."""

    code = "invalid_response"


class UnsupportedRequest(ImagegenError, ValueError):
    """The request asks for something the provider or model cannot do."""

    code = "unsupported_request"


class BudgetExceeded(ImagegenError):
    """The request would exceed a spending budget."""

    code = "budget_exceeded"


class GenerationCanceled(ImagegenError):
    """The generation was canceled before it finished."""

    code = "canceled"


class ImagegenConfigurationError(ImproperlyConfigured):
    """The IMAGEGEN setting is invalid."""


class InvalidProviderError(ImagegenConfigurationError):
    """A provider alias is unknown, its BACKEND does not import, or its OPTIONS are wrong."""


class ImproperlyInstalled(ImagegenConfigurationError, ImportError):
    """An optional dependency is missing; the message names the pip extra to install."""
