"""The wire under every provider call: the pooled client, the call's timeouts, the capped body.

:class:`~imagegen.providers.http.HttpProvider` builds and sends each request; the pieces it
sends with live here and know nothing of any provider. The client never follows redirects;
each call's httpx timeouts end by its wall-clock deadline; bodies are read under a byte cap
and that deadline (:func:`read_capped`, also used by the safe downloader); and
:data:`NOT_SENT` tells the failures that cannot have reached the vendor from those that may
have. Nothing is retried here: once a POST may have been sent, only the task runner may pay again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from imagegen.version import __version__

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "NOT_SENT",
    "USER_AGENT",
    "new_client",
    "read_capped",
    "timeouts",
    "with_body",
]

USER_AGENT = f"imagegen/{__version__}"
#: Default cap on a response body: base64 inflates images by a third, and n=10 large images add up.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Errors raised before the request left this machine: re-sending cannot double-bill.
NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)


def new_client(
    base_url: str,
    *,
    transport: httpx.BaseTransport | None,
    timeout: float,
    connect_timeout: float,
) -> httpx.Client:
    """Return a pooled client for ``base_url`` that never follows redirects."""
    return httpx.Client(
        base_url=base_url,
        transport=transport,
        follow_redirects=False,
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
    )


def timeouts(deadline: float, *, timeout: float, connect_timeout: float) -> httpx.Timeout:
    """Return httpx timeouts that end no later than ``deadline`` (a ``time.monotonic()`` value).

    ``timeout`` and ``connect_timeout`` are the provider's own limits for one step.
    """
    # httpx's read timeout is per chunk: these bound each step, read_capped bounds the whole.
    left = max(0.001, deadline - time.monotonic())
    connect = min(connect_timeout, left)
    return httpx.Timeout(min(timeout, left), connect=connect, pool=connect)


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


def with_body(response: httpx.Response, body: bytes) -> httpx.Response:
    """Return a plain response holding ``body``, read from the streamed ``response``.

    The body is decoded already, so the encoding and length headers are dropped, and so is the
    network stream, which is closed.
    """
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
