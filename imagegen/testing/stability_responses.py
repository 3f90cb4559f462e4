"""Answers shaped like Stability AI's v2beta API: generated images and errors."""

from __future__ import annotations

import httpx

from imagegen.testing.images import b64, png_bytes

__all__ = ["stability_error", "stability_image_response"]

_STABILITY_NAMES = {
    400: "bad_request",
    401: "unauthorized",
    402: "payment_required",
    403: "content_moderation",
    404: "generation_not_found",
    413: "payload_too_large",
    429: "rate_limit_exceeded",
}


def stability_image_response(
    image: bytes | None = None,
    *,
    seed: int = 42,
    finish_reason: str = "SUCCESS",
    accept: str = "json",
    request_id: str = "req-test",
) -> httpx.Response:
    """Return a 200 from a ``/v2beta/stable-image/`` endpoint holding ``image``.

    ``accept="json"`` (the default) answers ``{"image": <base64>, "finish_reason", "seed"}``;
    ``accept="image"`` answers raw bytes with ``finish-reason`` and ``seed`` headers. The
    provider reads either, whatever its own ``accept`` option. ``finish_reason`` may be
    ``"CONTENT_FILTERED"``: the call is then charged without an image.
    """
    content = png_bytes() if image is None else image
    headers = {"x-request-id": request_id}
    if accept == "image":
        headers.update({"content-type": "image/png", "finish-reason": finish_reason})
        return httpx.Response(200, content=content, headers={**headers, "seed": str(seed)})
    body = {"image": b64(content), "finish_reason": finish_reason, "seed": seed}
    headers["content-type"] = "application/json; type=image/png"
    return httpx.Response(200, json=body, headers=headers)


def stability_error(
    status: int,
    name: str | None = None,
    message: str = "The request failed.",
    *,
    retry_after: float | None = None,
) -> httpx.Response:
    """Return a Stability AI error: ``{"id", "name", "errors": [message]}``.

    ``name`` defaults from the status (403 is ``content_moderation``, a ``ContentRejected``;
    429 ``rate_limit_exceeded``, a ``RateLimited``; 402 ``payment_required``...).
    """
    name = name or _STABILITY_NAMES.get(status, "internal_error")
    body = {"id": "0123456789abcdef0123456789abcdef", "name": name, "errors": [message]}
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return httpx.Response(status, json=body, headers=headers)
