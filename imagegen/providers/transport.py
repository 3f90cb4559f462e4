"""One HTTP exchange for a provider: its pooled client, the call's deadline, and the body cap.

:class:`~imagegen.providers.http.HttpProvider` builds the request (URL, auth headers); this
module sends it. Each call gets a wall-clock deadline, the earlier of the provider's ``timeout``
and the caller's; bodies are streamed under ``max_response_bytes``; and wire failures become
``ProviderUnavailable`` with a code that says whether the request can have reached the vendor.
Nothing is retried here: once a POST may have been sent, only the task runner may pay again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from imagegen.exceptions import InvalidResponse, ProviderUnavailable
from imagegen.version import __version__

if TYPE_CHECKING:
    from imagegen.providers.http import HttpProvider

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "USER_AGENT",
    "call_deadline",
    "new_client",
    "read_capped",
    "send",
    "timeouts",
]

logger = logging.getLogger("imagegen.http")

USER_AGENT = f"imagegen/{__version__}"
#: Default cap on a response body: base64 inflates images by a third, and n=10 large images add up.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# Errors raised before the request left this machine: re-sending cannot double-bill.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)


def new_client(provider: HttpProvider) -> httpx.Client:
    """Return a pooled client for ``provider``'s ``base_url`` that never follows redirects."""
    return httpx.Client(
        base_url=provider.base_url,
        transport=provider.transport,
        follow_redirects=False,
        timeout=httpx.Timeout(provider.timeout, connect=provider.connect_timeout),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
    )


def call_deadline(provider: HttpProvider, deadline: float | None) -> float:
    """Return the call's ``time.monotonic()`` deadline, or raise ``timeout`` if it has passed."""
    now = time.monotonic()
    deadline = min(now + provider.timeout, deadline if deadline is not None else float("inf"))
    if deadline <= now:
        message = f"The time allowed for this generation ran out before {provider.name} was called."
        raise provider.fail(ProviderUnavailable, "timeout", message)
    return deadline


def timeouts(provider: HttpProvider, deadline: float) -> httpx.Timeout:
    """Return httpx timeouts that end no later than ``deadline``."""
    # httpx's read timeout is per chunk: these bound each step, read_capped bounds the whole.
    left = max(0.001, deadline - time.monotonic())
    connect = min(provider.connect_timeout, left)
    return httpx.Timeout(min(provider.timeout, left), connect=connect, pool=connect)


def send(provider: HttpProvider, request: httpx.Request, deadline: float) -> httpx.Response:
    """Send ``request`` on the provider's client and return the response with its body read.

    Raises ``ProviderUnavailable`` coded ``connection_failed`` (never sent), ``connection_lost``
    or ``timeout`` (maybe sent), and ``InvalidResponse`` for an undecodable or oversized body.
    The status is not judged here.
    """
    name, limit = provider.name, provider.max_response_bytes
    too_large = (
        f"{name} sent a response larger than the {limit:,}-byte limit "
        '(OPTIONS["max_response_bytes"]).'
    )
    too_slow = f"{name} took too long to send its answer; try again later."
    started = time.monotonic()
    try:
        response = provider.client.send(request, stream=True)
        try:
            body = read_capped(
                response,
                limit,
                deadline,
                too_large=lambda: provider.fail(InvalidResponse, "response_too_large", too_large),
                too_slow=lambda: provider.fail(ProviderUnavailable, "timeout", too_slow),
            )
        finally:
            response.close()
    except httpx.DecodingError as err:
        message = f"{name} sent a body that could not be decoded."
        raise provider.fail(InvalidResponse, "invalid_encoding", message) from err
    except _NOT_SENT as err:
        what = f"Could not connect to {name}"
        raise _unavailable(provider, "connection_failed", what, err) from err
    except httpx.TimeoutException as err:
        what = f"{name} did not answer in time"
        raise _unavailable(provider, "timeout", what, err) from err
    except httpx.HTTPError as err:
        what = f"The connection to {name} broke"
        raise _unavailable(provider, "connection_lost", what, err) from err
    # The path only: query strings may carry signed URLs (the key is never in a URL).
    elapsed = round((time.monotonic() - started) * 1000)
    logger.debug("imagegen: %s %s %s -> %s, %d bytes in %d ms", provider.alias, request.method,
                 request.url.path, response.status_code, len(body), elapsed)  # fmt: skip
    return _with_body(response, body)


def read_capped(
    response: httpx.Response,
    limit: int,
    deadline: float,
    *,
    too_large: Callable[[], Exception],
    too_slow: Callable[[], Exception],
) -> bytes:
    """Return ``response``'s body, read under a byte ``limit`` and a wall-clock ``deadline``.

    ``too_large()`` and ``too_slow()`` make the exceptions raised past either.
    """
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large()
    chunks, size = [], 0
    # Count decoded bytes, so neither a compression bomb nor a lying header gets past; httpx's
    # read timeout is per chunk, so a drip feed needs the wall clock as well.
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise too_large()
        if time.monotonic() > deadline:
            raise too_slow()
        chunks.append(chunk)
    return b"".join(chunks)


def _unavailable(
    provider: HttpProvider, code: str, what: str, err: Exception
) -> ProviderUnavailable:
    # The class name only: httpx messages can carry URLs and addresses.
    return provider.fail(ProviderUnavailable, code, f"{what} ({type(err).__name__}).")


def _with_body(response: httpx.Response, body: bytes) -> httpx.Response:
    # A plain response holding the read body; it is decoded already, so drop encoding headers.
    dropped = {"content-encoding", "content-length", "transfer-encoding"}
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in dropped]
    extensions = {k: v for k, v in response.extensions.items() if k != "network_stream"}
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions=extensions,
    )
