"""Answers shaped like Stability AI's v2beta API: generated images, errors, and a fake server.

:class:`StabilityServer` is the whole protocol in one fake: it checks each form against the
endpoint's fields (:data:`STABILITY_ENDPOINTS`) and answers with images, job ids and polls.
"""

from __future__ import annotations

import io
import math
import secrets
from typing import Any

import httpx

from imagegen.testing.images import b64, png_bytes
from imagegen.testing.mock_api import multipart_parts

__all__ = [
    "STABILITY_ENDPOINTS",
    "StabilityServer",
    "stability_error",
    "stability_image_response",
]

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


#: What the v2beta server takes at each endpoint under /v2beta/stable-image (provider-apis.md
#: §1.2): required fields, optional fields, required image parts, optional image parts.
STABILITY_ENDPOINTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "generate/ultra": (
        ("prompt",),
        ("negative_prompt", "aspect_ratio", "seed", "style_preset", "strength", "output_format"),
        (),
        ("image",),
    ),
    "generate/core": (
        ("prompt",),
        ("negative_prompt", "aspect_ratio", "seed", "style_preset", "output_format"),
        (),
        (),
    ),
    "generate/sd3": (
        ("prompt",),
        ("mode", "model", "aspect_ratio", "seed", "style_preset", "negative_prompt",
         "cfg_scale", "strength", "output_format"),
        (),
        ("image",),
    ),
    "edit/inpaint": (
        ("prompt",),
        ("negative_prompt", "grow_mask", "seed", "style_preset", "output_format"),
        ("image",),
        ("mask",),
    ),
    "edit/outpaint": (
        (),
        ("left", "right", "up", "down", "creativity", "prompt", "seed", "style_preset",
         "output_format"),
        ("image",),
        (),
    ),
    "edit/erase": ((), ("grow_mask", "seed", "output_format"), ("image",), ("mask",)),
    "edit/search-and-replace": (
        ("prompt", "search_prompt"),
        ("negative_prompt", "grow_mask", "seed", "style_preset", "output_format"),
        ("image",),
        (),
    ),
    "edit/search-and-recolor": (
        ("prompt", "select_prompt"),
        ("negative_prompt", "grow_mask", "seed", "style_preset", "output_format"),
        ("image",),
        (),
    ),
    "edit/remove-background": ((), ("output_format",), ("image",), ()),
    "edit/replace-background-and-relight": (
        (),
        ("background_prompt", "foreground_prompt", "negative_prompt",
         "preserve_original_subject", "original_background_depth", "keep_original_background",
         "light_source_direction", "light_source_strength", "seed", "output_format"),
        ("subject_image",),
        ("background_reference", "light_reference"),
    ),
    "upscale/fast": ((), ("output_format",), ("image",), ()),
    "upscale/conservative": (
        ("prompt",),
        ("negative_prompt", "seed", "creativity", "output_format"),
        ("image",),
        (),
    ),
    "upscale/creative": (
        ("prompt",),
        ("negative_prompt", "seed", "creativity", "style_preset", "output_format"),
        ("image",),
        (),
    ),
    "control/structure": (
        ("prompt",),
        ("control_strength", "negative_prompt", "seed", "style_preset", "output_format"),
        ("image",),
        (),
    ),
    "control/style": (
        ("prompt",),
        ("negative_prompt", "aspect_ratio", "fidelity", "seed", "style_preset",
         "output_format"),
        ("image",),
        (),
    ),
    "control/style-transfer": (
        (),
        ("prompt", "negative_prompt", "style_strength", "composition_fidelity",
         "change_strength", "seed", "output_format"),
        ("init_image", "style_image"),
        (),
    ),
}  # fmt: skip
#: §1.3: the endpoints that answer with a job id to poll.
STABILITY_ASYNC = frozenset({"upscale/creative", "edit/replace-background-and-relight"})
_PAYLOAD_LIMIT = 10 * 1024 * 1024  # §1.1: larger requests get 413
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class StabilityServer:
    """A fake of Stability AI's v2beta server: it checks each form as the API does, then answers.

    Use it where a :class:`~imagegen.testing.MockAPI` goes (its ``transport`` and ``requests``):
    a POST under ``/v2beta/stable-image/`` missing a required field or image part, or carrying
    one the endpoint does not take, gets the 400 ``bad_request`` the API sends; a body over
    10 MiB gets 413; a key without ``Bearer`` 401. A valid call answers 200 with the image
    (raw bytes and ``finish-reason``/``seed`` headers for ``accept: image/*``, base64 JSON for
    ``application/json``), sized as the endpoint sizes it (the fast upscale four times the
    source, the others about 4 megapixels, an outpaint the source plus its sides, an edit the
    source's size, a generation 1024x1024). The creative upscale and
    replace-background-and-relight answer 200 ``{"id"}``; ``GET /v2beta/results/{id}`` then
    answers 202 ``in_progress`` times and the image after. :meth:`fail_next` queues an error
    answer (``stability_error(403)``...) for the next request; ``filtered=True`` ends every
    image ``CONTENT_FILTERED``.
    """

    def __init__(self, *, in_progress: int = 1, filtered: bool = False, seed: int = 42) -> None:
        #: Every request received, oldest first.
        self.requests: list[httpx.Request] = []
        self.in_progress = in_progress
        self.filtered = filtered
        self.seed = seed
        #: Pass this as the provider's ``transport`` option.
        self.transport = httpx.MockTransport(self.handle)
        self._failures: list[httpx.Response] = []
        self._jobs: dict[str, list[Any]] = {}

    @property
    def last(self) -> httpx.Request:
        """Return the last request received."""
        return self.requests[-1]

    def fail_next(self, response: httpx.Response) -> StabilityServer:
        """Answer the next request with ``response`` instead of handling it."""
        self._failures.append(response)
        return self

    def finish(self) -> None:
        """Let every job in progress answer its image at its next poll."""
        for state in self._jobs.values():
            state[0] = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request as the v2beta API would."""
        request.read()
        self.requests.append(request)
        if self._failures:
            return self._failures.pop(0)
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return stability_error(401, message="authorization: invalid API key")
        path = request.url.path
        if request.method == "GET" and path.startswith("/v2beta/results/"):
            return self._poll(path.rpartition("/")[2], request.headers.get("accept", "*/*"))
        endpoint = path.removeprefix("/v2beta/stable-image/")
        if request.method != "POST" or endpoint not in STABILITY_ENDPOINTS:
            return stability_error(404, "not_found", f"{request.method} {path} does not exist")
        if len(request.content) > _PAYLOAD_LIMIT:
            return stability_error(413)
        try:
            parts = multipart_parts(request)
        except ValueError as err:
            return stability_error(400, message=str(err))
        fields = {p.name: p.text for p in parts if p.filename is None}
        files = {p.name: p.content for p in parts if p.filename is not None and p.name != "none"}
        errors = _form_errors(endpoint, fields, files)
        if errors:
            return stability_error(400, message="; ".join(errors))
        image = self._image(endpoint, fields, files)
        accept = request.headers.get("accept", "image/*")
        if endpoint in STABILITY_ASYNC:
            job = secrets.token_hex(32)
            self._jobs[job] = [self.in_progress, image]
            return httpx.Response(200, json={"id": job})
        return self._answer(image, accept)

    def _poll(self, job: str, accept: str) -> httpx.Response:
        if job not in self._jobs:
            return stability_error(404, message=f"Generation {job} was not found")
        state = self._jobs[job]
        if state[0] > 0:
            state[0] -= 1
            return httpx.Response(202, json={"id": job, "status": "in-progress"})
        return self._answer(state[1], accept)

    def _answer(self, image: bytes, accept: str) -> httpx.Response:
        reason = "CONTENT_FILTERED" if self.filtered else "SUCCESS"
        kind = "json" if accept == "application/json" else "image"
        return stability_image_response(
            image, seed=self.seed, finish_reason=reason, accept=kind, request_id="req-fake"
        )

    def _image(self, endpoint: str, fields: dict[str, str], files: dict[str, bytes]) -> bytes:
        """Return the answer's PNG, sized as ``endpoint`` sizes its output."""
        # Imported on use: the other fakes need only httpx (see the package docstring).
        from PIL import Image

        source = files.get("image") or files.get("subject_image") or files.get("init_image")
        width, height = (1024, 1024)
        if source is not None and not endpoint.startswith(("generate/", "control/style")):
            with Image.open(io.BytesIO(source)) as opened:
                width, height = opened.size
        if endpoint == "upscale/fast":
            width, height = width * 4, height * 4
        elif endpoint in ("upscale/conservative", "upscale/creative"):
            factor = math.sqrt(4_194_304 / (width * height))
            width, height = round(width * factor), round(height * factor)
        elif endpoint == "edit/outpaint":
            width += int(fields.get("left", 0)) + int(fields.get("right", 0))
            height += int(fields.get("up", 0)) + int(fields.get("down", 0))
        return png_bytes(width, height, color=(30, 160, 90))


