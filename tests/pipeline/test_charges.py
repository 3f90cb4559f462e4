"""Charges are never lost: what a provider billed stays in the ledger, whatever happens next.

Through the whole pipeline against fakes of the real wire protocols: an answer refused after
OpenAI billed it, a result download refused after Replicate billed the prediction, a call
whose outcome is unknown, and the retry of a Replicate job that imagegen cancelled on timeout.
"""

from __future__ import annotations

import copy
from decimal import Decimal

import httpx
import pytest

import imagegen
from imagegen import services
from imagegen.models import BudgetUse, Generation, Status
from imagegen.providers import get_provider
from imagegen.testing import OPENAI, MockAPI, fake_provider_settings, openai_image_response
from tests.conftest import media_files, png_bytes
from tests.providers.conftest import load_fixture
from tests.providers.support import wire

pytestmark = pytest.mark.django_db

REPLICATE = "imagegen.providers.replicate.ReplicateProvider"
PREDICTION = "gm3qorzdhgbfurvjtvhg6dckhu"
OUT = "https://replicate.delivery/xezq/abc123/out-0.webp"


def prediction(status: str = "succeeded", **changes) -> dict:
    names = {
        "succeeded": "prediction_schnell_succeeded.json",
        "processing": "prediction_processing.json",
        "canceled": "prediction_canceled.json",
    }
    body = copy.deepcopy(load_fixture("replicate", names[status]))
    if status == "succeeded":
        body["output"] = [OUT]
    body.update(changes)
    return body


def openai(settings, api: MockAPI, **options) -> None:
    settings.IMAGEGEN = {
        "PROVIDERS": {"default": fake_provider_settings(OPENAI, api, **options)},
        "DERIVATIVE_WIDTHS": [],
        "BUDGETS": {"SITE_MONTHLY": "100"},
    }


def test_an_openai_answer_with_bad_base64_keeps_the_charge_its_usage_reports(settings):
    api = MockAPI()
    answer = openai_image_response(usage={"input_tokens": 10, "output_tokens": 4160})
    body = answer.json()
    body["data"][0]["b64_json"] = "not base64!"
    api.reply(json=body)
    openai(settings, api)

    row = imagegen.generate(prompt="a red fox")

    assert (row.status, row.error_code) == (Status.FAILED, "bad_base64")
    assert row.cost is not None and row.cost > 0  # billed by token, as a good answer would be
    assert row.unconfirmed_cost == 0
    assert BudgetUse.objects.get(cap="site::month").spent == row.cost
    assert media_files(settings) == []


def test_an_openai_answer_too_large_to_read_records_an_unconfirmed_charge(settings):
    api = MockAPI().reply(openai_image_response())
    openai(settings, api, max_response_bytes=64)

    row = imagegen.generate(prompt="a red fox")

    assert (row.status, row.error_code) == (Status.FAILED, "response_too_large")
    assert row.cost == 0 and row.unconfirmed_cost == row.estimated_cost > 0
    assert any("unconfirmed charge" in warning for warning in row.warnings)
    site = BudgetUse.objects.get(cap="site::month")
    assert (site.spent, site.unconfirmed, site.reserved) == (0, row.estimated_cost, 0)


def test_an_openai_timeout_records_an_unconfirmed_charge_and_a_retry_adds_the_new_one(settings):
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    api = MockAPI().then(slow)
    openai(settings, api)
    row = imagegen.generate(prompt="a red fox")
    assert (row.status, row.error_code) == (Status.FAILED, "timeout")
    assert row.cost is None and row.unconfirmed_cost == row.estimated_cost
    assert any("may have charged" in warning for warning in row.warnings)

    api.reply(openai_image_response(usage={"input_tokens": 10, "output_tokens": 1056}))
    again = services.retry(row)
    assert again.status == Status.SUCCEEDED
    # Both calls are in the ledger: the one that may have been billed, and the new one.
    assert again.unconfirmed_cost == row.estimated_cost and again.cost > 0


@pytest.mark.parametrize(
    ("output", "code"),
    [
        (["https://evil.example/out-0.webp"], "download_host_not_allowed"),
        ([OUT], "download_too_large"),
    ],
)
def test_a_replicate_download_refused_after_the_prediction_keeps_its_charge(settings, output, code):
    api = MockAPI().reply(201, json=prediction(output=output))
    settings.IMAGEGEN = {
        "PROVIDERS": {"default": fake_provider_settings(REPLICATE, api)},
        "DERIVATIVE_WIDTHS": [],
        "MAX_IMAGE_BYTES": 100,
    }
    cdn = MockAPI().reply(content=png_bytes(256, 256))
    wire(get_provider(), cdn)

    row = imagegen.generate(prompt="a red bicycle", preset="product")

    assert (row.status, row.error_code) == (Status.FAILED, code)
    assert row.cost == Decimal("0.003")  # flux-schnell's price for the one image billed


def test_a_retry_of_a_cancelled_replicate_prediction_starts_a_new_one_at_once(settings):
    api = MockAPI().reply(201, json=prediction("canceled", id=PREDICTION))
    settings.IMAGEGEN = {
        "PROVIDERS": {"default": fake_provider_settings(REPLICATE, api)},
        "DERIVATIVE_WIDTHS": [],
    }
    cdn = MockAPI().reply(content=png_bytes())
    wire(get_provider(), cdn)
    row = Generation.objects.create(
        provider="default",
        prompt="a red bicycle",
        status=Status.FAILED,
        error_code="timeout",
        provider_job_id=PREDICTION,
        params={"width": 1024, "height": 1024, "calls": [1], "output_format": "webp"},
        model="black-forest-labs/flux-schnell",
    )
    # The retry resumes the prediction imagegen cancelled on timeout, finds it canceled, and
    # starts a new one in the same run.
    api.reply(201, json=prediction(id="newprediction0000000000000"))

    done = services.retry(row)

    assert done.status == Status.SUCCEEDED, done.error_message
    assert done.provider_job_id == "newprediction0000000000000"
    assert [(r.method, r.url.path) for r in api.requests][-1][0] == "POST"
    assert any("a new prediction" in warning for warning in done.warnings)
