"""Tests for the Black Forest Labs provider at the wire level (provider-apis.md §6), mocked HTTP.

Built by a :class:`~tests.providers.support.PollingHarness`: result downloads come from a
second :class:`MockAPI` and polling runs on a manual clock.
"""

from __future__ import annotations

import base64
import copy
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

import imagegen
from imagegen import catalog
from imagegen.catalog.bfl import FLUX1_CAPS, FLUX2_CAPS, KLEIN_CAPS, KONTEXT_CAPS, ULTRA_CAPS
from imagegen.exceptions import (
    ContentRejected,
    InvalidProviderError,
    InvalidResponse,
    ModelUnavailable,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
    UnsupportedRequest,
)
from imagegen.providers.bfl import BFLProvider
from imagegen.types import CallContext, ImageRequest
from tests.conftest import media_files, png_bytes
from tests.providers.conftest import MockAPI
from tests.providers.support import PROMPT, FakeJobAPI, PollingHarness, body_of, wire

KEY = "bfl-test-key-SECRET-0123456789abcdef"
BASE = "https://api.bfl.ai/v1"
JPEG = png_bytes(fmt="JPEG")
PNG = png_bytes()
BFL = PollingHarness(BFLProvider, "bfl", key=KEY)
fixture, make, run = BFL.fixture, BFL.make, BFL.run

SUBMIT = fixture("submit_flux2.json")
TASK, POLL = SUBMIT["id"], SUBMIT["polling_url"]
JOB = f"{TASK}|{POLL}"
SUBMIT1 = fixture("submit_flux1.json")
TASK1, POLL1 = SUBMIT1["id"], SUBMIT1["polling_url"]
JOB1 = f"{TASK1}|{POLL1}"


def cdn_with(content: bytes = JPEG, mime: str = "image/jpeg") -> MockAPI:
    return MockAPI().reply(content=content, headers={"content-type": mime})


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode("ascii")


def with_cost(payload: dict[str, Any], cost: Any) -> dict[str, Any]:
    payload = copy.deepcopy(payload)
    payload["cost"] = cost
    return payload


# Identity and options ----------------------------------------------------------------------


def test_identity() -> None:
    provider = BFLProvider(alias="bfl", api_key=KEY)
    assert (provider.catalog_key, provider.display_name) == ("bfl", "Black Forest Labs")
    assert provider.model == "flux-2-pro"
    assert provider.base_url == BASE
    assert provider.api_key_env == "BFL_API_KEY"
    assert provider.default_download_hosts == ("*.bfl.ai",)
    assert provider.auth_headers() == {"x-key": KEY}
    assert KEY not in repr(provider)


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"safety_tolerance": 7}, "safety_tolerance"),
        ({"safety_tolerance": -1}, "safety_tolerance"),
        ({"safety_tolerance": True}, "safety_tolerance"),
        ({"safety_tolerance": "2"}, "safety_tolerance"),
        ({"prompt_upsampling": "yes"}, "prompt_upsampling"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"model": "v1/../credits"}, "endpoint name"),
        ({"quality": "high"}, "quality"),
    ],
)
def test_options_are_validated(options: dict, text: str) -> None:
    with pytest.raises(InvalidProviderError, match=text):
        BFLProvider(alias="bfl", api_key=KEY, **options)


# Submit, poll, download ----------------------------------------------------------------------


def test_flux2_submit_poll_and_download_on_the_wire() -> None:
    accepted: list[str] = []
    seen_at_first_poll: list[list[str]] = []

    def first_poll(request: httpx.Request) -> httpx.Response:
        seen_at_first_poll.append(list(accepted))
        return httpx.Response(200, json=fixture("pending.json"))

    api = MockAPI().reply(json=SUBMIT).then(first_poll).reply(json=fixture("ready.json"))
    cdn = cdn_with()
    provider = make(api, cdn, safety_tolerance=2, prompt_upsampling=False)
    context = CallContext(on_job_accepted=accepted.append)
    result = run(provider, context, width=1024, height=768, seed=7, output_format="jpeg")

    submit, *polls = api.requests
    assert (submit.method, str(submit.url)) == ("POST", f"{BASE}/flux-2-pro")
    assert submit.headers["x-key"] == KEY
    assert "authorization" not in submit.headers
    assert submit.headers["content-type"] == "application/json"
    assert body_of(submit) == {
        "prompt": PROMPT,
        "width": 1024,
        "height": 768,
        "seed": 7,
        "output_format": "jpeg",
        "safety_tolerance": 2,
        "disable_pup": True,  # §6.2: flux-2-pro replaced prompt_upsampling with disable_pup
    }
    # The regional polling_url is polled as returned, with the key, and nothing else is.
    assert [(r.method, str(r.url)) for r in polls] == [("GET", POLL), ("GET", POLL)]
    assert all(r.headers["x-key"] == KEY and r.content == b"" for r in polls)
    # The job (task id and polling URL) is recorded before the first poll.
    assert accepted == [JOB] and seen_at_first_poll == [[JOB]]
    download = cdn.last
    assert download.headers["host"] == "delivery-us1.bfl.ai"
    assert download.url.path == "/results/3f/1d9c2e7b4a4e21/sample.jpeg"
    assert "x-key" not in download.headers and KEY not in str(download.headers)
    image = result.images[0]
    assert (image.content, image.mime_type, image.seed) == (JPEG, "image/jpeg", 1234567890)
    assert result.job_id == JOB and result.model == "flux-2-pro"
    assert result.cost == Decimal("0.030000")  # 3 credits at $0.01
    assert result.usage == {"credits": 3, "input_mp": 0, "output_mp": 1.05}
    assert result.warnings == ()
    assert provider.clock.sleeps == [1.0]


