"""Stability AI's REST v2beta API: generate with Ultra, Core or SD3.5, edit, restyle and upscale.

The wire protocol follows provider-apis.md §1: every call is a multipart POST under
``/v2beta/stable-image/`` (built by :mod:`~imagegen.providers.stability_input`, where
``ImageRequest.operation`` picks the endpoint), answered with raw image bytes (``accept:
image/*``; finish reason and seed in headers) or base64 JSON (``accept: application/json``).
A filtered output is billed, so it ends the call ``filtered`` and charged. The creative upscale
and replace-background-and-relight are asynchronous: submitted once, the job id reported
through ``CallContext.on_job_accepted``, then ``GET /v2beta/results/{id}`` is polled until it
no longer answers 202.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx

from imagegen import catalog
from imagegen.catalog.stability import ASYNC_ENDPOINTS, STYLE_PRESETS, operation_price
from imagegen.exceptions import (
    ContentRejected,
    InvalidResponse,
    ProviderError,
    ProviderUnavailable,
    QuotaExceeded,
)
from imagegen.pricing import PerCredit, PriceRule
from imagegen.providers.http import JobProvider
from imagegen.providers.http.errors import ApiError, parse_retry_after
from imagegen.providers.http.outputs import as_int, image_mime, image_output, json_number
from imagegen.providers.stability_input import endpoint_for, multipart_form
from imagegen.types import OPERATIONS, CallContext, ImageRequest, ImageResult

ROOT = "/v2beta/stable-image"
ACCEPT = {"image": "image/*", "json": "application/json"}
# §1.1: the results endpoint takes */* (raw bytes) or application/json, not image/*.
POLL_ACCEPT = {"image": "*/*", "json": "application/json"}
# §1.4: 429 locks the key out for 60 s; used when no retry-after header says otherwise.
RATE_LIMIT_LOCKOUT = 60.0
_NOT_CHARGED = "Nothing was charged; the same request would be refused again."
# §1.4: an error body's "name" -> the exception, its code and what Stability AI did.
ERRORS: dict[str, tuple[type[ProviderError], str, str]] = {
    "content_moderation": (ContentRejected, "content_rejected", "flagged the prompt or image"),
    "public_figure": (ContentRejected, "content_rejected", "refuses to show public figures"),
    # [UNCERTAIN] this name is from Stability's ComfyUI node, not the spec; any 402 maps here.
    "payment_required": (QuotaExceeded, "quota_exceeded", "says the account is out of credits"),
    "generation_not_found": (ProviderError, "job_not_found", "no longer has this job"),
    "invalid_language": (ProviderError, "invalid_language", "only understands English prompts"),
    "bad_request": (ProviderError, "invalid_request", "refused the request's parameters"),
    "payload_too_large": (ProviderError, "request_too_large", "takes at most 10 MiB per request"),
}
ADVICE = {
    "content_rejected": _NOT_CHARGED + " Change the prompt or the image.",
    "quota_exceeded": "Buy credits at platform.stability.ai, then try again.",
    "job_not_found": "Results are kept for 24 hours, only for the API key that submitted the job.",
    "request_too_large": "Send smaller source images.",
}
# Statuses whose meaning does not depend on the name (a gateway may send a bare 402 or 413).
STATUS_ERRORS = {400: "bad_request", 402: "payment_required", 413: "payload_too_large"}


class StabilityProvider(JobProvider):
    """Generate, edit, restyle and upscale images with Stability AI's v2beta REST API.

    OPTIONS besides the common ones: ``accept`` ("image", the default, for raw bytes, or "json"
    for base64 JSON), ``style_preset`` (default for endpoints that take one; ``extra``
    overrides it), ``poll_interval`` (seconds between polls of a creative upscale, default 10:
    §1.3 says faster polling may be rate limited) and ``poll_timeout`` (how long to poll when
    the call has no deadline, default 600).
    """

    catalog_key = "stability"
    display_name = "Stability AI"
    default_model = "core"
    operations = OPERATIONS  # every one: see stability_input for the endpoints
    #: The creative upscale and replace-background-and-relight are jobs; the rest answer at once.
    polled_operations = ("upscale", "replace_background")
    api_key_env = "STABILITY_API_KEY"
    default_base_url = "https://api.stability.ai"
    # §1.5: synchronous endpoints send nothing until the image is ready; use >= 180 s.
    default_timeout = 180.0
    secret_patterns = (r"\bsk-[A-Za-z0-9_\-]{16,}",)
    # §1.3: faster polling may be rate limited. Job ids (64 hex digits) fit job_id_pattern.
    default_poll_interval = 10.0

    def __init__(
        self, *, accept: str = "image", style_preset: str | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        if accept not in ACCEPT:
            raise self.option_error("accept", 'must be "image" or "json".')
        if style_preset is not None and style_preset not in STYLE_PRESETS:
            styles = ", ".join(STYLE_PRESETS)
            raise self.option_error(
                "style_preset", f"must be one of {styles}; got {style_preset!r}."
            )
        self.accept = accept
        self.style_preset = style_preset

    def poll_options(self, interval: float, timeout: float) -> tuple[float, float]:
        # A fixed pause between polls (see HttpProvider.poll_until()), where 0 means none.
        return max(0.0, interval), timeout

    # Catalog and prices --------------------------------------------------------------------

    def price_rule(self, request: ImageRequest, endpoint: str) -> PriceRule:
        """Return how one call to ``endpoint`` is billed: the model's price, else the endpoint's.

        ``IMAGEGEN["PRICES"]`` may override an edit or upscale price under the endpoint's name
        (``"upscale/creative": {"per_credit": 60}``).
        """
        if endpoint.startswith("generate/"):
            return self.model_info(request.model).price
        info = catalog.get_model(self.catalog_key, endpoint)
        return info.price if info else operation_price(endpoint)

    def prepare(self, request: ImageRequest) -> tuple[list[ImageRequest], list[str]]:
        """Adapt ``request`` and refuse, before anything is spent, a call no endpoint takes."""
        calls, warnings = super().prepare(request)
        for call in calls:
            multipart_form(self, call, endpoint_for(self, call))
        return calls, warnings

    def estimate_cost(self, request: ImageRequest) -> Decimal:
        calls, _ = self.prepare(request)
        return sum(
            (self.price_rule(c, endpoint_for(self, c)).estimate(c) for c in calls), Decimal(0)
        )

    # Calling -------------------------------------------------------------------------------

    def _generate(self, request: ImageRequest, context: CallContext) -> ImageResult:
        if request.count != 1:
            raise self.unsupported(
                "Stability AI makes one image per call; prepare() splits larger counts."
            )
        endpoint = endpoint_for(self, request)
        data, files, warnings = multipart_form(self, request, endpoint)
        path, headers = f"{ROOT}/{endpoint}", {"accept": ACCEPT[self.accept]}
        if endpoint in ASYNC_ENDPOINTS:

            def submit() -> str:
                # Sent with the same accept as every POST (image/* is the live-tested path);
                # the answer is JSON either way: 200 (not 202) with {"id": ...} (§1.3).
                answer = self.call_json(
                    "POST", path, context, data=data, files=files, headers=headers
                )
                return self.checked_job_id(answer.get("id"))

            job_id = self.checked_job_id(self.submit_or_resume(context, submit))
            response = self.poll(job_id, context)
            return self.billed_call(
                lambda: response,
                lambda answer: self.parse_result(request, endpoint, answer, job_id, warnings),
                usage=lambda _: self.price_usage(request, endpoint),
            )
        # Stability bills a call it answers 200: an answer refused after that keeps its charge.
        return self.billed_call(
            lambda: self.request(
                "POST", path, data=data, files=files, headers=headers, deadline=context.deadline
            ),
            lambda response: self.parse_result(
                request, endpoint, response, response.headers.get("x-request-id"), warnings
            ),
            usage=lambda _: self.price_usage(request, endpoint),
        )

    def price_usage(self, request: ImageRequest, endpoint: str) -> dict[str, Any]:
        """Return the usage of one billed call to ``endpoint``: its credits, when priced so."""
        rule = self.price_rule(request, endpoint)
        return {"credits": json_number(rule.credits)} if isinstance(rule, PerCredit) else {}

    def poll(self, job_id: str, context: CallContext) -> httpx.Response:
        """Poll ``GET /v2beta/results/{job_id}`` until it is no longer 202 (§1.3); return that."""
        limit = context.deadline
        if limit is None:
            limit = time.monotonic() + self.poll_timeout
        while time.monotonic() < limit:
            try:
                response = self.request(
                    "GET",
                    f"/v2beta/results/{job_id}",
                    headers={"accept": POLL_ACCEPT[self.accept]},
                    deadline=limit,
                )
            except ProviderUnavailable as err:
                # Time running out inside a poll is the job's timeout: the paid job may finish.
                if err.code != "timeout":
                    raise
                break
            if response.status_code != 202:  # §1.5: only 202 means in progress
                return response
            time.sleep(max(0.0, min(self.poll_interval, limit - time.monotonic())))
        message = (
            f"Stability AI had not finished job {job_id} in the time allowed. It may still "
            "finish: a retry polls the same job instead of paying again."
        )
        raise self.fail(ProviderUnavailable, "timeout", message)

    # Reading answers -----------------------------------------------------------------------

    def parse_result(
        self,
        request: ImageRequest,
        endpoint: str,
        response: httpx.Response,
        job_id: str | None,
        warnings: list[str],
    ) -> ImageResult:
        """Return the image of a successful answer, costed as one billed call (§1.3, §1.6)."""
        # §1.4: a filtered output is billed too, so the call is always priced as one image.
        usage = self.price_usage(request, endpoint)
        cost = self.price_rule(request, endpoint).actual(request, {}, 1)
        ctype = response.headers.get("content-type", "")
        mime = ctype.partition(";")[0].strip().lower()
        is_json = mime == "application/json"
        if is_json:
            # §1.3: "application/json; type=image/png" names the image's format.
            body = self.json_object(response)
            reason, seed, raw = body.get("finish_reason"), body.get("seed"), body.get("image")
            match = re.search(r"type=(image/[\w.+-]+)", ctype)
            mime = match.group(1) if match else ""
        else:
            reason, seed = response.headers.get("finish-reason"), response.headers.get("seed")
            raw = response.content
        reason = str(reason or "SUCCESS").upper()
        common: dict[str, Any] = {"model": request.model or self.model, "cost": cost}
        common.update(usage=usage, job_id=job_id)
        warnings = list(warnings)
        if reason == "CONTENT_FILTERED":
            warnings.append(
                "Stability AI's output filter withheld the image (CONTENT_FILTERED); "
                "the call is charged all the same."
            )
            return ImageResult(images=(), filtered=True, warnings=tuple(warnings), **common)
        if reason != "SUCCESS":
            message = f"Stability AI ended the job with finish reason {self.quote(reason)}."
            raise self.fail(InvalidResponse, "generation_failed", message)
        if not raw:
            raise self.fail(InvalidResponse, "no_images", "Stability AI answered without an image.")
        content = self.decode_base64(raw) if is_json else raw
        if not image_mime(content) and not mime.startswith("image/"):
            what = self.quote(ctype or "no content type")
            message = f"Stability AI answered with {what}, not an image."
            raise self.fail(InvalidResponse, "not_an_image", message)
        output = image_output(content, mime, seed=as_int(seed))
        return ImageResult(images=(output,), warnings=tuple(warnings), **common)

    def parse_error(self, response: httpx.Response) -> ApiError:
        # §1.4: {"id", "name", "errors": [...]}; the base reads name as type, errors as message.
        error = super().parse_error(response)
        return replace(error, code=error.code or error.type)

    def error_for_response(self, response: httpx.Response, error: ApiError) -> ProviderError:
        status, said = response.status_code, error.message
        if status == 429:
            wait = parse_retry_after(response.headers)
            wait = RATE_LIMIT_LOCKOUT if wait is None else wait
            return self.rate_limited(response, said, wait)
        known = ERRORS.get(error.code or "") or ERRORS.get(STATUS_ERRORS.get(status, ""))
        if known is None:
            return super().error_for_response(response, error)
        cls, code, what = known
        what, advice = f"Stability AI {what} (HTTP {status})", ADVICE.get(code, "")
        return self.answer_error(response, cls, what, said, code=code, advice=advice)
