"""Tests for the shared HTTP layer: client, deadlines, caps, status mapping and key redaction."""

from __future__ import annotations

import base64
import email.utils
import gzip
import logging
import time
from typing import Any

import httpx
import pytest

import imagegen
from imagegen.exceptions import (
    ImagegenConfigurationError,
    InvalidProviderError,
    InvalidResponse,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
)
from imagegen.providers.http import MAX_QUOTED_CHARS, HttpProvider, image_mime
from imagegen.providers.http.errors import ApiError, parse_error_body, parse_retry_after
from tests.conftest import png_bytes
from tests.providers.conftest import MockAPI

KEY = "xk-live-0123456789abcdefSECRET"


class ExampleProvider(HttpProvider):
    """A minimal HTTP provider, as a vendor adapter would start."""

    catalog_key = "example"
    display_name = "Example"
    default_model = "example-1"
    api_key_env = "EXAMPLE_API_KEY"
    default_base_url = "https://api.example.com/v2"


class SlowStream(httpx.SyncByteStream):
    """A body that drips one chunk every ``delay`` seconds, each well within a read timeout."""

    def __init__(self, chunks: int, delay: float) -> None:
        self.chunks, self.delay = chunks, delay

    def __iter__(self):
        for _ in range(self.chunks):
            time.sleep(self.delay)
            yield b"x" * 10


def make(mock_api: MockAPI, **options: Any) -> ExampleProvider:
    options.setdefault("api_key", KEY)
    return ExampleProvider(alias="example", transport=mock_api.transport, **options)


def call(provider: ExampleProvider, **kwargs: Any) -> httpx.Response:
    return provider.request("POST", "/things", json={"a": 1}, **kwargs)


# Sending -----------------------------------------------------------------------------------


def test_request_sends_to_base_url_with_user_agent_and_bearer_key(mock_api) -> None:
    mock_api.reply(json={"ok": True})
    response = call(make(mock_api))
    sent = mock_api.last
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.example.com/v2/things"
    assert sent.headers["user-agent"] == f"imagegen/{imagegen.__version__}"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert mock_api.last_json() == {"a": 1}
    assert response.json() == {"ok": True}


def test_base_url_option_overrides_the_default(mock_api) -> None:
    mock_api.reply(json={})
    call(make(mock_api, base_url="http://gateway.test/proxy/"))
    assert str(mock_api.last.url) == "http://gateway.test/proxy/things"


def test_one_pooled_client_per_instance_created_lazily_and_closed(mock_api) -> None:
    provider = make(mock_api)
    assert provider._client is None
    mock_api.reply(json={}).reply(json={})
    call(provider)
    first = provider.client
    call(provider)
    assert provider.client is first
    assert first.follow_redirects is False
    provider.close()
    assert first.is_closed
    assert provider.client is not first


def test_timeouts_come_from_options(mock_api) -> None:
    provider = make(mock_api, timeout=42, connect_timeout=3)
    assert provider.client.timeout.read == 42
    assert provider.client.timeout.connect == 3
    assert ExampleProvider(alias="x").timeout == ExampleProvider.default_timeout


def test_each_call_gets_timeouts_bounded_by_its_deadline(mock_api) -> None:
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.update(request.extensions["timeout"])
        return httpx.Response(200, json={})

    mock_api.then(handler)
    call(make(mock_api, timeout=600), deadline=time.monotonic() + 5)
    assert 0 < seen["read"] <= 5
    assert 0 < seen["connect"] <= 5


def test_key_goes_only_to_the_base_url_origin(mock_api) -> None:
    provider = make(mock_api)
    mock_api.reply(json={}).reply(json={}).reply(json={})
    provider.request("GET", "https://api.example.com/v2/jobs/1")
    assert mock_api.last.headers["authorization"] == f"Bearer {KEY}"
    provider.request("GET", "https://elsewhere.example.net/jobs/1")
    assert "authorization" not in mock_api.last.headers
    provider.request("GET", "https://poll.example.net/jobs/1", auth=True)
    assert mock_api.last.headers["authorization"] == f"Bearer {KEY}"


