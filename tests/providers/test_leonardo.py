"""Tests for the Leonardo.Ai provider at the wire level (provider-apis.md §5), mocked HTTP.

Built by a :class:`~tests.providers.support.PollingHarness`: image downloads come from a second
:class:`MockAPI` and polling runs on a manual clock.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import httpx
import pytest

import imagegen
from imagegen import catalog
from imagegen.catalog.leonardo import CREDIT_PRICE, DEFAULT_MODEL, V1_CAPS
from imagegen.exceptions import (
    InvalidProviderError,
    InvalidResponse,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnsupportedRequest,
)
from imagegen.providers.leonardo import LeonardoProvider
from imagegen.types import CallContext, ImageRequest
from tests.conftest import media_files, png_bytes
from tests.providers.conftest import MockAPI
from tests.providers.support import PROMPT, FakeJobAPI, PollingHarness, body_of

KEY = "leo-test-key-SECRET-0123456789abcdef"
BASE = "https://cloud.leonardo.ai/api/rest/v1"
JPEG_0 = png_bytes(fmt="JPEG")
JPEG_1 = png_bytes(color=(10, 200, 30), fmt="JPEG")
LEONARDO = PollingHarness(LeonardoProvider, "leonardo", key=KEY)
fixture, make, run = LEONARDO.fixture, LEONARDO.make, LEONARDO.run

CREATE = fixture("create.json")
JOB = CREATE["sdGenerationJob"]["generationId"]
COMPLETE = fixture("complete.json")
URLS = [image["url"] for image in COMPLETE["generations_by_pk"]["generated_images"]]


def cdn_with(*contents: bytes) -> MockAPI:
    cdn = MockAPI()
    for content in contents or (JPEG_0, JPEG_1):
        cdn.reply(content=content, headers={"content-type": "image/jpeg"})
    return cdn


def flagged(*nsfw: bool) -> dict[str, Any]:
    """Return the COMPLETE fixture with its images' nsfw flags set to ``nsfw``."""
    payload = copy.deepcopy(COMPLETE)
    for image, flag in zip(payload["generations_by_pk"]["generated_images"], nsfw, strict=True):
        image["nsfw"] = flag
    return payload


# Identity and options ----------------------------------------------------------------------


def test_identity() -> None:
    provider = LeonardoProvider(alias="leonardo", api_key=KEY)
    assert (provider.catalog_key, provider.display_name) == ("leonardo", "Leonardo.Ai")
    assert provider.model == DEFAULT_MODEL == "b24e16ff-06e3-43eb-8d33-4416c2d75876"
    assert provider.base_url == BASE
    assert provider.api_key_env == "LEONARDO_API_KEY"
    assert provider.default_download_hosts == ("cdn.leonardo.ai",)
    assert provider.auth_headers() == {"Authorization": f"Bearer {KEY}"}
    assert provider.rate == CREDIT_PRICE == Decimal("0.0015")
    assert KEY not in repr(provider)


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"preset_style": "VAPORWAVE"}, "preset_style"),
        ({"preset_style": "DYNAMIC"}, 'needs "alchemy": True'),
        ({"alchemy": "yes"}, "alchemy"),
        ({"public": 1}, "public"),
        ({"credit_price": "-1"}, "credit_price"),
        ({"credit_price": "cheap"}, "credit_price"),
        ({"credit_price": True}, "credit_price"),
        ({"credit_price": "NaN"}, "credit_price"),
        ({"poll_timeout": 0}, "poll_timeout"),
        ({"quality": "high"}, "quality"),
    ],
)
def test_options_are_validated(options: dict, text: str) -> None:
    with pytest.raises(InvalidProviderError, match=text):
        LeonardoProvider(alias="leonardo", api_key=KEY, **options)


def test_styles_without_alchemy_are_the_plain_ones() -> None:
    assert LeonardoProvider(alias="l", api_key=KEY, preset_style="NONE").preset_style == "NONE"
    provider = LeonardoProvider(alias="l", api_key=KEY, alchemy=True, preset_style="CINEMATIC")
    assert (provider.alchemy, provider.preset_style) == (True, "CINEMATIC")


# Create, poll, download ----------------------------------------------------------------------


