"""OpenAI's Images API: GPT-image models, generations as JSON and edits as multipart.

Batches (half price, within 24 hours) are :mod:`imagegen.providers.openai_batch`'s.
The wire protocol follows provider-apis.md §2: ``POST /images/generations`` with a JSON body and
``POST /images/edits`` with repeated ``image[]`` parts and an optional ``mask``; images come back
only as ``b64_json``, and the bill is the ``usage`` token counts at the model's token prices.

Every operation on a source image is an edit: the source first, then the references, as
``image[]``. imagegen's mask (grayscale, white = change) is sent as OpenAI wants it, a PNG the
size of the first image that is transparent where the image should change. The operations
without an endpoint of their own (replace_background, remove_background, search_replace,
search_recolor, restyle) are edits whose prompt :data:`INSTRUCTIONS` rewrites;
remove_background also asks for ``background="transparent"``.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import replace
from typing import Any

import httpx

from imagegen.exceptions import (
    ContentRejected,
    InvalidResponse,
    ModelUnavailable,
    ProviderError,
    QuotaExceeded,
    UnsupportedRequest,
)
from imagegen.providers.http import HttpProvider
from imagegen.providers.http.errors import CHANGE_PROMPT, ApiError
from imagegen.providers.http.inputs import alpha_mask, file_part, instruction
from imagegen.providers.http.outputs import FORMAT_MIME, count, image_output
from imagegen.providers.openai_batch import OpenAIBatch
from imagegen.types import CallContext, ImageRequest, ImageResult

# §2.6: a safety refusal is a 400 coded moderation_blocked (content_policy_violation was DALL·E's).
SAFETY_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
SAFETY_MESSAGE = "rejected by the safety system"
# §2.6: billing failures arrive as 429s with their own codes and must never be retried. The
# reference names the first two; the others are OpenAI's long-standing billing codes.
BILLING_CODES = frozenset(
    {
        "insufficient_quota",
        "project_spend_limit_exceeded",
        "billing_hard_limit_reached",
        "billing_not_active",
    }
)
# Fields imagegen sets itself; "stream" would turn the answer into server-sent events.
RESERVED = frozenset({"prompt", "model", "n", "stream", "image", "image[]", "mask"})
# A dated snapshot id ("gpt-image-2-2026-04-21") is billed like its model (§2.2).
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")
#: Most input images one edit takes (§2.4).
MAX_EDIT_IMAGES = 16
#: The prompt each instruction-style operation sends to ``/images/edits``, from the caller's
#: ``prompt`` and ``search`` ("+reference": when reference images follow the source). Edit and
#: inpaint send the prompt as it is. Documented in docs/providers/openai.md.
INSTRUCTIONS = {
    "replace_background": (
        "Replace the background with: {prompt}. Keep the subject exactly as it is: its shape, "
        "edges, colours, lighting and position."
    ),
    "remove_background": (
        "Remove the background entirely, leaving only the main subject, unchanged, on a fully "
        "transparent background."
    ),
    "search_replace": "Replace {search} with {prompt}. Change nothing else in the image.",
    "search_recolor": "Recolour {search}: {prompt}. Change nothing else in the image.",
    "restyle": "Restyle the image: {prompt}. Keep its subject and composition.",
    "restyle+reference": (
        "Apply the style of the second image to the first image: {prompt}. Keep the first "
        "image's subject and composition; take only the look (palette, texture, medium) from "
        "the second."
    ),
}
#: Output formats that keep an alpha channel: a transparent background needs one (§2.8).
ALPHA_FORMATS = ("png", "webp")


class OpenAIProvider(OpenAIBatch, HttpProvider):
    """Generate and edit images with OpenAI's GPT-image models, one by one or in batches.

    OPTIONS besides the common ones (defaults for every request; ``ImageRequest.extra`` overrides
    any API field per request): ``quality``, ``background``, ``moderation``,
    ``output_compression`` (jpeg/webp only), ``input_fidelity`` (edits only), ``organization``
    and ``project`` (the ``OpenAI-Organization`` / ``OpenAI-Project`` headers).
    """

    catalog_key = "openai"
    display_name = "OpenAI"
    default_model = "gpt-image-2"
    operations = (
        "generate",
        "edit",
        "inpaint",
        "replace_background",
        "remove_background",
        "search_replace",
        "search_recolor",
        "restyle",
    )
    api_key_env = "OPENAI_API_KEY"
    default_base_url = "https://api.openai.com/v1"
    # §2.8: the calls are synchronous and high quality takes minutes; a disconnect still bills.
    default_timeout = 300.0
    secret_patterns = (r"\bsk-[A-Za-z0-9_\-]{16,}",)

    def __init__(
        self,
        *,
        quality: str | None = None,
        background: str | None = None,
        moderation: str | None = None,
        output_compression: int | None = None,
        input_fidelity: str | None = None,
        organization: str | None = None,
        project: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if output_compression is not None and not 0 <= int(output_compression) <= 100:
            problem = f"must be between 0 and 100, got {output_compression!r}."
            raise self.option_error("output_compression", problem)
        self.quality = quality
        self.background = background
        self.moderation = moderation
        self.output_compression = output_compression
        self.input_fidelity = input_fidelity
        self.organization = organization
        self.project = project

    def auth_headers(self) -> dict[str, str]:
        headers = super().auth_headers()
        if self.organization:
            headers["OpenAI-Organization"] = self.organization
        if self.project:
            headers["OpenAI-Project"] = self.project
        return headers

    # Catalog -----------------------------------------------------------------------------

    def base_model(self, model: str) -> str:
        return _SNAPSHOT.sub("", model)

    def prepare(self, request: ImageRequest) -> tuple[list[ImageRequest], list[str]]:
        # The configured quality is what will be sent, so the estimate must price it.
        if request.quality is None and self.quality:
            request = replace(request, quality=self.quality)
        model = request.model or self.model
        operation = request.operation
        if self.model_info(model).capabilities.support(operation) is None:
            raise self.unsupported(f"OpenAI's {model} cannot {operation.replace('_', ' ')} images.")
        warnings = []
        if operation == "remove_background" and request.output_format not in ALPHA_FORMATS:
            warnings.append(
                f"A transparent background needs png or webp; asking for png, "
                f"not {request.output_format}."
            )
            request = replace(request, output_format="png")
        calls, more = super().prepare(request)
        return calls, warnings + more

    # Calling -----------------------------------------------------------------------------

    def _generate(self, request: ImageRequest, context: CallContext) -> ImageResult:
        fields = self.fields(request)

        def send() -> httpx.Response:
            try:
                if request.operation == "generate":
                    return self.request(
                        "POST", "/images/generations", json=fields, deadline=context.deadline
                    )
                data, files = self.edit_parts(request, fields)
                return self.request(
                    "POST", "/images/edits", data=data, files=files, deadline=context.deadline
                )
            except ModelUnavailable as err:
                today = datetime.date.today()
                raise self.retired_model(request.model or self.model, err, today=today) from err

        # OpenAI bills a call it answers 200: an answer refused after that keeps its charge.
        return self.billed_call(
            send,
            lambda response: self.parse_result(request, response),
            usage=lambda response: usage_from(answer_usage(response)),
        )

    def fields(self, request: ImageRequest) -> dict[str, Any]:
        """Return the API fields for ``request``: its own, the OPTIONS defaults, then ``extra``."""
        self.refuse_reserved(request, RESERVED, " (streaming is not supported)")
        fmt = "jpeg" if request.output_format == "jpg" else request.output_format
        fields: dict[str, Any] = {
            "model": request.model or self.model,
            "prompt": instruction(INSTRUCTIONS, request),
            "n": request.count,
            "size": f"{request.width}x{request.height}",
            "output_format": fmt,
        }
        edit = request.operation != "generate"
        optional = {
            "quality": request.quality or self.quality,
            "background": (
                "transparent" if request.operation == "remove_background" else self.background
            ),
            # §2.3/§2.4: compression applies to jpeg and webp only; moderation is a generation
            # field (the multipart edit form lists it only for the JSON variant).
            "output_compression": self.output_compression if fmt in ("jpeg", "webp") else None,
            "moderation": None if edit else self.moderation,
            "input_fidelity": self.input_fidelity if edit else None,
        }
        fields.update({key: value for key, value in optional.items() if value is not None})
        fields.update(request.extra)
        return fields

    def edit_parts(self, request: ImageRequest, fields: dict[str, Any]) -> tuple[dict, list]:
        """Return the multipart form fields and file parts of an edit (§2.4)."""
        if not request.source_images:
            raise UnsupportedRequest("An OpenAI edit needs at least one source image.")
        if len(request.source_images) > MAX_EDIT_IMAGES:
            raise UnsupportedRequest(f"OpenAI edits take at most {MAX_EDIT_IMAGES} images.")
        if request.operation == "inpaint" and request.mask is None:
            raise UnsupportedRequest("Inpainting with OpenAI needs a mask.")
        if request.mask is not None and request.operation not in ("edit", "inpaint"):
            raise UnsupportedRequest(f"OpenAI takes no mask for {request.operation}.")
        mask = None if request.mask is None else alpha_mask(request.mask, request.source_images[0])
        data = {k: v if isinstance(v, str) else json.dumps(v) for k, v in fields.items()}
        # §2.4: the official SDK sends several files as repeated "image[]" parts (brackets).
        files: list[tuple[str, tuple[str, bytes, str]]] = []
        for index, content in enumerate(request.source_images, start=1):
            files.append(("image[]", file_part(f"image-{index}", content)))
        if mask is not None:
            files.append(("mask", ("mask.png", mask, "image/png")))
        return data, files

    def parse_result(self, request: ImageRequest, response: httpx.Response) -> ImageResult:
        """Return the images and usage in a successful answer (§2.5)."""
        body = self.json_object(response)
        items = body.get("data")
        if not isinstance(items, list) or not items:
            message = "OpenAI answered without any images."
            raise self.fail(InvalidResponse, "no_images", message)
        fmt = str(body.get("output_format") or request.output_format)
        images = []
        for item in items:
            if not isinstance(item, dict) or "b64_json" not in item:
                # GPT image models return base64 only; a URL means a DALL·E-style answer.
                message = "OpenAI sent an image without b64_json data."
                raise self.fail(InvalidResponse, "no_images", message)
            content = self.decode_base64(item["b64_json"])
            revised = item.get("revised_prompt")
            images.append(image_output(content, FORMAT_MIME.get(fmt, ""), revised_prompt=revised))
        usage, cost, warnings = usage_from(body.get("usage")), None, ()
        if not usage:
            # Nothing to bill from: fall back to the catalog estimate rather than "free".
            info = self.model_info(request.model)
            cost = info.price.estimate(replace(request, count=len(images)))
            warnings = ("OpenAI reported no token usage; the cost is the catalog estimate.",)
        return ImageResult(
            images=tuple(images),
            model=request.model or self.model,
            cost=cost,
            usage=usage,
            job_id=response.headers.get("x-request-id"),
            warnings=warnings,
        )

    # Errors ------------------------------------------------------------------------------

    def error_for_response(self, response: httpx.Response, error: ApiError) -> ProviderError:
        # §2.6: the envelope {"error": {"message", "type", "param", "code"}} is the one the base
        # parse_error reads; "code" may be null, so the safety check also reads the message.
        code, said = error.code or "", error.message
        if code in SAFETY_CODES or SAFETY_MESSAGE in said.lower():
            what = "OpenAI's safety system refused this prompt or image"
            return self.answer_error(response, ContentRejected, what, said, advice=CHANGE_PROMPT)
        if code in BILLING_CODES:
            what = f"OpenAI says the account is out of quota ({code})"
            advice = "Add credit or raise the project's spend limit."
            return self.answer_error(response, QuotaExceeded, what, said, advice=advice)
        if code == "model_not_found" or error.param == "model":
            what = "OpenAI does not offer this model"
            return self.answer_error(response, ModelUnavailable, what, said)
        if response.status_code == 400:
            what = f"OpenAI refused the request{error.field_note}"
            return self.answer_error(response, ProviderError, what, said, code="invalid_request")
        return super().error_for_response(response, error)


def answer_usage(response: httpx.Response) -> Any:
    """Return the ``usage`` of an answer whose images were refused, or None if unreadable."""
    body = response.json()
    return body.get("usage") if isinstance(body, dict) else None


def usage_from(raw: Any) -> dict[str, int]:
    """Map OpenAI's ``usage`` onto :class:`~imagegen.pricing.PerToken`'s keys, keeping totals.

    §2.7: text and image input come from ``input_tokens_details``; output is image tokens
    (``output_tokens_details.image_tokens`` when given, else all of ``output_tokens``).
    """
    if not isinstance(raw, dict):
        return {}
    inputs, outputs = count(raw, "input_tokens"), count(raw, "output_tokens")
    in_details = raw.get("input_tokens_details")
    out_details = raw.get("output_tokens_details")
    text_in, image_in = count(in_details, "text_tokens"), count(in_details, "image_tokens")
    if not isinstance(in_details, dict):
        # Without the split, bill the input as text (generations send text only).
        text_in = inputs
    text_out = count(out_details, "text_tokens")
    image_out = count(out_details, "image_tokens")
    if not isinstance(out_details, dict) or "image_tokens" not in out_details:
        image_out = max(0, outputs - text_out)
    return {
        "text_input_tokens": text_in,
        "image_input_tokens": image_in,
        "image_output_tokens": image_out,
        "text_output_tokens": text_out,
        "input_tokens": inputs,
        "output_tokens": outputs,
        "total_tokens": count(raw, "total_tokens") or inputs + outputs,
    }