def test_pending_statuses_are_polled_with_backoff_until_ready() -> None:
    api = MockAPI().reply(json=SUBMIT)
    for status in ("Pending", "Reasoning", "Generating", "Queued-Someday"):
        api.reply(json={"id": TASK, "status": status, "progress": 0.5})
    api.reply(json=fixture("ready.json"))
    provider = make(api, cdn_with())
    result = run(provider)
    assert len(api.requests) == 6
    # §6.5: unknown statuses are not terminal; the waits grow by 1.5.
    assert provider.clock.sleeps == [1.0, 1.5, 2.25, 3.375]
    assert result.images[0].content == JPEG


def test_poll_interval_option_sets_the_first_wait() -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("pending.json"))
    api.reply(json=fixture("ready.json"))
    provider = make(api, cdn_with(), poll_interval=0.5)
    run(provider)
    assert provider.clock.sleeps == [0.5]


def test_flux1_request_and_cost_from_the_ready_poll() -> None:
    api = MockAPI().reply(json=SUBMIT1).reply(json=fixture("ready_flux1.json"))
    cdn = cdn_with(PNG, "image/png")
    provider = make(api, cdn, model="flux-pro-1.1", prompt_upsampling=True)
    result = run(provider, width=1440, height=800)
    submit, poll = api.requests
    assert str(submit.url) == f"{BASE}/flux-pro-1.1"
    assert body_of(submit) == {
        "prompt": PROMPT,
        "width": 1440,
        "height": 800,
        "output_format": "png",
        "prompt_upsampling": True,
    }
    assert (poll.method, str(poll.url)) == ("GET", POLL1)
    assert cdn.last.headers["host"] == "delivery-eu1.bfl.ai"
    # §6.3: FLUX.1-era endpoints report cost on the Ready poll only.
    assert (result.cost, result.usage) == (Decimal("0.040000"), {"credits": 4})
    assert result.images[0].mime_type == "image/png" and result.images[0].seed == 42


@pytest.mark.parametrize(
    ("model", "upsampling", "expected"),
    [
        ("flux-2-pro", True, {"disable_pup": False}),
        ("flux-2-max", False, {"disable_pup": True}),
        ("flux-2-flex", True, {"prompt_upsampling": True}),
        ("flux-dev", False, {"prompt_upsampling": False}),
    ],
)
def test_prompt_upsampling_uses_the_field_each_endpoint_takes(model, upsampling, expected) -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("ready.json"))
    run(make(api, cdn_with(), model=model, prompt_upsampling=upsampling))
    body = body_of(api.requests[0])
    assert {k: body[k] for k in ("disable_pup", "prompt_upsampling") if k in body} == expected


def test_unset_options_are_not_sent() -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("ready.json"))
    run(make(api, cdn_with()))
    assert body_of(api.requests[0]) == {
        "prompt": PROMPT,
        "width": 1024,
        "height": 1024,
        "output_format": "png",
    }


@pytest.mark.parametrize(
    ("model", "fields", "ratio"),
    [
        ("flux-pro-1.1-ultra", {"aspect_ratio": "21:9"}, "21:9"),
        ("flux-pro-1.1-ultra", {"width": 1536, "height": 864}, "16:9"),
        ("flux-kontext-max", {"width": 832, "height": 1248}, "2:3"),
    ],
)
def test_ratio_endpoints_send_an_aspect_ratio_not_a_size(model, fields, ratio) -> None:
    api = MockAPI().reply(json=SUBMIT1).reply(json=fixture("ready_flux1.json"))
    run(make(api, cdn_with(), model=model), output_format="jpeg", **fields)
    body = body_of(api.requests[0])
    assert body == {"prompt": PROMPT, "aspect_ratio": ratio, "output_format": "jpeg"}
    assert str(api.requests[0].url) == f"{BASE}/{model}"


def test_extra_fields_are_sent_and_override_options() -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("ready.json"))
    extra = {"steps": 30, "guidance": 4.5, "safety_tolerance": 5}
    run(make(api, cdn_with(), model="flux-2-flex", safety_tolerance=1), extra=extra)
    body = body_of(api.requests[0])
    assert (body["steps"], body["guidance"], body["safety_tolerance"]) == (30, 4.5, 5)


def test_edit_sends_source_images_as_numbered_input_images() -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("ready.json"))
    provider = make(api, cdn_with())
    run(provider, operation="edit", source_images=(PNG, JPEG), prompt="make it night")
    body = body_of(api.requests[0])
    assert body["input_image"] == b64(PNG) and body["input_image_2"] == b64(JPEG)
    assert "input_image_3" not in body and body["prompt"] == "make it night"


def test_fill_sends_one_image_and_its_mask_and_no_size() -> None:
    # BFL's API skill: /v1/flux-pro-1.0-fill, inpainting, $0.05 an image.
    api = MockAPI().reply(json=SUBMIT1).reply(json=fixture("ready_flux1.json"))
    mask = png_bytes(color=(255, 255, 255))
    result = run(
        make(api, cdn_with(), model="flux-pro-1.0-fill"),
        operation="inpaint",
        source_images=(PNG,),
        mask=mask,
        seed=4,
    )
    submit = api.requests[0]
    assert submit.url.path == "/v1/flux-pro-1.0-fill"
    body = body_of(submit)
    assert (body["image"], body["mask"], body["seed"]) == (b64(PNG), b64(mask), 4)
    assert not {"width", "height", "aspect_ratio", "input_image"} & set(body)
    assert result.images


def test_kontext_takes_one_input_image_without_references() -> None:
    api = MockAPI().reply(json=SUBMIT1).reply(json=fixture("ready_flux1.json"))
    run(make(api, cdn_with(), model="flux-kontext-pro"), source_images=(PNG,))
    assert body_of(api.requests[0])["input_image"] == b64(PNG)


