"""What Black Forest Labs sends back: a finished task read into its image and cost, or an error.

The answer follows provider-apis.md §6.3 and §6.4. A ``Ready`` task carries ``result.sample``, a
URL that lives for ten minutes and is downloaded at once; an expired link says so. ``Request
Moderated`` and ``Content Moderated`` are ``ContentRejected``, ``Task not found`` is
``job_not_found``, and any other end a ``generation_failed`` quoting the task's error. The cost
is the ``cost`` credits the task reports, at the catalog's credit price.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from imagegen.catalog.bfl import CREDIT_PRICE
from imagegen.exceptions import ContentRejected, ImagegenError, InvalidResponse, ProviderError
from imagegen.pricing import money
from imagegen.providers.http.errors import sentence
from imagegen.providers.http.outputs import FORMAT_MIME, as_int, as_number, image_output
from imagegen.types import CallContext, ImageRequest, ImageResult

if TYPE_CHECKING:
    from imagegen.providers.bfl import BFLProvider

__all__ = ["SAMPLE_LIFETIME_MINUTES", "fetch_sample", "task_cost", "task_error", "task_result"]

#: §6.3: minutes a ``result.sample`` URL stays valid.
SAMPLE_LIFETIME_MINUTES = 10
_MODERATION = {
    "Request Moderated": "blocked the prompt or input image before generating (Request Moderated)",
    "Content Moderated": "blocked the generated image (Content Moderated)",
}


def task_result(
    provider: BFLProvider,
    request: ImageRequest,
    task: dict[str, Any],
    *,
    job: str,
    task_id: str,
    polling_url: str,
    submitted: dict[str, Any],
    fmt: str,
    context: CallContext,
) -> ImageResult:
    """Return the image of a finished task, downloaded now and costed, or raise (§6.3)."""
    if task.get("status") != "Ready":
        raise task_error(provider, task, task_id, polling_url)
    result = task.get("result") if isinstance(task.get("result"), dict) else {}
    sample = result.get("sample")
    if not isinstance(sample, str) or not sample:
        message = f"Black Forest Labs reported task {task_id} ready without a result.sample."
        raise provider.fail(InvalidResponse, "no_images", message)
    # The task is ready, so Black Forest Labs has billed it: a refused download keeps the charge.
    usage, cost, warnings = task_cost(task, submitted)
    try:
        content = fetch_sample(provider, sample, task_id, context)
    except ImagegenError as err:
        err.charged(cost, usage)
        raise
    output = image_output(content, FORMAT_MIME.get(fmt, ""), seed=as_int(result.get("seed")))
    model = request.model or provider.model
    return ImageResult(
        images=(output,), model=model, cost=cost, usage=usage, job_id=job, warnings=warnings
    )


def fetch_sample(provider: BFLProvider, url: str, task_id: str, context: CallContext) -> bytes:
    """Download ``result.sample``; an expired link (403, 404, 410) is ``download_expired``."""
    try:
        return provider.download(url, context=context)
    except ProviderError as err:
        expired = err.code == "download_expired" or (
            err.code == "download_failed" and err.status_code == 403
        )
        if not expired:
            raise
        message = (
            f"Black Forest Labs' result for task {task_id} is gone (HTTP {err.status_code}): "
            f"result.sample links expire {SAMPLE_LIFETIME_MINUTES} minutes after the task "
            "is ready. Generate the image again."
        )
        raise provider.fail(
            ProviderError, "download_expired", message, status_code=err.status_code
        ) from err


def task_error(
    provider: BFLProvider, task: dict[str, Any], task_id: str, url: str
) -> ProviderError:
    """Return the error a finished task that is not ``Ready`` means (§6.3)."""
    status = str(task.get("status"))
    if status in _MODERATION:
        return provider.fail(
            ContentRejected,
            "content_rejected",
            f"Black Forest Labs' moderation {_MODERATION[status]} for task {task_id}. "
            "Change the prompt or the image; the same request will be refused again.",
        )
    if status == "Task not found":
        host = httpx.URL(url).host
        return provider.fail(
            ProviderError,
            "job_not_found",
            f"Black Forest Labs has no task {task_id} at {host} (Task not found): the id is "
            "wrong, the task has expired, or it was polled on another region's host.",
        )
    details = task.get("details") if isinstance(task.get("details"), dict) else {}
    result = task.get("result") if isinstance(task.get("result"), dict) else {}
    said = details.get("error") or result.get("error") or ""
    what = f"Black Forest Labs could not generate the image (task {task_id})"
    return provider.fail(
        ProviderError, "generation_failed", sentence(what, provider.quote(str(said)))
    )


def task_cost(
    task: dict[str, Any], submitted: dict[str, Any]
) -> tuple[dict[str, Any], Decimal | None, tuple[str, ...]]:
    """Return the usage, cost and warnings of a task: its ``cost`` credits (§6.4), if reported.

    Without them the cost is left to the catalog's estimate, with a warning.
    """
    usage: dict[str, Any] = {}
    for key in ("cost", "input_mp", "output_mp"):
        # The Ready poll body is final; FLUX.2 already echoes cost on submit (§6.3).
        value = as_number(task.get(key), submitted.get(key))
        if value is not None:
            usage["credits" if key == "cost" else key] = value
    if "credits" not in usage:
        return (
            usage,
            None,
            ("Black Forest Labs reported no cost; the cost is the catalog estimate.",),
        )
    return usage, money(Decimal(str(usage["credits"])) * CREDIT_PRICE), ()
