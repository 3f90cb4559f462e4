"""Answers shaped like OpenAI's Images API: generated images and errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from imagegen.testing.images import b64, images_or_sample

__all__ = ["openai_error", "openai_image_response"]


def openai_image_response(
    images: Sequence[bytes] | None = None,
    *,
    usage: Mapping[str, Any] | bool = True,
    output_format: str = "png",
    revised_prompt: str | None = None,
    request_id: str = "req_test",
) -> httpx.Response:
    """Return a 200 from ``/images/generations`` or ``/images/edits`` holding ``images``.

    ``images`` defaults to one 64x64 PNG. ``usage`` is OpenAI's ``usage`` object, sent as
    given (``{"input_tokens": 10, "output_tokens": 4160}`` is enough); ``True`` sends 10 text
    input tokens and 1056 image output tokens per image; ``False`` leaves it out, so the
    provider bills the catalog estimate with a warning.
    """
    contents = images_or_sample(images)
    data: list[dict[str, Any]] = []
    for content in contents:
        item = {"b64_json": b64(content)}
        data.append(item if revised_prompt is None else {**item, "revised_prompt": revised_prompt})
    body: dict[str, Any] = {"created": 1713833628, "data": data, "output_format": output_format}
    if usage is True:
        out = 1056 * len(contents)
        usage = {
            "input_tokens": 10,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
            "output_tokens": out,
            "output_tokens_details": {"image_tokens": out, "text_tokens": 0},
            "total_tokens": 10 + out,
        }
    if usage is not False:
        body["usage"] = dict(usage)
    return httpx.Response(200, json=body, headers={"x-request-id": request_id})


def openai_error(
    status: int,
    code: str | None = None,
    message: str = "The request failed.",
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    retry_after: float | None = None,
) -> httpx.Response:
    """Return an OpenAI error: ``{"error": {"message", "type", "param", "code"}}``.

    ``openai_error(400, "moderation_blocked")`` is a safety refusal (``ContentRejected``),
    ``openai_error(429, "insufficient_quota")`` an empty account (``QuotaExceeded``), and
    ``openai_error(429, "rate_limit_exceeded", retry_after=12)`` a rate limit (``RateLimited``).
    """
    error = {"message": message, "type": type, "param": param, "code": code}
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return httpx.Response(status, json={"error": error}, headers=headers)
