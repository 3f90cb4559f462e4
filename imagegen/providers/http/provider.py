"""The one place imagegen talks HTTP: the base class of every provider reached over the network.

Everything HTTP providers share is reached through :class:`HttpProvider` once: the common
OPTIONS, one pooled ``httpx.Client`` per provider instance with a wall-clock deadline and a body
cap per call (on the pieces in :mod:`~imagegen.providers.http.transport`), the status to
exception mapping (reading bodies with :mod:`~imagegen.providers.http.errors`), strict base64
decoding and safe result downloads (:mod:`~imagegen.providers.http.download`), polling jobs
(:mod:`~imagegen.providers.http.polling`), and keeping the API key out of logs, messages and
reprs (:mod:`~imagegen.providers.http.credentials`). Whatever raises in the provider's name is a
method here; the modules it uses take plain values. A provider sends with
:meth:`HttpProvider.request` and teaches the error mapping its vendor's envelope by overriding
:meth:`HttpProvider.parse_error` and, for vendor codes, :meth:`HttpProvider.error_for_response`.
"""

from __future__ import annotations

import binascii
import datetime
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import httpx

from imagegen.conf import imagegen_settings
from imagegen.exceptions import (
    ContentRejected,
    ImagegenConfigurationError,
    ImagegenError,
    InvalidResponse,
    ModelUnavailable,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from imagegen.providers.base import BaseProvider
from imagegen.providers.http import credentials, polling
from imagegen.providers.http.credentials import Secret
from imagegen.providers.http.download import SafeDownloader
from imagegen.providers.http.errors import ApiError, parse_error_body, parse_retry_after, sentence
from imagegen.providers.http.outputs import image_output
from imagegen.providers.http.transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    NOT_SENT,
    new_client,
    read_capped,
    timeouts,
    with_body,
)
from imagegen.types import CallContext, ImageOutput

if TYPE_CHECKING:
    from django.core.checks import CheckMessage

__all__ = ["HttpProvider"]

logger = logging.getLogger("imagegen.http")

T = TypeVar("T")


