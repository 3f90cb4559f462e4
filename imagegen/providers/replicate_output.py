"""What Replicate sends back: a finished prediction read into images, usage and cost, or an error.

The answer follows provider-apis.md §3.2, §3.4 and §3.7. ``output`` is a list of URLs for
FLUX.1 [schnell] and [dev] and a single URL for the others; both are normalised to a list.
Replicate deletes output files after an hour, so they are downloaded as soon as the prediction
succeeds, through the safe downloader. A ``failed`` prediction whose error names the safety
checker raises ``ContentRejected``; any other failure a ``ProviderError`` quoting Replicate's
error text.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from imagegen import catalog
from imagegen.exceptions import ContentRejected, ImagegenError, InvalidResponse, ProviderError
from imagegen.pricing import MegapixelTiers
from imagegen.providers.http.errors import CHANGE_PROMPT, sentence
from imagegen.providers.http.outputs import FORMAT_MIME
from imagegen.types import CallContext, ImageRequest, ImageResult

if TYPE_CHECKING:
    from imagegen.providers.replicate import ReplicateProvider

__all__ = ["SAFETY_ERROR", "output_urls", "prediction_failure", "prediction_result"]

# §3.4 [UNCERTAIN wording]: the safety checker's failures. "NSFW content detected" (FLUX.1),
# "flagged as sensitive ... (E005)" (Replicate's platform filter), "content moderated/flagged".
SAFETY_ERROR = re.compile(
    r"nsfw|flagged as sensitive|\bE005\b|safety (checker|filter|system)"
    r"|content (was |has been )?(flagged|moderated|blocked|rejected)",
    re.IGNORECASE,
)


def prediction_result(
    provider: ReplicateProvider,
    request: ImageRequest,
    model: str,
    job_id: str,
    prediction: dict[str, Any],
    context: CallContext,
) -> ImageResult:
    """Return the images of a finished prediction, downloaded now, or raise (§3.2, §3.4)."""
    status = prediction["status"]
    if status == "failed":
        raise prediction_failure(provider, job_id, prediction.get("error"))
    if status == "aborted":
        # Replicate's prediction lifecycle page: "aborted" is a prediction whose deadline passed
        # before it could start running, so nothing ran.
        message = (
            f"Replicate prediction {job_id} was stopped before it started: its deadline passed "
            "while it waited to run; generate again."
        )
        raise provider.fail(ProviderError, "prediction_canceled", message)
    if status != "succeeded":
        message = (
            f"Replicate prediction {job_id} was canceled before it finished "
            "(by a timeout, or on replicate.com); generate again."
        )
        raise provider.fail(ProviderError, "prediction_canceled", message)
    urls = output_urls(prediction.get("output"))
    if not urls:
        if prediction.get("data_removed"):
            message = (
                f"Replicate already deleted the output of prediction {job_id} (outputs are "
                "kept for an hour); generate again."
            )
            raise provider.fail(ProviderError, "download_expired", message)
        message = f"Replicate prediction {job_id} succeeded without any output."
        raise provider.fail(InvalidResponse, "no_images", message)
    warnings = []
    if len(urls) > request.count:
        warnings.append(
            f"Replicate returned {len(urls)} images for {request.count} requested; "
            "the extra ones were billed but not kept."
        )
    fallback = FORMAT_MIME.get(request.output_format, "")
    seed = request.seed if len(urls) == 1 else None
    # The prediction succeeded, so Replicate has billed it: price it before any download can
    # be refused, and keep the charge on the error if one is.
    usage, cost = prediction_usage(provider, request, prediction, len(urls)), None
    key, base = provider.catalog_key, provider.base_model(model)
    if catalog.get_model(key, base) is not None or catalog.get_model(key, model) is not None:
        cost = provider.model_info(model).price.actual(request, usage, len(urls))
    else:
        warnings.append(
            f"{model} is not in imagegen's catalog, so its price is unknown and the cost "
            'was recorded as 0; set IMAGEGEN["PRICES"] for it.'
        )
    try:
        images = provider.download_images(
            urls[: request.count], context, fallback=fallback, seed=seed
        )
    except ImagegenError as err:
        err.charged(cost if cost is not None else Decimal(0), usage)
        raise
    return ImageResult(
        images=tuple(images),
        model=model,
        cost=cost,
        usage=usage,
        job_id=job_id,
        warnings=tuple(warnings),
    )


def prediction_usage(
    provider: ReplicateProvider, request: ImageRequest, prediction: dict[str, Any], outputs: int
) -> dict[str, Any]:
    """Return what the prediction consumed: output images, run time, billed megapixels."""
    usage: dict[str, Any] = {"output_images": outputs}
    metrics = prediction.get("metrics")
    seconds = metrics.get("predict_time") if isinstance(metrics, dict) else None
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        usage["predict_time"] = seconds
    price = provider.model_info(request.model).price
    if isinstance(price, MegapixelTiers):
        usage.update(price.usage(request, outputs))
    return usage


def prediction_failure(provider: ReplicateProvider, job_id: str, error: Any) -> ProviderError:
    """Return the exception for a ``failed`` prediction and its ``error`` text (§3.4)."""
    if isinstance(error, dict):
        error = error.get("detail") or error.get("message") or error.get("title")
    said = provider.quote(str(error)) if error else ""
    if said and SAFETY_ERROR.search(said):
        what = "Replicate's safety checker rejected this prompt or image"
        message = f"{sentence(what, said)} {CHANGE_PROMPT}"
        return provider.fail(ContentRejected, "content_rejected", message)
    message = sentence(f"Replicate prediction {job_id} failed", said or "no reason given")
    return provider.fail(ProviderError, "prediction_failed", message)


def output_urls(output: Any) -> list[str]:
    """Return a prediction's ``output`` as a list of URLs: a bare string becomes one (§3.7)."""
    if isinstance(output, str):
        return [output] if output else []
    if isinstance(output, list):
        return [item for item in output if isinstance(item, str) and item]
    return []
