"""Reading a vendor's error answer: its body as an :class:`ApiError`, its retry hint, its wording.

:meth:`HttpProvider.raise_for_response <imagegen.providers.http.HttpProvider.raise_for_response>`
reads every unsuccessful answer with :func:`parse_error_body` (which understands the common
envelopes) unless the provider parses its own, and the exception it then builds (the one status
mapping, or the provider's own codes first) is worded with :func:`sentence` and
:data:`CHANGE_PROMPT`, so every message reads alike. Nothing here knows which provider answered:
building the exception in the provider's name is the provider's job.
"""

from __future__ import annotations

import datetime
import email.utils
import math
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = [
    "CHANGE_PROMPT",
    "ApiError",
    "json_body",
    "parse_error_body",
    "parse_retry_after",
    "sentence",
    "text_or_none",
]

#: The advice after a refusal that only a different prompt can avoid.
CHANGE_PROMPT = "Change the prompt; the same request will be refused again."


@dataclass(frozen=True, kw_only=True)
class ApiError:
    """What a provider's error body said; every field may be empty."""

    message: str = ""
    code: str | None = None
    type: str | None = None
    #: The request field the provider blames, when it names one.
    param: str | None = None

    @property
    def field_note(self) -> str:
        """Return `` (field 'name')`` for the blamed field, or "" when none is named."""
        return f" (field {self.param!r})" if self.param else ""


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Return the seconds ``retry-after-ms`` or ``retry-after`` asks to wait, or None.

    ``retry-after-ms`` (OpenAI's, float milliseconds) wins over ``retry-after``, which is seconds
    or an HTTP date (provider-apis.md §2.6; RFC 9110 §10.2.3). Garbage and negatives give None.
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        seconds = _number(raw_ms)
        if seconds is not None:
            return seconds / 1000
    raw = (headers.get("retry-after") or "").strip()
    if not raw:
        return None
    seconds = _number(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


def _number(raw: str) -> float | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def json_body(response: httpx.Response) -> Any:
    """Return ``response``'s body parsed as JSON, or None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None


def parse_error_body(response: httpx.Response) -> ApiError:
    """Return what an error body says, for the envelopes most providers use.

    Understands ``{"error": {"message", "code", "type", "param"}}``, ``{"error": "..."}``,
    ``{"message"|"detail": ...}`` and ``{"errors": [...]}``; anything else is quoted as text.
    """
    try:
        body = response.json()
    except ValueError:
        return ApiError(message=response.content[:2000].decode("utf-8", "replace"))
    if not isinstance(body, dict):
        return ApiError(message=str(body))
    inner = body.get("error")
    source = inner if isinstance(inner, dict) else body
    message = source.get("message") or source.get("detail") or source.get("errors") or inner
    if isinstance(message, list):
        message = "; ".join(str(item) for item in message)
    return ApiError(
        message=str(message or ""),
        code=text_or_none(source.get("code")),
        type=text_or_none(source.get("type") or source.get("name")),
        param=text_or_none(source.get("param")),
    )


def text_or_none(value: Any) -> str | None:
    """Return ``value`` as text, keeping None (an absent field) as None."""
    return None if value is None else str(value)


def sentence(*parts: str) -> str:
    """Join non-empty ``parts`` with ": " and end the result with a full stop if it has none."""
    text = ": ".join(part.strip() for part in parts if part and part.strip())
    return text if text.endswith((".", "!", "?")) else f"{text}."
