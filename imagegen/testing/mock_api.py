"""The fake vendor server: :class:`MockAPI`, the provider settings that use it, its requests.

:class:`MockAPI` answers from a script behind ``httpx.MockTransport`` and records every request;
:func:`fake_provider_settings` points a shipped HTTP provider at it; :func:`multipart_parts`
reads back the multipart/form-data bodies that OpenAI edits and Stability AI requests send.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import Any

import httpx

__all__ = [
    "GOOGLE",
    "OPENAI",
    "STABILITY",
    "Handler",
    "MockAPI",
    "Part",
    "fake_provider_settings",
    "multipart_parts",
]

#: Dotted paths of the shipped HTTP providers, for :func:`fake_provider_settings`.
OPENAI = "imagegen.providers.openai.OpenAIProvider"
STABILITY = "imagegen.providers.stability.StabilityProvider"
GOOGLE = "imagegen.providers.google.GoogleProvider"

Handler = Callable[[httpx.Request], httpx.Response]


class MockAPI:
    """A scripted HTTP server behind ``httpx.MockTransport`` that records every request.

    Queued answers are consumed in order, one per request. A request with nothing queued gets
    a 599 ``{"error": {"message": "no answer queued"}}``, which providers report as a
    temporary failure, so a missing answer fails loudly instead of reaching the network.
    """

    def __init__(self) -> None:
        #: Every request received, oldest first, with its body read.
        self.requests: list[httpx.Request] = []
        self._answers: deque[Handler] = deque()
        #: Pass this as the provider's ``transport`` option.
        self.transport = httpx.MockTransport(self._handle)

    def reply(
        self,
        status: int | httpx.Response = 200,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        stream: httpx.SyncByteStream | None = None,
        times: int = 1,
    ) -> MockAPI:
        """Queue a canned answer ``times`` times; returns self so calls chain.

        ``status`` may be a whole ``httpx.Response``, such as one of the builders of
        :mod:`imagegen.testing`; each use answers with a fresh copy of it.
        """

        def answer(request: httpx.Request) -> httpx.Response:
            if isinstance(status, httpx.Response):
                return httpx.Response(
                    status.status_code, headers=status.headers, content=status.content
                )
            if stream is not None:
                return httpx.Response(status, headers=headers, stream=stream)
            if json is not None:
                return httpx.Response(status, json=json, headers=headers)
            return httpx.Response(status, content=content or b"", headers=headers)

        self._answers.extend([answer] * times)
        return self

    def then(self, handler: Handler) -> MockAPI:
        """Queue a callable that builds the answer from the request (or raises an httpx error)."""
        self._answers.append(handler)
        return self

    def raise_error(self, error: type[httpx.TransportError]) -> MockAPI:
        """Queue an httpx transport error, as a network failure would raise it."""

        def fail(request: httpx.Request) -> httpx.Response:
            raise error("simulated failure", request=request)

        return self.then(fail)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if not self._answers:
            return httpx.Response(599, json={"error": {"message": "no answer queued"}})
        return self._answers.popleft()(request)

    @property
    def last(self) -> httpx.Request:
        """Return the most recent request; raise ``AssertionError`` if there was none."""
        if not self.requests:
            raise AssertionError("no request was sent")
        return self.requests[-1]

    def last_json(self) -> Any:
        """Return the JSON body of the most recent request."""
        return json.loads(self.last.content)


def fake_provider_settings(backend: str, api: MockAPI, **options: Any) -> dict[str, Any]:
    """Return an ``IMAGEGEN["PROVIDERS"]`` entry for ``backend`` that talks to ``api``.

    The OPTIONS hold ``api_key="test-key"`` and ``transport=api.transport``; ``options`` add
    to or override them (``model="ultra"``, ``accept="json"``...).
    """
    return {
        "BACKEND": backend,
        "OPTIONS": {"api_key": "test-key", "transport": api.transport, **options},
    }


@dataclass(frozen=True)
class Part:
    """One part of a multipart/form-data body."""

    name: str
    filename: str | None
    content_type: str
    content: bytes

    @property
    def text(self) -> str:
        """Return the content decoded as UTF-8."""
        return self.content.decode()


def multipart_parts(request: httpx.Request) -> list[Part]:
    """Return the parts of a multipart/form-data body (OpenAI edits, Stability), in order."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data; boundary="):
        raise ValueError(f"Not a multipart/form-data request: {content_type!r}.")
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + request.content)
    return [
        Part(
            name=part.get_param("name", header="content-disposition"),
            filename=part.get_filename(),
            content_type=part.get_content_type() if part["content-type"] else "",
            content=part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    ]