@pytest.mark.parametrize(
    ("model", "fields", "message"),
    [
        ("flux-2-pro", {"operation": "edit"}, "needs at least one source image"),
        ("flux-pro-1.1", {"source_images": (PNG,)}, "takes no input image"),
        ("flux-2-pro", {"source_images": (PNG,) * 9}, "at most 8 images"),
        ("flux-kontext-pro", {"source_images": (PNG,) * 5}, "at most 4 images"),
        ("flux-2-pro", {"source_images": (PNG,), "mask": PNG}, "inpaint with flux-pro-1.0-fill"),
        ("flux-pro-1.0-fill", {"operation": "inpaint", "mask": PNG}, "exactly one image"),
        ("flux-pro-1.0-fill", {"source_images": (PNG, PNG), "mask": PNG}, "exactly one image"),
        ("flux-2-pro", {"count": 2}, "one image per call"),
        ("flux-2-pro", {"extra": {"webhook_url": "https://example.com/hook"}}, "webhook_url"),
        ("flux-2-pro", {"extra": {"prompt": "other"}}, "prompt"),
        ("flux-2-pro", {"model": "../credits"}, "not a Black Forest Labs endpoint"),
    ],
)
def test_impossible_requests_are_refused_before_sending(model, fields, message) -> None:
    api = MockAPI()
    with pytest.raises(UnsupportedRequest) as caught:
        run(make(api, model=model), **fields)
    assert message in str(caught.value)
    assert api.requests == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"model": "flux-2-pro/../../v1/credits"}, "endpoint name"),
        ({"operation": "upscale"}, "cannot upscale"),
    ],
)
def test_prepare_refuses_what_no_endpoint_does(fields: dict, message: str) -> None:
    provider = BFLProvider(alias="bfl", api_key=KEY)
    with pytest.raises(UnsupportedRequest, match=message):
        provider.prepare(ImageRequest(prompt=PROMPT, **fields))


# Polling URLs and resuming -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/v1/get_result?id=x",
        "http://api.bfl.ai/v1/get_result?id=x",
        "https://api.bfl.ai.evil.com/v1/get_result?id=x",
        "https://user:pw@api.us1.bfl.ai/v1/get_result?id=x",
        "https://api.bfl.ai:8443/v1/get_result?id=x",
        "https://delivery-us1.bfl.ai/v1/get_result?id=x",
        "https://127.0.0.1/v1/get_result?id=x",
    ],
)
def test_polling_url_off_the_bfl_api_hosts_gets_no_key(url: str) -> None:
    api = MockAPI().reply(json={**SUBMIT, "polling_url": url})
    accepted: list[str] = []
    with pytest.raises(InvalidResponse) as caught:
        run(make(api), CallContext(on_job_accepted=accepted.append))
    assert caught.value.code == "polling_url_refused"
    assert "does not send the API key there" in caught.value.message
    assert len(api.requests) == 1 and accepted == []  # nothing was sent to the URL


@pytest.mark.parametrize(
    "host", ["api.bfl.ai", "api.eu.bfl.ai", "api.us.bfl.ai", "api.eu1.bfl.ai", "api.bfl.ml"]
)
def test_polling_urls_on_bfl_api_hosts_are_polled_with_the_key(host: str) -> None:
    url = f"https://{host}/v1/get_result?id={TASK}"
    api = MockAPI().reply(json={**SUBMIT, "polling_url": url}).reply(json=fixture("ready.json"))
    result = run(make(api, cdn_with()))
    poll = api.requests[1]
    assert (str(poll.url), poll.headers["x-key"]) == (url, KEY)
    assert result.job_id == f"{TASK}|{url}"


def test_missing_polling_url_falls_back_to_the_configured_host() -> None:
    api = MockAPI().reply(json={"id": TASK}).reply(json=fixture("ready.json"))
    accepted: list[str] = []
    run(make(api, cdn_with()), CallContext(on_job_accepted=accepted.append))
    fallback = f"{BASE}/get_result?id={TASK}"
    assert str(api.requests[1].url) == fallback
    assert accepted == [f"{TASK}|{fallback}"]


def test_a_local_test_server_base_url_is_polled_on_its_own_origin() -> None:
    base = "http://127.0.0.1:8000/v1"
    url = f"{base}/get_result?id={TASK}"
    api = MockAPI().reply(json={"id": TASK, "polling_url": url}).reply(json=fixture("ready.json"))
    run(make(api, cdn_with(), base_url=base))
    assert [str(r.url) for r in api.requests] == [f"{base}/flux-2-pro", url]
    assert api.requests[1].headers["x-key"] == KEY


@pytest.mark.parametrize(
    "body", [{}, {"id": "../../v1/credits"}, {"id": 7}, {"id": TASK, "polling_url": 5}]
)
def test_submit_without_a_usable_job_is_an_invalid_response(body: dict) -> None:
    api = MockAPI().reply(json=body)
    accepted: list[str] = []
    with pytest.raises(InvalidResponse) as caught:
        run(make(api), CallContext(on_job_accepted=accepted.append))
    assert caught.value.code == "invalid_job_id"
    assert accepted == [] and len(api.requests) == 1


def test_resumed_job_polls_its_recorded_url_and_never_submits() -> None:
    api = MockAPI().reply(json=fixture("pending.json")).reply(json=fixture("ready.json"))
    accepted: list[str] = []
    context = CallContext(resume_job_id=JOB, on_job_accepted=accepted.append)
    result = run(make(api, cdn_with()), context)
    assert [(r.method, str(r.url)) for r in api.requests] == [("GET", POLL), ("GET", POLL)]
    assert accepted == []
    assert (result.job_id, result.cost) == (JOB, Decimal("0.030000"))


def test_a_bare_task_id_is_polled_on_the_configured_host() -> None:
    api = MockAPI().reply(json=fixture("ready.json"))
    run(make(api, cdn_with()), CallContext(resume_job_id=TASK))
    assert str(api.last.url) == f"{BASE}/get_result?id={TASK}"


