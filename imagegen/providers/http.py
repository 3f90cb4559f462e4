"""The one place imagegen talks HTTP: the base class of every provider reached over the network.

Everything HTTP providers share is reached through :class:`HttpProvider` once: the common
OPTIONS, one pooled ``httpx.Client`` per provider instance with a wall-clock deadline and a body
cap per call (:mod:`~imagegen.providers.transport`), the status to exception mapping
(:mod:`~imagegen.providers.errors`), strict base64 decoding and safe result downloads
(:mod:`~imagegen.providers.outputs`, :mod:`~imagegen.providers.download`), and keeping the API
key out of logs, messages and reprs (:mod:`~imagegen.providers.credentials`). A provider sends
with :meth:`HttpProvider.request` and teaches the error mapping its vendor's envelope by
overriding :meth:`HttpProvider.parse_error` and, for vendor codes,
:meth:`HttpProvider.error_for_response`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx
from django.core import checks

from imagegen.exceptions import ImagegenConfigurationError, InvalidResponse, ProviderError
from imagegen.providers import credentials, errors, outputs, polling, transport
from imagegen.providers.base import BaseProvider
from imagegen.providers.credentials import MAX_QUOTED_CHARS, Secret
from imagegen.providers.download import SafeDownloader
from imagegen.providers.errors import ApiError
from imagegen.providers.outputs import image_mime
from imagegen.providers.transport import DEFAULT_MAX_RESPONSE_BYTES
from imagegen.types import CallContext

__all__ = ["MAX_QUOTED_CHARS", "ApiError", "HttpProvider", "Secret", "image_mime"]

T = TypeVar("T")


class HttpProvider(BaseProvider):
    """Base class of providers reached over HTTPS with an API key.

    OPTIONS shared by every HTTP provider: ``api_key`` (else the ``api_key_env`` variable),
    ``base_url``, ``model``, ``timeout`` (seconds one HTTP call may take from start to finish,
    also the per-read timeout), ``connect_timeout``, ``max_response_bytes``, ``transport``
    (an ``httpx.BaseTransport``, such as ``httpx.MockTransport`` in tests), ``download_hosts``
    (hosts result URLs may come from, replacing :attr:`default_download_hosts`) and
    ``allow_private_downloads`` (only for local test servers: see
    :class:`~imagegen.providers.download.SafeDownloader`).
    """

    is_remote = True
    #: Environment variable read when OPTIONS give no ``api_key``.
    api_key_env: ClassVar[str] = ""
    #: The provider's API root; OPTIONS ``base_url`` overrides it (gateways, test servers).
    default_base_url: ClassVar[str] = ""
    #: Seconds one call may take when OPTIONS give no ``timeout``.
    default_timeout: ClassVar[float] = 120.0
    #: Regular expressions for key-like text scrubbed from provider text besides the key itself.
    secret_patterns: ClassVar[tuple[str, ...]] = ()
    #: Hosts result URLs may be downloaded from: exact names and ``*.suffix`` wildcards.
    default_download_hosts: ClassVar[tuple[str, ...]] = ()
    #: What :meth:`poll_until` reads and sleeps on; tests assign a ``polling.ManualClock``.
    clock: polling.Clock = polling.Clock()

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        connect_timeout: float = 10.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        transport: httpx.BaseTransport | None = None,
        download_hosts: Sequence[str] | None = None,
        allow_private_downloads: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        key = api_key if api_key is not None else os.environ.get(self.api_key_env, "")
        self._api_key = Secret(key or "")
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.timeout = float(timeout if timeout is not None else self.default_timeout)
        self.connect_timeout = float(connect_timeout)
        self.max_response_bytes = int(max_response_bytes)
        self.transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        hosts = self.default_download_hosts if download_hosts is None else download_hosts
        #: Fetches result URLs; tests may replace it with one on a mock transport and resolver.
        self.downloader = SafeDownloader(self, hosts=hosts, allow_private=allow_private_downloads)

    @property
    def name(self) -> str:
        """Return the provider's name as editors see it in messages."""
        return self.display_name or type(self).__name__

    # Credentials ---------------------------------------------------------------------------

    @property
    def has_api_key(self) -> bool:
        """Return whether a key is configured (in OPTIONS or the environment)."""
        return bool(self._api_key)

    def api_key(self) -> str:
        """Return the key for a request header; raise a configuration error if there is none."""
        if not self._api_key:
            raise ImagegenConfigurationError(
                f'Provider {self.alias!r} has no API key: set OPTIONS["api_key"] in '
                f"{self.config_path} or the {self.api_key_env} "
                "environment variable."
            )
        return self._api_key.reveal()

    def auth_headers(self) -> dict[str, str]:
        """Return the headers that authenticate a call; override for other schemes."""
        return {"Authorization": f"Bearer {self.api_key()}"}

    def redact(self, text: str) -> str:
        """Return ``text`` with the API key and key-like strings replaced by a marker."""
        return credentials.redact(text, self._api_key, self.secret_patterns)

    def quote(self, text: str) -> str:
        """Return provider text fit for an exception message: redacted, one line, truncated."""
        return credentials.quote(self.redact(text))

    def fail(self, cls: type[ProviderError], code: str, message: str, **kwargs: Any) -> Any:
        """Return ``cls(message)`` for this provider with ``code``, the message redacted."""
        return cls(self.redact(message), code=code, provider=self.alias, **kwargs)

    # Sending -------------------------------------------------------------------------------

    @property
    def client(self) -> httpx.Client:
        """Return this provider's pooled client, created on first use; it never redirects."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = transport.new_client(self)
        return self._client

    def request(
        self,
        method: str,
        url: str,
        *,
        deadline: float | None = None,
        auth: bool | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request and return the successful response, its body read, or raise.

        ``url`` is a path under ``base_url`` or an absolute URL the provider returned; the key
        goes only to ``base_url``'s origin unless ``auth`` says otherwise. ``deadline`` is a
        ``time.monotonic()`` value (``CallContext.deadline``). ``kwargs`` are httpx's
        ``json``, ``data``, ``files``, ``params`` and ``headers``. Nothing is retried here:
        once a POST may have reached the provider, only the task runner may decide to pay again.
        Raises ``ProviderUnavailable`` coded ``connection_failed`` (never sent),
        ``connection_lost`` or ``timeout`` (maybe sent), or what :meth:`raise_for_response` does.
        """
        deadline = transport.call_deadline(self, deadline)
        headers = dict(kwargs.pop("headers", None) or {})
        if auth if auth is not None else self._same_origin(url):
            headers.update(self.auth_headers())
        timeout = transport.timeouts(self, deadline)
        request = self.client.build_request(method, url, headers=headers, timeout=timeout, **kwargs)
        response = transport.send(self, request, deadline)
        self.raise_for_response(response)
        return response

    def _same_origin(self, url: str) -> bool:
        target, base = urlsplit(url), urlsplit(self.base_url)
        return not target.scheme or (target.scheme, target.netloc) == (base.scheme, base.netloc)

    # Reading answers -----------------------------------------------------------------------

    def raise_for_response(self, response: httpx.Response) -> None:
        """Return for a 2xx response; raise the ``ProviderError`` any other status means.

        A 3xx is an error (``unexpected_redirect``): redirects are never followed.
        """
        errors.check_response(self, response)

    def parse_error(self, response: httpx.Response) -> ApiError:
        """Return what an error response's body says; override for the vendor's envelope."""
        return errors.parse_error_body(response)

    def error_for_response(self, response: httpx.Response, error: ApiError) -> ProviderError:
        """Return the exception for an error response; override to map vendor codes first.

        ``error.message`` is already redacted and truncated. The default maps the status
        (:func:`imagegen.providers.errors.status_error`).
        """
        return errors.status_error(self, response, error)

    def json_object(self, response: httpx.Response) -> dict[str, Any]:
        """Return the JSON object in ``response``'s body, or raise ``InvalidResponse``."""
        try:
            data = response.json()
        except ValueError as err:
            message = f"{self.name} answered with something that is not JSON."
            raise self.fail(InvalidResponse, "invalid_json", message) from err
        if not isinstance(data, dict):
            message = f"{self.name} answered with JSON that is not an object."
            raise self.fail(InvalidResponse, "invalid_json", message)
        return data

    def decode_base64(self, data: Any, *, max_bytes: int | None = None) -> bytes:
        """Decode one base64 image strictly; raise ``InvalidResponse`` if bad or too large.

        ``max_bytes`` defaults to ``IMAGEGEN["MAX_IMAGE_BYTES"]``; the encoded length is checked
        first, so an oversized payload is never decoded.
        """
        return outputs.decode_base64(self, data, max_bytes=max_bytes)

    # Asynchronous jobs ---------------------------------------------------------------------

    def download(
        self,
        url: str,
        *,
        context: CallContext | None = None,
        max_bytes: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """Return the body of a result URL this provider returned, fetched by the safe downloader.

        See :meth:`~imagegen.providers.download.SafeDownloader.fetch`; no API key is sent unless
        passed in ``headers``.
        """
        deadline = context.deadline if context is not None else None
        return self.downloader.fetch(url, deadline=deadline, max_bytes=max_bytes, headers=headers)

    def submit_or_resume(self, context: CallContext, submit: Callable[[], str]) -> str:
        """Return the job to poll, submitting only without a resume id (:mod:`.polling`)."""
        return polling.submit_or_resume(context, submit)

    def poll_until(
        self, fetch: Callable[[], T], done: Callable[[T], bool], *, context: CallContext, **kw: Any
    ) -> T:
        """Poll until ``done(fetch())`` with backoff and a deadline; see :func:`.polling.poll`.

        ``kw``: ``job_id``, ``timeout``, ``interval``, ``max_interval``, ``backoff``,
        ``cancel_on_timeout`` and ``clock``.
        """
        return polling.poll(self, fetch, done, context=context, **kw)

    # Lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pooled clients; the next call opens new ones."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
        self.downloader.close()

    def check(self) -> list[checks.CheckMessage]:
        messages = super().check()
        if not self.has_api_key:
            messages.append(
                checks.Warning(
                    f"Provider {self.alias!r} ({type(self).__name__}) has no API key.",
                    hint=(
                        f'Set OPTIONS["api_key"] in {self.config_path} or '
                        f"the {self.api_key_env} environment variable."
                    ),
                    id="imagegen.W003",
                )
            )
        return messages