def test_create_poll_and_download_on_the_wire() -> None:
    accepted: list[str] = []
    seen_at_first_poll: list[list[str]] = []

    def first_poll(request: httpx.Request) -> httpx.Response:
        seen_at_first_poll.append(list(accepted))
        return httpx.Response(200, json=fixture("pending.json"))

    api = MockAPI().reply(json=CREATE).then(first_poll).reply(json=COMPLETE)
    cdn = cdn_with()
    provider = make(api, cdn)
    context = CallContext(on_job_accepted=accepted.append)
    result = run(provider, context, width=1024, height=768, count=2, seed=7, negative_prompt="text")

    create, *polls = api.requests
    assert (create.method, str(create.url)) == ("POST", f"{BASE}/generations")
    assert create.headers["authorization"] == f"Bearer {KEY}"
    assert create.headers["content-type"] == "application/json"
    # §5.2: the API's mixed casing, exactly; the spec's costly defaults are never relied upon.
    assert body_of(create) == {
        "prompt": PROMPT,
        "modelId": DEFAULT_MODEL,
        "width": 1024,
        "height": 768,
        "num_images": 2,
        "negative_prompt": "text",
        "seed": 7,
        "alchemy": False,
        "public": False,
    }
    assert [(r.method, str(r.url)) for r in polls] == [("GET", f"{BASE}/generations/{JOB}")] * 2
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in polls)
    assert accepted == [JOB] and seen_at_first_poll == [[JOB]]
    assert [r.headers["host"] for r in cdn.requests] == ["cdn.leonardo.ai"] * 2
    assert [r.url.path for r in cdn.requests] == [httpx.URL(u).path for u in URLS]
    assert all("authorization" not in r.headers for r in cdn.requests)
    assert [i.content for i in result.images] == [JPEG_0, JPEG_1]
    assert {(i.mime_type, i.seed) for i in result.images} == {("image/jpeg", 905778432)}
    assert result.job_id == JOB and result.model == DEFAULT_MODEL
    assert result.cost == Decimal("0.018000")  # 12 credits at $0.0015
    assert result.usage == {"credits": 12}
    assert (result.filtered, result.warnings) == (False, ())
    assert provider.clock.sleeps == [2.0]


def test_options_are_sent_with_their_api_names_and_extra_overrides_them() -> None:
    api = MockAPI().reply(json=CREATE).reply(json=COMPLETE)
    provider = make(api, cdn_with(), alchemy=True, preset_style="CINEMATIC", public=True)
    extra = {"guidance_scale": 7, "photoReal": True, "contrastRatio": 0.5, "public": False}
    run(provider, extra=extra)
    body = body_of(api.requests[0])
    assert (body["alchemy"], body["presetStyle"], body["public"]) == (True, "CINEMATIC", False)
    assert (body["guidance_scale"], body["photoReal"], body["contrastRatio"]) == (7, True, 0.5)
    assert "negative_prompt" not in body and "seed" not in body


def test_pending_and_unknown_statuses_are_polled_with_backoff() -> None:
    api = MockAPI().reply(json=CREATE)
    pending = fixture("pending.json")
    queued = copy.deepcopy(pending)
    queued["generations_by_pk"]["status"] = "QUEUED"
    api.reply(json=pending).reply(json=queued).reply(json=pending).reply(json=COMPLETE)
    provider = make(api, cdn_with(), poll_interval=1)
    run(provider, count=2)
    assert provider.clock.sleeps == [1.0, 1.5, 2.25]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"source_images": (JPEG_0,)}, "only text-to-image"),
        ({"extra": {"num_images": 4}}, "num_images"),
        ({"extra": {"modelId": "x"}}, "modelId"),
        ({"model": "flux-pro-2.0"}, "not a Leonardo.Ai model UUID"),
        ({"model": "../me"}, "not a Leonardo.Ai model UUID"),
    ],
)
def test_impossible_requests_are_refused_before_sending(fields: dict, message: str) -> None:
    api = MockAPI()
    with pytest.raises(UnsupportedRequest, match=message):
        run(make(api), **fields)
    assert api.requests == []


def test_v2_model_slugs_are_refused_when_planning() -> None:
    provider = LeonardoProvider(alias="leonardo", api_key=KEY)
    with pytest.raises(UnsupportedRequest, match="v2"):
        provider.prepare(ImageRequest(prompt=PROMPT, model="gpt-image-2"))
    with pytest.raises(UnsupportedRequest, match="cannot edit"):
        provider.prepare(ImageRequest(prompt=PROMPT, operation="edit"))


# Moderation flags ----------------------------------------------------------------------------