@pytest.mark.parametrize(
    ("job", "code"),
    [
        (f"{TASK}|https://attacker.example/v1/get_result?id={TASK}", "polling_url_refused"),
        ("../../v1/credits|https://api.bfl.ai/v1/get_result", "invalid_job_id"),
    ],
)
def test_a_tampered_recorded_job_is_refused_without_a_request(job: str, code: str) -> None:
    api = MockAPI()
    with pytest.raises(ProviderError) as caught:
        run(make(api), CallContext(resume_job_id=job))
    assert caught.value.code == code and not caught.value.retryable
    assert api.requests == []


def test_polling_gives_up_at_poll_timeout_and_says_a_retry_resumes() -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("pending.json"), times=50)
    provider = make(api, poll_timeout=20)
    with pytest.raises(ProviderUnavailable) as caught:
        run(provider)
    error = caught.value
    assert (error.code, error.retryable) == ("timeout", True)
    assert TASK in error.message and "retry resumes polling" in error.message
    assert sum(provider.clock.sleeps) == pytest.approx(20)
    assert [r.method for r in api.requests].count("POST") == 1


def test_a_busy_poll_is_waited_out_honouring_retry_after() -> None:
    api = MockAPI().reply(json=SUBMIT)
    api.reply(503, json={"detail": "busy"}, headers={"retry-after": "3"})
    api.reply(json=fixture("ready.json"))
    provider = make(api, cdn_with())
    assert run(provider).images[0].content == JPEG
    assert provider.clock.sleeps == [3.0]


# Task outcomes -------------------------------------------------------------------------------


def test_error_status_is_a_failed_generation_with_the_message() -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("error.json"))
    cdn = MockAPI()
    with pytest.raises(ProviderError) as caught:
        run(make(api, cdn))
    error = caught.value
    assert (error.code, error.retryable, error.provider) == ("generation_failed", False, "bfl")
    assert "internal inference error" in error.message and TASK in error.message
    assert cdn.requests == []


def test_failed_status_is_final_and_not_polled_to_the_timeout() -> None:
    # A peer SDK treats "Failed" as final; before, it was polled until poll_timeout.
    failed = {"id": TASK, "status": "Failed", "details": {"error": "Generation failed"}}
    api = MockAPI().reply(json=SUBMIT).reply(json=failed).reply(json=failed, times=50)
    provider = make(api)
    with pytest.raises(ProviderError) as caught:
        run(provider)
    assert caught.value.code == "generation_failed" and not caught.value.retryable
    assert "Generation failed" in caught.value.message
    assert [r.method for r in api.requests] == ["POST", "GET"]


def test_error_status_falls_back_to_result_error() -> None:
    failed = {"id": TASK, "status": "Error", "result": {"error": "Out of memory"}}
    api = MockAPI().reply(json=SUBMIT).reply(json=failed)
    with pytest.raises(ProviderError, match="Out of memory"):
        run(make(api))


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("request_moderated.json", "Request Moderated"),
        ("content_moderated.json", "Content Moderated"),
    ],
)
def test_moderation_statuses_are_content_rejected(name: str, what: str) -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture(name))
    cdn = MockAPI()
    with pytest.raises(ContentRejected) as caught:
        run(make(api, cdn))
    error = caught.value
    assert (error.code, error.retryable) == ("content_rejected", False)
    assert what in error.message and "refused again" in error.message
    assert cdn.requests == []


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (200, fixture("task_not_found.json")),
        (404, fixture("task_not_found.json")),
        (404, {"detail": "Not Found"}),
    ],
)
def test_task_not_found_is_a_clear_final_error(status: int, payload: dict) -> None:
    api = MockAPI().reply(status, json=payload)
    with pytest.raises(ProviderError) as caught:
        run(make(api), CallContext(resume_job_id=JOB))
    error = caught.value
    assert (error.code, error.retryable) == ("job_not_found", False)
    assert len(api.requests) == 1  # not polled again


def test_task_not_found_names_the_host_that_was_asked() -> None:
    api = MockAPI().reply(json=fixture("task_not_found.json"))
    with pytest.raises(ProviderError, match=r"api\.us1\.bfl\.ai.*another region"):
        run(make(api), CallContext(resume_job_id=JOB))


def test_a_422_poll_whose_body_is_a_task_result_is_read_as_one() -> None:
    # §6.3 [OBSERVED]: a poll can answer HTTP 422 with a task result.
    api = MockAPI().reply(json=SUBMIT).reply(422, json=fixture("ready.json"))
    assert run(make(api, cdn_with())).images[0].content == JPEG


def test_a_422_poll_with_a_validation_error_is_an_invalid_request() -> None:
    api = MockAPI().reply(422, json=fixture("error_validation.json"))
    with pytest.raises(ProviderError) as caught:
        run(make(api), CallContext(resume_job_id=JOB))
    assert caught.value.code == "invalid_request"


def test_ready_without_a_sample_is_an_invalid_response() -> None:
    ready = {"id": TASK, "status": "Ready", "result": {"seed": 1}}
    api = MockAPI().reply(json=SUBMIT).reply(json=ready)
    with pytest.raises(InvalidResponse) as caught:
        run(make(api))
    assert caught.value.code == "no_images"


# Downloading the result ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 404, 410])
def test_an_expired_result_url_is_download_expired(status: int) -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("ready.json"))
    cdn = MockAPI().reply(status, content=b"<Error>AuthenticationFailed</Error>")
    with pytest.raises(ProviderError) as caught:
        run(make(api, cdn))
    error = caught.value
    assert (error.code, error.retryable, error.status_code) == ("download_expired", False, status)
    assert "10 minutes" in error.message and TASK in error.message
    assert "SIGNATURE-SECRET" not in error.message


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1:8000/sample.jpeg", "https://127.0.0.1/sample.jpeg", "https://[::1]/x"],
)
def test_a_redirect_of_the_result_url_to_loopback_is_refused(location: str) -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("ready.json"))
    cdn = MockAPI().reply(302, headers={"location": location})
    with pytest.raises(InvalidResponse) as caught:
        run(make(api, cdn))
    assert caught.value.code == "download_redirect_refused"
    assert len(cdn.requests) == 1  # the redirect itself, never its target
    assert "SIGNATURE-SECRET" not in caught.value.message


