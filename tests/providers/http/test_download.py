"""Tests for the safe downloader: allow-list, DNS vetting, pinning, redirects, caps and messages.

Nothing reaches the network: https cases run on ``httpx.MockTransport`` with DNS answered by a
fake resolver, and the rest on servers this module starts on 127.0.0.1 (with
``allow_private_downloads=True``, which is how provider tests serve result files).
"""

from __future__ import annotations

import http.server
import ipaddress
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagegen.exceptions import InvalidProviderError, ProviderError
from imagegen.providers.http import HttpProvider
from imagegen.providers.http.hosts import HostPatterns, address_refusal, resolve
from imagegen.types import CallContext
from tests.conftest import png_bytes
from tests.providers.conftest import MockAPI

KEY = "xk-live-0123456789abcdefSECRET"
PUBLIC = "93.184.215.14"
SIGNED = "?X-Amz-Signature=SIGNATURE-SECRET&X-Amz-Expires=600"
PNG = png_bytes()


class ExampleProvider(HttpProvider):
    """A provider whose results live on its own delivery hosts."""

    catalog_key = "example"
    display_name = "Example"
    api_key_env = "EXAMPLE_API_KEY"
    default_base_url = "https://api.example.com/v1"
    default_download_hosts = ("cdn.example.com", "*.delivery.example.com")