def test_an_image_flagged_nsfw_is_dropped_with_a_warning_and_still_charged() -> None:
    api = MockAPI().reply(json=CREATE).reply(json=flagged(False, True))
    cdn = cdn_with(JPEG_0)
    result = run(make(api, cdn), count=2)
    assert [i.content for i in result.images] == [JPEG_0]
    assert [r.url.path for r in cdn.requests] == [httpx.URL(URLS[0]).path]  # never fetched
    assert result.filtered is False
    assert result.cost == Decimal("0.018000")
    assert "flagged 1 of 2 image(s) as NSFW" in result.warnings[0]


def test_every_image_flagged_nsfw_is_a_filtered_charged_result() -> None:
    api = MockAPI().reply(json=CREATE).reply(json=flagged(True, True))
    cdn = MockAPI()
    result = run(make(api, cdn), count=2)
    assert (result.images, result.filtered) == ((), True)
    assert result.cost == Decimal("0.018000") and result.usage == {"credits": 12}
    assert "flagged 2 of 2" in result.warnings[0]
    assert cdn.requests == []


# Failures ------------------------------------------------------------------------------------


def test_failed_generation_is_a_final_error_without_downloads() -> None:
    api = MockAPI().reply(json=CREATE).reply(json=fixture("failed.json"))
    cdn = MockAPI()
    with pytest.raises(ProviderError) as caught:
        run(make(api, cdn))
    error = caught.value
    assert (error.code, error.retryable, error.provider) == (
        "generation_failed",
        False,
        "leonardo",
    )
    assert JOB in error.message
    assert cdn.requests == []


@pytest.mark.parametrize(
    ("status", "payload"),
    [(200, fixture("not_found.json")), (404, {"error": "not found", "path": "$", "code": "x"})],
)
def test_an_unknown_generation_is_job_not_found(status: int, payload: dict) -> None:
    api = MockAPI().reply(status, json=payload)
    with pytest.raises(ProviderError) as caught:
        run(make(api), CallContext(resume_job_id=JOB))
    assert (caught.value.code, caught.value.retryable) == ("job_not_found", False)
    assert len(api.requests) == 1


def test_complete_without_images_is_an_invalid_response() -> None:
    empty = copy.deepcopy(COMPLETE)
    empty["generations_by_pk"]["generated_images"] = []
    api = MockAPI().reply(json=CREATE).reply(json=empty)
    with pytest.raises(InvalidResponse) as caught:
        run(make(api))
    assert caught.value.code == "no_images"


@pytest.mark.parametrize(
    ("status", "payload", "headers", "cls", "code"),
    [
        (400, fixture("error_bad_request.json"), {}, ProviderError, "invalid_request"),
        (401, fixture("error_unauthorized.json"), {}, ProviderError, "authentication_failed"),
        (403, {"error": "forbidden"}, {}, ProviderError, "permission_denied"),
        (429, {"error": "slow down"}, {"retry-after": "4"}, RateLimited, "rate_limited"),
        (500, fixture("error_internal.json"), {}, ProviderUnavailable, "provider_unavailable"),
    ],
)
def test_create_errors_map_to_the_error_tree_and_record_no_job(
    status, payload, headers, cls, code
) -> None:
    LEONARDO.check_error(MockAPI(), status, payload, cls, code, headers=headers)


def test_a_bad_request_quotes_leonardos_message() -> None:
    api = MockAPI().reply(400, json=fixture("error_bad_request.json"))
    with pytest.raises(ProviderError, match="width must be a multiple of 8"):
        run(make(api))


@pytest.mark.parametrize(
    "answer",
    [
        {},
        {"error": "something odd"},
        {"sdGenerationJob": {"apiCreditCost": 12}},
        {"sdGenerationJob": {"generationId": "../../me", "apiCreditCost": 12}},
    ],
)
def test_create_without_a_usable_generation_id_is_an_invalid_response(answer: dict) -> None:
    api = MockAPI().reply(json=answer)
    accepted: list[str] = []
    with pytest.raises(InvalidResponse) as caught:
        run(make(api), CallContext(on_job_accepted=accepted.append))
    assert caught.value.code == "invalid_job_id"
    assert accepted == [] and len(api.requests) == 1


def test_polling_gives_up_at_poll_timeout_and_says_a_retry_resumes() -> None:
    api = MockAPI().reply(json=CREATE).reply(json=fixture("pending.json"), times=50)
    provider = make(api, poll_timeout=30)
    with pytest.raises(ProviderUnavailable) as caught:
        run(provider)
    error = caught.value
    assert (error.code, error.retryable) == ("timeout", True)
    assert JOB in error.message and "retry resumes polling" in error.message
    assert [r.method for r in api.requests].count("POST") == 1