def test_a_delivery_host_resolving_to_loopback_is_refused() -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("ready.json"))
    cdn = MockAPI()
    provider = make(api)
    wire(provider, cdn, resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(InvalidResponse) as caught:
        run(provider)
    assert caught.value.code == "download_private_address"
    assert cdn.requests == []


def test_a_result_url_off_the_delivery_hosts_is_refused() -> None:
    ready = fixture("ready.json")
    ready["result"]["sample"] = "https://files.example.com/sample.jpeg"
    api = MockAPI().reply(json=SUBMIT).reply(json=ready)
    cdn = MockAPI()
    with pytest.raises(InvalidResponse) as caught:
        run(make(api, cdn))
    assert caught.value.code == "download_host_not_allowed"
    assert cdn.requests == []


# Submit errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "payload", "headers", "cls", "code"),
    [
        (402, fixture("error_insufficient_credits.json"), {}, QuotaExceeded, "quota_exceeded"),
        (422, fixture("error_validation.json"), {}, ProviderError, "invalid_request"),
        (429, fixture("error_rate_limit.json"), {"retry-after": "5"}, RateLimited, "rate_limited"),
        (401, {"detail": "Not authenticated"}, {}, ProviderError, "authentication_failed"),
        (403, {"detail": "Forbidden"}, {}, ProviderError, "permission_denied"),
        (404, {"detail": "Not Found"}, {}, ModelUnavailable, "model_unavailable"),
        (500, {"detail": "Internal"}, {}, ProviderUnavailable, "provider_unavailable"),
    ],
)
def test_submit_errors_map_to_the_error_tree_and_record_no_job(
    status, payload, headers, cls, code
) -> None:
    BFL.check_error(MockAPI(), status, payload, cls, code, headers=headers)


def test_validation_errors_name_the_field() -> None:
    api = MockAPI().reply(422, json=fixture("error_validation.json"))
    with pytest.raises(ProviderError) as caught:
        run(make(api, model="flux-pro-1.1"), width=1000)
    message = caught.value.message
    assert "(field 'width')" in message and "width: Input should be a multiple of 32" in message


def test_rate_limit_carries_retry_after() -> None:
    api = MockAPI().reply(429, json=fixture("error_rate_limit.json"), headers={"retry-after": "5"})
    with pytest.raises(RateLimited) as caught:
        run(make(api))
    assert caught.value.retry_after == 5 and caught.value.retryable


def test_unknown_endpoint_names_the_model() -> None:
    api = MockAPI().reply(404, json={"detail": "Not Found"})
    with pytest.raises(ModelUnavailable, match="no endpoint flux-9-mega"):
        run(make(api, model="flux-9-mega"))


def test_the_key_is_redacted_from_provider_text() -> None:
    api = MockAPI().reply(400, json={"detail": f"bad key {KEY}"})
    with pytest.raises(ProviderError) as caught:
        run(make(api))
    assert KEY not in str(caught.value) and "[redacted]" in str(caught.value)


# Cost ----------------------------------------------------------------------------------------


def test_the_poll_cost_wins_over_the_submit_echo() -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=with_cost(fixture("ready.json"), 4.5))
    result = run(make(api, cdn_with()))
    assert (result.cost, result.usage["credits"]) == (Decimal("0.045000"), 4.5)


def test_the_submit_echo_is_used_when_the_poll_has_no_cost() -> None:
    api = MockAPI().reply(json=with_cost(SUBMIT, "6.25"))
    api.reply(json=fixture("ready_without_cost.json"))
    result = run(make(api, cdn_with()))
    assert result.cost == Decimal("0.062500") and result.warnings == ()


def test_no_cost_anywhere_bills_the_catalog_estimate_with_a_warning() -> None:
    api = MockAPI().reply(json=fixture("ready_without_cost.json"))
    provider = make(api, cdn_with(), model="flux-pro-1.1")
    result = run(provider, CallContext(resume_job_id=JOB1))
    assert result.cost == Decimal("0.040000") and result.usage == {}
    assert "reported no cost" in result.warnings[0]


@pytest.mark.parametrize("bogus", [-3, "lots", True, "NaN", "Infinity"])
def test_a_nonsense_cost_is_ignored(bogus: Any) -> None:
    api = MockAPI().reply(json=with_cost(fixture("ready_without_cost.json"), bogus))
    result = run(make(api, cdn_with(), model="flux-pro-1.1"), CallContext(resume_job_id=JOB1))
    assert result.cost == Decimal("0.040000") and "credits" not in result.usage


# Catalog and prices --------------------------------------------------------------------------


def test_catalog_lists_every_endpoint_of_the_reference() -> None:
    models = {info.id: info for info in catalog.models_for("bfl")}
    assert set(models) == {
        "flux-2-max",
        "flux-2-pro",
        "flux-2-flex",
        "flux-2-klein-4b",
        "flux-2-klein-9b",
        "flux-2-pro-preview",
        "flux-kontext-max",
        "flux-kontext-pro",
        "flux-pro-1.1-ultra",
        "flux-pro-1.1",
        "flux-pro-1.0-fill",
        "flux-pro-1.0-expand",
        "flux-pro",
        "flux-dev",
    }
    expand = models.pop("flux-pro-1.0-expand")
    assert expand.capabilities.support("outpaint") is not None
    assert expand.price.estimate(ImageRequest(prompt=PROMPT)) == Decimal("0.05")
    fill = models.pop("flux-pro-1.0-fill")
    assert fill.capabilities.edit and fill.capabilities.mask
    assert fill.price.estimate(ImageRequest(prompt=PROMPT)) == Decimal("0.05")
    caps = {model: info.capabilities for model, info in models.items()}
    assert caps["flux-2-pro"] is FLUX2_CAPS and caps["flux-2-klein-4b"] is KLEIN_CAPS
    assert caps["flux-pro-1.1"] is FLUX1_CAPS and caps["flux-dev"] is FLUX1_CAPS
    assert caps["flux-pro-1.1-ultra"] is ULTRA_CAPS and caps["flux-kontext-pro"] is KONTEXT_CAPS
    for info in models.values():
        c = info.capabilities
        assert (c.max_count, c.seed, c.negative_prompt, c.mask) == (1, True, False, False)
        assert c.output_formats == ("jpeg", "png")
        assert info.status() == "active"
    assert (FLUX2_CAPS.size_multiple, FLUX2_CAPS.max_pixels, FLUX2_CAPS.edit) == (16, 2048**2, True)
    assert (FLUX1_CAPS.min_side, FLUX1_CAPS.max_side, FLUX1_CAPS.size_multiple) == (256, 1440, 32)
    assert KONTEXT_CAPS.edit and not ULTRA_CAPS.edit


