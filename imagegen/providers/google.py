"""Google's image models: Gemini image models through generateContent, Imagen 4 through :predict.

The wire protocol follows provider-apis.md §4: Gemini image models ("Nano Banana", §4.6) take
``POST /models/{model}:generateContent`` and answer with inline base64 parts and token counts in
``usageMetadata``; the shut-down Imagen 4 ids (§4.1) take the legacy
``POST /models/{model}:predict`` (§4.3, §4.4), which only gateways and proxies may still serve.
The key travels in the ``x-goog-api-key`` header, never in the URL (ecosystem-reliability §E).
Both kinds of answer are read by :mod:`~imagegen.providers.google_output`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx

from imagegen.catalog.google import IMAGE_SIZES, MAX_INPUT_IMAGES
from imagegen.exceptions import ModelUnavailable, ProviderError, UnsupportedRequest
from imagegen.providers.google_batch import GeminiBatchMode
from imagegen.providers.google_output import answer_usage, parse_gemini, parse_imagen, usage_from
from imagegen.providers.http import HttpProvider
from imagegen.providers.http.errors import ApiError, json_body, parse_retry_after
from imagegen.providers.http.inputs import b64, instruction, present
from imagegen.providers.http.outputs import dicts, image_mime
from imagegen.types import CallContext, ImageRequest, ImageResult

# usage_from is re-exported from its old home.
__all__ = ["GoogleProvider", "usage_from"]

#: Image sizes the API knows (§4.6); the catalog's IMAGE_SIZES says which a model takes.
SIZES = ("1K", "2K", "4K")
# §4.4: Google RPC statuses that mean the key (or what it may do) is the problem.
AUTH_STATUSES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
MIME = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg"}
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
#: The prompt each instruction-style operation sends with the inline images, from the caller's
#: ``prompt`` and ``search`` ("+reference": when reference images follow the source). Google's
#: editing guide phrases edits as "Using the provided image, ..."; edit sends the prompt as it
#: is. Documented in docs/providers/google.md.
INSTRUCTIONS = {
    "replace_background": (
        "Using the provided image, replace the background with: {prompt}. Keep the subject "
        "exactly as it is: its shape, edges, colours, lighting and position."
    ),
    "search_replace": (
        "Using the provided image, replace {search} with {prompt}. Keep everything else in the "
        "image exactly the same."
    ),
    "search_recolor": (
        "Using the provided image, change the colour of {search}: {prompt}. Keep everything "
        "else in the image exactly the same."
    ),
    "restyle": "Using the provided image, restyle it: {prompt}. Keep its subject and composition.",
    "restyle+reference": (
        "Apply the style of the second image to the first image: {prompt}. Keep the first "
        "image's subject and composition; take only the look (palette, texture, medium) from "
        "the second."
    ),
}


class GoogleProvider(GeminiBatchMode, HttpProvider):
    """Generate and edit images with Google's Gemini image models (Imagen 4 ids via proxies).

    OPTIONS besides the common ones: ``image_size`` ("1K", "2K" or "4K"), sent where the model
    takes it (``imageConfig.imageSize``, Imagen's ``sampleImageSize``); a request's ``quality``
    naming a size overrides it. ``ImageRequest.extra`` is deep-merged into the JSON body, e.g.
    ``{"generationConfig": {"responseModalities": ["TEXT", "IMAGE"]}}`` or ``safetySettings``.
    Safety refusals raise ``ContentRejected`` and are recorded as uncharged: §4.5 reports
    filtered images as not billed, and §4.6 does not say what a blocked call costs.
    """

    catalog_key = "google"
    display_name = "Google"
    # Google's changelog, 2026-10-06: the successor of the deprecated gemini-3.1-flash-image
    # (itself §4.1's replacement for Imagen 4 Fast and Standard).
    default_model = "gemini-nano-banana-2.1"
    # Every operation on a source image is an instruction over inline images (INSTRUCTIONS).
    operations = (
        "generate",
        "edit",
        "replace_background",
        "search_replace",
        "search_recolor",
        "restyle",
    )
    api_key_env = "GEMINI_API_KEY"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    # Calls are synchronous and 4K images are slow; a disconnect may still bill.
    default_timeout = 300.0
    secret_patterns = (r"AIza[0-9A-Za-z_\-]{35}",)

    def __init__(self, *, image_size: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        if image_size is not None and image_size not in SIZES:
            problem = f"must be one of {', '.join(SIZES)}, got {image_size!r}."
            raise self.option_error("image_size", problem)
        self.image_size = image_size

    def auth_headers(self) -> dict[str, str]:
        # ecosystem-reliability.md §E: header auth, so no URL (and no httpx log line) has the key.
        return {"x-goog-api-key": self.api_key()}

    def prepare(self, request: ImageRequest) -> tuple[list[ImageRequest], list[str]]:
        # The image size to send travels as the request's quality, so the estimate prices it.
        model = request.model or self.model
        caps, operation = self.model_info(model).capabilities, request.operation
        if operation != "generate" and (not caps.edit or caps.support(operation) is None):
            raise self.unsupported(f"{model} cannot {operation.replace('_', ' ')} images.")
        warnings = []
        if request.quality and request.quality not in SIZES:
            warnings.append(f"Google has no quality tiers; {request.quality!r} was ignored.")
        wanted = request.quality if request.quality in SIZES else self.image_size
        if wanted and wanted not in IMAGE_SIZES.get(model, SIZES):
            warnings.append(f"{model} does not offer image size {wanted}; using its default.")
            wanted = None
        calls, more = super().prepare(replace(request, quality=wanted))
        return calls, warnings + more

    # Calling -----------------------------------------------------------------------------

    def _generate(self, request: ImageRequest, context: CallContext) -> ImageResult:
        model = request.model or self.model
        imagen = model.startswith("imagen-")
        body = self.imagen_body(request, model) if imagen else self.gemini_body(request, model)
        path = f"/models/{quote(model, safe='')}:{'predict' if imagen else 'generateContent'}"

        def send() -> httpx.Response:
            try:
                return self.request("POST", path, json=body, deadline=context.deadline)
            except ModelUnavailable as err:
                raise self.retired_model(model, err, today=datetime.date.today()) from err

        parse = parse_imagen if imagen else parse_gemini
        # Google bills a call it answers 200: an answer refused after that keeps its charge.
        return self.billed_call(
            send, lambda response: parse(self, request, response), usage=answer_usage
        )

    def image_size_for(self, request: ImageRequest, model: str) -> str | None:
        """Return the image size to send: the request's, else the OPTION's, if the model has it."""
        sizes = IMAGE_SIZES.get(model, SIZES)
        return next((s for s in (request.quality, self.image_size) if s and s in sizes), None)

    def gemini_body(self, request: ImageRequest, model: str) -> dict[str, Any]:
        """Return the generateContent body (§4.6): text, then source images as inline_data."""
        if request.operation != "generate" and not request.source_images:
            raise UnsupportedRequest("A Google edit needs at least one source image.")
        if request.mask is not None:
            raise UnsupportedRequest(f"Google's {model} takes no mask.")
        most = MAX_INPUT_IMAGES.get(model)
        if most is not None and len(request.source_images) > most:
            raise UnsupportedRequest(f"Google's {model} takes at most {most} input images.")
        parts: list[dict[str, Any]] = [{"text": instruction(INSTRUCTIONS, request)}]
        for content in request.source_images:
            mime = image_mime(content)
            if not mime:
                raise UnsupportedRequest("Google takes source images as PNG, JPEG or WebP only.")
            parts.append({"inline_data": {"mime_type": mime, "data": b64(content)}})
        # The aspect ratio is the one the catalog fitted to the model (the API default if none).
        size = self.image_size_for(request, model)
        image_config = {"aspectRatio": request.aspect_ratio, "imageSize": size}
        config = {"responseModalities": ["IMAGE"], "imageConfig": present(image_config)}
        return _merge({"contents": [{"parts": parts}], "generationConfig": config}, request.extra)

    def imagen_body(self, request: ImageRequest, model: str) -> dict[str, Any]:
        """Return the legacy :predict body (§4.3), asking for the reasons of filtered images."""
        if request.operation != "generate":
            raise UnsupportedRequest(f"{model} cannot {request.operation} images.")
        parameters = {
            "sampleCount": request.count,
            "aspectRatio": request.aspect_ratio,
            "includeRaiReason": True,
            "outputOptions": {"mimeType": MIME.get(request.output_format, "image/png")},
            "sampleImageSize": self.image_size_for(request, model),
        }
        body = {"instances": [{"prompt": request.prompt}], "parameters": present(parameters)}
        return _merge(body, request.extra)

    # Reading answers ---------------------------------------------------------------------

    # Errors ------------------------------------------------------------------------------

    def parse_error(self, response: httpx.Response) -> ApiError:
        # §4.4: {"error": {"code": 400, "message", "status": "INVALID_ARGUMENT", "details"}};
        # the code becomes the RPC status, the type an ErrorInfo reason such as API_KEY_INVALID.
        error, inner = super().parse_error(response), _google_error(response)
        reasons = [str(d["reason"]) for d in dicts(inner.get("details")) if d.get("reason")]
        status = str(inner.get("status") or "") or error.code
        return replace(error, code=status, type=reasons[0] if reasons else error.type)

    def error_for_response(self, response: httpx.Response, error: ApiError) -> ProviderError:
        status, said, http = error.code or "", error.message, response.status_code
        if status in AUTH_STATUSES or error.type == "API_KEY_INVALID" or http in (401, 403):
            return self.key_refused(response, status or str(http), said)
        if status == "RESOURCE_EXHAUSTED" or http == 429:
            # §4.4 names 429 RESOURCE_EXHAUSTED only; quota and rate wording are not told apart.
            wait = parse_retry_after(response.headers)
            wait = wait if wait is not None else _retry_delay(_google_error(response))
            return self.rate_limited(response, said, wait)
        if status == "NOT_FOUND" or http == 404:
            # §4.1/§4.4: retired model ids answer 404; the paths name nothing but the model.
            return self.answer_error(
                response, ModelUnavailable, "Google does not offer this model", said
            )
        if status in ("INVALID_ARGUMENT", "FAILED_PRECONDITION") or http == 400:
            what = "Google refused the request"
            return self.answer_error(response, ProviderError, what, said, code="invalid_request")
        return super().error_for_response(response, error)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``extra`` merged in, nested objects key by key."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            value = _merge(merged[key], value)
        merged[key] = value
    return merged


def _google_error(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    inner = body.get("error") if isinstance(body, dict) else None
    return inner if isinstance(inner, dict) else {}


def _retry_delay(inner: dict[str, Any]) -> float | None:
    # google.rpc.RetryInfo in "details" carries {"retryDelay": "27s"} when no header does.
    delays = [str(d["retryDelay"]) for d in dicts(inner.get("details")) if "retryDelay" in d]
    match = _DELAY.match(delays[0]) if delays else None
    return float(match.group(1)) if match else None
