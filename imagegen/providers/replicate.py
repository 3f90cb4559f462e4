"""Replicate: FLUX models as predictions, created with ``Prefer: wait``, polled, downloaded at once.

The wire protocol follows provider-apis.md §3. A prediction is created with
``POST /models/{owner}/{name}/predictions`` (or ``POST /predictions`` with a ``version`` for a
pinned ``owner/name:version`` id) and the header ``Prefer: wait``, which holds the answer until
the prediction finishes or up to 60 s (§3.1). Its id goes to ``CallContext.on_job_accepted``
before anything else happens; a prediction that is not finished yet is then polled with
``GET /predictions/{id}`` until ``succeeded``, ``failed`` or ``canceled``. A redelivered task
(``CallContext.resume_job_id``) polls the stored prediction and never creates a second one.

Output files are deleted by Replicate after an hour (§3.7), so they are downloaded as soon as the
prediction succeeds, through the safe downloader and only from ``replicate.delivery``. ``output``
is a list of URLs for FLUX.1 [schnell] and [dev] and a single URL for the others (§3.2); both are
normalised to a list. A ``failed`` prediction whose error names the safety checker raises
``ContentRejected``; any other failure a ``ProviderError`` quoting Replicate's error text. A
prediction still running at the deadline is cancelled (``POST /predictions/{id}/cancel``).

With the ``webhook_url`` option, predictions also carry ``webhook`` and
``webhook_events_filter: ["completed"]``; :mod:`imagegen.webhooks` receives the callback and uses
it only as a hint to resume the generation through the normal pipeline.
"""

from __future__ import annotations

import base64
import math
import os
import re
import time
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from imagegen import catalog
from imagegen.catalog import replicate as models
from imagegen.exceptions import (
    ContentRejected,
    InvalidProviderError,
    InvalidResponse,
    ModelUnavailable,
    ProviderError,
    UnsupportedRequest,
)
from imagegen.pricing import MegapixelTiers
from imagegen.providers.errors import ApiError, sentence
from imagegen.providers.http import HttpProvider, Secret, image_mime
from imagegen.types import CallContext, ImageOutput, ImageRequest, ImageResult

#: §3.2: the statuses after which a prediction never changes. "aborted" is not in the
#: reference; Replicate reports it for predictions stopped before they started, like a cancel.
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
#: §3.1: ``Prefer: wait=N`` takes N from 1 to 60; plain ``Prefer: wait`` means 60.
MAX_WAIT = 60
#: Seconds kept free between the end of ``Prefer: wait`` and the HTTP read timeout, so a slow
#: answer ends the hold, never the connection (a read timeout after the POST loses the id).
WAIT_MARGIN = 5
#: Environment variable holding the webhook signing secret when OPTIONS give none.
WEBHOOK_SECRET_ENV = "REPLICATE_WEBHOOK_SECRET"  # noqa: S105 - a variable name
# §3.4 [UNCERTAIN wording]: the safety checker's failures. "NSFW content detected" (FLUX.1),
# "flagged as sensitive ... (E005)" (Replicate's platform filter), "content moderated/flagged".
SAFETY_ERROR = re.compile(
    r"nsfw|flagged as sensitive|\bE005\b|safety (checker|filter|system)"
    r"|content (was |has been )?(flagged|moderated|blocked|rejected)",
    re.IGNORECASE,
)
# Fields imagegen sets itself: the prompt, and the count (the catalog splits large requests).
RESERVED = frozenset({"prompt", "num_outputs"})
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_MODEL_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(:[0-9a-f]{64})?$")
_PREDICTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MEGAPIXELS = ("1", "0.25")  # §3.5 schnell/dev ``megapixels``