@pytest.mark.parametrize(
    ("model", "size", "edit", "expected"),
    [
        # BFL's API skill: cents = firstMP + (outputMP - 1) x mpPrice + inputMP x mpPrice; its
        # "1MP T2I" and "1MP I2I" columns are the worked examples (a 1 MP edit has a 1 MP input).
        ("flux-2-pro", (1024, 1024), False, "0.030000"),
        ("flux-2-pro", (512, 512), False, "0.030000"),
        ("flux-2-pro", (1536, 864), False, "0.045000"),  # 1.27 MP billed as 2: 3 + 1.5 cents
        ("flux-2-pro", (2048, 2048), False, "0.075000"),  # 4 MP: 3 + 3 x 1.5 cents
        ("flux-2-pro", (1024, 1024), True, "0.045000"),
        ("flux-2-max", (1024, 1024), False, "0.070000"),
        ("flux-2-max", (1024, 1024), True, "0.100000"),
        ("flux-2-flex", (1024, 1024), False, "0.050000"),
        ("flux-2-flex", (1024, 1024), True, "0.100000"),
        ("flux-2-klein-4b", (1024, 1024), False, "0.014000"),
        ("flux-2-klein-4b", (1024, 1024), True, "0.015000"),
        ("flux-2-klein-9b", (1024, 1024), False, "0.015000"),
        ("flux-2-klein-9b", (1024, 1024), True, "0.017000"),
        ("flux-2-max", (2048, 1024), False, "0.100000"),  # 2 MP: 7 + 3 cents
        # Per image whatever the size (§6.4; Kontext from BFL's pricing page).
        ("flux-pro-1.1", (1440, 800), False, "0.040000"),
        ("flux-pro-1.1-ultra", (2048, 2048), False, "0.060000"),
        ("flux-kontext-pro", (1024, 1024), True, "0.040000"),
        ("flux-kontext-max", (1024, 1024), False, "0.080000"),
    ],
)
def test_estimates_follow_the_reference_prices(model, size, edit, expected) -> None:
    info = catalog.get_model("bfl", model)
    sources = (PNG,) if edit else ()
    request = ImageRequest(prompt=PROMPT, width=size[0], height=size[1], source_images=sources)
    assert info.price.estimate(request) == Decimal(expected)
    assert info.price.actual(request, {}, 1) == Decimal(expected)


def test_prices_describe_themselves() -> None:
    assert catalog.get_model("bfl", "flux-2-pro").price.describe() == (
        "$0.03 for the first megapixel, $0.015 for each further one, $0.015 per input megapixel"
    )
    assert catalog.get_model("bfl", "flux-pro-1.1").price.describe() == "$0.04 per image"


def test_prepare_fits_requests_to_each_family() -> None:
    hero = ImageRequest(prompt=PROMPT, width=1536, height=864, aspect_ratio="16:9", count=3)
    flux2 = BFLProvider(alias="bfl", api_key=KEY)
    calls, warnings = flux2.prepare(replace(hero, output_format="webp"))
    assert [(c.width, c.height, c.count, c.output_format) for c in calls] == [
        (1536, 864, 1, "jpeg")
    ] * 3
    assert any("cannot return webp" in w for w in warnings)
    assert any("in 3 calls" in w for w in warnings)
    flux1 = BFLProvider(alias="bfl", api_key=KEY, model="flux-pro-1.1")
    calls, warnings = flux1.prepare(ImageRequest(prompt=PROMPT, width=1536, height=864))
    assert (calls[0].width, calls[0].height) == (1440, 800)
    assert "using 1440x800" in warnings[0]
    ultra = BFLProvider(alias="bfl", api_key=KEY, model="flux-pro-1.1-ultra")
    calls, _ = ultra.prepare(ImageRequest(prompt=PROMPT, width=1536, height=864, seed=3))
    assert (calls[0].aspect_ratio, calls[0].seed) == ("16:9", 3)
    calls, warnings = flux2.prepare(ImageRequest(prompt=PROMPT, negative_prompt="blur"))
    assert calls[0].negative_prompt == "" and "negative prompt" in warnings[0]


# The whole pipeline --------------------------------------------------------------------------


@pytest.mark.django_db
def test_pipeline_succeeds_with_the_reported_cost(settings) -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("ready.json"))
    BFL.configure(settings, api, cdn_with())
    generation = imagegen.generate(prompt="a red fox", provider="bfl")
    generation.refresh_from_db()
    assert generation.status == "succeeded", generation.error_message
    assert generation.model == "flux-2-pro"
    assert generation.estimated_cost == generation.cost == Decimal("0.030000")
    assert generation.usage == {"credits": 3, "input_mp": 0, "output_mp": 1.05}
    assert generation.provider_job_id == JOB
    image = generation.images.get()
    assert (image.mime_type, image.seed) == ("image/jpeg", 1234567890)
    assert image.file.read() == JPEG
    assert api.requests[0].headers["x-key"] == "test-key"
    assert "a red fox" in body_of(api.requests[0])["prompt"]


