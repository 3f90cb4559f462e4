"""Replicate's completion webhook: verified, deduplicated, and used only as a hint to resume.

Design. Providers are pure adapters and the pipeline (:func:`imagegen.services.run_generation`)
is the only code that stores images and bills the ledger, so this view never reads images or
costs from the payload. It does four things:

1. **Verify** the delivery (provider-apis.md §3.3): HMAC-SHA256 over
   ``"{webhook-id}.{webhook-timestamp}.{raw body}"`` with the base64-decoded part of the
   ``whsec_...`` secret, compared in constant time with each ``v1,<base64>`` entry of the
   ``webhook-signature`` header, and ``webhook-timestamp`` within :data:`TOLERANCE` seconds of
   now, so a captured delivery cannot be replayed later. Secrets come from the ``webhook_secret``
   OPTION of every Replicate alias, else the ``REPLICATE_WEBHOOK_SECRET`` environment variable.
2. **Deduplicate**: Replicate retries deliveries, so each ``webhook-id`` is remembered in
   Django's default cache for :data:`SEEN_FOR` seconds and a repeat is answered 200 at once.
   Use a shared cache (Redis, Memcached, database) when several processes serve the site.
3. **Find the ledger rows**: generations of a Replicate alias whose ``provider_job_id`` is the
   prediction's id and that are not finished.
4. **Resume them through the normal path**: a ``queued`` row (a worker took the job, recorded
   the prediction id, then gave it back: a retryable error with a retry still waiting, or a
   worker that died and was requeued) is handed to the configured task runner. The runner calls
   ``run_generation``, whose claim is a conditional update, and the provider sees the stored
   ``resume_job_id``: it fetches the prediction once (``GET /predictions/{id}``), finds it
   finished and downloads the outputs, without creating a second prediction or polling. With
   the immediate runner that happens inside this request. A ``running`` row is left alone: the
   worker running it is polling the same prediction and finishes it on its next poll (a row
   stuck ``running`` after a crash is ``imagegen_sweep``'s business). Finished rows are never
   touched: the status machine makes every later delivery a no-op, cache or no cache.

Answers: 405 for anything but POST, 413 for a body over :data:`MAX_BODY_BYTES`, 503 when no
secret is configured (logged as an error), 400 for missing or malformed signature headers, 403
for a bad signature or a stale timestamp (one message for both), 400 for a verified body that is
not a prediction, and 200 otherwise, including for predictions imagegen does not know, so
Replicate stops retrying. Responses say nothing about why a delivery was refused.

Route it with ``path("imagegen/", include("imagegen.urls"))`` and point the provider's
``webhook_url`` OPTION at ``https://<your site>/imagegen/webhooks/replicate/``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from imagegen import services
from imagegen.providers import providers
from imagegen.providers.replicate import ReplicateProvider

__all__ = [
    "MAX_BODY_BYTES",
    "SEEN_FOR",
    "TOLERANCE",
    "WebhookError",
    "replicate_secrets",
    "replicate_webhook",
    "verify_signature",
]

logger = logging.getLogger("imagegen.webhooks")

#: Seconds a ``webhook-timestamp`` may differ from this server's clock (either way).
TOLERANCE = 300
#: Largest body accepted: a prediction is a few kilobytes of JSON (its logs included).
MAX_BODY_BYTES = 1024 * 1024
#: Seconds a ``webhook-id`` is remembered, covering Replicate's retries of one delivery.
SEEN_FOR = 24 * 60 * 60
#: Environment variable read when no Replicate alias sets ``webhook_secret``.
SECRET_ENV = "REPLICATE_WEBHOOK_SECRET"  # noqa: S105 - a variable name
_CACHE_PREFIX = "imagegen:webhook:replicate:"
_PREDICTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class WebhookError(Exception):
    """A delivery failed verification; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        #: The HTTP status for the answer.
        self.status = status
        #: Why, for the server log only: answers never say it.
        self.reason = reason


