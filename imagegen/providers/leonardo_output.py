"""What Leonardo.Ai sends back: a COMPLETE generation read into its images and credit cost.

The answer follows provider-apis.md §5.4. Every image Leonardo flags ``nsfw`` is dropped, not
downloaded, with a warning; when every image is flagged the result is ``filtered``: no image,
the full credit cost (Leonardo bills the generation). The others are downloaded from
``cdn.leonardo.ai`` by the safe downloader. ``apiCreditCost``, from the create answer, is
converted to dollars at the provider's credit price.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from imagegen.exceptions import ImagegenError, InvalidResponse
from imagegen.pricing import money
from imagegen.providers.http.outputs import as_int, as_number, dicts
from imagegen.types import CallContext, ImageRequest, ImageResult

if TYPE_CHECKING:
    from imagegen.providers.leonardo import LeonardoProvider

__all__ = ["generation_result"]


def generation_result(
    provider: LeonardoProvider,
    request: ImageRequest,
    generation: dict[str, Any],
    job_id: str,
    credits: Any,
    context: CallContext,
) -> ImageResult:
    """Download the images of a COMPLETE generation, dropping those flagged nsfw (§5.4)."""
    items = dicts(generation.get("generated_images"))
    flagged = [item for item in items if item.get("nsfw") is True]
    kept = [item for item in items if item.get("nsfw") is not True]
    warnings: list[str] = []
    if flagged:
        warnings.append(
            f"Leonardo.Ai flagged {len(flagged)} of {len(items)} image(s) as NSFW; imagegen "
            "dropped them, and they are charged all the same."
        )
    if not items:
        message = f"Leonardo.Ai completed generation {job_id} without any images."
        raise provider.fail(InvalidResponse, "no_images", message)
    seed = as_int(generation.get("seed"))
    urls = _urls(provider, kept, job_id)
    usage: dict[str, Any] = {}
    number = as_number(credits)
    if number is not None:
        usage["credits"] = number
        cost = money(Decimal(str(number)) * provider.rate)
    else:
        # A resumed job: the create answer, and its credit cost, are gone. The generation is
        # billed whole, flagged images included.
        cost = provider.model_info(request.model).price.estimate(request)
        warnings.append(
            "Leonardo.Ai's credit cost is only in the create answer, which this resumed job "
            "does not have; the cost is the catalog estimate."
        )
    # The generation completed, so Leonardo.Ai has billed it: a refused download keeps the charge.
    try:
        images = provider.download_images(urls, context, fallback="image/jpeg", seed=seed)
    except ImagegenError as err:
        err.charged(cost, usage)
        raise
    return ImageResult(
        images=tuple(images),
        model=request.model or provider.model,
        cost=cost,
        usage=usage,
        job_id=job_id,
        filtered=not images,
        warnings=tuple(warnings),
    )


def _urls(provider: LeonardoProvider, items: list[dict[str, Any]], job_id: str) -> Iterator[str]:
    # Checked one by one as they are downloaded.
    for item in items:
        url = item.get("url")
        if not isinstance(url, str) or not url:
            message = f"Leonardo.Ai sent an image of generation {job_id} without a URL."
            raise provider.fail(InvalidResponse, "no_images", message)
        yield url
