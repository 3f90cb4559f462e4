"""Tests for Replicate's webhook view: signature, replay window, duplicates, resuming the job.

A generation is brought to the state a webhook is for: its worker created the prediction,
recorded its id, and gave the row back to the queue. The webhook then finishes it through the
normal pipeline (one GET of the prediction, one download), with the API and the delivery host
mocked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.core.cache import cache
from django.urls import reverse

import imagegen
from imagegen.models import Generation, Status
from imagegen.providers import get_provider
from imagegen.providers.http import ManualClock
from imagegen.testing import MockAPI, fake_provider_settings
from imagegen.webhooks import WebhookError, verify_signature
from tests.conftest import png_bytes
from tests.providers.test_replicate import BACKEND, GET, ID, WorkerDied, prediction

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_webhooks")]

KEY = base64.b64encode(b"imagegen-webhook-test-key-32byte").decode()
SECRET = f"whsec_{KEY}"
URL = "/imagegen/webhooks/replicate/"
PNG = png_bytes()


def sign(body: bytes, *, webhook_id: str = "msg_2a", timestamp: int | None = None,
         secret: str = SECRET) -> dict[str, str]:  # fmt: skip
    """Return the three headers Replicate signs a delivery with (provider-apis.md §3.3)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    signature = base64.b64encode(digest.digest()).decode()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


def completed() -> bytes:
    return json.dumps(prediction()).encode()


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv("REPLICATE_WEBHOOK_SECRET", raising=False)
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def site(settings):
    """Configure a Replicate alias on mocked HTTP; return (api, cdn)."""

    def configure(**options: Any) -> tuple[MockAPI, MockAPI]:
        api, cdn = MockAPI(), MockAPI()
        settings.IMAGEGEN = {
            "PROVIDERS": {"default": fake_provider_settings(BACKEND, api, **options)},
            "DERIVATIVE_WIDTHS": [],
        }
        provider = get_provider()
        provider.clock = ManualClock()
        provider.downloader.transport = cdn.transport
        provider.downloader.resolver = lambda host, port: ["93.184.215.14"]
        return api, cdn

    return configure


def waiting_row(api: MockAPI) -> Generation:
    """Return a queued generation whose prediction was created and recorded, then abandoned."""
    api.reply(201, json=prediction("processing"))

    def die(request: httpx.Request) -> httpx.Response:
        raise WorkerDied("killed")

    api.then(die)
    with pytest.raises(WorkerDied):
        imagegen.generate(prompt="a red bicycle", preset="product")
    row = Generation.objects.get()
    assert row.provider_job_id == ID
    assert row.transition(Status.QUEUED)  # a retry is waiting
    api.requests.clear()
    return row


def post(client, body: bytes, headers: dict[str, str]):
    return client.post(URL, data=body, content_type="application/json", headers=headers)


# Wiring --------------------------------------------------------------------------------------


def test_the_url_is_named_in_the_imagegen_namespace() -> None:
    assert reverse("imagegen:imagegen-webhook-replicate") == URL


def test_get_is_not_allowed(client, site) -> None:
    site(webhook_secret=SECRET)
    response = client.get(URL)
    assert response.status_code == 405


# Verification ------------------------------------------------------------------------------


def test_a_valid_delivery_completes_the_job_through_the_pipeline(client, site) -> None:
    api, cdn = site(webhook_secret=SECRET)
    row = waiting_row(api)
    api.reply(json=prediction())
    cdn.reply(content=PNG)
    body = completed()
    response = post(client, body, sign(body))
    assert response.status_code == 200
    row.refresh_from_db()
    assert row.status == Status.SUCCEEDED, row.error_message
    assert [(r.method, r.url.path) for r in api.requests] == [("GET", GET)]  # no new prediction
    assert row.images.count() == 1
    assert row.cost == Decimal("0.003")


def test_a_duplicate_delivery_is_ignored(client, site) -> None:
    api, cdn = site(webhook_secret=SECRET)
    row = waiting_row(api)
    api.reply(json=prediction(), times=2)
    cdn.reply(content=PNG, times=2)
    body = completed()
    headers = sign(body, webhook_id="msg_dup")
    assert post(client, body, headers).status_code == 200
    assert post(client, body, headers).status_code == 200
    assert len(api.requests) == 1 and len(cdn.requests) == 1
    assert row.images.count() == 1


def test_a_redelivery_with_a_new_id_finds_the_row_finished(client, site) -> None:
    api, cdn = site(webhook_secret=SECRET)
    row = waiting_row(api)
    api.reply(json=prediction(), times=2)
    cdn.reply(content=PNG, times=2)
    body = completed()
    assert post(client, body, sign(body, webhook_id="msg_1")).status_code == 200
    assert post(client, body, sign(body, webhook_id="msg_2")).status_code == 200
    assert len(api.requests) == 1  # the status machine: a succeeded row is never run again
    assert row.images.count() == 1


def test_a_bad_signature_is_refused_without_touching_anything(client, site, caplog) -> None:
    api, _cdn = site(webhook_secret=SECRET)
    row = waiting_row(api)
    body = completed()
    wrong = "whsec_" + base64.b64encode(b"another-key-another-key-another!").decode()
    with caplog.at_level(logging.WARNING, logger="imagegen.webhooks"):
        response = post(client, body, sign(body, secret=wrong))
    assert response.status_code == 403
    assert response.content == b"Webhook verification failed."
    assert "signature does not match" in caplog.text
    row.refresh_from_db()
    assert row.status == Status.QUEUED and api.requests == []


