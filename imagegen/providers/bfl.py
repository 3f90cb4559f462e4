"""Black Forest Labs' FLUX API, direct: submit a task, poll its ``polling_url``, download.

The wire protocol follows provider-apis.md §6. ``POST /v1/{model}`` (the ``model`` option is the
endpoint name, such as ``flux-2-pro`` or ``flux-pro-1.1``) sends JSON with the ``x-key`` header
and answers ``{"id", "polling_url"}`` (FLUX.2 adds ``cost`` in credits). Tasks are regional, so
the returned ``polling_url`` is polled, never a URL built from the id: the job recorded on the
ledger row is ``"<id>|<polling_url>"``, and a redelivered task polls that URL again instead of
submitting. ``GET polling_url`` answers a status: ``Pending`` (or ``Reasoning``, ``Generating``,
or anything unknown) keeps polling; ``Ready``, ``Error``, ``Failed``, ``Request
Moderated``, ``Content Moderated`` and ``Task not found`` end it. The submit body is built by
:mod:`~imagegen.providers.bfl_input`, the finished task read by
:mod:`~imagegen.providers.bfl_output`.

The API key goes to ``base_url``'s origin and to polling URLs on Black Forest Labs' API hosts
(``api.bfl.ai``, ``api.eu.bfl.ai``, ``api.us1.bfl.ai``...) only; a polling URL anywhere else is
refused before anything is sent to it.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from imagegen.exceptions import InvalidResponse, ModelUnavailable, ProviderError, QuotaExceeded
from imagegen.providers.bfl_input import task_body
from imagegen.providers.bfl_output import task_result
from imagegen.providers.http import JobProvider
from imagegen.providers.http.errors import ApiError, json_body
from imagegen.types import CallContext, ImageRequest, ImageResult

#: §6.1: API hosts a polling URL may name: api.bfl.ai, regional (api.eu.bfl.ai, api.us1.bfl.ai)
#: and the old api.bfl.ml.
API_HOST = re.compile(r"api(?:\.[a-z0-9-]+)?\.bfl\.(?:ai|ml)")
# An endpoint name is one path segment: never anything that could climb out of /v1.
_MODEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
#: §6.3: the statuses that end a task; anything else (Pending, Reasoning, ...) is polled again.
#: "Failed" is not in the reference, but a peer SDK treats it as final; polling it to the timeout
#: would only delay the same failure.
TERMINAL = frozenset(
    {"Ready", "Error", "Failed", "Request Moderated", "Content Moderated", "Task not found"}
)


class BFLProvider(JobProvider):
    """Generate and edit images with FLUX models on Black Forest Labs' own API.

    OPTIONS besides the common ones: ``safety_tolerance`` (0, strictest, to 6; BFL's default is
    2), ``prompt_upsampling`` (True or False; sent as ``disable_pup`` to the FLUX.2 endpoints
    that replaced the field), ``poll_interval`` (seconds before the second poll, growing to 10;
    default 1) and ``poll_timeout`` (seconds to poll when the call has no deadline, default 600).
    Unset options are not sent. ``ImageRequest.extra`` adds any other API field (``steps``,
    ``guidance``, ``raw``, ``image_prompt``...) and may override the options.
    """

    catalog_key = "bfl"
    display_name = "Black Forest Labs"
    default_model = "flux-2-pro"
    # Each endpoint does its own share (its catalog entry's operations table): FLUX.2 and
    # Kontext edit from an instruction, FLUX.1 Fill [pro] inpaints and erases, FLUX.1 Expand
    # [pro] outpaints; other endpoints refuse a mask before sending.
    operations = (
        "generate",
        "edit",
        "inpaint",
        "erase",
        "outpaint",
        "replace_background",
        "search_replace",
        "search_recolor",
        "restyle",
    )
    polled_operations = operations
    api_key_env = "BFL_API_KEY"
    default_base_url = "https://api.bfl.ai/v1"
    #: §6.3: results are served from delivery-<region>.bfl.ai hosts.
    default_download_hosts = ("*.bfl.ai",)
    job_noun = "task id"

    def __init__(
        self,
        *,
        safety_tolerance: int | None = None,
        prompt_upsampling: bool | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if safety_tolerance is not None and (
            isinstance(safety_tolerance, bool)
            or not isinstance(safety_tolerance, int)
            or not 0 <= safety_tolerance <= 6
        ):
            problem = f"must be an integer from 0 to 6, got {safety_tolerance!r}."
            raise self.option_error("safety_tolerance", problem)
        if prompt_upsampling is not None and not isinstance(prompt_upsampling, bool):
            raise self.option_error("prompt_upsampling", "must be True or False.")
        if not _MODEL.fullmatch(self.model):
            problem = (
                f"must be a Black Forest Labs endpoint name such as flux-2-pro, got {self.model!r}."
            )
            raise self.option_error("model", problem)
        self.safety_tolerance = safety_tolerance
        self.prompt_upsampling = prompt_upsampling

    def auth_headers(self) -> dict[str, str]:
        # §6.1: the key goes in x-key, not Authorization.
        return {"x-key": self.api_key()}

    # Catalog -------------------------------------------------------------------------------

    def prepare(self, request: ImageRequest) -> tuple[list[ImageRequest], list[str]]:
        model, operation = self.checked_model(request.model or self.model), request.operation
        if self.model_info(model).capabilities.support(operation) is None:
            # Each operation has its endpoints: refuse before pricing or sending anything.
            raise self.unsupported(
                f"Black Forest Labs' {model} cannot {operation.replace('_', ' ')} images."
            )
        return super().prepare(request)

    def checked_model(self, model: str) -> str:
        if not _MODEL.fullmatch(model):
            raise self.unsupported(
                f"{model!r} is not a Black Forest Labs endpoint name (such as flux-2-pro)."
            )
        return model

    # Calling -------------------------------------------------------------------------------

    def _generate(self, request: ImageRequest, context: CallContext) -> ImageResult:
        model = self.checked_model(request.model or self.model)
        body = task_body(self, request, model)
        submitted: dict[str, Any] = {}

        def submit() -> str:
            submitted.update(self.call_json("POST", f"/{model}", context, json=body))
            return self._job_from_submit(submitted)

        job = self.submit_or_resume(context, submit)
        task_id, polling_url = self.parse_job(job)
        task = self.poll_job(
            lambda: self.call_json("GET", polling_url, context, auth=True),
            lambda task: task.get("status") in TERMINAL,
            context=context,
            job_id=task_id,
        )
        return task_result(
            self,
            request,
            task,
            job=job,
            task_id=task_id,
            polling_url=polling_url,
            submitted=submitted,
            fmt=str(body.get("output_format") or "jpeg"),
            context=context,
        )

    def _job_from_submit(self, answer: dict[str, Any]) -> str:
        task_id = self.checked_job_id(answer.get("id"))
        url = answer.get("polling_url")
        if url is None:
            # Without a polling_url only the configured host is left to ask (§6.5: it may 404
            # for a task served by another region, which then fails as job_not_found).
            url = f"{self.base_url}/get_result?id={task_id}"
        if not isinstance(url, str):
            raise self.fail(InvalidResponse, "invalid_job_id", "The polling_url is not text.")
        self.check_polling_url(url)
        return f"{task_id}|{url}"

    def parse_job(self, job: str) -> tuple[str, str]:
        """Return the task id and polling URL of a recorded job ("id|polling_url", or an id)."""
        task_id, _, url = job.partition("|")
        if not self.job_id_pattern.fullmatch(task_id):
            message = f"{self.quote(repr(job))} is not a Black Forest Labs job imagegen recorded."
            raise self.fail(ProviderError, "invalid_job_id", message)
        url = url or f"{self.base_url}/get_result?id={task_id}"
        return task_id, self.check_polling_url(url)

    def check_polling_url(self, url: str) -> str:
        """Return ``url`` if the API key may be sent to it; raise ``InvalidResponse`` if not.

        Allowed: ``base_url``'s own origin, and https URLs on Black Forest Labs' API hosts.
        """
        try:
            parsed, base = httpx.URL(url), httpx.URL(self.base_url)
        except httpx.InvalidURL as err:
            message = "Black Forest Labs returned a polling URL that cannot be parsed."
            raise self.fail(InvalidResponse, "polling_url_refused", message) from err
        if (parsed.scheme, parsed.netloc) == (base.scheme, base.netloc):
            return url
        if (
            parsed.scheme == "https"
            and not parsed.userinfo
            and parsed.port in (None, 443)
            and API_HOST.fullmatch(parsed.host)
        ):
            return url
        host = self.quote(parsed.host or url)
        message = (
            f"Black Forest Labs returned a polling URL on {host}, which is not one of its API "
            "hosts; imagegen does not send the API key there."
        )
        raise self.fail(InvalidResponse, "polling_url_refused", message)

    # Errors --------------------------------------------------------------------------------

    def raise_for_response(self, response: httpx.Response) -> None:
        # §6.3 [OBSERVED]: a poll may answer 422 (or 404 for an unknown task) with a task body;
        # that body is the answer, read by the status checks rather than the HTTP status.
        if response.request.method == "GET" and response.status_code in (404, 422):
            body = json_body(response)
            if isinstance(body, dict) and isinstance(body.get("status"), str):
                return
        super().raise_for_response(response)

    def parse_error(self, response: httpx.Response) -> ApiError:
        # §6.3: FastAPI's 422 {"detail": [{"loc": [...], "msg": "...", "type": "..."}]}.
        body = json_body(response)
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, list) and detail and all(isinstance(d, dict) for d in detail):
            parts, param = [], None
            for item in detail:
                loc = [str(p) for p in item.get("loc") or [] if p != "body"]
                param = param or (loc[-1] if loc else None)
                msg = str(item.get("msg", ""))
                parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
            return ApiError(message="; ".join(parts), param=param, type="validation_error")
        return super().parse_error(response)

    def error_for_response(self, response: httpx.Response, error: ApiError) -> ProviderError:
        status, method, said = response.status_code, response.request.method, error.message
        if status == 404 and method == "GET":
            what = (
                "Black Forest Labs does not know this task (HTTP 404); it may have expired or "
                "belong to another region's host"
            )
            return self.answer_error(response, ProviderError, what, said, code="job_not_found")
        if status == 404:
            model = response.request.url.path.rstrip("/").rpartition("/")[2]
            what = f"Black Forest Labs has no endpoint {model} (HTTP 404)"
            advice = 'Check OPTIONS["model"].'
            return self.answer_error(response, ModelUnavailable, what, said, advice=advice)
        if status == 402:
            what = "Black Forest Labs says the account has no credits left (HTTP 402)"
            advice = "Buy credits in the BFL dashboard, then try again."
            return self.answer_error(response, QuotaExceeded, what, said, advice=advice)
        if status in (400, 422):
            what = f"Black Forest Labs refused the request{error.field_note} (HTTP {status})"
            return self.answer_error(response, ProviderError, what, said, code="invalid_request")
        return super().error_for_response(response, error)