class FakeDNS:
    """A resolver answering from a table and recording every query."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers, self.queries = answers, []

    def __call__(self, host: str, port: int) -> list[str]:
        self.queries.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


def make(
    api: MockAPI | None = None, dns: dict[str, list[str]] | None = None, **options: Any
) -> ExampleProvider:
    """Return a provider whose downloads go to ``api`` with DNS answered from ``dns``."""
    provider = ExampleProvider(alias="example", api_key=KEY, **options)
    if api is not None:
        provider.downloader.transport = api.transport
    table = {"cdn.example.com": [PUBLIC], "a.delivery.example.com": [PUBLIC], **(dns or {})}
    provider.downloader.resolver = FakeDNS(table)
    return provider


def refused(provider: HttpProvider, url: str, **kwargs: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        provider.download(url, **kwargs)
    assert "SIGNATURE-SECRET" not in str(caught.value)
    assert caught.value.provider == "example"
    return caught.value


class NeverRead(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        raise AssertionError("the body was read although Content-Length was over the cap")


# The happy path and pinning ----------------------------------------------------------------


def test_https_url_on_allowed_host_is_fetched_from_the_vetted_address() -> None:
    api = MockAPI().reply(content=PNG, headers={"content-type": "image/png"})
    provider = make(api)
    assert provider.download(f"https://cdn.example.com/out/0.png{SIGNED}") == PNG
    sent = api.last
    # Pinned: the connection targets the vetted IP, the host name rides in Host and SNI.
    assert sent.url.host == PUBLIC
    assert sent.url.path == "/out/0.png"
    assert "X-Amz-Signature=SIGNATURE-SECRET" in str(sent.url.query, "ascii")
    assert sent.headers["host"] == "cdn.example.com"
    assert sent.extensions["sni_hostname"] == "cdn.example.com"
    assert provider.downloader.resolver.queries == ["cdn.example.com"]


def test_no_api_key_goes_to_download_hosts_unless_passed_explicitly() -> None:
    api = MockAPI().reply(content=PNG).reply(content=PNG)
    provider = make(api)
    provider.download("https://cdn.example.com/a.png")
    assert "authorization" not in api.last.headers
    assert KEY not in str(api.last.headers)
    provider.download("https://cdn.example.com/a.png", headers={"x-key": KEY})
    assert api.last.headers["x-key"] == KEY


def test_wildcard_matches_subdomains_but_not_the_apex_or_lookalikes() -> None:
    patterns = HostPatterns.parse(["cdn.example.com", "*.delivery.example.com"])
    assert patterns.allows("a.delivery.example.com")
    assert patterns.allows("x.y.delivery.example.com")
    assert patterns.allows("CDN.Example.com.")
    assert not patterns.allows("delivery.example.com")
    assert not patterns.allows("evildelivery.example.com")
    assert not patterns.allows("cdn.example.com.evil.net")


@pytest.mark.parametrize("hosts", ["cdn.example.com", ["cdn.*.com"], ["https://cdn.example.com"]])
def test_malformed_download_hosts_are_a_configuration_error(hosts: Any) -> None:
    with pytest.raises(InvalidProviderError, match=r"download_hosts.*'example'"):
        ExampleProvider(alias="example", download_hosts=hosts)


def test_download_hosts_option_replaces_the_default_list() -> None:
    api = MockAPI().reply(content=PNG)
    provider = make(api, dns={"files.other.net": [PUBLIC]}, download_hosts=["files.other.net"])
    assert provider.download("https://files.other.net/a.png") == PNG
    assert refused(provider, "https://cdn.example.com/a.png").code == "download_host_not_allowed"


# Refusals before any request ---------------------------------------------------------------


def test_url_on_another_host_is_refused_without_dns_or_request() -> None:
    api = MockAPI()
    provider = make(api)
    error = refused(provider, f"https://evil.example.net/steal.png{SIGNED}")
    assert error.code == "download_host_not_allowed"
    assert not error.retryable
    assert 'OPTIONS["download_hosts"]' in error.message
    assert "https://evil.example.net/steal.png" in error.message
    assert api.requests == [] and provider.downloader.resolver.queries == []


@pytest.mark.parametrize(
    "url", ["http://cdn.example.com/a.png", "ftp://cdn.example.com/a.png", "file:///etc/passwd"]
)
def test_anything_but_https_is_refused(url: str) -> None:
    api = MockAPI()
    assert refused(make(api), url + SIGNED).code == "download_not_https"
    assert api.requests == []


def test_user_info_in_a_url_is_refused() -> None:
    error = refused(make(MockAPI()), "https://user:pw@cdn.example.com/a.png")
    assert error.code == "download_invalid_url"
    assert "pw" not in error.message


def test_unparsable_url_and_redirect_are_refused() -> None:
    assert refused(make(MockAPI()), "https://[::1" + SIGNED).code == "download_invalid_url"
    api = MockAPI().reply(302, headers={"location": "https://[::1" + SIGNED})
    error = refused(make(api), "https://cdn.example.com/a.png")
    assert error.code == "download_redirect_refused"


@pytest.mark.parametrize(
    ("answers", "kind"),
    [
        (["10.0.0.7"], "private"),
        (["127.0.0.1"], "loopback"),
        ([PUBLIC, "192.168.1.20"], "private"),  # any bad answer refuses the host
        (["169.254.169.254"], "metadata"),
        (["fd00:ec2::254"], "metadata"),
        (["::1"], "loopback"),
        (["::ffff:127.0.0.1"], "loopback"),
        (["fe80::1%eth0"], "link-local"),
        (["0.0.0.0"], "unspecified"),  # noqa: S104 - an answer under test, not a bind address
        (["224.0.0.1"], "multicast"),
        (["100.64.0.1"], "non-public"),
    ],
)
def test_dns_answers_that_are_not_public_are_refused(answers: list[str], kind: str) -> None:
    api = MockAPI()
    error = refused(make(api, dns={"cdn.example.com": answers}), "https://cdn.example.com/a.png")
    assert error.code == "download_private_address"
    assert f"{kind} address" in error.message
    assert api.requests == []


def test_metadata_address_is_refused_even_when_private_downloads_are_allowed() -> None:
    provider = make(MockAPI(), allow_private_downloads=True, download_hosts=["169.254.169.254"])
    error = refused(provider, "http://169.254.169.254/latest/meta-data/")
    assert error.code == "download_private_address"


def test_address_refusal_judges_embedded_ipv4_and_passes_public_addresses() -> None:
    assert address_refusal(ipaddress.ip_address(PUBLIC)) is None
    assert address_refusal(ipaddress.ip_address("2606:4700::6810:84e5")) is None
    assert address_refusal(ipaddress.ip_address("2002:a00:1::")) == "private"  # 6to4 of 10.0.0.1
    assert address_refusal(ipaddress.ip_address("64:ff9b::7f00:1")) == "loopback"  # NAT64


def test_dns_failure_is_a_retryable_download_failure() -> None:
    provider = make(MockAPI(), download_hosts=["gone.example.com"])
    error = refused(provider, "https://gone.example.com/a.png")
    assert (error.code, error.retryable) == ("download_failed", True)


def test_default_resolver_returns_every_getaddrinfo_answer_once(monkeypatch) -> None:
    def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[tuple[Any, ...]]:
        assert (host, port) == ("cdn.example.com", 443)
        return [
            (2, 1, 6, "", (PUBLIC, 443)),
            (2, 1, 6, "", (PUBLIC, 443)),
            (10, 1, 6, "", ("::1", 443, 0, 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    assert resolve("cdn.example.com", 443) == [PUBLIC, "::1"]


# Redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1/latest", "https://127.0.0.1/x.png", "https://evil.example.net/x.png"],
)
def test_redirect_off_the_allow_list_is_refused(location: str) -> None:
    api = MockAPI().reply(302, headers={"location": location + SIGNED}).reply(content=PNG)
    error = refused(make(api), f"https://cdn.example.com/a.png{SIGNED}")
    assert error.code == "download_redirect_refused"
    assert len(api.requests) == 1


def test_redirect_to_an_allowed_host_with_a_private_address_is_refused() -> None:
    api = MockAPI().reply(302, headers={"location": "https://a.delivery.example.com/x.png"})
    provider = make(api, dns={"a.delivery.example.com": ["10.1.2.3"]})
    assert refused(provider, "https://cdn.example.com/a.png").code == "download_private_address"
    assert len(api.requests) == 1


def test_redirect_within_the_allow_list_is_followed_revetted_and_drops_headers() -> None:
    api = MockAPI()
    api.reply(301, headers={"location": "/moved.png"})
    api.reply(307, headers={"location": "https://a.delivery.example.com/x.png"})
    api.reply(content=PNG)
    provider = make(api, dns={"a.delivery.example.com": ["151.101.1.69"]})
    assert provider.download("https://cdn.example.com/a.png", headers={"x-key": KEY}) == PNG
    _, second, third = api.requests
    assert second.url.path == "/moved.png" and second.headers["x-key"] == KEY
    assert third.url.host == "151.101.1.69"
    assert third.headers["host"] == "a.delivery.example.com"
    assert "x-key" not in third.headers  # a key never follows a redirect to another host
    assert provider.downloader.resolver.queries[-1] == "a.delivery.example.com"


def test_endless_redirects_are_refused() -> None:
    api = MockAPI().reply(302, headers={"location": "/again"}, times=10)
    assert refused(make(api), "https://cdn.example.com/a.png").code == "download_redirect_refused"
    assert len(api.requests) == 4  # the first request and three redirects


# Status, size and time ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410])
def test_missing_result_is_download_expired(status: int) -> None:
    api = MockAPI().reply(status, content=b"<Error>expired</Error>")
    error = refused(make(api), f"https://cdn.example.com/a.png{SIGNED}")
    assert (error.code, error.retryable, error.status_code) == ("download_expired", False, status)
    assert "expired" in error.message


@pytest.mark.parametrize(("status", "retryable"), [(503, True), (403, False)])
def test_other_error_statuses_are_download_failed(status: int, retryable: bool) -> None:
    error = refused(make(MockAPI().reply(status)), "https://cdn.example.com/a.png")
    assert (error.code, error.retryable) == ("download_failed", retryable)


def test_declared_length_over_the_cap_is_refused_before_reading() -> None:
    api = MockAPI().reply(headers={"content-length": str(10**9)}, stream=NeverRead())
    error = refused(make(api), "https://cdn.example.com/a.png", max_bytes=1000)
    assert error.code == "download_too_large"


def test_chunked_body_over_the_cap_is_refused_while_counting() -> None:
    api = MockAPI().then(lambda request: httpx.Response(200, content=iter([b"x" * 400] * 10)))
    error = refused(make(api), "https://cdn.example.com/a.png", max_bytes=1000)
    assert error.code == "download_too_large"
    assert "1,000-byte limit" in error.message


def test_byte_cap_defaults_to_max_image_bytes(settings) -> None:
    settings.IMAGEGEN = {"MAX_IMAGE_BYTES": 100}
    api = MockAPI().reply(content=PNG)
    assert refused(make(api), "https://cdn.example.com/a.png").code == "download_too_large"


def test_transport_failure_is_retryable_and_quotes_no_url() -> None:
    api = MockAPI().raise_error(httpx.ConnectError)
    error = refused(make(api), f"https://cdn.example.com/a.png{SIGNED}")
    assert (error.code, error.retryable) == ("download_failed", True)
    assert "ConnectError" in error.message


# Local servers -----------------------------------------------------------------------------

Route = Callable[[http.server.BaseHTTPRequestHandler], None]


class LocalServer:
    """A threaded HTTP(S) server on 127.0.0.1 answering from ``routes`` and recording requests."""

    def __init__(self, routes: dict[str, Route], context: ssl.SSLContext | None = None) -> None:
        self.routes, self.requests = routes, []
        self.stopped = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5  # a stuck client cannot hold a handler thread past teardown

            def do_GET(self) -> None:
                outer.requests.append((self.path, dict(self.headers)))
                outer.routes.get(self.path.split("?")[0], _not_found)(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _not_found(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.send_error(404)


def _send(body: bytes, status: int = 200) -> Route:
    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return route


@pytest.fixture
def local_server() -> Iterator[Callable[..., LocalServer]]:
    servers: list[LocalServer] = []

    def start(routes: dict[str, Route], context: ssl.SSLContext | None = None) -> LocalServer:
        servers.append(LocalServer(routes, context))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_private_downloads_allowed_fetch_from_a_local_http_server(local_server) -> None:
    server = local_server({"/out.png": _send(PNG)})
    provider = ExampleProvider(
        alias="example", download_hosts=["127.0.0.1"], allow_private_downloads=True
    )
    url = f"http://127.0.0.1:{server.port}/out.png?token=abc"
    assert provider.download(url) == PNG
    path, headers = server.requests[0]
    assert path == "/out.png?token=abc"
    assert headers["Host"] == f"127.0.0.1:{server.port}"
    assert "Authorization" not in headers


def test_local_server_is_refused_without_allow_private_downloads(local_server) -> None:
    server = local_server({"/out.png": _send(PNG)})
    provider = ExampleProvider(alias="example", download_hosts=["127.0.0.1"])
    url = f"http://127.0.0.1:{server.port}/out.png"
    assert refused(provider, url).code == "download_not_https"
    assert refused(provider, url.replace("http:", "https:")).code == "download_private_address"
    assert server.requests == []


def test_slow_drip_body_is_cut_off_by_the_wall_clock_cap(local_server, caplog) -> None:
    def drip(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        # One byte every 50 ms: each read is quick, the whole would take 50 s.
        for _ in range(1000):
            if server.stopped.wait(0.05):
                return
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return

    server = local_server({"/slow.png": drip})
    provider = ExampleProvider(
        alias="example", download_hosts=["127.0.0.1"], allow_private_downloads=True, timeout=5
    )
    started = time.monotonic()
    context = CallContext(deadline=time.monotonic() + 0.4)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ProviderError) as caught:
        provider.download(f"http://127.0.0.1:{server.port}/slow.png{SIGNED}", context=context)
    assert time.monotonic() - started < 3
    assert (caught.value.code, caught.value.retryable) == ("download_timeout", True)
    assert "SIGNATURE-SECRET" not in str(caught.value)
    assert "SIGNATURE-SECRET" not in caplog.text


def test_expired_result_on_a_local_server_is_download_expired(local_server) -> None:
    server = local_server({})
    provider = ExampleProvider(
        alias="example", download_hosts=["127.0.0.1"], allow_private_downloads=True
    )
    error = refused(provider, f"http://127.0.0.1:{server.port}/gone.png{SIGNED}")
    assert error.code == "download_expired"


# Real TLS: pinning to the address still verifies the certificate for the host name ---------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=cdn.example.test", "-keyout", str(key),
         "-out", str(cert), "-addext", "subjectAltName=DNS:cdn.example.test"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


def _tls_server(local_server, certificate: tuple[Path, Path], seen: list[str]) -> LocalServer:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    context.sni_callback = lambda sock, name, ctx: seen.append(name)
    return local_server({"/out.png": _send(PNG)}, context)


def _tls_provider(certificate: tuple[Path, Path], host: str) -> ExampleProvider:
    provider = ExampleProvider(alias="example", download_hosts=[host], allow_private_downloads=True)
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    provider.downloader.transport = httpx.HTTPTransport(verify=trust)
    provider.downloader.resolver = FakeDNS({host: ["127.0.0.1"]})
    return provider


def test_pinned_https_connection_sends_sni_and_verifies_the_host_name(
    local_server, certificate
) -> None:
    seen: list[str] = []
    server = _tls_server(local_server, certificate, seen)
    provider = _tls_provider(certificate, "cdn.example.test")
    url = f"https://cdn.example.test:{server.port}/out.png"
    assert provider.download(url) == PNG
    assert seen == ["cdn.example.test"]
    assert server.requests[0][1]["Host"] == f"cdn.example.test:{server.port}"
    provider.close()


def test_pinned_https_connection_refuses_a_certificate_for_another_name(
    local_server, certificate
) -> None:
    server = _tls_server(local_server, certificate, [])
    provider = _tls_provider(certificate, "other.example.test")
    error = refused(provider, f"https://other.example.test:{server.port}/out.png")
    assert error.code == "download_failed"
    assert "ConnectError" in error.message
    provider.close()