def test_a_tampered_body_is_refused(client, site) -> None:
    site(webhook_secret=SECRET)
    headers = sign(completed())
    tampered = json.dumps({**prediction(), "id": "someoneelse"}).encode()
    assert post(client, tampered, headers).status_code == 403


def test_a_stale_timestamp_is_refused_even_when_correctly_signed(client, site) -> None:
    api, _cdn = site(webhook_secret=SECRET)
    waiting_row(api)
    body = completed()
    for skew in (-301, 301):
        response = post(client, body, sign(body, timestamp=int(time.time()) + skew))
        assert response.status_code == 403
        assert response.content == b"Webhook verification failed."  # the same answer as above
    assert api.requests == []


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_signature_headers_are_a_bad_request(client, site, missing) -> None:
    site(webhook_secret=SECRET)
    body = completed()
    headers = sign(body)
    del headers[missing]
    assert post(client, body, headers).status_code == 400


def test_no_secret_configured_is_503_with_an_error_logged(client, site, caplog) -> None:
    site()
    body = completed()
    with caplog.at_level(logging.ERROR, logger="imagegen.webhooks"):
        response = post(client, body, sign(body))
    assert response.status_code == 503
    assert "no secret is configured" in caplog.text
    assert SECRET not in caplog.text


def test_the_secret_may_come_from_the_environment(client, site, monkeypatch) -> None:
    monkeypatch.setenv("REPLICATE_WEBHOOK_SECRET", SECRET)
    api, cdn = site()
    waiting_row(api)
    api.reply(json=prediction())
    cdn.reply(content=PNG)
    body = completed()
    assert post(client, body, sign(body)).status_code == 200
    assert Generation.objects.get().status == Status.SUCCEEDED


def test_an_oversized_body_is_refused_before_it_is_read(client, site) -> None:
    site(webhook_secret=SECRET)
    body = b"{" + b" " * (1024 * 1024) + b"}"
    assert post(client, body, sign(body)).status_code == 413


def test_a_verified_body_that_is_not_a_prediction_is_a_bad_request(client, site) -> None:
    site(webhook_secret=SECRET)
    for body in (b"not json", b"[1, 2]", json.dumps({"id": "../x"}).encode()):
        assert post(client, body, sign(body, webhook_id=f"msg_{len(body)}")).status_code == 400


# What gets resumed -------------------------------------------------------------------------


def test_a_running_row_is_left_to_its_own_poll_loop(client, site) -> None:
    api, _cdn = site(webhook_secret=SECRET)
    row = waiting_row(api)
    row.transition(Status.RUNNING)
    body = completed()
    assert post(client, body, sign(body)).status_code == 200
    assert api.requests == []
    row.refresh_from_db()
    assert row.status == Status.RUNNING


def test_an_unknown_prediction_is_acknowledged_and_ignored(client, site) -> None:
    api, _cdn = site(webhook_secret=SECRET)
    body = json.dumps({**prediction(), "id": "nosuchprediction0000000000"}).encode()
    assert post(client, body, sign(body)).status_code == 200
    assert api.requests == []


def test_rows_of_other_providers_are_never_resumed(client, site, settings) -> None:
    api, _cdn = site(webhook_secret=SECRET)
    row = waiting_row(api)
    Generation.objects.filter(pk=row.pk).update(provider="elsewhere")
    body = completed()
    assert post(client, body, sign(body)).status_code == 200
    assert api.requests == []


# verify_signature ----------------------------------------------------------------------------


def test_any_matching_v1_entry_is_accepted_and_other_versions_ignored() -> None:
    body = b'{"id": "x"}'
    headers = sign(body, webhook_id="msg_x", timestamp=1_700_000_000)
    good = headers["webhook-signature"]
    headers["webhook-signature"] = f"v2,{good[3:]} v1,AAAA v1,!!notbase64 {good}"
    assert verify_signature(headers, body, [SECRET], now=1_700_000_100) == "msg_x"
    headers["webhook-signature"] = f"v2,{good[3:]}"
    with pytest.raises(WebhookError) as caught:
        verify_signature(headers, body, [SECRET], now=1_700_000_100)
    assert caught.value.status == 403


def test_several_secrets_are_tried_and_a_broken_one_is_skipped(caplog) -> None:
    body = b"{}"
    headers = sign(body, timestamp=1_700_000_000)
    assert verify_signature(headers, body, ["whsec_%%%", KEY], now=1_700_000_000)
    assert "not valid base64" in caplog.text


@pytest.mark.parametrize("timestamp", ["soon", "-5", "1" * 20, "\u00b2"])
def test_a_malformed_timestamp_is_a_bad_request(timestamp: str) -> None:
    headers = {**sign(b"{}"), "webhook-timestamp": timestamp}
    with pytest.raises(WebhookError) as caught:
        verify_signature(headers, b"{}", [SECRET])
    assert caught.value.status == 400


def test_a_prediction_of_one_call_of_a_split_request_finds_its_row(settings, db) -> None:
    """A split request stores one job id per call; the webhook's prediction may be any one."""
    from imagegen.services import resume_job
    from tests.providers.support import QUEUE_ONLY

    settings.IMAGEGEN = {"TASK_RUNNER": QUEUE_ONLY}

    def row(job_ids: str) -> Generation:
        return Generation.objects.create(provider="flux", prompt="x", provider_job_id=job_ids)

    row("pred2,pred3"), row("other1,pred2,other3"), row("o1,pred2"), row("pred2")
    row("pred20,xpred2")

    assert resume_job("pred2", aliases=["flux"]) == 4
    assert resume_job("pred20", aliases=["flux"]) == 1
    assert resume_job("red2", aliases=["flux"]) == 0