def test_missing_key_is_a_configuration_error_naming_the_variable(mock_api, monkeypatch) -> None:
    monkeypatch.delenv("EXAMPLE_API_KEY", raising=False)
    provider = ExampleProvider(alias="example", transport=mock_api.transport)
    with pytest.raises(ImagegenConfigurationError, match="EXAMPLE_API_KEY"):
        call(provider)
    assert mock_api.requests == []
    assert [m.id for m in provider.check()] == ["imagegen.W003"]


def test_key_is_read_from_the_environment(mock_api, monkeypatch) -> None:
    monkeypatch.setenv("EXAMPLE_API_KEY", "env-key")
    mock_api.reply(json={})
    call(ExampleProvider(alias="example", transport=mock_api.transport))
    assert mock_api.last.headers["authorization"] == "Bearer env-key"


def test_unknown_options_name_the_alias() -> None:
    with pytest.raises(InvalidProviderError, match=r"'example'.*retries"):
        ExampleProvider(alias="example", retries=3)


def test_gzip_bodies_are_decoded(mock_api) -> None:
    body = gzip.compress(b'{"ok": true}')
    mock_api.reply(content=body, headers={"content-encoding": "gzip"})
    assert call(make(mock_api)).json() == {"ok": True}


# Redirects, caps, JSON ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_refused_not_followed(mock_api, status: int) -> None:
    mock_api.reply(status, headers={"location": "https://evil.example/steal"})
    with pytest.raises(InvalidResponse) as caught:
        call(make(mock_api))
    assert caught.value.code == "unexpected_redirect"
    assert not caught.value.retryable
    assert len(mock_api.requests) == 1


def test_body_over_the_declared_cap_is_refused(mock_api) -> None:
    mock_api.reply(content=b"x" * 2048)
    with pytest.raises(InvalidResponse) as caught:
        call(make(mock_api, max_response_bytes=1024))
    assert caught.value.code == "response_too_large"
    assert "1,024-byte" in str(caught.value)


def test_body_over_the_cap_is_refused_while_streaming(mock_api) -> None:
    # No Content-Length: the cap must be enforced while counting the bytes.
    mock_api.reply(stream=SlowStream(chunks=20, delay=0))
    with pytest.raises(InvalidResponse) as caught:
        call(make(mock_api, max_response_bytes=100))
    assert caught.value.code == "response_too_large"


def test_body_at_the_cap_is_accepted(mock_api) -> None:
    mock_api.reply(content=b"x" * 100)
    assert call(make(mock_api, max_response_bytes=100)).content == b"x" * 100


@pytest.mark.parametrize("body", [b"<html>oops</html>", b"[1, 2]", b""])
def test_json_object_refuses_anything_but_an_object(mock_api, body: bytes) -> None:
    mock_api.reply(content=body)
    provider = make(mock_api)
    with pytest.raises(InvalidResponse) as caught:
        provider.json_object(call(provider))
    assert caught.value.code == "invalid_json"


# Transport failures and deadlines ----------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (httpx.ConnectError, "connection_failed"),
        (httpx.ConnectTimeout, "connection_failed"),
        (httpx.ReadTimeout, "timeout"),
        (httpx.WriteTimeout, "timeout"),
        (httpx.RemoteProtocolError, "connection_lost"),
        (httpx.ReadError, "connection_lost"),
    ],
)
def test_transport_errors_are_retryable_unavailability_and_never_resent(
    mock_api, error: type[httpx.TransportError], code: str
) -> None:
    mock_api.raise_error(error)
    with pytest.raises(ProviderUnavailable) as caught:
        call(make(mock_api))
    assert caught.value.code == code
    assert caught.value.retryable
    assert isinstance(caught.value.__cause__, error)
    assert str(caught.value).startswith(("Could not connect to Example", "Example", "The conn"))
    # The billable POST went out once; retrying is the task runner's decision.
    assert len(mock_api.requests) == 1