class ReplicateProvider(HttpProvider):
    """Generate images with FLUX models on Replicate.

    OPTIONS besides the common ones (each sent only to models that take the field, §3.5):
    ``wait`` (seconds the create call holds for the result, 1-60, default 60; 0 answers at once
    and polls), ``poll_interval`` (first pause between polls, default 1 s, growing up to 10 s) and
    ``poll_timeout`` (how long to poll, default 600 s), ``output_quality`` (0-100, jpg and webp),
    ``go_fast`` and ``megapixels`` ("1" or "0.25") for FLUX.1 [schnell]/[dev], ``resolution``
    ("0.5 MP" to "4 MP", FLUX.2 [pro]/[flex]; by default the one nearest the requested size),
    ``safety_tolerance``, and ``webhook_url`` / ``webhook_secret`` (see :mod:`imagegen.webhooks`).
    ``ImageRequest.extra`` adds or overrides any other ``input`` field.
    """

    catalog_key = "replicate"
    display_name = "Replicate"
    default_model = "black-forest-labs/flux-schnell"
    operations = ("generate", "edit")
    api_key_env = "REPLICATE_API_TOKEN"
    default_base_url = "https://api.replicate.com/v1"
    # §3.7: output files are served from replicate.delivery (and its subdomains).
    default_download_hosts = ("replicate.delivery", "*.replicate.delivery")
    # Replicate API tokens start with "r8_".
    secret_patterns = (r"\br8_[A-Za-z0-9]{16,}",)

    def __init__(
        self,
        *,
        wait: int | None = None,
        poll_interval: float = 1.0,
        poll_timeout: float = 600.0,
        output_quality: int | None = None,
        go_fast: bool | None = None,
        megapixels: str | None = None,
        resolution: str | None = None,
        safety_tolerance: int | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        where = f'IMAGEGEN["PROVIDERS"][{self.alias!r}]'
        if wait is not None and (
            isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= MAX_WAIT
        ):
            raise InvalidProviderError(
                f'OPTIONS["wait"] of {where} must be a whole number of seconds from 1 to '
                f"{MAX_WAIT} (or 0 to answer at once), got {wait!r}."
            )
        if float(poll_interval) <= 0 or float(poll_timeout) <= 0:
            raise InvalidProviderError(
                f'OPTIONS["poll_interval"] and ["poll_timeout"] of {where} must be positive.'
            )
        if output_quality is not None and not 0 <= int(output_quality) <= 100:
            raise InvalidProviderError(
                f'OPTIONS["output_quality"] of {where} must be between 0 and 100, '
                f"got {output_quality!r}."
            )
        if megapixels is not None and str(megapixels) not in _MEGAPIXELS:
            raise InvalidProviderError(
                f'OPTIONS["megapixels"] of {where} must be "1" or "0.25", got {megapixels!r}.'
            )
        if resolution is not None and resolution not in models.RESOLUTIONS:
            raise InvalidProviderError(
                f'OPTIONS["resolution"] of {where} must be one of '
                f"{', '.join(models.RESOLUTIONS)}, got {resolution!r}."
            )
        if webhook_url is not None and urlsplit(str(webhook_url)).scheme != "https":
            # §3.3: Replicate posts to HTTPS URLs only and does not follow redirects.
            raise InvalidProviderError(
                f'OPTIONS["webhook_url"] of {where} must be an https:// URL that reaches '
                "imagegen's webhook view without a redirect."
            )
        self.wait = wait
        self.poll_interval = float(poll_interval)
        self.poll_timeout = float(poll_timeout)
        self.output_quality = None if output_quality is None else int(output_quality)
        self.go_fast = go_fast
        self.megapixels = None if megapixels is None else str(megapixels)
        self.resolution = resolution
        self.safety_tolerance = safety_tolerance
        self.webhook_url = webhook_url
        secret = (
            webhook_secret if webhook_secret is not None else os.environ.get(WEBHOOK_SECRET_ENV, "")
        )
        #: The webhook signing secret (``whsec_...``), read by :mod:`imagegen.webhooks`.
        self.webhook_secret = Secret(secret or "")

    # Catalog -----------------------------------------------------------------------------

    def model_info(self, model: str | None = None) -> catalog.ModelInfo:
        # A pinned version ("owner/name:<hash>") has its model's capabilities and price.
        model = model or self.model
        base = model.partition(":")[0]
        if base != model and catalog.get_model(self.catalog_key, model) is None:
            info = catalog.get_model(self.catalog_key, base)
            if info is not None:
                return replace(info, id=model)
        return super().model_info(model)

    def prepare(self, request: ImageRequest) -> tuple[list[ImageRequest], list[str]]:
        # The resolution tier travels as the request's quality, so the estimate prices it.
        model = request.model or self.model
        info, schema = self.model_info(model), models.schema_for(model)
        if request.operation == "edit" and not info.capabilities.edit:
            message = f"{model} cannot edit images; use a FLUX.2 model or flux-dev."
            raise UnsupportedRequest(message, provider=self.alias)
        warnings, quality = [], None
        takes_resolution = schema is not None and "resolution" in schema.fields
        if request.quality in models.RESOLUTIONS and takes_resolution:
            quality = request.quality
        elif request.quality:
            warnings.append(f"{model} has no quality tiers; {request.quality!r} was ignored.")
        if quality is None and takes_resolution:
            quality = self.resolution or models.nearest_resolution(request.width, request.height)
        elif quality is None and schema is not None and schema.image_field == "input_images":
            quality = "1 MP"  # FLUX.2 [dev] has no resolution field: about 1 MP is made
        calls, more = super().prepare(replace(request, quality=quality))
        return calls, warnings + more

    # Calling -----------------------------------------------------------------------------

    def _generate(self, request: ImageRequest, context: CallContext) -> ImageResult:
        model = request.model or self.model
        created: dict[str, Any] = {}

        def submit() -> str:
            path, body = self.create_call(request, model)
            response = self._create(path, body, context)
            created.update(self.prediction(response))
            return created["id"]

        job_id = self._job_id(self.submit_or_resume(context, submit))
        prediction = created
        if prediction.get("status") not in TERMINAL:
            poll_url = self.poll_url(prediction, job_id)
            prediction = self.poll_until(
                lambda: self.prediction(self.request("GET", poll_url, deadline=context.deadline)),
                lambda answer: answer["status"] in TERMINAL,
                context=context,
                job_id=job_id,
                timeout=self.poll_timeout,
                interval=self.poll_interval,
                max_interval=max(self.poll_interval, 10.0),
                cancel_on_timeout=True,
            )
        return self.result(request, model, job_id, prediction, context)

    def create_call(self, request: ImageRequest, model: str) -> tuple[str, dict[str, Any]]:
        """Return the path and JSON body that create a prediction for ``request`` (§3.1)."""
        if not _MODEL_ID.match(model):
            raise InvalidProviderError(
                f'OPTIONS["model"] of IMAGEGEN["PROVIDERS"][{self.alias!r}] must be a Replicate '
                f"model id such as black-forest-labs/flux-schnell, got {model!r}."
            )
        body: dict[str, Any] = {"input": self.input_for(request, model)}
        if self.webhook_url:
            body["webhook"] = self.webhook_url
            body["webhook_events_filter"] = ["completed"]
        name, _, version = model.partition(":")
        if version:
            return "/predictions", {"version": version, **body}
        owner, _, slug = name.partition("/")
        return f"/models/{quote(owner, safe='')}/{quote(slug, safe='')}/predictions", body

    def input_for(self, request: ImageRequest, model: str) -> dict[str, Any]:
        """Return the prediction ``input`` for ``request``: its fields, the OPTIONS, then extra."""
        reserved = sorted(RESERVED & set(request.extra))
        if reserved:
            raise UnsupportedRequest(
                f"extra may not set {', '.join(reserved)}: imagegen sets these itself.",
                provider=self.alias,
            )
        schema = models.schema_for(model)
        fields: dict[str, Any] = {"prompt": request.prompt}
        if request.aspect_ratio:
            fields["aspect_ratio"] = request.aspect_ratio
        if request.seed is not None:
            fields["seed"] = request.seed
        if schema is None:
            # An uncatalogued model: only what every text-to-image model takes, plus extra.
            if request.operation == "edit":
                raise UnsupportedRequest(
                    f"imagegen does not know where {model} takes source images; pass them as "
                    "URLs in extra, with operation generate.",
                    provider=self.alias,
                )
            return {**fields, **request.extra}
        fmt = "jpg" if request.output_format == "jpeg" else request.output_format
        optional = {
            "num_outputs": request.count,
            "output_format": fmt,
            "output_quality": self.output_quality if fmt != "png" else None,
            "go_fast": self.go_fast,
            "megapixels": self.megapixels,
            "resolution": request.quality if request.quality in models.RESOLUTIONS else None,
            "safety_tolerance": self.safety_tolerance,
        }
        fields.update({k: v for k, v in optional.items() if k in schema.fields and v is not None})
        if request.operation == "edit":
            fields.update(self.image_fields(request, model, schema))
        fields.update(request.extra)
        return fields

    def image_fields(
        self, request: ImageRequest, model: str, schema: models.InputSchema
    ) -> dict[str, Any]:
        """Return the source images of an edit as data URLs in the model's image field (§3.1)."""
        images = request.source_images
        if not images or schema.image_field is None:
            raise UnsupportedRequest(f"An edit with {model} needs a source image.")
        if len(images) > schema.max_input_images:
            raise UnsupportedRequest(
                f"{model} takes at most {schema.max_input_images} source image(s), "
                f"got {len(images)}."
            )
        urls = []
        for content in images:
            mime = image_mime(content)
            if not mime:
                raise UnsupportedRequest("Replicate takes source images as PNG, JPEG or WebP.")
            if len(content) > models.MAX_DATA_URL_BYTES:
                raise UnsupportedRequest(
                    f"A source image of {len(content):,} bytes is too large to send inline "
                    f"(Replicate's limit is {models.MAX_DATA_URL_BYTES // 1024} KB); pass an "
                    f"HTTPS URL in extra[{schema.image_field!r}] instead."
                )
            urls.append(f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}")
        return {schema.image_field: urls if schema.image_field == "input_images" else urls[0]}

    def _create(self, path: str, body: dict[str, Any], context: CallContext) -> httpx.Response:
        headers = {}
        wait = self.wait_seconds(context)
        if wait:
            headers["Prefer"] = "wait" if wait == MAX_WAIT else f"wait={wait}"
        return self.request("POST", path, json=body, headers=headers, deadline=context.deadline)

    def wait_seconds(self, context: CallContext) -> int:
        """Return how long the create call may hold for the result: ``wait``, within the time left.

        The hold ends :data:`WAIT_MARGIN` seconds before the call's read timeout or the
        context's deadline, whichever is first, so the answer (and the prediction id) arrives.
        """
        wanted = MAX_WAIT if self.wait is None else self.wait
        left = self.timeout
        if context.deadline is not None:
            left = min(left, context.deadline - time.monotonic())
        return max(0, min(wanted, math.floor(left - WAIT_MARGIN)))

    def poll_url(self, prediction: dict[str, Any], job_id: str) -> str:
        """Return the URL to poll: the prediction's ``urls.get`` if it is this API's, else ours.

        The API key goes with every poll, so a ``urls.get`` on another host, or outside
        ``base_url``'s predictions, is never followed (a gateway's ``base_url`` gets the same
        treatment: the poll stays on it).
        """
        own = f"/predictions/{quote(job_id, safe='')}"
        urls = prediction.get("urls")
        given = urls.get("get") if isinstance(urls, dict) else None
        if not isinstance(given, str):
            return own
        target, base = urlsplit(given), urlsplit(self.base_url)
        same_origin = (target.scheme, target.netloc) == (base.scheme, base.netloc)
        expected = base.path.rstrip("/") + own
        if same_origin and target.path == expected and not target.query and not target.fragment:
            return given
        return own

    def cancel(self, job_id: str) -> None:
        """Ask Replicate to stop prediction ``job_id`` (§3.1); its answer is not needed."""
        self.request("POST", f"/predictions/{quote(self._job_id(job_id), safe='')}/cancel")

    # Reading answers ---------------------------------------------------------------------

    def prediction(self, response: httpx.Response) -> dict[str, Any]:
        """Return the prediction object in ``response`` with a checked ``id`` and ``status``."""
        body = self.json_object(response)
        if not isinstance(body.get("id"), str) or not isinstance(body.get("status"), str):
            message = "Replicate answered without a prediction id and status."
            raise self.fail(InvalidResponse, "invalid_response", message)
        self._job_id(body["id"])
        return body

    def _job_id(self, job_id: str) -> str:
        # The id goes into URL paths and onto the ledger row.
        if not _PREDICTION_ID.match(job_id):
            message = "Replicate sent a prediction id that is not a plain token."
            raise self.fail(InvalidResponse, "invalid_response", message)
        return job_id

    def result(
        self,
        request: ImageRequest,
        model: str,
        job_id: str,
        prediction: dict[str, Any],
        context: CallContext,
    ) -> ImageResult:
        """Return the images of a finished prediction, downloaded now, or raise (§3.2, §3.4)."""
        status = prediction["status"]
        if status == "failed":
            raise self.failure(job_id, prediction.get("error"))
        if status != "succeeded":
            message = (
                f"Replicate prediction {job_id} was canceled before it finished "
                "(by a timeout, or on replicate.com); generate again."
            )
            raise self.fail(ProviderError, "prediction_canceled", message)
        urls = output_urls(prediction.get("output"))
        if not urls:
            if prediction.get("data_removed"):
                message = (
                    f"Replicate already deleted the output of prediction {job_id} (outputs are "
                    "kept for an hour); generate again."
                )
                raise self.fail(ProviderError, "download_expired", message)
            message = f"Replicate prediction {job_id} succeeded without any output."
            raise self.fail(InvalidResponse, "no_images", message)
        warnings = []
        if len(urls) > request.count:
            warnings.append(
                f"Replicate returned {len(urls)} images for {request.count} requested; "
                "the extra ones were billed but not kept."
            )
        fmt = request.output_format
        images = []
        for url in urls[: request.count]:
            content = self.download(url, context=context)
            images.append(
                ImageOutput(
                    content=content,
                    mime_type=image_mime(content) or MIME.get(fmt, ""),
                    seed=request.seed if len(urls) == 1 else None,
                )
            )
        usage, cost = self.usage(request, prediction, len(urls)), None
        info = catalog.get_model(self.catalog_key, model.partition(":")[0])
        if info is None and catalog.get_model(self.catalog_key, model) is None:
            warnings.append(
                f"{model} is not in imagegen's catalog, so its price is unknown and the cost "
                'was recorded as 0; set IMAGEGEN["PRICES"] for it.'
            )
        else:
            cost = self.model_info(model).price.actual(request, usage, len(urls))
        return ImageResult(
            images=tuple(images),
            model=model,
            cost=cost,
            usage=usage,
            job_id=job_id,
            warnings=tuple(warnings),
        )

    def usage(self, request: ImageRequest, prediction: dict[str, Any], outputs: int) -> dict:
        """Return what the prediction consumed: output images, run time, billed megapixels."""
        usage: dict[str, Any] = {"output_images": outputs}
        metrics = prediction.get("metrics")
        seconds = metrics.get("predict_time") if isinstance(metrics, dict) else None
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            usage["predict_time"] = seconds
        price = self.model_info(request.model).price
        if isinstance(price, MegapixelTiers):
            usage.update(price.usage(request, outputs))
        return usage

    def failure(self, job_id: str, error: Any) -> ProviderError:
        """Return the exception for a ``failed`` prediction and its ``error`` text (§3.4)."""
        if isinstance(error, dict):
            error = error.get("detail") or error.get("message") or error.get("title")
        said = self.quote(str(error)) if error else ""
        if said and SAFETY_ERROR.search(said):
            return self.fail(
                ContentRejected,
                "content_rejected",
                sentence("Replicate's safety checker rejected this prompt or image", said)
                + " Change the prompt; the same request will be refused again.",
            )
        return self.fail(
            ProviderError,
            "prediction_failed",
            sentence(f"Replicate prediction {job_id} failed", said or "no reason given"),
        )

    # Errors ------------------------------------------------------------------------------

    def parse_error(self, response: httpx.Response) -> ApiError:
        # §3.4: RFC 7807 problem details {type, title, status, detail}; detail says the most.
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and ("title" in body or "detail" in body):
            title, detail = str(body.get("title") or ""), body.get("detail")
            if isinstance(detail, list | dict):
                detail = str(detail)
            text = ": ".join(part for part in (title, str(detail or "")) if part)
            return ApiError(message=text, type=_text(body.get("type")))
        return super().parse_error(response)

    def error_for_response(self, response: httpx.Response, error: ApiError) -> ProviderError:
        kwargs: dict[str, Any] = {"provider": self.alias, "status_code": response.status_code}
        status, path = response.status_code, response.request.url.path
        if status == 404 and path.endswith("/predictions"):
            # The create call: /models/{owner}/{name}/predictions, or /predictions (a version).
            parts = path.split("/")
            model = "/".join(parts[-3:-1]) if "/models/" in path else "this model version"
            missing = f"Replicate has no model {model}, or this token may not run it"
            said = sentence(missing, error.message)
            return ModelUnavailable(f'{said} Check OPTIONS["model"].', **kwargs)
        if status == 404 and "/predictions/" in path:
            # §3.7: predictions are deleted an hour after they finish.
            gone = (
                "Replicate does not know this prediction (predictions are deleted an hour "
                "after they finish); generate again"
            )
            return ProviderError(
                sentence(gone, error.message), code="prediction_not_found", **kwargs
            )
        if status == 422:
            return ProviderError(
                sentence("Replicate refused the input", error.message),
                code="invalid_request",
                **kwargs,
            )
        return super().error_for_response(response, error)


def output_urls(output: Any) -> list[str]:
    """Return a prediction's ``output`` as a list of URLs: a bare string becomes one (§3.7)."""
    if isinstance(output, str):
        return [output] if output else []
    if isinstance(output, list):
        return [item for item in output if isinstance(item, str) and item]
    return []


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
