"""The safe downloader: the only way imagegen fetches a result URL a provider returned.

Each URL, and each redirect hop, is first checked by
:class:`~imagegen.providers.http.hosts.UrlGuard`
(``https``, on the provider's allow-list, every DNS address public). The connection then goes
to the vetted address itself, with the real ``Host`` header and TLS server name, so a second DNS
answer cannot swap in another machine (DNS rebinding). Redirects are followed by hand; bodies
are streamed under a byte cap and a wall-clock cap; no API key is sent unless the provider passes
one. Neither messages nor logs quote a query string: signed result URLs are secrets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx

from imagegen.conf import imagegen_settings
from imagegen.exceptions import InvalidResponse, ProviderError, ProviderUnavailable
from imagegen.providers.http.hosts import Fail, Resolver, UrlGuard, display_url, is_address, resolve
from imagegen.providers.http.transport import USER_AGENT, read_capped

__all__ = ["SafeDownloader"]

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_EXPIRED_STATUSES = frozenset({404, 410})
_HEADERS = {"User-Agent": USER_AGENT, "Accept": "image/*"}


class SafeDownloader(UrlGuard):
    """Fetches result URLs for one provider, refusing anything off its allow-list or private.

    ``name``, ``config_path`` and ``fail`` are as for :class:`UrlGuard`; ``timeout`` is the
    provider's ``timeout`` (no download takes longer) and ``connect_timeout`` its own.
    ``allow_private=True`` (OPTIONS ``allow_private_downloads``) also accepts plain ``http`` and
    loopback or private addresses. It exists for local test servers such as
    ``http://127.0.0.1:8000/out.png`` and must not be set in production; the host must still be on
    the allow-list, and the cloud metadata address stays refused. ``transport`` and ``resolver``
    (arguments, or attributes set before the first download) let tests replace network and DNS.
    """

    def __init__(
        self,
        *,
        name: str,
        config_path: str,
        fail: Fail,
        hosts: Iterable[str],
        timeout: float,
        connect_timeout: float,
        allow_private: bool = False,
        max_redirects: int = 3,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver = resolve,
    ) -> None:
        super().__init__(
            name=name,
            config_path=config_path,
            fail=fail,
            hosts=hosts,
            allow_private=allow_private,
            resolver=resolver,
        )
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_redirects = max_redirects
        self.transport = transport
        self._pool: httpx.HTTPTransport | None = None
        self._lock = threading.Lock()

    def pool(self) -> httpx.BaseTransport:
        """Return ``transport``, or the pooled one made on first use (no proxies, no redirects).

        A kept-alive connection may carry a later request for another allowed host that resolved
        to the same address; both were vetted, so nothing else becomes reachable that way.
        """
        if self.transport is not None:
            return self.transport
        with self._lock:
            if self._pool is None:
                self._pool = httpx.HTTPTransport()
            return self._pool

    def fetch(
        self,
        url: str,
        *,
        deadline: float | None = None,
        max_bytes: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """Download ``url`` and return its body, or raise a ``ProviderError`` coded ``download_*``.

        ``deadline`` is a ``time.monotonic()`` value and is tightened to the provider's
        ``timeout``; ``max_bytes`` defaults to ``IMAGEGEN["MAX_IMAGE_BYTES"]``. ``headers`` (an
        API key, if a provider's delivery host needs one) go only to ``url``'s own origin.
        """
        limit = int(max_bytes or imagegen_settings.MAX_IMAGE_BYTES)
        cap = time.monotonic() + self.timeout
        deadline = cap if deadline is None else min(cap, deadline)
        target = origin = self.checked_url(url)
        for _ in range(self.max_redirects + 1):
            same_origin = (target.scheme, target.netloc) == (origin.scheme, origin.netloc)
            response = self._open(target, headers if same_origin else None, deadline)
            try:
                if response.status_code in _REDIRECT_STATUSES and "location" in response.headers:
                    target = self.checked_url(response.headers["location"], hop_from=target)
                    continue
                self._check_status(target, response)
                return self._read(target, response, limit, deadline)
            finally:
                response.close()
        shown = display_url(origin)
        message = f"{self.name} redirected more than {self.max_redirects} times from {shown}."
        raise self.fail(InvalidResponse, "download_redirect_refused", message)

    def close(self) -> None:
        """Close the pooled connections; the next download opens new ones."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def _check_status(self, url: httpx.URL, response: httpx.Response) -> None:
        status = response.status_code
        if response.is_success:
            return
        said = f"{self.name}'s result at {display_url(url)} answered HTTP {status}"
        kwargs = {"status_code": status}
        if status in _EXPIRED_STATUSES:
            message = f"{said}: the link has expired or was removed; generate the image again."
            raise self.fail(ProviderError, "download_expired", message, **kwargs)
        if status >= 500 or status in (408, 429):
            message = f"{said}; try again later."
            raise self.fail(ProviderUnavailable, "download_failed", message, **kwargs)
        raise self.fail(ProviderError, "download_failed", f"{said}.", **kwargs)

    # Wire ----------------------------------------------------------------------------------

    def _open(
        self, url: httpx.URL, headers: Mapping[str, str] | None, deadline: float
    ) -> httpx.Response:
        address = self.vetted_address(url)
        # Connect to the vetted address; Host and the TLS server name still name the real host,
        # so the certificate is checked against it.
        pinned = url.copy_with(host=address)
        sent = {**_HEADERS, **(headers or {}), "Host": url.netloc.decode("ascii")}
        left = max(0.001, deadline - time.monotonic())
        timeout = httpx.Timeout(left, connect=min(self.connect_timeout, left))
        extensions: dict[str, Any] = {"timeout": timeout.as_dict()}
        if url.scheme == "https" and not is_address(url.host):
            extensions["sni_hostname"] = url.raw_host.decode("ascii")
        request = httpx.Request("GET", pinned, headers=sent, extensions=extensions)

        def send() -> httpx.Response:
            # Straight to the transport: httpx.Client would log the full URL, signature and all,
            # at INFO level.
            response = self.pool().handle_request(request)
            response.request = request
            return response

        return self._guarded(url, send)

    def _read(self, url: httpx.URL, response: httpx.Response, limit: int, deadline: float) -> bytes:
        shown = display_url(url)
        too_large = f"{self.name}'s result at {shown} is larger than the {limit:,}-byte limit."

        def read() -> bytes:
            return read_capped(
                response,
                limit,
                deadline,
                too_large=lambda: self.fail(InvalidResponse, "download_too_large", too_large),
                # Raised as a timeout, so _guarded reports it like httpx's own.
                too_slow=lambda: httpx.ReadTimeout("the download's wall-clock limit passed"),
            )

        return self._guarded(url, read)

    def _guarded(self, url: httpx.URL, step: Callable[[], Any]) -> Any:
        try:
            return step()
        except httpx.TimeoutException as err:
            message = f"Downloading {self.name}'s result from {display_url(url)} took too long."
            raise self.fail(ProviderUnavailable, "download_timeout", message) from err
        except httpx.HTTPError as err:
            # The class name only: httpx messages can quote the URL with its signature.
            message = (
                f"Downloading {self.name}'s result from {url.host} failed "
                f"({type(err).__name__}); try again later."
            )
            raise self.fail(ProviderUnavailable, "download_failed", message) from err