class HttpProvider(BaseProvider):
    """Base class of providers reached over HTTPS with an API key.

    OPTIONS shared by every HTTP provider: ``api_key`` (else the ``api_key_env`` variable),
    ``base_url``, ``model``, ``timeout`` (seconds one HTTP call may take from start to finish,
    also the per-read timeout), ``connect_timeout``, ``max_response_bytes``, ``transport``
    (an ``httpx.BaseTransport``, such as ``httpx.MockTransport`` in tests), ``download_hosts``
    (hosts result URLs may come from, replacing :attr:`default_download_hosts`) and
    ``allow_private_downloads`` (only for local test servers: see
    :class:`~imagegen.providers.http.SafeDownloader`).
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
    #: What :meth:`poll_until` reads and sleeps on; tests assign a
    #: :class:`~imagegen.providers.http.ManualClock`.
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
        self.downloader = SafeDownloader(
            name=self.name,
            config_path=self.config_path,
            fail=self.fail,
            hosts=hosts,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            allow_private=allow_private_downloads,
        )

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
                    self._client = new_client(
                        self.base_url,
                        transport=self.transport,
                        timeout=self.timeout,
                        connect_timeout=self.connect_timeout,
                    )
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
        deadline = self.call_deadline(deadline)
        headers = dict(kwargs.pop("headers", None) or {})
        if auth if auth is not None else self._same_origin(url):
            headers.update(self.auth_headers())
        timeout = timeouts(deadline, timeout=self.timeout, connect_timeout=self.connect_timeout)
        request = self.client.build_request(method, url, headers=headers, timeout=timeout, **kwargs)
        response = self.send(request, deadline)
        self.raise_for_response(response)
        return response

    def call_deadline(self, deadline: float | None) -> float:
        """Return the call's ``time.monotonic()`` deadline, or raise ``timeout`` if it has passed.

        It is the earlier of ``deadline`` (the caller's) and ``timeout`` seconds from now.
        """
        now = time.monotonic()
        deadline = min(now + self.timeout, deadline if deadline is not None else float("inf"))
        if deadline <= now:
            message = f"The time allowed for this generation ran out before {self.name} was called."
            raise self.fail(ProviderUnavailable, "timeout", message)
        return deadline

    def send(self, request: httpx.Request, deadline: float) -> httpx.Response:
        """Send ``request`` on the pooled client and return the response with its body read.

        Raises ``ProviderUnavailable`` coded ``connection_failed`` (never sent),
        ``connection_lost`` or ``timeout`` (maybe sent), and ``InvalidResponse`` for an
        undecodable or oversized body. The status is not judged here.
        """
        name, limit = self.name, self.max_response_bytes
        too_large = (
            f"{name} sent a response larger than the {limit:,}-byte limit "
            '(OPTIONS["max_response_bytes"]).'
        )
        too_slow = f"{name} took too long to send its answer; try again later."
        started = time.monotonic()
        status: int | None = None
        try:
            response = self.client.send(request, stream=True)
            # The status goes with a refused body: a refused 2xx answer may have been billed.
            status = response.status_code
            try:
                body = read_capped(
                    response,
                    limit,
                    deadline,
                    too_large=lambda: self.fail(
                        InvalidResponse, "response_too_large", too_large, status_code=status
                    ),
                    too_slow=lambda: self.fail(ProviderUnavailable, "timeout", too_slow),
                )
            finally:
                response.close()
        except httpx.DecodingError as err:
            message = f"{name} sent a body that could not be decoded."
            raise self.fail(
                InvalidResponse, "invalid_encoding", message, status_code=status
            ) from err
        except NOT_SENT as err:
            what = f"Could not connect to {name}"
            raise self._unavailable("connection_failed", what, err) from err
        except httpx.TimeoutException as err:
            what = f"{name} did not answer in time"
            raise self._unavailable("timeout", what, err) from err
        except httpx.HTTPError as err:
            what = f"The connection to {name} broke"
            raise self._unavailable("connection_lost", what, err) from err
        # The path only: query strings may carry signed URLs (the key is never in a URL).
        elapsed = round((time.monotonic() - started) * 1000)
        logger.debug("imagegen: %s %s %s -> %s, %d bytes in %d ms", self.alias, request.method,
                     request.url.path, response.status_code, len(body), elapsed)  # fmt: skip
        return with_body(response, body)

    def _unavailable(self, code: str, what: str, err: Exception) -> ProviderUnavailable:
        # The class name only: httpx messages can carry URLs and addresses.
        return self.fail(ProviderUnavailable, code, f"{what} ({type(err).__name__}).")

    def _same_origin(self, url: str) -> bool:
        target, base = urlsplit(url), urlsplit(self.base_url)
        return not target.scheme or (target.scheme, target.netloc) == (base.scheme, base.netloc)

    # Error answers -------------------------------------------------------------------------

    def raise_for_response(self, response: httpx.Response) -> None:
        """Return for a 2xx response; raise the ``ProviderError`` any other status means.

        A 3xx is an error (``unexpected_redirect``): redirects are never followed. Otherwise
        :meth:`parse_error` reads the body, its text is quoted (redacted, truncated), and
        :meth:`error_for_response` picks the exception.
        """
        if response.is_success:
            return
        status = response.status_code
        if 300 <= status < 400:
            message = (
                f"{self.name} answered with a redirect (HTTP {status}), which imagegen does not "
                'follow; check OPTIONS["base_url"].'
            )
            raise self.fail(InvalidResponse, "unexpected_redirect", message, status_code=status)
        error = self.parse_error(response)
        error = replace(error, message=self.quote(error.message))
        exc = self.error_for_response(response, error)
        # A last scrub, whatever an override put into the message.
        exc.message = self.redact(exc.message)
        exc.args = (exc.message,)
        raise exc

    def parse_error(self, response: httpx.Response) -> ApiError:
        """Return what an error response's body says; override for the vendor's envelope."""
        return parse_error_body(response)

    def error_for_response(self, response: httpx.Response, error: ApiError) -> ProviderError:
        """Return the exception an HTTP status means; override to map vendor codes first.

        ``error.message`` is already redacted and truncated. 401 is ``authentication_failed``;
        402 ``QuotaExceeded``; 429, and 503 with a retry header, ``RateLimited``; 408, 409 and
        5xx ``ProviderUnavailable``; other 4xx a ``ProviderError``.
        """
        name, status, said = self.name, response.status_code, error.message
        if status == 401:
            return self.key_refused(response, "HTTP 401")
        retry_after = parse_retry_after(response.headers)
        if status == 429 or (status == 503 and retry_after is not None):
            return self.rate_limited(response, said, retry_after)
        if status == 402:
            what = f"{name} says the account has no credit left (HTTP 402)"
            return self.answer_error(response, QuotaExceeded, what, said)
        if status >= 500 or status in (408, 409):
            what = f"{name} had a temporary failure (HTTP {status})"
            return self.answer_error(
                response, ProviderUnavailable, what, said, advice="Try again later."
            )
        code = {403: "permission_denied", 404: "not_found", 413: "request_too_large"}
        what = f"{name} refused the request (HTTP {status})"
        return self.answer_error(
            response, ProviderError, what, said, code=code.get(status, "invalid_request")
        )

    def answer_error(
        self,
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

        The exception carries this provider's alias and the HTTP status; ``code`` defaults to the
        class's own, and ``kwargs`` (``retry_after``, ``successor``) go to the class. Overrides
        of :meth:`error_for_response` build their exceptions with it, so every message reads
        alike.
        """
        message = sentence(what, said)
        return cls(
            f"{message} {advice}" if advice else message,
            code=code,
            provider=self.alias,
            status_code=response.status_code,
            **kwargs,
        )

    def key_refused(self, response: httpx.Response, why: str, said: str = "") -> ProviderError:
        """Return ``authentication_failed`` for an answer refusing the key, saying where it is set.

        ``why`` names the refusal (a status or a vendor code); ``said`` quotes the vendor.
        """
        what = f"{self.name} did not accept the API key ({why})"
        advice = (
            f'Check OPTIONS["api_key"] in {self.config_path} or the {self.api_key_env} '
            "environment variable."
        )
        return self.answer_error(
            response, ProviderError, what, said, code="authentication_failed", advice=advice
        )

    def rate_limited(
        self, response: httpx.Response, said: str, retry_after: float | None
    ) -> RateLimited:
        """Return ``RateLimited`` for an answer asking to wait ``retry_after`` s (None: unsaid)."""
        what = f"{self.name} is limiting requests (HTTP {response.status_code})"
        wait = "later" if retry_after is None else f"in {math.ceil(retry_after)} s"
        return self.answer_error(
            response, RateLimited, what, said, advice=f"Try again {wait}.", retry_after=retry_after
        )

    def retired_model(
        self, model: str, err: ModelUnavailable, *, today: datetime.date
    ) -> ModelUnavailable:
        """Return ``err`` restated from the catalog: the shutdown date once passed, the successor.

        ``today`` comes from the caller, so a provider module's view of the date is the one used.
        """
        info = self.model_info(model)
        message = err.message
        if info.shutdown is not None and info.shutdown <= today:
            message = f"{self.name} shut down the model {model} on {info.shutdown:%Y-%m-%d}."
        if info.successor:
            message += f' Use {info.successor} instead (OPTIONS["model"]).'
        return self.fail(
            ModelUnavailable,
            "model_unavailable",
            message,
            successor=info.successor,
            status_code=err.status_code,
        )

    # Reading answers -----------------------------------------------------------------------

    def billed_call(
        self,
        send: Callable[[], httpx.Response],
        read: Callable[[httpx.Response], T],
        *,
        usage: Callable[[httpx.Response], Mapping[str, Any]] | None = None,
    ) -> T:
        """Make a call the provider bills when it answers 2xx, and read the answer.

        An answer refused after the provider billed it keeps the charge on its error
        (:meth:`~imagegen.exceptions.ImagegenError.charged`): the usage the answer reports, when
        ``usage`` can read it, so the cost is priced as for an accepted answer; otherwise none,
        and the ledger records the call's estimate as an unconfirmed charge. A safety refusal
        that reports no usage is taken as not billed.
        """
        try:
            response = send()
        except InvalidResponse as err:
            if err.status_code is not None and 200 <= err.status_code < 300:
                err.charged()  # billed; the answer was refused unread (too large, undecodable)
            raise
        try:
            return read(response)
        except ImagegenError as err:
            try:
                reported = dict(usage(response)) if usage is not None else {}
            except (ValueError, TypeError, AttributeError):
                reported = {}
            # A safety refusal is billed for what its usage reports, if anything; any other
            # answer refused after a 2xx was billed, at its reported usage or its estimate.
            if reported or not isinstance(err, ContentRejected):
                err.charged(usage=reported)
            raise

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
        name, limit = self.name, int(max_bytes or imagegen_settings.MAX_IMAGE_BYTES)
        too_large = f"{name} sent an image larger than the {limit:,}-byte limit."
        if not isinstance(data, str) or not data:
            message = f"{name} sent an image that is not base64 text."
            raise self.fail(InvalidResponse, "bad_base64", message)
        if len(data) // 4 * 3 > limit + 2:
            raise self.fail(InvalidResponse, "image_too_large", too_large)
        try:
            # pybase64: the same strict decoding as the standard library's, eight times faster
            # on a 2 MB image (benchmarks/sdk_path.py). Imported on first use, like the other
            # modules that only some calls need (benchmarks/import_cost.py).
            import pybase64

            content = pybase64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as err:
            message = f"{name} sent an image whose base64 encoding is malformed."
            raise self.fail(InvalidResponse, "bad_base64", message) from err
        if len(content) > limit:
            raise self.fail(InvalidResponse, "image_too_large", too_large)
        return content

    # Downloading results -------------------------------------------------------------------

    def download(
        self,
        url: str,
        *,
        context: CallContext | None = None,
        max_bytes: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """Return the body of a result URL this provider returned, fetched by the safe downloader.

        See :meth:`~imagegen.providers.http.SafeDownloader.fetch`; no API key is sent unless
        passed in ``headers``.
        """
        deadline = context.deadline if context is not None else None
        return self.downloader.fetch(url, deadline=deadline, max_bytes=max_bytes, headers=headers)

    def download_images(
        self,
        urls: Iterable[str],
        context: CallContext,
        *,
        fallback: str = "",
        seed: int | None = None,
    ) -> list[ImageOutput]:
        """Download each result URL in turn (see :meth:`download`) as an output.

        Each is typed by its magic bytes, else by ``fallback``, and carries ``seed``.
        """
        return [
            image_output(self.download(url, context=context), fallback, seed=seed) for url in urls
        ]

    # Asynchronous jobs ---------------------------------------------------------------------

    def submit_or_resume(self, context: CallContext, submit: Callable[[], str]) -> str:
        """Return the job to poll, submitting only without a resume id.

        See :func:`imagegen.providers.http.polling.submit_or_resume`.
        """
        return polling.submit_or_resume(context, submit)

    def poll_until(
        self,
        fetch: Callable[[], T],
        done: Callable[[T], bool],
        *,
        context: CallContext,
        job_id: str | None = None,
        timeout: float | None = None,
        interval: float = 1.0,
        max_interval: float = 10.0,
        backoff: float = 1.5,
        cancel_on_timeout: bool = False,
        clock: polling.Clock | None = None,
    ) -> T:
        """Call ``fetch`` until ``done`` accepts its answer, and return that answer.

        The first poll is immediate; the waits after it start at ``interval`` seconds and grow by
        ``backoff`` up to ``max_interval``, never past the deadline: the earlier of
        ``context.deadline`` and ``timeout`` seconds from now
        (:data:`~imagegen.providers.http.polling.DEFAULT_POLL_TIMEOUT`). A retryable error from
        ``fetch`` is waited out (honouring ``retry_after``) up to
        :data:`~imagegen.providers.http.polling.MAX_POLL_ERRORS` times in a row. At the deadline
        :meth:`cancel` is called for ``job_id`` when ``cancel_on_timeout`` is set, and
        ``ProviderUnavailable`` coded ``timeout`` is raised. ``clock`` replaces :attr:`clock`.
        """
        if interval <= 0 or backoff < 1 or max_interval < interval:
            raise ValueError(
                "poll() needs interval > 0, backoff >= 1 and max_interval >= interval."
            )
        clock = clock or self.clock
        started = clock.now()
        budget = polling.DEFAULT_POLL_TIMEOUT if timeout is None else float(timeout)
        deadline = started + budget
        if context.deadline is not None:
            deadline = min(deadline, context.deadline)
        wait, errors = interval, 0
        while True:
            try:
                answer = fetch()
            except ImagegenError as err:
                errors += 1
                if not err.retryable or errors > polling.MAX_POLL_ERRORS:
                    raise
                pause = max(wait, getattr(err, "retry_after", None) or 0.0)
                logger.debug(
                    "imagegen: %s poll of job %s failed (%s)", self.alias, job_id, err.code
                )
            else:
                if done(answer):
                    return answer
                errors, pause = 0, wait
            left = deadline - clock.now()
            if left <= 0:
                raise self._poll_timed_out(job_id, clock.now() - started, cancel_on_timeout)
            clock.sleep(min(pause, left))
            wait = min(wait * backoff, max_interval)

    def _poll_timed_out(
        self, job_id: str | None, waited: float, cancel: bool
    ) -> ProviderUnavailable:
        what = f"job {job_id}" if job_id else "its job"
        message = f"{self.name} did not finish {what} in the {waited:.0f} s allowed."
        if cancel and job_id:
            try:
                self.cancel(job_id)
            except ImagegenError as err:
                logger.warning(
                    "imagegen: %s could not cancel job %s (%s)", self.alias, job_id, err.code
                )
            else:
                message += f" imagegen asked {self.name} to cancel it."
        if job_id:
            # The job may still finish (even after a cancel, which can race with completion).
            message += (
                f" A retry resumes polling {what} instead of submitting (and paying for) a new one."
            )
        else:
            message += " Try again later."
        return self.fail(ProviderUnavailable, "timeout", message)

    # Lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pooled clients; the next call opens new ones."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
        self.downloader.close()

    def check(self) -> list[CheckMessage]:
        # Imported on first use: django.core.checks pulls in the database, cache, URL and
        # translation machinery, which importing a provider module should not load.
        from django.core import checks

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