# Downloads -----------------------------------------------------------------------------------


def test_an_expired_image_url_is_download_expired() -> None:
    api = MockAPI().reply(json=CREATE).reply(json=COMPLETE)
    cdn = MockAPI().reply(404, content=b"Not Found")
    with pytest.raises(ProviderError) as caught:
        run(make(api, cdn), count=2)
    assert (caught.value.code, caught.value.retryable) == ("download_expired", False)


@pytest.mark.parametrize("location", ["http://127.0.0.1/image_0.jpg", "https://127.0.0.1/x.jpg"])
def test_a_redirect_of_an_image_url_to_loopback_is_refused(location: str) -> None:
    api = MockAPI().reply(json=CREATE).reply(json=COMPLETE)
    cdn = MockAPI().reply(302, headers={"location": location})
    with pytest.raises(InvalidResponse) as caught:
        run(make(api, cdn), count=2)
    assert caught.value.code == "download_redirect_refused"
    assert len(cdn.requests) == 1


def test_an_image_url_off_the_cdn_is_refused() -> None:
    payload = copy.deepcopy(COMPLETE)
    payload["generations_by_pk"]["generated_images"][0]["url"] = "https://evil.example/x.jpg"
    api = MockAPI().reply(json=CREATE).reply(json=payload)
    cdn = MockAPI()
    with pytest.raises(InvalidResponse) as caught:
        run(make(api, cdn), count=2)
    assert caught.value.code == "download_host_not_allowed"
    assert cdn.requests == []


# Resuming and cost ---------------------------------------------------------------------------


def test_a_resumed_generation_is_polled_never_created_and_billed_at_the_estimate() -> None:
    api = MockAPI().reply(json=COMPLETE)
    accepted: list[str] = []
    context = CallContext(resume_job_id=JOB, on_job_accepted=accepted.append)
    result = run(make(api, cdn_with()), context, count=2)
    assert [(r.method, str(r.url)) for r in api.requests] == [("GET", f"{BASE}/generations/{JOB}")]
    assert accepted == []
    # The create answer (and its apiCreditCost) is gone: 2 images x 10 credits x $0.0015.
    assert (result.cost, result.usage) == (Decimal("0.030000"), {})
    assert "catalog estimate" in result.warnings[0]


def test_a_tampered_resume_id_is_refused_without_a_request() -> None:
    api = MockAPI()
    with pytest.raises(InvalidResponse) as caught:
        run(make(api), CallContext(resume_job_id="../../me"))
    assert caught.value.code == "invalid_job_id" and api.requests == []


def test_credit_price_option_converts_credits_and_estimates() -> None:
    api = MockAPI().reply(json=CREATE).reply(json=COMPLETE)
    provider = make(api, cdn_with(), credit_price="0.002")
    assert run(provider, count=2).cost == Decimal("0.024000")  # 12 x $0.002
    assert provider.estimate_cost(ImageRequest(prompt=PROMPT)) == Decimal("0.020000")


@pytest.mark.parametrize(("credits", "cost"), [(12, "0.018000"), (7.5, "0.011250"), (0, "0")])
def test_api_credit_cost_is_converted_at_the_documented_rate(credits: Any, cost: str) -> None:
    create = copy.deepcopy(CREATE)
    create["sdGenerationJob"]["apiCreditCost"] = credits
    api = MockAPI().reply(json=create).reply(json=COMPLETE)
    result = run(make(api, cdn_with()), count=2)
    assert result.cost == Decimal(cost) and result.usage == {"credits": credits}


# Catalog -------------------------------------------------------------------------------------


def test_catalog_has_the_reference_default_model() -> None:
    info = catalog.get_model("leonardo", DEFAULT_MODEL)
    assert info.label == "Leonardo Lightning XL" and info.status() == "active"
    assert info.capabilities is V1_CAPS
    caps = info.capabilities
    assert (caps.min_side, caps.max_side, caps.size_multiple, caps.max_count) == (32, 1536, 8, 4)
    assert (caps.seed, caps.negative_prompt, caps.edit, caps.mask) == (True, True, False, False)
    assert caps.output_formats == ("jpeg",)
    assert info.price.describe() == "10 credits ($0.0015 each) per image"