def _secret_bytes(secret: str) -> bytes | None:
    """Return the key in a ``whsec_<base64>`` secret (the prefix is optional), or None."""
    encoded = secret.strip()
    if encoded.startswith("whsec_"):
        encoded = encoded[len("whsec_") :]
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def verify_signature(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str],
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE,
) -> str:
    """Return the ``webhook-id`` of a delivery signed with one of ``secrets``, or raise.

    ``headers`` is read case-insensitively (Django's ``request.headers`` is). Raises
    :class:`WebhookError`: 400 for missing or malformed headers, 403 for a timestamp outside
    ``tolerance`` seconds of ``now`` or a signature that matches no secret.
    """
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not webhook_id or not timestamp or not signatures:
        raise WebhookError(400, "missing webhook-id, webhook-timestamp or webhook-signature")
    if len(webhook_id) > 200 or not _TIMESTAMP.match(timestamp):
        raise WebhookError(400, "malformed webhook-id or webhook-timestamp")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        raise WebhookError(403, "webhook-timestamp outside the replay window")
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    given = []
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            given.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    for secret in secrets:
        key = _secret_bytes(secret)
        if key is None:
            logger.error("imagegen: a Replicate webhook secret is not valid base64 (whsec_...)")
            continue
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        # Every entry is compared, so the time taken does not tell which one matched.
        matched = False
        for signature in given:
            matched |= hmac.compare_digest(expected, signature)
        if matched:
            return webhook_id
    raise WebhookError(403, "signature does not match")


def _replicate_aliases() -> dict[str, object]:
    """Return the configured Replicate aliases and their provider instances."""
    found = {}
    for alias, config in providers.settings.items():
        try:
            cls = import_string((config or {}).get("BACKEND") or "")
        except ImportError:
            continue
        if isinstance(cls, type) and issubclass(cls, ReplicateProvider):
            try:
                found[alias] = providers[alias]
            except Exception:  # one broken alias must not disable the others
                logger.exception("imagegen: provider alias %r could not be loaded", alias)
    return found


def replicate_secrets(aliases: Mapping[str, object] | None = None) -> list[str]:
    """Return the webhook secrets to try: each alias's ``webhook_secret``, else the env variable."""
    aliases = _replicate_aliases() if aliases is None else aliases
    secrets = []
    for provider in aliases.values():
        secret = getattr(provider, "webhook_secret", None)
        if secret:
            secrets.append(secret.reveal())
    env = os.environ.get(SECRET_ENV, "")
    if env:
        secrets.append(env)
    return list(dict.fromkeys(secrets))


def _answer(status: int, text: str) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def replicate_webhook(request: HttpRequest) -> HttpResponse:
    """Receive Replicate's ``completed`` webhook and resume the generation it is about."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _answer(413, "Payload too large.")
    body = request.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        return _answer(413, "Payload too large.")
    aliases = _replicate_aliases()
    secrets = replicate_secrets(aliases)
    if not secrets:
        logger.error(
            "imagegen: a Replicate webhook arrived but no secret is configured: set "
            'OPTIONS["webhook_secret"] of the Replicate alias or %s.',
            SECRET_ENV,
        )
        return _answer(503, "Webhook receiver not configured.")
    try:
        webhook_id = verify_signature(request.headers, body, secrets)
    except WebhookError as err:
        logger.warning("imagegen: Replicate webhook refused (%s)", err.reason)
        text = "Bad request." if err.status == 400 else "Webhook verification failed."
        return _answer(err.status, text)
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    prediction_id = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(prediction_id, str) or not _PREDICTION_ID.match(prediction_id):
        logger.warning("imagegen: Replicate webhook %s is not a prediction", webhook_id)
        return _answer(400, "Bad request.")
    key = _CACHE_PREFIX + hashlib.sha256(webhook_id.encode()).hexdigest()
    if not cache.add(key, prediction_id, SEEN_FOR):
        logger.info("imagegen: Replicate webhook %s was delivered before", webhook_id)
        return _answer(200, "Already received.")
    try:
        resumed = services.resume_job(prediction_id, aliases=list(aliases))
    except Exception:
        # Let Replicate deliver it again.
        cache.delete(key)
        logger.exception("imagegen: Replicate webhook for prediction %s failed", prediction_id)
        return _answer(500, "Error.")
    logger.info("imagegen: Replicate webhook for prediction %s (status %s) resumed %d row(s)",
                prediction_id, payload.get("status"), resumed)  # fmt: skip
    return _answer(200, "OK.")
