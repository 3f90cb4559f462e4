"""How an unsuccessful HTTP answer becomes one of :mod:`imagegen.exceptions`, for every provider.

:func:`check_response` is the path every answer of
:class:`~imagegen.providers.http.HttpProvider` takes: it reads a vendor's error body into an
:class:`ApiError` (:func:`parse_error_body` understands the common envelopes), lets the provider
map its own codes first, and falls back to :func:`status_error`, the one status mapping shared by
all providers. A provider's own mapping builds its exceptions with the same helpers
(:func:`answer_error`, :func:`key_refused`, :func:`rate_limited`, :func:`retired_model`), so
every message reads alike. Messages are sentences an editor can read; provider text in them is
already redacted and truncated by the caller.
"""

from __future__ import annotations

import datetime
import email.utils
import math
from dataclasses import dataclass, replace
from typing import Any

import httpx

from imagegen.exceptions import (
    InvalidResponse,
    ModelUnavailable,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)

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


def check_response(provider: Any, response: httpx.Response) -> None:
    """Return for a 2xx response; raise the ``ProviderError`` any other status means.

    A 3xx is an error (``unexpected_redirect``): redirects are never followed. Otherwise the
    provider's ``parse_error`` reads the body, its text is quoted (redacted, truncated), and the
    provider's ``error_for_response`` picks the exception.
    """
    if response.is_success:
        return
    status = response.status_code
    if 300 <= status < 400:
        message = (
            f"{provider.name} answered with a redirect (HTTP {status}), which imagegen does not "
            'follow; check OPTIONS["base_url"].'
        )
        raise provider.fail(InvalidResponse, "unexpected_redirect", message, status_code=status)
    error = provider.parse_error(response)
    error = replace(error, message=provider.quote(error.message))
    exc = provider.error_for_response(response, error)
    # A last scrub, whatever an override put into the message.
    exc.message = provider.redact(exc.message)
    exc.args = (exc.message,)
    raise exc


def answer_error(
    provider: Any,
    response: httpx.Response,
    cls: type[ProviderError],
    what: str,
    said: str = "",
    *,
    code: str | None = None,
    advice: str = "",
    **kwargs: Any,
) -> ProviderError:
    """Return ``cls`` for an error answer: the sentence "``what``: ``said``." then ``advice``.

    The exception carries the provider's alias and the HTTP status; ``code`` defaults to the
    class's own, and ``kwargs`` (``retry_after``, ``successor``) go to the class.
    """
    message = sentence(what, said)
    return cls(
        f"{message} {advice}" if advice else message,
        code=code,
        provider=provider.alias,
        status_code=response.status_code,
        **kwargs,
    )


def retired_model(
    provider: Any, model: str, err: ModelUnavailable, *, today: datetime.date
) -> ModelUnavailable:
    """Return ``err`` restated from the catalog: the shutdown date once passed, and the successor.

    ``today`` comes from the caller, so a provider module's view of the date is the one used.
    """
    info = provider.model_info(model)
    message = err.message
    if info.shutdown is not None and info.shutdown <= today:
        message = f"{provider.name} shut down the model {model} on {info.shutdown:%Y-%m-%d}."
    if info.successor:
        message += f' Use {info.successor} instead (OPTIONS["model"]).'
    return provider.fail(
        ModelUnavailable,
        "model_unavailable",
        message,
        successor=info.successor,
        status_code=err.status_code,
    )


def key_refused(provider: Any, response: httpx.Response, why: str, said: str = "") -> ProviderError:
    """Return ``authentication_failed`` for an answer refusing the key, saying where it is set."""
    what = f"{provider.name} did not accept the API key ({why})"
    advice = (
        f'Check OPTIONS["api_key"] in {provider.config_path} or the {provider.api_key_env} '
        "environment variable."
    )
    return answer_error(
        provider, response, ProviderError, what, said, code="authentication_failed", advice=advice
    )


def rate_limited(
    provider: Any, response: httpx.Response, said: str, retry_after: float | None
) -> RateLimited:
    """Return ``RateLimited`` for an answer asking to wait ``retry_after`` s (None: unsaid)."""
    what = f"{provider.name} is limiting requests (HTTP {response.status_code})"
    wait = "later" if retry_after is None else f"in {math.ceil(retry_after)} s"
    return answer_error(
        provider, response, RateLimited, what, said, advice=f"Try again {wait}.",
        retry_after=retry_after,
    )  # fmt: skip


def status_error(provider: Any, response: httpx.Response, error: ApiError) -> ProviderError:
    """Return the exception an HTTP status means, quoting ``error.message`` (already redacted).

    401 is ``authentication_failed``; 402 ``QuotaExceeded``; 429, and 503 with a retry header,
    ``RateLimited``; 408, 409 and 5xx ``ProviderUnavailable``; other 4xx a ``ProviderError``.
    """
    name, status, said = provider.name, response.status_code, error.message
    if status == 401:
        return key_refused(provider, response, "HTTP 401")
    retry_after = parse_retry_after(response.headers)
    if status == 429 or (status == 503 and retry_after is not None):
        return rate_limited(provider, response, said, retry_after)
    if status == 402:
        what = f"{name} says the account has no credit left (HTTP 402)"
        return answer_error(provider, response, QuotaExceeded, what, said)
    if status >= 500 or status in (408, 409):
        what = f"{name} had a temporary failure (HTTP {status})"
        return answer_error(
            provider, response, ProviderUnavailable, what, said, advice="Try again later."
        )
    code = {403: "permission_denied", 404: "not_found", 413: "request_too_large"}
    what = f"{name} refused the request (HTTP {status})"
    return answer_error(
        provider, response, ProviderError, what, said, code=code.get(status, "invalid_request")
    )