def test_a_passed_deadline_fails_at_once_without_sending(mock_api) -> None:
    with pytest.raises(ProviderUnavailable) as caught:
        call(make(mock_api), deadline=time.monotonic() - 1)
    assert caught.value.code == "timeout"
    assert mock_api.requests == []


def test_deadline_is_enforced_while_a_slow_body_drips(mock_api) -> None:
    # Each chunk arrives well within any read timeout; only the wall clock stops it.
    mock_api.reply(stream=SlowStream(chunks=50, delay=0.02))
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as caught:
        call(make(mock_api), deadline=time.monotonic() + 0.2)
    assert caught.value.code == "timeout"
    assert time.monotonic() - started < 0.6


def test_the_timeout_option_is_also_a_wall_clock_deadline(mock_api) -> None:
    mock_api.reply(stream=SlowStream(chunks=50, delay=0.02))
    with pytest.raises(ProviderUnavailable, match="took too long"):
        call(make(mock_api, timeout=0.2))


# Status mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "code", "retryable"),
    [
        (400, ProviderError, "invalid_request", False),
        (401, ProviderError, "authentication_failed", False),
        (402, QuotaExceeded, "quota_exceeded", False),
        (403, ProviderError, "permission_denied", False),
        (404, ProviderError, "not_found", False),
        (408, ProviderUnavailable, "provider_unavailable", True),
        (413, ProviderError, "request_too_large", False),
        (422, ProviderError, "invalid_request", False),
        (429, RateLimited, "rate_limited", True),
        (500, ProviderUnavailable, "provider_unavailable", True),
        (502, ProviderUnavailable, "provider_unavailable", True),
        (503, ProviderUnavailable, "provider_unavailable", True),
    ],
)
def test_status_maps_to_the_error_tree(
    mock_api, status: int, cls: type, code: str, retryable: bool
) -> None:
    mock_api.reply(status, json={"error": {"message": "Something is off.", "code": "x"}})
    with pytest.raises(cls) as caught:
        call(make(mock_api))
    error = caught.value
    assert type(error) is cls
    assert (error.code, error.retryable, error.status_code) == (code, retryable, status)
    assert error.provider == "example"
    assert str(error).startswith("Example ")
    assert str(error).endswith(".")
    if status != 401:
        assert "Something is off" in str(error)


def test_rate_limit_reports_retry_after_ms_first(mock_api) -> None:
    mock_api.reply(429, json={}, headers={"retry-after-ms": "1500", "retry-after": "9"})
    with pytest.raises(RateLimited) as caught:
        call(make(mock_api))
    assert caught.value.retry_after == 1.5
    assert "Try again in 2 s." in str(caught.value)


def test_503_with_retry_after_is_rate_limited(mock_api) -> None:
    mock_api.reply(503, content=b"busy", headers={"retry-after": "30"})
    with pytest.raises(RateLimited) as caught:
        call(make(mock_api))
    assert caught.value.retry_after == 30
    assert caught.value.retryable


def test_rate_limit_without_header_has_no_retry_after(mock_api) -> None:
    mock_api.reply(429, content=b"slow down")
    with pytest.raises(RateLimited) as caught:
        call(make(mock_api))
    assert caught.value.retry_after is None
    assert str(caught.value) == (
        "Example is limiting requests (HTTP 429): slow down. Try again later."
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "20"}, 20.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "nonsense", "retry-after": "3"}, 3.0),
        ({"retry-after": "-4"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    seconds = parse_retry_after(httpx.Headers({"retry-after": when}))
    assert seconds is not None and 110 <= seconds <= 121


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"error": {"message": "m", "code": "c", "type": "t", "param": "p"}},
            ApiError(message="m", code="c", type="t", param="p"),
        ),
        ({"error": "plain"}, ApiError(message="plain")),
        ({"detail": "nope"}, ApiError(message="nope")),
        (
            {"name": "bad_request", "errors": ["a", "b"]},
            ApiError(message="a; b", type="bad_request"),
        ),
    ],
)
def test_parse_error_body_envelopes(body: Any, expected: ApiError) -> None:
    assert parse_error_body(httpx.Response(400, json=body)) == expected