@pytest.mark.parametrize(("count", "expected"), [(1, "0.015000"), (4, "0.060000"), (6, "0.090000")])
def test_estimates_are_ten_credits_per_image_at_the_documented_rate(count, expected) -> None:
    provider = LeonardoProvider(alias="leonardo", api_key=KEY)
    assert provider.estimate_cost(ImageRequest(prompt=PROMPT, count=count)) == Decimal(expected)


# A made-up v1 model UUID, in the catalog of no provider.
UNLISTED = "00000000-0000-4000-8000-00000000c0de"


def test_an_uncatalogued_model_uuid_gets_the_v1_limits_and_the_default_estimate() -> None:
    provider = LeonardoProvider(alias="leonardo", api_key=KEY, model=UNLISTED)
    info = provider.model_info()
    assert (info.id, info.capabilities) == (UNLISTED, V1_CAPS)
    assert provider.estimate_cost(ImageRequest(prompt=PROMPT)) == Decimal("0.015000")
    calls, _ = provider.prepare(ImageRequest(prompt=PROMPT, width=3000, height=3000, count=5))
    assert [(c.width, c.height, c.count) for c in calls] == [(1536, 1536, 4), (1536, 1536, 1)]


def test_prices_setting_prices_an_uncatalogued_model_and_credit_price_applies(settings) -> None:
    settings.IMAGEGEN = {"PRICES": {UNLISTED: {"per_credit": 20, "credit_price": "0.0015"}}}
    provider = LeonardoProvider(alias="leonardo", api_key=KEY, model=UNLISTED)
    assert provider.model_info().capabilities is V1_CAPS
    assert provider.estimate_cost(ImageRequest(prompt=PROMPT)) == Decimal("0.030000")
    cheaper = LeonardoProvider(alias="l", api_key=KEY, model=UNLISTED, credit_price="0.001")
    assert cheaper.estimate_cost(ImageRequest(prompt=PROMPT)) == Decimal("0.020000")


# Leonardo's model guides on docs.leonardo.ai: each UUID is in its guide's sample request.
GUIDED = {
    "7b592283-e8a7-4c5a-9ba6-d18c31f258b9": ("Lucid Origin", "lucid-origin"),
    "05ce0082-2d80-4a2d-8653-4d1c85e2418e": ("Lucid Realism", "lucid-realism"),
    "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3": ("Leonardo Phoenix 1.0", "phoenix"),
    "28aeddf8-bd19-4803-80fc-79602d1a9989": ("FLUX.1 Kontext [pro]", "flux-1-kontext-pro"),
    "1dd50843-d653-4516-a8e3-f0238ee453ff": (
        "FLUX.1 Schnell (Flux Speed)",
        "generate-images-using-flux",
    ),
    "b2614463-296c-462a-9586-aafdb8f00e36": (
        "FLUX.1 Dev (Flux Precision)",
        "generate-images-using-flux",
    ),
}
PHOENIX = "de7d3faf-762f-48e0-b3b7-9d0ac3a3fcf3"


def test_the_current_models_are_catalogued_with_the_guide_that_names_them() -> None:
    models = {info.id: info for info in catalog.models_for("leonardo")}
    assert set(models) == {DEFAULT_MODEL, *GUIDED}
    for model_id, (label, page) in GUIDED.items():
        info = models[model_id]
        assert info.label == label and info.status() == "active"
        assert info.sources["id"].url == f"https://docs.leonardo.ai/docs/{page}"
        assert info.sources["id"].verified
        # No credit cost is published: estimated like Lightning XL, and marked unverified.
        assert info.unverified() == ["price"]
        assert "No credit cost for this model is on Leonardo's pages" in info.sources["price"].note
        assert info.price.describe() == "10 credits ($0.0015 each) per image"
        caps = info.capabilities
        assert (caps.max_side, caps.max_count, caps.output_formats) == (1536, 4, ("jpeg",))
        assert (caps.seed, caps.negative_prompt, caps.edit) == (True, False, False)


def test_a_guided_model_is_sent_the_contrast_its_guide_requires() -> None:
    api = MockAPI().reply(json=CREATE).reply(json=COMPLETE)
    result = run(make(api, cdn_with(), model=PHOENIX), count=2)
    body = body_of(api.requests[0])
    assert (body["modelId"], body["contrast"]) == (PHOENIX, 3.5)
    assert result.cost == Decimal("0.018000")  # apiCreditCost, not the unverified estimate
    api = MockAPI().reply(json=CREATE).reply(json=COMPLETE)
    run(make(api, cdn_with(), model=PHOENIX), count=2, extra={"contrast": 4})
    assert body_of(api.requests[0])["contrast"] == 4  # extra chooses another level
    api = MockAPI().reply(json=CREATE).reply(json=COMPLETE)
    run(make(api, cdn_with()), count=2)
    assert "contrast" not in body_of(api.requests[0])  # Lightning XL: never sent


