"""Answers shaped like Google's Gemini ``generateContent``: images, blocked prompts and errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from imagegen.testing.images import b64, images_or_sample

__all__ = ["gemini_blocked_response", "gemini_image_response", "google_error"]

_RPC_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def gemini_image_response(
    images: Sequence[bytes] | None = None,
    *,
    text: str | None = None,
    finish_reason: str = "STOP",
    usage: Mapping[str, Any] | bool = True,
    response_id: str = "resp-test",
) -> httpx.Response:
    """Return a 200 from ``:generateContent`` with ``images`` as inline parts.

    ``images`` defaults to one 64x64 PNG; ``text`` adds a text part. ``usage`` is the
    ``usageMetadata`` object, sent as given; ``True`` sends 10 text prompt tokens and 1120
    image tokens per image; ``False`` leaves it out (the catalog estimate is billed). No images
    with ``finish_reason="IMAGE_SAFETY"`` is a refusal (``ContentRejected``).
    """
    contents = images_or_sample(images)
    parts: list[dict[str, Any]] = [] if text is None else [{"text": text}]
    for content in contents:
        parts.append({"inlineData": {"mimeType": "image/png", "data": b64(content)}})
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": finish_reason}
    body: dict[str, Any] = {"candidates": [{**candidate, "index": 0}], "responseId": response_id}
    if usage is True:
        out = 1120 * len(contents)
        usage = {
            "promptTokenCount": 10,
            "candidatesTokenCount": out,
            "totalTokenCount": 10 + out,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 10}],
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": out}],
        }
    if usage is not False:
        body["usageMetadata"] = dict(usage)
    return httpx.Response(200, json=body)


def gemini_blocked_response(
    reason: str = "PROHIBITED_CONTENT",
    message: str = "The prompt was blocked because it may violate the usage policy.",
) -> httpx.Response:
    """Return a 200 whose ``promptFeedback`` blocks the prompt (``ContentRejected``)."""
    feedback = {"blockReason": reason, "blockReasonMessage": message}
    usage = {"promptTokenCount": 10, "totalTokenCount": 10}
    body = {"promptFeedback": feedback, "usageMetadata": usage, "responseId": "resp-blocked"}
    return httpx.Response(200, json=body)


def google_error(
    status: int,
    message: str = "The request failed.",
    *,
    rpc_status: str | None = None,
    reason: str | None = None,
    retry_delay: float | None = None,
) -> httpx.Response:
    """Return a Google error: ``{"error": {"code", "message", "status", "details"}}``.

    ``rpc_status`` defaults from the HTTP status (429 is ``RESOURCE_EXHAUSTED``, a
    ``RateLimited``); ``reason`` adds an ErrorInfo (``"API_KEY_INVALID"``) and
    ``retry_delay`` a RetryInfo (seconds), both in ``details``.
    """
    details: list[dict[str, Any]] = []
    if reason is not None:
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}
        details.append({**info, "domain": "googleapis.com"})
    if retry_delay is not None:
        delay = f"{retry_delay:g}s"
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    error: dict[str, Any] = {"code": status, "message": message}
    error["status"] = rpc_status or _RPC_STATUSES.get(status, "UNKNOWN")
    return httpx.Response(status, json={"error": {**error, "details": details}})