def test_parse_error_body_quotes_text() -> None:
    assert parse_error_body(httpx.Response(502, content=b"Bad gateway")).message == "Bad gateway"


# Secrets -----------------------------------------------------------------------------------


def test_key_never_appears_in_error_messages(mock_api) -> None:
    echo = {"error": {"message": f"Key {KEY} is not valid for this project.", "code": "x"}}
    mock_api.reply(400, json=echo).reply(500, content=f"debug: auth={KEY}".encode())
    provider = make(mock_api)
    for _ in range(2):
        with pytest.raises(ProviderError) as caught:
            call(provider)
        assert KEY not in str(caught.value)
        assert KEY not in repr(caught.value.args)
        assert "[redacted]" in str(caught.value)


def test_401_message_does_not_quote_the_body(mock_api) -> None:
    mock_api.reply(401, json={"error": {"message": f"Incorrect API key provided: {KEY}."}})
    with pytest.raises(ProviderError) as caught:
        call(make(mock_api))
    assert caught.value.code == "authentication_failed"
    assert KEY not in str(caught.value)
    assert "EXAMPLE_API_KEY" in str(caught.value)


def test_long_provider_text_is_truncated(mock_api) -> None:
    mock_api.reply(400, content=b"blah " * 2000)
    with pytest.raises(ProviderError) as caught:
        call(make(mock_api))
    assert len(str(caught.value)) < MAX_QUOTED_CHARS + 100


def test_key_never_appears_in_repr_or_logs(mock_api, caplog) -> None:
    provider = make(mock_api)
    mock_api.reply(json={}).reply(400, json={"error": {"message": KEY}})
    with caplog.at_level(logging.DEBUG):
        call(provider)
        with pytest.raises(ProviderError):
            call(provider)
    assert caplog.records, "the call should be logged at DEBUG"
    assert KEY not in caplog.text
    assert KEY not in repr(provider)
    assert KEY not in repr(vars(provider))
    assert KEY not in str(provider._api_key)


# Payload helpers ---------------------------------------------------------------------------


def test_decode_base64_is_strict(mock_api) -> None:
    provider = make(mock_api)
    content = png_bytes()
    assert provider.decode_base64(base64.b64encode(content).decode()) == content
    for bad in ("not base64!", "aGVsbG8=\n", "aGVsbG8", 42, None, ""):
        with pytest.raises(InvalidResponse) as caught:
            provider.decode_base64(bad)
        assert caught.value.code == "bad_base64"


def test_decode_base64_enforces_a_size_limit(mock_api, settings) -> None:
    provider = make(mock_api)
    data = base64.b64encode(b"x" * 1000).decode()
    with pytest.raises(InvalidResponse) as caught:
        provider.decode_base64(data, max_bytes=999)
    assert caught.value.code == "image_too_large"
    assert provider.decode_base64(data, max_bytes=1000) == b"x" * 1000
    settings.IMAGEGEN = {"MAX_IMAGE_BYTES": 10}
    with pytest.raises(InvalidResponse, match="10-byte"):
        provider.decode_base64(data)


def test_image_mime_sniffs_magic_bytes() -> None:
    assert image_mime(png_bytes()) == "image/png"
    assert image_mime(png_bytes(fmt="JPEG")) == "image/jpeg"
    assert image_mime(png_bytes(fmt="WEBP")) == "image/webp"
    assert image_mime(b"GIF89a") == ""