def test_a_guided_model_drops_the_negative_prompt_its_guide_does_not_list() -> None:
    provider = LeonardoProvider(alias="leonardo", api_key=KEY, model=PHOENIX)
    calls, warnings = provider.prepare(
        ImageRequest(prompt=PROMPT, negative_prompt="text", output_format="jpeg")
    )
    assert calls[0].negative_prompt == ""
    assert warnings == [f"{PHOENIX} does not take a negative prompt; it was not sent."]


def test_an_uncatalogued_model_is_sent_as_its_model_id() -> None:
    api = MockAPI().reply(json=CREATE).reply(json=COMPLETE)
    result = run(make(api, cdn_with(), model=UNLISTED), count=2)
    assert body_of(api.requests[0])["modelId"] == UNLISTED
    assert result.cost == Decimal("0.018000")  # apiCreditCost, whatever the catalog says


def test_prepare_fits_sizes_counts_and_format() -> None:
    provider = LeonardoProvider(alias="leonardo", api_key=KEY)
    calls, warnings = provider.prepare(ImageRequest(prompt=PROMPT, width=1536, height=864))
    assert (calls[0].width, calls[0].height, calls[0].output_format) == (1536, 864, "jpeg")
    assert "cannot return png" in warnings[0]
    calls, warnings = provider.prepare(
        ImageRequest(prompt=PROMPT, width=2048, height=1152, count=6, output_format="jpeg")
    )
    assert [(c.width, c.height, c.count) for c in calls] == [(1536, 864, 4), (1536, 864, 2)]
    assert any("in 2 calls" in w for w in warnings)


# The whole pipeline --------------------------------------------------------------------------


@pytest.mark.django_db
def test_pipeline_succeeds_with_the_credit_cost(settings) -> None:
    api = MockAPI().reply(json=CREATE).reply(json=COMPLETE)
    LEONARDO.configure(settings, api, cdn_with())
    generation = imagegen.generate(prompt="a red fox", provider="leonardo", count=2)
    generation.refresh_from_db()
    assert generation.status == "succeeded", generation.error_message
    assert generation.model == DEFAULT_MODEL
    assert generation.estimated_cost == Decimal("0.030000")
    assert generation.cost == Decimal("0.018000")
    assert generation.usage == {"credits": 12}
    assert generation.provider_job_id == JOB
    assert [i.file.read() for i in generation.images.order_by("pk")] == [JPEG_0, JPEG_1]
    body = body_of(api.requests[0])
    assert body["num_images"] == 2 and "a red fox" in body["prompt"]
    assert api.requests[0].headers["authorization"] == "Bearer test-key"


@pytest.mark.django_db
def test_pipeline_ends_filtered_and_charged_when_every_image_is_nsfw(settings) -> None:
    api = MockAPI().reply(json=CREATE).reply(json=flagged(True, True))
    LEONARDO.configure(settings, api, MockAPI())
    generation = imagegen.generate(prompt="a red fox", provider="leonardo", count=2)
    generation.refresh_from_db()
    assert generation.status == "filtered"
    assert generation.cost == Decimal("0.018000")
    assert not generation.images.exists()
    assert media_files(settings) == []


@pytest.mark.django_db
def test_an_accepted_job_that_was_interrupted_resumes_by_polling_and_never_submits_again(
    settings,
) -> None:
    """A job interrupted after the provider accepted it resumes by polling, never resubmitting."""
    # Leonardo's API as a router: create answers a job, polls answer PENDING until ``ready``.
    api = FakeJobAPI(CREATE, fixture("pending.json"), COMPLETE)
    finished, polls = LEONARDO.interrupt_and_resume(settings, api, cdn_with(), JOB, count=2)
    assert polls == [f"{BASE}/generations/{JOB}"]
    # The resumed call no longer has apiCreditCost: the estimate is billed, with a warning.
    assert finished.cost == Decimal("0.030000")
    assert any("catalog estimate" in w for w in finished.warnings)
    assert finished.images.count() == 2
