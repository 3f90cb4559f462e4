"""Tests for asynchronous jobs: submit once or resume, poll with backoff, give up at the deadline.

Time runs on a :class:`~imagegen.providers.http.ManualClock`, so no test sleeps; the end-to-end
test drives a small submit-poll-download provider over ``httpx.MockTransport``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from imagegen.exceptions import (
    ContentRejected,
    InvalidResponse,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from imagegen.providers.http import Clock, HttpProvider, ManualClock
from imagegen.providers.http.polling import submit_or_resume
from imagegen.types import CallContext, ImageOutput, ImageRequest, ImageResult
from tests.conftest import png_bytes
from tests.providers.conftest import MockAPI

KEY = "xk-live-0123456789abcdefSECRET"
PNG = png_bytes()


class JobProvider(HttpProvider):
    """A submit-then-poll provider, written the way Replicate, BFL and Leonardo adapters are."""

    catalog_key = "example"
    display_name = "Jobs"
    default_model = "jobs-1"
    api_key_env = "JOBS_API_KEY"
    default_base_url = "https://api.jobs.example/v1"
    default_download_hosts = ("cdn.jobs.example",)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.canceled: list[str] = []

    def _generate(self, request: ImageRequest, context: CallContext) -> ImageResult:
        def submit() -> str:
            body = self.request("POST", "/jobs", json={"prompt": request.prompt})
            return self.json_object(body)["id"]

        job_id = self.submit_or_resume(context, submit)
        job = self.poll_until(
            lambda: self.json_object(self.request("GET", f"/jobs/{job_id}")),
            lambda job: job["status"] != "pending",
            context=context,
            job_id=job_id,
        )
        if job["status"] != "done":
            raise self.fail(ProviderError, "job_failed", f"Job {job_id} failed.")
        content = self.download(job["url"], context=context)
        return ImageResult(images=(ImageOutput(content=content),), model=self.model, job_id=job_id)

    def cancel(self, job_id: str) -> None:
        self.canceled.append(job_id)


def make(**options: Any) -> JobProvider:
    provider = JobProvider(alias="jobs", api_key=KEY, **options)
    provider.clock = ManualClock()
    return provider


def answers(*values: Any, log: list[Any] | None = None) -> Callable[[], Any]:
    """Return a fetch that yields ``values`` in order (raising the exceptions among them)."""
    queue = list(values)

    def fetch() -> Any:
        value = queue.pop(0)
        if log is not None:
            log.append(("poll", value))
        if isinstance(value, Exception):
            raise value
        return value

    return fetch


def is_done(value: str) -> bool:
    return value == "done"


# Polling -------------------------------------------------------------------------------------


def test_pending_then_done_returns_the_final_answer_after_backoff() -> None:
    provider = make()
    fetch = answers("pending", "pending", "pending", "done")
    assert provider.poll_until(fetch, is_done, context=CallContext()) == "done"
    assert provider.clock.sleeps == [1.0, 1.5, 2.25]


def test_intervals_grow_by_backoff_up_to_max_interval() -> None:
    provider = make()
    fetch = answers(*["pending"] * 6, "done")
    timing = {"interval": 1, "backoff": 2, "max_interval": 5}
    provider.poll_until(fetch, is_done, context=CallContext(), **timing)
    assert provider.clock.sleeps == [1, 2, 4, 5, 5, 5]


def test_done_at_once_never_sleeps() -> None:
    provider = make()
    assert provider.poll_until(answers("done"), is_done, context=CallContext()) == "done"
    assert provider.clock.sleeps == []


def test_timeout_raises_retryable_timeout_that_says_a_retry_resumes_polling() -> None:
    provider = make()
    with pytest.raises(ProviderUnavailable) as caught:
        provider.poll_until(
            lambda: "pending", is_done, context=CallContext(), job_id="j-42", timeout=20
        )
    error = caught.value
    assert (error.code, error.retryable, error.provider) == ("timeout", True, "jobs")
    assert "j-42" in error.message and "retry resumes polling" in error.message
    assert sum(provider.clock.sleeps) == pytest.approx(20)  # the last wait is cut to the deadline
    assert provider.canceled == []


def test_context_deadline_wins_when_earlier_than_timeout() -> None:
    provider = make()
    context = CallContext(deadline=provider.clock.now() + 3)
    with pytest.raises(ProviderUnavailable, match="retry resumes"):
        provider.poll_until(lambda: "pending", is_done, context=context, job_id="j-1", timeout=600)
    assert sum(provider.clock.sleeps) == pytest.approx(3)


def test_cancel_is_called_at_the_deadline_when_asked() -> None:
    provider = make()
    with pytest.raises(ProviderUnavailable) as caught:
        provider.poll_until(
            lambda: "pending",
            is_done,
            context=CallContext(),
            job_id="j-7",
            timeout=5,
            cancel_on_timeout=True,
        )
    assert provider.canceled == ["j-7"]
    assert "asked Jobs to cancel it" in caught.value.message
    assert "retry resumes polling" in caught.value.message


def test_a_failing_cancel_still_raises_the_timeout(caplog) -> None:
    provider = make()

    def cancel(job_id: str) -> None:
        raise ProviderUnavailable("down", code="connection_failed")

    provider.cancel = cancel
    with pytest.raises(ProviderUnavailable) as caught:
        provider.poll_until(
            lambda: "pending", is_done, context=CallContext(), job_id="j-8", timeout=1,
            cancel_on_timeout=True,
        )  # fmt: skip
    assert caught.value.code == "timeout"
    assert "cancel it" not in caught.value.message
    assert "could not cancel job j-8" in caplog.text


def test_temporary_poll_errors_are_waited_out_honouring_retry_after() -> None:
    provider = make()
    fetch = answers(RateLimited("slow down", retry_after=7), "pending", "done")
    assert provider.poll_until(fetch, is_done, context=CallContext()) == "done"
    assert provider.clock.sleeps == [7, 1.5]


def test_too_many_temporary_poll_errors_in_a_row_are_raised() -> None:
    provider = make()
    fetch = answers(*[ProviderUnavailable("503", code="provider_unavailable")] * 4)
    with pytest.raises(ProviderUnavailable) as caught:
        provider.poll_until(fetch, is_done, context=CallContext())
    assert caught.value.code == "provider_unavailable"
    assert len(provider.clock.sleeps) == 3


def test_permanent_poll_error_is_raised_at_once() -> None:
    provider = make()
    with pytest.raises(ContentRejected):
        provider.poll_until(answers(ContentRejected("no")), is_done, context=CallContext())
    assert provider.clock.sleeps == []


@pytest.mark.parametrize(
    "timing", [{"interval": 0}, {"backoff": 0.5}, {"interval": 5, "max_interval": 2}]
)
def test_nonsense_timing_is_a_value_error(timing: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="interval"):
        make().poll_until(lambda: "done", is_done, context=CallContext(), **timing)


def test_an_explicit_clock_overrides_the_providers() -> None:
    provider, clock = make(), ManualClock(start=100.0)
    provider.poll_until(answers("pending", "done"), is_done, context=CallContext(), clock=clock)
    assert clock.sleeps == [1.0] and provider.clock.sleeps == []
    assert clock.now() == 101.0


def test_the_real_clock_reads_monotonic_time() -> None:
    before = time.monotonic()
    Clock().sleep(0)
    assert before <= Clock().now() <= time.monotonic()


# Submitting once -----------------------------------------------------------------------------


def test_job_id_is_recorded_before_the_first_poll() -> None:
    events: list[Any] = []

    def submit() -> str:
        events.append("submit")
        return "j-1"

    context = CallContext(on_job_accepted=lambda job_id: events.append(("accepted", job_id)))
    provider = make()
    job_id = provider.submit_or_resume(context, submit)
    provider.poll_until(answers("done", log=events), is_done, context=context, job_id=job_id)
    assert events == ["submit", ("accepted", "j-1"), ("poll", "done")]


def test_resume_skips_submission_and_does_not_record_again() -> None:
    def submit() -> str:
        raise AssertionError("a resumed job must not be submitted (and paid for) again")

    accepted: list[str] = []
    context = CallContext(resume_job_id="j-9", on_job_accepted=accepted.append)
    assert submit_or_resume(context, submit) == "j-9"
    assert accepted == []


def test_submission_without_a_callback_just_returns_the_id() -> None:
    assert submit_or_resume(CallContext(), lambda: "j-2") == "j-2"


# End to end over the wire ------------------------------------------------------------------


def wire(provider: JobProvider, api: MockAPI, cdn: MockAPI) -> None:
    provider.transport = api.transport
    provider.downloader.transport = cdn.transport
    provider.downloader.resolver = lambda host, port: ["93.184.215.14"]


def test_submit_poll_and_download_over_the_wire() -> None:
    api = MockAPI().reply(json={"id": "j-5"}).reply(json={"status": "pending"})
    api.reply(json={"status": "done", "url": "https://cdn.jobs.example/j-5.png?sig=SECRET"})
    cdn = MockAPI().reply(content=PNG)
    provider = make()
    wire(provider, api, cdn)
    accepted: list[str] = []
    result = provider.generate(
        ImageRequest(prompt="a fox"), context=CallContext(on_job_accepted=accepted.append)
    )
    assert result.images[0].content == PNG and result.job_id == "j-5"
    assert accepted == ["j-5"]
    assert [(r.method, r.url.path) for r in api.requests] == [
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs/j-5"),
        ("GET", "/v1/jobs/j-5"),
    ]
    assert provider.clock.sleeps == [1.0]
    download = cdn.last
    assert download.headers["host"] == "cdn.jobs.example"
    assert "authorization" not in download.headers  # the API key stays with the API


def test_resumed_job_is_polled_without_a_new_post() -> None:
    api = MockAPI().reply(json={"status": "done", "url": "https://cdn.jobs.example/j-6.png"})
    cdn = MockAPI().reply(content=PNG)
    provider = make()
    wire(provider, api, cdn)
    result = provider.generate(
        ImageRequest(prompt="a fox"), context=CallContext(resume_job_id="j-6")
    )
    assert result.job_id == "j-6"
    assert [(r.method, r.url.path) for r in api.requests] == [("GET", "/v1/jobs/j-6")]


def test_result_url_off_the_allow_list_fails_the_job_without_a_download() -> None:
    api = MockAPI().reply(json={"id": "j-3"})
    api.reply(json={"status": "done", "url": "https://169.254.169.254/latest/meta-data"})
    cdn = MockAPI()
    provider = make()
    wire(provider, api, cdn)
    with pytest.raises(InvalidResponse) as caught:
        provider.generate(ImageRequest(prompt="a fox"))
    assert caught.value.code == "download_host_not_allowed"
    assert cdn.requests == []
