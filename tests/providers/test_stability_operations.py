"""Every Stability AI image operation, end to end, against a fake of the v2beta server.

:class:`~imagegen.testing.stability_responses.StabilityServer` checks each form the way the API
does (a missing or unknown field is a 400), so a call that succeeds here sent the endpoint
exactly the fields and image parts it takes (provider-apis.md §1.2).
"""

from __future__ import annotations

import io
from decimal import Decimal

import httpx
import pytest
from PIL import Image, ImageDraw

import imagegen
from imagegen.exceptions import (
    ContentRejected,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    UnsupportedRequest,
)
from imagegen.models import Generation
from imagegen.pipeline.planning import params_of
from imagegen.services import retry
from imagegen.testing.stability_responses import StabilityServer, stability_error
from imagegen.types import CallContext, ImageRequest
from tests.conftest import media_files
from tests.providers.conftest import multipart_parts
from tests.providers.test_stability import KEY, STABILITY

BASE = "/v2beta/stable-image"


def photo(width: int = 160, height: int = 120, *, alpha: bool = False) -> bytes:
    """Return a product shot: a red square on white (with a transparent corner if ``alpha``)."""
    image = Image.new("RGBA" if alpha else "RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((width // 4, height // 4, 3 * width // 4, 3 * height // 4), fill=(200, 30, 30))
    if alpha:
        draw.rectangle((0, 0, 20, 20), fill=(0, 0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def sent(request) -> tuple[dict[str, str], dict[str, bytes]]:
    """Return a multipart request's text fields and its image parts by name."""
    parts = multipart_parts(request)
    fields = {p.name: p.text for p in parts if p.filename is None}
    return fields, {p.name: p.content for p in parts if p.filename is not None}


def size_of(content: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(content)) as image:
        return image.size


def stored(generation: Generation) -> bytes:
    image = generation.images.get()
    with image.file.open("rb") as file:
        return file.read()


@pytest.fixture
def server(settings) -> StabilityServer:
    fake = StabilityServer()
    STABILITY.configure(settings, fake, api_key=KEY, poll_interval=0)
    settings.IMAGEGEN = {**settings.IMAGEGEN, "DERIVATIVE_WIDTHS": []}
    return fake


def run(**arguments) -> Generation:
    """Estimate, then generate with ``arguments`` on the Stability alias; return the fresh row."""
    arguments.setdefault("provider", "stability")
    estimate = imagegen.estimate(**arguments)
    generation = imagegen.generate(**arguments)
    generation.refresh_from_db()
    assert generation.estimated_cost == estimate
    return generation


# Each operation through the whole pipeline -------------------------------------------------

SOURCE = photo()
REFERENCE = photo(64, 64)

CASES = [
    # id, generate() arguments, endpoint, fields sent, image parts sent, credits
    ("inpaint", {"operation": "inpaint", "prompt": "a blue vase", "mask": (10, 10, 50, 50)},
     "edit/inpaint", {"prompt", "output_format"}, {"image", "mask"}, 5),
    ("outpaint", {"operation": "outpaint", "padding": (16, 8, 32, 0)},
     "edit/outpaint", {"prompt", "output_format", "left", "up", "right"}, {"image"}, 4),
    ("erase", {"operation": "erase", "mask": (10, 10, 50, 50)},
     "edit/erase", {"output_format"}, {"image", "mask"}, 5),
    ("search_replace", {"operation": "search_replace", "prompt": "a teacup",
                        "search": "the red square"},
     "edit/search-and-replace", {"prompt", "search_prompt", "output_format"}, {"image"}, 5),
    ("search_recolor", {"operation": "search_recolor", "prompt": "bright yellow",
                        "search": "the red square"},
     "edit/search-and-recolor", {"prompt", "select_prompt", "output_format"}, {"image"}, 5),
    ("edit (older spelling)", {"operation": "edit", "prompt": "a teacup",
                               "extra": {"search_prompt": "the red square"}},
     "edit/search-and-replace", {"prompt", "search_prompt", "output_format"}, {"image"}, 5),
    ("remove_background", {"operation": "remove_background"},
     "edit/remove-background", {"output_format"}, {"image"}, 5),
    ("upscale x2", {"operation": "upscale", "scale": 2},
     "upscale/fast", {"output_format"}, {"image"}, 2),
    ("upscale x8", {"operation": "upscale", "scale": 8, "prompt": "a product shot"},
     "upscale/conservative", {"prompt", "output_format"}, {"image"}, 40),
    ("upscale, creative", {"operation": "upscale", "scale": 2, "prompt": "a product shot",
                           "extra": {"upscaler": "creative", "creativity": 0.3}},
     "upscale/creative", {"prompt", "output_format", "creativity"}, {"image"}, 60),
    ("replace_background", {"operation": "replace_background", "prompt": "a sunlit beach"},
     "edit/replace-background-and-relight", {"background_prompt", "output_format"},
     {"subject_image"}, 8),
    ("restyle with a reference", {"operation": "restyle", "prompt": "as a watercolour",
                                  "reference": REFERENCE},
     "control/style-transfer", {"prompt", "output_format"}, {"init_image", "style_image"}, 8),
    ("restyle from the prompt", {"operation": "restyle", "prompt": "as a watercolour",
                                 "extra": {"control_strength": 0.6}},
     "control/structure", {"prompt", "output_format", "control_strength"}, {"image"}, 5),
    ("generate in a reference's style", {"prompt": "a lamp", "reference": REFERENCE},
     "control/style", {"prompt", "aspect_ratio", "output_format"}, {"image"}, 5),
]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("arguments", "endpoint", "fields", "images", "credits"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_each_operation_through_the_pipeline(server, arguments, endpoint, fields, images, credits):
    needs_source = arguments.get("operation", "generate") != "generate"
    generation = run(**arguments, **({"source": SOURCE} if needs_source else {}))
    assert generation.status == "succeeded", generation.error_message
    request, *polls = server.requests
    assert (request.method, request.url.path) == ("POST", f"{BASE}/{endpoint}")
    # Only the jobs are polled (once in progress, once for the image), and the row keeps the id.
    polled = endpoint in ("upscale/creative", "edit/replace-background-and-relight")
    assert [poll.method for poll in polls] == (["GET", "GET"] if polled else [])
    if polled:
        assert polls[0].url.path == f"/v2beta/results/{generation.provider_job_id}"
    assert request.headers["accept"] == "image/*"
    form, parts = sent(request)
    assert set(form) == fields
    assert set(parts) == images
    # Credits at $0.01, estimated and charged alike, whatever the configured model costs.
    price = Decimal(credits) / 100
    assert generation.estimated_cost == generation.cost == price
    assert generation.usage == {"credits": credits}
    assert generation.operation == arguments.get("operation", "generate")
    if needs_source:
        # Lineage: the row keeps the source it was made from.
        assert generation.source_sha256 == params_of(generation).source_sha256
        assert generation.source_file.name
    assert size_of(stored(generation))


@pytest.mark.django_db
def test_outpaint_padding_becomes_the_sides_and_the_canvas_grows(server):
    generation = run(operation="outpaint", source=SOURCE, padding=(16, 8, 32, 0))
    form, _ = sent(server.last)
    # (left, top, right, bottom) -> left, up, right; a zero side is not sent.
    assert (form["left"], form["up"], form["right"]) == ("16", "8", "32")
    assert "down" not in form
    assert size_of(stored(generation)) == (160 + 48, 120 + 8)


@pytest.mark.django_db
def test_search_goes_to_search_prompt_or_select_prompt(server):
    run(operation="search_replace", source=SOURCE, prompt="a teacup", search="the red square")
    run(operation="search_recolor", source=SOURCE, prompt="yellow", search="the red square")
    replace, recolor = (sent(request)[0] for request in server.requests)
    assert (replace["search_prompt"], replace["prompt"]) == ("the red square", "a teacup")
    assert (recolor["select_prompt"], recolor["prompt"]) == ("the red square", "yellow")


@pytest.mark.django_db
def test_inpaint_without_a_mask_uses_the_sources_transparency(server):
    source = photo(alpha=True)
    generation = run(operation="inpaint", source=source, prompt="a blue sky")
    assert generation.status == "succeeded", generation.error_message
    _, parts = sent(server.last)
    assert set(parts) == {"image"}  # no mask part: §1.2 reads the alpha channel
    assert Image.open(io.BytesIO(parts["image"])).getpixel((5, 5))[3] == 0


@pytest.mark.django_db
def test_inpaint_of_an_opaque_source_without_a_mask_is_refused(server):
    with pytest.raises(UnsupportedRequest, match="inpaint needs a mask"):
        imagegen.generate(operation="inpaint", source=SOURCE, prompt="x", provider="stability")
    assert server.requests == []


@pytest.mark.django_db
def test_upscale_by_scale_and_the_result_is_the_endpoints_size(server):
    fast = run(operation="upscale", source=SOURCE, scale=2)
    conservative = run(operation="upscale", source=SOURCE, scale=8, prompt="a product shot")
    paths = [request.url.path for request in server.requests]
    assert paths == [f"{BASE}/upscale/fast", f"{BASE}/upscale/conservative"]
    # The fast upscaler makes four times the size whatever the scale asked; the stored image
    # and its row say what came back.
    image = fast.images.get()
    assert (image.width, image.height) == (640, 480)
    assert size_of(stored(conservative))[0] * size_of(stored(conservative))[1] >= 4_000_000
    assert (fast.cost, conservative.cost) == (Decimal("0.02"), Decimal("0.40"))


@pytest.mark.django_db
def test_a_source_too_large_for_the_fast_upscaler_goes_to_the_conservative_one(server):
    run(operation="upscale", source=photo(1600, 700), scale=2, prompt="a product shot")
    assert server.last.url.path == f"{BASE}/upscale/conservative"


@pytest.mark.django_db
def test_an_upscaler_the_source_is_too_large_for_is_refused_before_any_call(server):
    with pytest.raises(UnsupportedRequest, match=r"1600x700 pixels.*upscale/fast.*1,048,576"):
        imagegen.generate(
            operation="upscale", source=photo(1600, 700), scale=2, provider="stability",
            extra={"upscaler": "fast"},
        )  # fmt: skip
    assert server.requests == [] and not Generation.objects.exists()


@pytest.mark.django_db
def test_a_source_over_an_endpoints_pixel_limit_is_refused_naming_who_can(server, settings):
    with pytest.raises(UnsupportedRequest) as caught:
        imagegen.generate(
            operation="remove_background", source=photo(2100, 2100), provider="stability"
        )
    message = str(caught.value)
    assert "2100x2100 pixels, over Stability AI's 4,194,304-pixel limit" in message
    assert "Configured providers that can: default" in message
    assert server.requests == [] and not Generation.objects.exists()
    assert media_files(settings) == []


@pytest.mark.django_db
def test_operations_refuse_what_the_endpoint_cannot_take(server):
    with pytest.raises(UnsupportedRequest, match="outpaint takes no mask"):
        imagegen.generate(
            operation="outpaint", source=SOURCE, mask=(0, 0, 4, 4), padding=(8, 0, 0, 0),
            provider="stability",
        )  # fmt: skip
    with pytest.raises(UnsupportedRequest, match="at most 1 reference images, not 2"):
        imagegen.generate(
            operation="restyle", source=SOURCE, reference=[REFERENCE, REFERENCE], prompt="x",
            provider="stability",
        )  # fmt: skip
    with pytest.raises(UnsupportedRequest, match="at most 2000 pixels on each side"):
        imagegen.generate(
            operation="outpaint", source=SOURCE, padding=(2001, 0, 0, 0), provider="stability"
        )
    assert server.requests == [] and not Generation.objects.exists()


# Replace background and relight: a polled job ------------------------------------------------


@pytest.mark.django_db
def test_replace_background_submits_polls_and_records_the_job(server):
    server.in_progress = 2
    generation = run(
        operation="replace_background",
        source=SOURCE,
        reference=REFERENCE,
        prompt="a sunlit beach",
        extra={"light_source_direction": "left", "light_source_strength": 0.4,
               "foreground_prompt": "a red box"},
    )  # fmt: skip
    assert generation.status == "succeeded", generation.error_message
    submit, *polls = server.requests
    assert (submit.method, submit.url.path) == (
        "POST",
        f"{BASE}/edit/replace-background-and-relight",
    )
    form, parts = sent(submit)
    assert form == {
        "background_prompt": "a sunlit beach",
        "output_format": "png",
        "light_source_direction": "left",
        "light_source_strength": "0.4",
        "foreground_prompt": "a red box",
    }
    assert set(parts) == {"subject_image", "background_reference"}
    assert size_of(parts["background_reference"]) == (64, 64)
    job = polls[0].url.path.rpartition("/")[2]
    assert [(p.method, p.url.path) for p in polls] == [("GET", f"/v2beta/results/{job}")] * 3
    assert generation.provider_job_id == job
    assert generation.estimated_cost == generation.cost == Decimal("0.08")


@pytest.mark.django_db
def test_a_replacement_that_timed_out_is_retried_by_polling_the_paid_job(settings):
    server = StabilityServer(in_progress=10_000)
    STABILITY.configure(settings, server, api_key=KEY, poll_interval=0, poll_timeout=0.2)
    generation = imagegen.generate(
        operation="replace_background", source=SOURCE, prompt="a beach", provider="stability"
    )
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == ("failed", "timeout")
    job = generation.provider_job_id
    assert len(job) == 64 and "retry polls the same job" in generation.error_message
    server.finish()
    server.requests.clear()
    retried = retry(generation)
    retried.refresh_from_db()
    assert retried.status == "succeeded", retried.error_message
    # Polled, not submitted (and paid for) again; the one charge is recorded once.
    assert [(r.method, r.url.path) for r in server.requests] == [("GET", f"/v2beta/results/{job}")]
    assert retried.cost == Decimal("0.08")


@pytest.mark.django_db
def test_time_running_out_inside_a_poll_is_the_jobs_timeout(settings, monkeypatch):
    server = StabilityServer(in_progress=10_000)
    STABILITY.configure(settings, server, api_key=KEY, poll_interval=0, poll_timeout=30)
    real_send = httpx.Client.send

    def slow_poll(client, request, **kwargs):
        if request.method == "GET":  # the answer to a poll arrives after the deadline
            raise httpx.ReadTimeout("read timed out", request=request)
        return real_send(client, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", slow_poll)
    generation = imagegen.generate(
        operation="replace_background", source=SOURCE, prompt="a beach", provider="stability"
    )
    generation.refresh_from_db()
    assert (generation.status, generation.error_code) == ("failed", "timeout")
    assert "a retry polls the same job" in generation.error_message
    assert generation.provider_job_id


@pytest.mark.django_db
def test_replace_background_needs_a_prompt_or_a_reference(server):
    with pytest.raises(UnsupportedRequest, match="A prompt is required"):
        imagegen.generate(operation="replace_background", source=SOURCE, provider="stability")
    assert server.requests == []


@pytest.mark.parametrize("accept", ["image", "json"])
def test_replace_background_answers_in_either_accept(accept):
    server = StabilityServer(in_progress=1)
    provider = STABILITY.make(server, accept=accept)
    request = ImageRequest(
        prompt="a beach", operation="replace_background", source_images=(SOURCE,)
    )
    accepted: list[str] = []
    result = provider.generate(request, context=CallContext(on_job_accepted=accepted.append))
    submit, first, second = server.requests
    assert submit.headers["accept"] == ("image/*" if accept == "image" else "application/json")
    assert second.headers["accept"] == ("*/*" if accept == "image" else "application/json")
    assert accepted == [result.job_id] and first.url.path.endswith(result.job_id)
    assert size_of(result.images[0].content) == (160, 120)
    # The same job, resumed by a redelivered task: polled, not submitted (and paid) again.
    again = STABILITY.make(server, accept=accept)
    server.requests.clear()
    resumed = again.generate(request, context=CallContext(resume_job_id=result.job_id))
    assert [r.method for r in server.requests] == ["GET"]
    assert resumed.cost == Decimal("0.080000")


@pytest.mark.django_db
def test_a_filtered_replacement_is_charged_without_a_file(server, settings):
    server.filtered = True
    generation = run(operation="replace_background", source=SOURCE, prompt="a beach")
    assert generation.status == "filtered"
    assert generation.cost == Decimal("0.08")
    assert not generation.images.exists()


# Errors on the operation endpoints ---------------------------------------------------------


@pytest.mark.django_db
def test_content_moderation_leaves_a_failed_row_charged_nothing(server):
    server.fail_next(stability_error(403, message="Your request was flagged"))
    generation = run(operation="search_replace", source=SOURCE, prompt="x", search="the box")
    assert generation.status == "failed"
    assert "flagged the prompt or image (HTTP 403)" in generation.error_message
    assert "Nothing was charged" in generation.error_message
    assert (generation.error_code, generation.cost) == ("content_rejected", None)
    assert generation.estimated_cost == Decimal("0.05")
    assert not generation.images.exists()


@pytest.mark.django_db
def test_an_unusable_answer_after_a_billed_call_keeps_its_charge(server, settings):
    # §1.3: a 200 is billed; an answer that is no image still cost the endpoint's credits.
    server.fail_next(httpx.Response(200, content=b"<html>", headers={"content-type": "text/html"}))
    generation = run(operation="restyle", source=SOURCE, prompt="as a watercolour")
    assert generation.status == "failed"
    assert "not an image" in generation.error_message
    assert generation.cost == Decimal("0.05")
    assert media_files(settings) == [] or not generation.images.exists()


@pytest.mark.parametrize(
    ("answer", "cls", "text"),
    [
        (stability_error(403), ContentRejected, "Nothing was charged"),
        (stability_error(413), ProviderError, "Send smaller source images."),
        (stability_error(429, retry_after=5), RateLimited, "Try again in 5 s"),
        (stability_error(500, "internal_error"), ProviderUnavailable, "HTTP 500"),
    ],
)
@pytest.mark.parametrize(
    "request_fields",
    [
        {"operation": "restyle", "source_images": (SOURCE, REFERENCE)},
        {"operation": "replace_background", "source_images": (SOURCE,)},
        {"operation": "outpaint", "source_images": (SOURCE,), "padding": (0, 0, 10, 0)},
    ],
    ids=["restyle", "replace_background", "outpaint"],
)
def test_error_answers_of_the_operation_endpoints(answer, cls, text, request_fields):
    server = StabilityServer().fail_next(answer)
    provider = STABILITY.make(server)
    with pytest.raises(cls, match=text):
        provider.generate(ImageRequest(prompt="a beach", **request_fields))
    assert len(server.requests) == 1


def test_the_fake_refuses_a_form_the_api_would_refuse():
    # The fake is strict: a field the endpoint does not take is a 400, as from the API.
    server = StabilityServer()
    provider = STABILITY.make(server)
    request = ImageRequest(
        prompt="x", operation="remove_background", source_images=(SOURCE,),
        extra={"style_preset": "anime"},
    )  # fmt: skip
    with pytest.raises(ProviderError, match="style_preset: is not a known field"):
        provider.generate(request)
