"""Helpers shared by the wire-level tests of the HTTP providers (test_openai.py and its kin).

Each provider module describes its provider once with a :class:`Harness` (or a
:class:`PollingHarness` when results are polled for and downloaded) and takes its ``fixture``,
``make`` and ``run`` from it; what is specific to the provider (its requests, answers, errors
and prices) stays in the module::

    OPENAI = Harness(OpenAIProvider, "openai", key=KEY)
    fixture, make, run = OPENAI.fixture, OPENAI.make, OPENAI.run

The error tables stay in the modules too, each row checked by :meth:`Harness.check_error`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import httpx
import pytest

import imagegen
from imagegen.exceptions import ProviderUnavailable
from imagegen.models import Generation, Status
from imagegen.providers import providers
from imagegen.providers.http import HttpProvider, ManualClock
from imagegen.runners import BaseRunner
from imagegen.services import run_generation
from imagegen.testing import fake_provider_settings
from imagegen.types import CallContext, ImageRequest, ImageResult
from tests.providers.conftest import MockAPI, load_fixture

PROMPT = "a lighthouse on a cliff at dusk, oil painting"
#: A public address, so the downloader's SSRF guard lets the fake delivery hosts through.
PUBLIC = "93.184.215.14"
PLACEHOLDER = {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"}
#: The TASK_RUNNER path of :class:`QueueOnly`.
QUEUE_ONLY = f"{__name__}.QueueOnly"

Resolver = Callable[[str, int], list[str]]


def body_of(request: httpx.Request) -> Any:
    """Return the JSON body of ``request``."""
    return json.loads(request.content)


def wire(provider: HttpProvider, cdn: MockAPI, resolver: Resolver | None = None) -> Any:
    """Give ``provider`` a manual clock and downloads served by ``cdn`` on a public address."""
    provider.clock = ManualClock()
    provider.downloader.transport = cdn.transport
    provider.downloader.resolver = resolver or (lambda host, port: [PUBLIC])
    return provider


@dataclass(frozen=True)
class Harness:
    """One provider as its wire tests build and call it, behind a :class:`MockAPI`.

    ``key`` is the API key every provider gets unless a test passes another; ``options`` are
    further defaults for :meth:`make`; the fixtures are read from ``tests/fixtures/<fixtures>/``
    (``<alias>/`` by default).
    """

    provider: type[HttpProvider]
    alias: str
    key: str
    prompt: str = PROMPT
    fixtures: str = ""
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def backend(self) -> str:
        return f"{self.provider.__module__}.{self.provider.__qualname__}"

    def fixture(self, name: str) -> Any:
        """Return the parsed payload ``tests/fixtures/<fixtures>/<name>``."""
        return load_fixture(self.fixtures or self.alias, name)

    def make(self, api: MockAPI, **options: Any) -> Any:
        """Return the provider talking to ``api``, with the key and default options."""
        options = {"api_key": self.key, **self.options, **options}
        return self.provider(alias=self.alias, transport=api.transport, **options)

    def run(
        self, provider: HttpProvider, context: CallContext | None = None, **fields: Any
    ) -> ImageResult:
        """Generate with ``fields`` (the prompt defaults to ``prompt``)."""
        fields.setdefault("prompt", self.prompt)
        return provider.generate(ImageRequest(**fields), context=context or CallContext())

    def configure(self, settings, api: MockAPI, **options: Any) -> None:
        """Point the alias at ``api`` for the whole pipeline, next to a placeholder default.

        The OPTIONS are :func:`~imagegen.testing.fake_provider_settings`' (``api_key="test-key"``)
        updated with ``options``.
        """
        settings.IMAGEGEN = self.pipeline_settings(api, **options)

    def pipeline_settings(self, api: Any, **options: Any) -> dict[str, Any]:
        entry = fake_provider_settings(self.backend, api, **options)
        return {"PROVIDERS": {"default": PLACEHOLDER, self.alias: entry}}

    def check_error(
        self,
        api: MockAPI,
        status: int,
        payload: Any,
        cls: type[Exception],
        code: str,
        *,
        headers: Mapping[str, str] | None = None,
        retryable: bool | None = None,
        text: str | None = None,
    ) -> Any:
        """Answer a generation with ``status`` and ``payload``; check the error it maps to.

        The error must be exactly ``cls``, with ``code`` and ``status`` (and ``retryable`` and
        ``text`` in its message, where given); the key must not show in it, no job may have
        been recorded, and the request must have been sent once: billable POSTs are never
        re-sent by the provider itself. Returns the error, for checks of one row.
        """
        api.reply(status, json=payload, headers=headers)
        accepted: list[str] = []
        with pytest.raises(cls) as caught:
            self.run(self.make(api), CallContext(on_job_accepted=accepted.append))
        error = caught.value
        assert type(error) is cls
        assert (error.code, error.status_code) == (code, status)
        if retryable is not None:
            assert error.retryable == retryable
        if text is not None:
            assert text in str(error)
        assert self.key not in str(error)
        assert accepted == []
        assert len(api.requests) == 1
        return error


@dataclass(frozen=True)
class PollingHarness(Harness):
    """A provider that polls for its job and downloads the results.

    :meth:`make` gives it a :class:`ManualClock` and downloads served by a second
    :class:`MockAPI` (the "cdn") with DNS answered by a fake resolver, so nothing sleeps or
    reaches the network.
    """

    def make(self, api: MockAPI, cdn: MockAPI | None = None, **options: Any) -> Any:
        return wire(super().make(api, **options), cdn if cdn is not None else MockAPI())

    def configure(
        self,
        settings,
        api: Any,
        cdn: MockAPI | None = None,
        runner: str = "immediate",
        **options: Any,
    ) -> Any:
        """Point the alias at ``api`` and return its instance, downloading from ``cdn``.

        ``runner`` is the TASK_RUNNER (:data:`QUEUE_ONLY` to drive ``run_generation()`` as a
        worker would); no derivatives are made.
        """
        imagegen = self.pipeline_settings(api, **options)
        settings.IMAGEGEN = {**imagegen, "TASK_RUNNER": runner, "DERIVATIVE_WIDTHS": []}
        return wire(providers[self.alias], cdn if cdn is not None else MockAPI())

    def interrupt_and_resume(
        self, settings, api: FakeJobAPI, cdn: MockAPI, job: str, **generate: Any
    ) -> tuple[Generation, list[str]]:
        """Run a generation as workers would when the first one is cut off while it polls.

        The first worker submits, records ``job``, then runs out of polling time (the row is
        queued again, with nothing downloaded); once ``api`` is ready the redelivered task
        resumes the recorded job: it polls and downloads, never submitting again. Returns the
        finished row and the URLs polled on resuming.
        """
        provider = self.configure(settings, api, cdn, runner=QUEUE_ONLY, poll_timeout=30)
        generation = imagegen.generate(prompt="a red fox", provider=self.alias, **generate)
        assert generation.status == Status.QUEUED and api.requests == []

        with pytest.raises(ProviderUnavailable):
            run_generation(generation.pk, retrying=True)
        generation.refresh_from_db()
        assert (generation.status, generation.provider_job_id) == (Status.QUEUED, job)
        assert generation.error_code == "timeout"
        assert api.methods()[0] == "POST" and set(api.methods()[1:]) == {"GET"}
        assert cdn.requests == []

        api.ready = True
        polls_before = len(api.requests)
        finished = run_generation(generation.pk, retrying=True)
        finished.refresh_from_db()
        assert finished.status == Status.SUCCEEDED, finished.error_message
        assert api.methods().count("POST") == 1
        assert finished.provider_job_id == job and finished.attempts == 2
        assert provider is providers[self.alias]
        return finished, [str(r.url) for r in api.requests[polls_before:]]


class QueueOnly(BaseRunner):
    """A task runner that leaves rows queued, for driving run_generation() as a worker would."""

    def enqueue(self, generation: Generation) -> Generation:
        return generation


class FakeJobAPI:
    """A polling API as a router: a POST accepts the job, polls answer ``pending`` until
    ``ready`` is set, then ``done``."""

    def __init__(self, accepted: Any, pending: Any, done: Any) -> None:
        self.requests: list[httpx.Request] = []
        self.ready = False
        self.answers = (accepted, pending, done)
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        accepted, pending, done = self.answers
        if request.method == "POST":
            return httpx.Response(200, json=accepted)
        return httpx.Response(200, json=done if self.ready else pending)

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]