def _form_errors(endpoint: str, fields: dict[str, str], files: dict[str, bytes]) -> list[str]:
    """Return the API's complaints about a form sent to ``endpoint``, or none."""
    required, optional, images, optional_images = STABILITY_ENDPOINTS[endpoint]
    errors = [f"{name}: is required" for name in (*required, *images) if not (
        fields.get(name) or files.get(name)
    )]  # fmt: skip
    errors += [f"{name}: is not a known field" for name in fields if name not in (
        *required, *optional
    )]  # fmt: skip
    errors += [f"{name}: is not a known image" for name in files if name not in (
        *images, *optional_images
    )]  # fmt: skip
    fmt = fields.get("output_format", "png")
    allowed = ("png", "webp") if endpoint == "edit/remove-background" else tuple(_MIME)
    if fmt not in allowed:
        errors.append(f"output_format: must be one of {', '.join(allowed)}")
    if endpoint == "edit/outpaint":
        sides = [int(fields.get(side, 0)) for side in ("left", "right", "up", "down")]
        if not any(sides):
            errors.append("left, right, up, down: at least one must be non-zero")
        if max(sides) > 2000:
            errors.append("left, right, up, down: must be at most 2000")
    if endpoint == "edit/replace-background-and-relight" and not (
        fields.get("background_prompt") or files.get("background_reference")
    ):
        errors.append("background_prompt: is required without a background_reference")
    return errors
