"""What Google sends back: Gemini and Imagen answers read into images and token usage, or errors.

The answers follow provider-apis.md §4.4 to §4.6. A generateContent answer holds inline base64
parts (a thinking model's interim drafts are skipped) and token counts in ``usageMetadata``,
mapped onto :class:`~imagegen.pricing.PerToken`'s keys; a blocked prompt, or finish reasons of
the safety system, raise ``ContentRejected``. A legacy :predict answer lists its images and the
reasons of the ones its filters withheld, and is priced per image by the catalog.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx

from imagegen.exceptions import ContentRejected, InvalidResponse, ProviderError
from imagegen.providers.http.errors import CHANGE_PROMPT, sentence
from imagegen.providers.http.outputs import count, dicts, image_output
from imagegen.types import ImageOutput, ImageRequest, ImageResult

if TYPE_CHECKING:
    from imagegen.providers.google import GoogleProvider

__all__ = ["answer_usage", "parse_gemini", "parse_imagen", "usage_from"]

# §4.6: finish reasons meaning the safety system withheld the image, or that the model drew
# nothing; either way only a changed prompt helps.
SAFETY_REASONS = frozenset(
    {"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST"}
    | {"SPII", "RECITATION", "IMAGE_RECITATION"}
)
NO_IMAGE_REASONS = frozenset({"NO_IMAGE", "IMAGE_OTHER"})


def parse_gemini(
    provider: GoogleProvider, request: ImageRequest, response: httpx.Response
) -> ImageResult:
    """Return the images and usage of a generateContent answer, or raise (§4.6)."""
    model, body = request.model or provider.model, provider.json_object(response)
    feedback = body.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if block:
        said = str(feedback.get("blockReasonMessage") or "")
        raise _rejected(provider, f"Google blocked the prompt ({block})", said)
    images, reasons, notes = [], [], []
    for candidate in dicts(body.get("candidates")):
        reasons.append(str(candidate.get("finishReason") or ""))
        notes.append(str(candidate.get("finishMessage") or ""))
        content = candidate.get("content")
        for part in dicts(content.get("parts") if isinstance(content, dict) else None):
            inline = part.get("inlineData")
            if part.get("thought"):
                continue  # an interim draft of a thinking model, not the answer
            if isinstance(inline, dict):
                images.append(_image(provider, inline.get("data"), inline.get("mimeType")))
            elif isinstance(part.get("text"), str):
                notes.append(part["text"])
    if not images:
        raise _no_image(provider, reasons, next((n for n in notes if n.strip()), ""))
    usage, cost, warnings = usage_from(body.get("usageMetadata")), None, ()
    if not usage:
        size = provider.image_size_for(request, model)
        billed = replace(request, count=len(images), quality=size)
        cost = provider.model_info(model).price.estimate(billed)
        warnings = ("Google reported no token usage; the cost is the catalog estimate.",)
    job_id = body.get("responseId") if isinstance(body.get("responseId"), str) else None
    return ImageResult(images=tuple(images), model=model, cost=cost, usage=usage,
                       job_id=job_id, warnings=warnings)  # fmt: skip


def parse_imagen(
    provider: GoogleProvider, request: ImageRequest, response: httpx.Response
) -> ImageResult:
    """Return the images of a :predict answer; the catalog prices them per image (§4.5)."""
    model, body = request.model or provider.model, provider.json_object(response)
    images, filtered = [], []
    for item in dicts(body.get("predictions")):
        if "bytesBase64Encoded" in item:
            images.append(_image(provider, item["bytesBase64Encoded"], item.get("mimeType")))
        elif "raiFilteredReason" in item:
            filtered.append(str(item["raiFilteredReason"]))
        else:
            message = "Google sent an Imagen prediction without image data."
            raise provider.fail(InvalidResponse, "no_images", message)
    if not images:
        # §4.4 [UNCERTAIN]: filtered images are left out, so an empty answer is a refusal.
        said = filtered[0] if filtered else "Imagen leaves out images its filters block"
        raise _rejected(provider, "Google's safety filters withheld every image", said)
    warnings = ()
    if filtered:
        total = len(images) + len(filtered)
        what = f"Google's safety filters withheld {len(filtered)} of {total} images"
        warnings = (sentence(what, provider.quote(filtered[0])),)
    usage = {"images": len(images)}
    return ImageResult(images=tuple(images), model=model, usage=usage, warnings=warnings)


def _image(provider: GoogleProvider, data: Any, mime: Any) -> ImageOutput:
    return image_output(provider.decode_base64(data), str(mime or ""))


def _rejected(provider: GoogleProvider, what: str, said: str) -> ContentRejected:
    message = f"{sentence(what, provider.quote(said))} {CHANGE_PROMPT}"
    return provider.fail(ContentRejected, "content_rejected", message)


def _no_image(provider: GoogleProvider, reasons: list[str], said: str) -> ProviderError:
    known = [r for r in reasons if r in SAFETY_REASONS or r in NO_IMAGE_REASONS]
    if known:
        what = "safety filters withheld the image" if known[0] in SAFETY_REASONS else ""
        what = what or "model did not draw an image"
        return _rejected(provider, f"Google's {what} ({known[0]})", said)
    why = f" (finish reason {reasons[0]})" if reasons and reasons[0] else ""
    message = sentence(f"Google answered without an image{why}", provider.quote(said))
    return provider.fail(InvalidResponse, "no_images", message)


def answer_usage(response: httpx.Response) -> dict[str, Any]:
    """Return the token counts of an answer whose images were refused."""
    body = response.json()
    return usage_from(body.get("usageMetadata")) if isinstance(body, dict) else {}


def usage_from(raw: Any) -> dict[str, int]:
    """Map Gemini's ``usageMetadata`` onto :class:`~imagegen.pricing.PerToken`'s keys.

    Input is split by ``promptTokensDetails`` modality (all text without it); image output is
    the IMAGE ``candidatesTokensDetails`` (all candidate tokens without them); text output adds
    ``thoughtsTokenCount``, billed as output [UNCERTAIN]. Google's own totals are kept too.
    """
    if not isinstance(raw, dict) or not raw:
        return {}
    prompt, candidates = count(raw, "promptTokenCount"), count(raw, "candidatesTokenCount")
    thoughts = count(raw, "thoughtsTokenCount")
    image_in = _modality(raw.get("promptTokensDetails"), "IMAGE", 0)
    image_out = _modality(raw.get("candidatesTokensDetails"), "IMAGE", candidates)
    return {
        "text_input_tokens": max(0, prompt - image_in),
        "image_input_tokens": image_in,
        "image_output_tokens": image_out,
        "text_output_tokens": max(0, candidates - image_out) + thoughts,
        "prompt_tokens": prompt,
        "candidates_tokens": candidates,
        "thoughts_tokens": thoughts,
        "total_tokens": count(raw, "totalTokenCount") or prompt + candidates + thoughts,
    }


def _modality(details: Any, modality: str, default: int) -> int:
    if not isinstance(details, list):
        return default
    return sum(count(d, "tokenCount") for d in dicts(details) if d.get("modality") == modality)
