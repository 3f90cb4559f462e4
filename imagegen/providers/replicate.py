"""Replicate: FLUX models as predictions, created with ``Prefer: wait``, polled, downloaded at once.

The wire protocol follows provider-apis.md §3. A prediction is created with
``POST /models/{owner}/{name}/predictions`` (or ``POST /predictions`` with a ``version`` for a
pinned ``owner/name:version`` id) and the header ``Prefer: wait``, which holds the answer until
the prediction finishes or up to 60 s (§3.1). Its id goes to ``CallContext.on_job_accepted``
before anything else happens; a prediction that is not finished yet is then polled with
``GET /predictions/{id}`` until ``succeeded``, ``failed`` or ``canceled``. A redelivered task
(``CallContext.resume_job_id``) polls the stored prediction and never creates a second one.

What is sent is built by :mod:`~imagegen.providers.replicate_input`; a finished prediction is
read, its outputs downloaded at once from ``replicate.delivery``, by
:mod:`~imagegen.providers.replicate_output`. A prediction still running at the deadline is
cancelled (``POST /predictions/{id}/cancel``).

With the ``webhook_url`` option, predictions also carry ``webhook`` and
``webhook_events_filter: ["completed"]``; :mod:`imagegen.webhooks` receives the callback and uses
it only as a hint to resume the generation through the normal pipeline.
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from imagegen.catalog import replicate as models
from imagegen.exceptions import InvalidResponse, ModelUnavailable, ProviderError
from imagegen.providers.http import JobProvider
from imagegen.providers.http.credentials import Secret
from imagegen.providers.http.errors import ApiError, json_body, text_or_none
from imagegen.providers.replicate_input import create_call
from imagegen.providers.replicate_output import output_urls, prediction_result
from imagegen.types import CallContext, ImageRequest, ImageResult

# output_urls is re-exported from its old home.
__all__ = ["ReplicateProvider", "output_urls"]

#: §3.2: the statuses after which a prediction never changes. "aborted" is not in the
#: reference; Replicate's lifecycle page says it is a prediction whose deadline passed before it
#: could start running.
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
#: Ends of a prediction that produced nothing: a resumed one in such a state is started again.
RESTARTABLE = frozenset({"canceled", "aborted"})
#: §3.1: ``Prefer: wait=N`` takes N from 1 to 60; plain ``Prefer: wait`` means 60.
MAX_WAIT = 60
#: Seconds kept free between the end of ``Prefer: wait`` and the HTTP read timeout, so a slow
#: answer ends the hold, never the connection (a read timeout after the POST loses the id).
WAIT_MARGIN = 5
#: Environment variable holding the webhook signing secret when OPTIONS give none.
WEBHOOK_SECRET_ENV = "REPLICATE_WEBHOOK_SECRET"  # noqa: S105 - a variable name
_PREDICTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_MEGAPIXELS = ("1", "0.25")  # §3.5 schnell/dev ``megapixels``


class ReplicateProvider(JobProvider):
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
    # Each model does its own share (its catalog entry's operations table): FLUX.2 and Kontext
    # edit from an instruction (replicate_input.INSTRUCTIONS), flux-dev does image-to-image,
    # flux-fill-pro inpaints and erases.
    operations = (
        "generate",
        "edit",
        "inpaint",
        "erase",
        "replace_background",
        "search_replace",
        "search_recolor",
        "restyle",
    )
    polled_operations = operations
    #: With the ``webhook_url`` option, predictions report back to :mod:`imagegen.webhooks`.
    webhooks = True
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
        if wait is not None and (
            isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= MAX_WAIT
        ):
            raise self.option_error(
                "wait",
                f"must be a whole number of seconds from 1 to {MAX_WAIT} (or 0 to answer at "
                f"once), got {wait!r}.",
            )
        if output_quality is not None and not 0 <= int(output_quality) <= 100:
            problem = f"must be between 0 and 100, got {output_quality!r}."
            raise self.option_error("output_quality", problem)
        if megapixels is not None and str(megapixels) not in _MEGAPIXELS:
            raise self.option_error("megapixels", f'must be "1" or "0.25", got {megapixels!r}.')
        if resolution is not None and resolution not in models.RESOLUTIONS:
            problem = f"must be one of {', '.join(models.RESOLUTIONS)}, got {resolution!r}."
            raise self.option_error("resolution", problem)
        if webhook_url is not None and urlsplit(str(webhook_url)).scheme != "https":
            # §3.3: Replicate posts to HTTPS URLs only and does not follow redirects.
            raise self.option_error(
                "webhook_url",
                "must be an https:// URL that reaches imagegen's webhook view without a redirect.",
            )
        self.wait = wait
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

    def base_model(self, model: str) -> str:
        # A pinned version ("owner/name:<hash>") has its model's capabilities and price.
        return model.partition(":")[0]

    def prepare(self, request: ImageRequest) -> tuple[list[ImageRequest], list[str]]:
        # The resolution tier travels as the request's quality, so the estimate prices it.
        model = request.model or self.model
        info, schema = self.model_info(model), models.schema_for(model)
        operation = request.operation
        if operation != "generate" and (
            not info.capabilities.edit or info.capabilities.support(operation) is None
        ):
            what = operation.replace("_", " ")
            raise self.unsupported(
                f"{model} cannot {what} images; see the operations table in the Replicate docs."
            )
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
            path, body = create_call(self, request, model)
            response = self._create(path, body, context)
            created.update(self.prediction(response))
            return created["id"]

        job_id = self._job_id(self.submit_or_resume(context, submit))
        prediction = created
        if prediction.get("status") not in TERMINAL:
            poll_url = self.poll_url(prediction, job_id)
            prediction = self.poll_job(
                lambda: self.prediction(self.request("GET", poll_url, deadline=context.deadline)),
                lambda answer: answer["status"] in TERMINAL,
                context=context,
                job_id=job_id,
                cancel_on_timeout=True,
            )
        if context.resume_job_id and prediction.get("status") in RESTARTABLE:
            # The prediction this retry came back for was stopped (imagegen cancels one past
            # its deadline): nothing is left to fetch, so start a new one now rather than fail
            # and leave the editor to retry a second time.
            result = self._generate(request, replace(context, resume_job_id=None))
            note = (
                f"Replicate prediction {job_id} had been stopped ({prediction['status']}); "
                f"a new prediction, {result.job_id}, was started."
            )
            return replace(result, warnings=(note, *result.warnings))
        return prediction_result(self, request, model, job_id, prediction, context)

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

    # Errors ------------------------------------------------------------------------------

    def parse_error(self, response: httpx.Response) -> ApiError:
        # §3.4: RFC 7807 problem details {type, title, status, detail}; detail says the most.
        body = json_body(response)
        if isinstance(body, dict) and ("title" in body or "detail" in body):
            title, detail = str(body.get("title") or ""), body.get("detail")
            if isinstance(detail, list | dict):
                detail = str(detail)
            detail = str(detail or "")
            # Some answers repeat the title as the detail ("Service Unavailable"); say it once.
            if detail.strip().rstrip(".").casefold() == title.strip().rstrip(".").casefold():
                detail = ""
            text = ": ".join(part for part in (title, detail) if part)
            return ApiError(message=text, type=text_or_none(body.get("type")))
        return super().parse_error(response)

    def error_for_response(self, response: httpx.Response, error: ApiError) -> ProviderError:
        status, path, said = response.status_code, response.request.url.path, error.message
        if status == 404 and path.endswith("/predictions"):
            # The create call: /models/{owner}/{name}/predictions, or /predictions (a version).
            parts = path.split("/")
            model = "/".join(parts[-3:-1]) if "/models/" in path else "this model version"
            missing = f"Replicate has no model {model}, or this token may not run it"
            advice = 'Check OPTIONS["model"].'
            return self.answer_error(response, ModelUnavailable, missing, said, advice=advice)
        if status == 404 and "/predictions/" in path:
            # §3.7: predictions are deleted an hour after they finish.
            gone = (
                "Replicate does not know this prediction (predictions are deleted an hour "
                "after they finish); generate again"
            )
            return self.answer_error(
                response, ProviderError, gone, said, code="prediction_not_found"
            )
        if status == 422:
            what = "Replicate refused the input"
            return self.answer_error(response, ProviderError, what, said, code="invalid_request")
        return super().error_for_response(response, error)