@pytest.mark.django_db
def test_pipeline_moderation_fails_the_row_without_files(settings) -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("content_moderated.json"))
    BFL.configure(settings, api, MockAPI())
    generation = imagegen.generate(prompt="a red fox", provider="bfl")
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == ("failed", "content_rejected")
    assert generation.cost is None
    assert generation.provider_job_id == JOB
    assert media_files(settings) == []


@pytest.mark.django_db
def test_an_accepted_job_that_was_interrupted_resumes_by_polling_and_never_submits_again(
    settings,
) -> None:
    """A job interrupted after the provider accepted it resumes by polling, never resubmitting."""
    # BFL's API as a router: submit answers a job, polls answer Pending until ``ready``.
    api = FakeJobAPI(SUBMIT, fixture("pending.json"), fixture("ready.json"))
    finished, polls = BFL.interrupt_and_resume(settings, api, cdn_with(), JOB)
    assert polls == [POLL]
    assert finished.cost == Decimal("0.030000")
    assert finished.images.get().file.read() == JPEG


class SplitJobs:
    """BFL's API for a split request: each submit is a new task; task 1 finishes at once,
    the others stay Pending until ``ready`` is set."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.ready = False
        self.transport = httpx.MockTransport(self.handle)

    def posts(self) -> int:
        return [r.method for r in self.requests].count("POST")

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if request.method == "POST":
            task = f"task-{self.posts()}"
            url = f"https://api.us1.bfl.ai/v1/get_result?id={task}"
            return httpx.Response(200, json={**SUBMIT, "id": task, "polling_url": url})
        task = request.url.params["id"]
        done = task == "task-1" or self.ready
        return httpx.Response(200, json={**fixture("ready.json" if done else "pending.json"),
                                         "id": task})  # fmt: skip


@pytest.mark.django_db
def test_a_split_request_interrupted_mid_way_resumes_every_accepted_job(settings) -> None:
    """Two calls (one image each): the worker is cut off while the second job is pending.

    The redelivered task polls both recorded jobs, the finished one included, and submits
    nothing: two jobs paid, two images, never a third submit.
    """
    from imagegen.models import Status
    from imagegen.services import run_generation
    from tests.providers.support import QUEUE_ONLY

    api = SplitJobs()
    # Three downloads: task 1's result on the first run, both results on the second.
    cdn = MockAPI().reply(content=JPEG, headers={"content-type": "image/jpeg"}, times=3)
    BFL.configure(settings, api, cdn, runner=QUEUE_ONLY, poll_timeout=30)
    generation = imagegen.generate(prompt="a red fox", provider="bfl", count=2)
    assert generation.params["calls"] == [1, 1]

    with pytest.raises(ProviderUnavailable):
        run_generation(generation.pk, retrying=True)
    generation.refresh_from_db()
    poll = "https://api.us1.bfl.ai/v1/get_result?id="
    assert generation.status == Status.QUEUED
    assert generation.provider_job_id == f"task-1|{poll}task-1,task-2|{poll}task-2"
    assert api.posts() == 2
    assert media_files(settings) == []

    api.ready = True
    finished = run_generation(generation.pk, retrying=True)

    finished.refresh_from_db()
    assert finished.status == Status.SUCCEEDED, finished.error_message
    assert api.posts() == 2
    assert finished.images.count() == 2
    assert finished.cost == Decimal("0.060000")
    assert len(cdn.requests) == 3


# Operations ----------------------------------------------------------------------------------


def test_kontext_takes_the_source_and_three_references_with_an_instruction() -> None:
    api = MockAPI().reply(json=SUBMIT1).reply(json=fixture("ready_flux1.json"))
    images = (PNG, JPEG, png_bytes(color=(1, 2, 3)), png_bytes(color=(4, 5, 6)))
    run(
        make(api, cdn_with(), model="flux-kontext-max"),
        operation="restyle",
        source_images=images,
        prompt="a watercolour wash",
    )
    body = body_of(api.requests[0])
    assert api.requests[0].url.path == "/v1/flux-kontext-max"
    names = ["input_image", "input_image_2", "input_image_3", "input_image_4"]
    assert [body[name] for name in names] == [b64(image) for image in images]
    assert body["prompt"] == (
        "Apply the style of image 2 to image 1: a watercolour wash. Keep the subject and "
        "composition of image 1; take only the look (palette, texture, medium) from image 2."
    )


@pytest.mark.parametrize(
    ("operation", "search", "prompt"),
    [
        ("replace_background", "", "Change the background to a beach. Keep the subject exactly "
         "as it is: its shape, edges, colours, lighting and position."),
        ("search_replace", "the cup", "Replace the cup with a beach. Keep everything else "
         "exactly the same."),
        ("search_recolor", "the cup", "Change the colour of the cup: a beach. Keep everything "
         "else the same."),
        ("edit", "", "a beach"),
    ],
)  # fmt: skip
def test_flux2_operations_are_instructions_over_input_images(operation, search, prompt) -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("ready.json"))
    run(
        make(api, cdn_with()),
        operation=operation,
        search=search,
        source_images=(PNG,) * 8,
        prompt="a beach",
    )
    body = body_of(api.requests[0])
    assert body["prompt"] == prompt
    assert body["input_image_8"] == b64(PNG) and "input_image_9" not in body


def test_expand_sends_the_padding_of_each_side_and_no_size() -> None:
    api = MockAPI().reply(json=SUBMIT1).reply(json=fixture("ready_flux1.json"))
    result = run(
        make(api, cdn_with(), model="flux-pro-1.0-expand"),
        operation="outpaint",
        source_images=(PNG,),
        padding=(16, 0, 48, 8),
        width=128,
        height=56,
        prompt="more of the beach",
    )
    submit = api.requests[0]
    assert submit.url.path == "/v1/flux-pro-1.0-expand"
    body = body_of(submit)
    assert body == {
        "prompt": "more of the beach",
        "image": b64(PNG),
        "top": 0,
        "bottom": 8,
        "left": 16,
        "right": 48,
        "output_format": "png",
    }
    assert result.cost == Decimal("0.04")  # the Ready poll's 4 credits


def test_fill_erases_with_a_prompt_of_its_own() -> None:
    api = MockAPI().reply(json=SUBMIT1).reply(json=fixture("ready_flux1.json"))
    run(
        make(api, cdn_with(), model="flux-pro-1.0-fill"),
        operation="erase",
        source_images=(PNG,),
        mask=PNG,
        prompt="erase",
    )
    assert body_of(api.requests[0])["prompt"].startswith("Empty background that continues")


@pytest.mark.parametrize(
    ("model", "fields", "message"),
    [
        ("flux-pro-1.0-expand", {"padding": (0, 0, 2049, 0)}, "at most 2048 pixels on a side"),
        ("flux-pro-1.0-expand", {"padding": None}, "needs a source image and padding"),
    ],
)
def test_impossible_expansions_are_refused_before_sending(model, fields, message) -> None:
    api = MockAPI()
    with pytest.raises(UnsupportedRequest, match=message):
        run(make(api, model=model), operation="outpaint", source_images=(PNG,), **fields)
    assert api.requests == []


@pytest.mark.parametrize(
    ("model", "operation", "cannot"),
    [
        ("flux-2-pro", "outpaint", "cannot outpaint"),
        ("flux-2-pro", "inpaint", "cannot inpaint"),
        ("flux-pro-1.0-fill", "restyle", "cannot restyle"),
        ("flux-pro-1.0-expand", "edit", "cannot edit"),
        ("flux-pro-1.1", "replace_background", "cannot replace background"),
    ],
)
def test_each_endpoint_does_only_its_own_operations(model, operation, cannot) -> None:
    provider = BFLProvider(alias="bfl", api_key=KEY, model=model)
    request = ImageRequest(prompt=PROMPT, operation=operation, source_images=(PNG,))
    with pytest.raises(UnsupportedRequest, match=cannot):
        provider.prepare(request)


def test_the_catalog_describes_each_operation() -> None:
    def support(model: str, operation: str):
        return catalog.get_model("bfl", model).capabilities.support(operation)

    assert support("flux-2-pro", "restyle").max_references == 7
    assert support("flux-2-klein-9b", "edit").max_references == 3
    assert support("flux-kontext-pro", "edit").max_references == 3
    assert support("flux-pro-1.0-fill", "inpaint").mask == "required"
    assert support("flux-pro-1.0-expand", "outpaint").mask == "none"
    assert support("flux-pro-1.1", "edit") is None


@pytest.mark.django_db
def test_pipeline_kontext_background_with_cost_and_lineage(settings) -> None:
    api = MockAPI().reply(json=SUBMIT1).reply(json=fixture("ready_flux1.json"))
    BFL.configure(settings, api, cdn_with(), model="flux-kontext-pro")
    first = imagegen.generate(prompt="a cup", provider="default").images.get()
    generation = imagegen.generate(
        operation="replace_background",
        provider="bfl",
        source=first,
        reference=png_bytes(color=(0, 90, 200)),
        prompt="a sunlit kitchen",
    )
    generation.refresh_from_db()
    assert generation.status == "succeeded", generation.error_message
    assert generation.estimated_cost == Decimal("0.040000")
    assert generation.cost == Decimal("0.040000")  # the poll's 4 credits
    assert generation.provider_job_id == JOB1
    image = generation.images.get()
    assert image.lineage() == [image, first]
    body = body_of(api.requests[0])
    assert body["prompt"].startswith("Change the background to a sunlit kitchen")
    assert {"input_image", "input_image_2"} <= set(body) and "input_image_3" not in body


@pytest.mark.django_db
def test_pipeline_moderated_edit_fails_the_row(settings) -> None:
    api = MockAPI().reply(json=SUBMIT).reply(json=fixture("request_moderated.json"))
    BFL.configure(settings, api, MockAPI())
    generation = imagegen.generate(
        operation="edit", provider="bfl", source=png_bytes(), prompt="something refused"
    )
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == ("failed", "content_rejected")
    assert "Request Moderated" in generation.error_message
    assert generation.provider_job_id == JOB
    assert not generation.images.exists()


@pytest.mark.django_db
def test_an_interrupted_outpaint_resumes_by_polling_and_never_submits_again(settings) -> None:
    api = FakeJobAPI(SUBMIT, fixture("pending.json"), fixture("ready.json"))
    finished, polls = BFL.interrupt_and_resume(
        settings,
        api,
        cdn_with(),
        JOB,
        operation="outpaint",
        source=png_bytes(64, 48),
        padding=(32, 0, 32, 0),
        model="flux-pro-1.0-expand",
    )
    assert polls == [POLL]
    assert finished.operation == "outpaint" and finished.model == "flux-pro-1.0-expand"
    body = body_of(api.requests[0])
    assert api.requests[0].url.path == "/v1/flux-pro-1.0-expand"
    assert (body["left"], body["right"], body["top"], body["bottom"]) == (32, 32, 0, 0)


@pytest.mark.django_db
def test_an_inpaint_on_an_editing_endpoint_is_refused_naming_the_fill_alias(settings) -> None:
    settings.IMAGEGEN = {
        "PROVIDERS": {
            "default": {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"},
            "bfl": {"BACKEND": BFL.backend, "OPTIONS": {"api_key": "k"}},
            "bfl-fill": {
                "BACKEND": BFL.backend,
                "OPTIONS": {"api_key": "k", "model": "flux-pro-1.0-fill"},
            },
        }
    }
    with pytest.raises(UnsupportedRequest) as caught:
        imagegen.generate(
            operation="inpaint", provider="bfl", source=png_bytes(), mask=(0, 0, 8, 8), prompt="x"
        )
    assert "Black Forest Labs cannot inpaint images" in str(caught.value)
    assert str(caught.value).endswith("Configured providers that can: default, bfl-fill.")
