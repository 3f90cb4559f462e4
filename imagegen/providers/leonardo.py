"""Leonardo.Ai's REST API: create a generation, poll it, download the images from its CDN.

The wire protocol follows provider-apis.md §5. ``POST /generations`` (under
``https://cloud.leonardo.ai/api/rest/v1``) takes JSON whose field names are mixed case exactly as
the API has them (``modelId`` and ``presetStyle``, but ``num_images`` and ``negative_prompt``)
and answers ``{"sdGenerationJob": {"generationId", "apiCreditCost"}}``. The generation id is
recorded on the ledger row before the first poll; ``GET /generations/{id}`` is polled until its
``status`` is ``COMPLETE`` or ``FAILED``, and each ``generated_images[].url`` is downloaded from
``cdn.leonardo.ai`` by the safe downloader (:mod:`~imagegen.providers.leonardo_output`).

Only the v1 endpoint is used, so ``model`` is a model UUID (``modelId``). Newer models (FLUX.2,
GPT Image, Nano Banana...) are reachable only through ``/v2/generations``, whose answer is known
from third-party code alone (§5.3 [UNCERTAIN]); a call that is billed and then unreadable is the
worst outcome for a cost ledger, so slug model ids are refused before anything is sent.

The newer catalogued models (``GUIDED_MODELS``) are sent the ``contrast`` their guides require
(:data:`~imagegen.catalog.leonardo.GUIDED_FIELDS`) unless ``extra`` sets it.

Images Leonardo flags ``nsfw`` are dropped but charged, and ``apiCreditCost`` is converted to
dollars at ``credit_price`` per credit.
"""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx

from imagegen import catalog
from imagegen.catalog.leonardo import (
    CREDIT_PRICE,
    DEFAULT_MODEL,
    GUIDED_FIELDS,
    GUIDED_MODELS,
    PLAIN_STYLES,
    PRESET_STYLES,
    V1_CAPS,
)
from imagegen.exceptions import InvalidProviderError, InvalidResponse, ProviderError
from imagegen.pricing import PerCredit
from imagegen.providers.http import JobProvider
from imagegen.providers.http.errors import ApiError
from imagegen.providers.http.outputs import as_number
from imagegen.providers.leonardo_output import generation_result
from imagegen.types import CallContext, ImageRequest, ImageResult

#: A v1 ``modelId``: a UUID.
MODEL_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
#: §5.4: the statuses that end a generation (PENDING, or anything unknown, is polled again).
TERMINAL = frozenset({"COMPLETE", "FAILED"})
# Fields imagegen sets itself (§5.2's exact casing).
RESERVED = frozenset(
    {"prompt", "modelId", "width", "height", "num_images", "negative_prompt", "seed"}
)


class LeonardoProvider(JobProvider):
    """Generate images with Leonardo.Ai's models through ``POST /api/rest/v1/generations``.

    OPTIONS besides the common ones: ``alchemy`` (sent on every call, default False: the API
    spec's default of True costs more), ``preset_style`` (``presetStyle``; without alchemy only
    ``LEONARDO`` or ``NONE``), ``public`` (whether generations appear in Leonardo's public feed,
    default False), ``credit_price`` (dollars per ``apiCreditCost`` credit, default
    :data:`~imagegen.catalog.leonardo.CREDIT_PRICE`), ``poll_interval`` (seconds before the
    second poll, growing to 10; default 2) and ``poll_timeout`` (default 600).
    ``ImageRequest.extra`` adds any other API field with its exact casing (``guidance_scale``,
    ``photoReal``, ``contrastRatio``...) and may override the options.
    """

    catalog_key = "leonardo"
    display_name = "Leonardo.Ai"
    default_model = DEFAULT_MODEL
    operations = ("generate",)
    polled_operations = operations
    api_key_env = "LEONARDO_API_KEY"
    default_base_url = "https://cloud.leonardo.ai/api/rest/v1"
    #: §5.4: generated images live on cdn.leonardo.ai.
    default_download_hosts = ("cdn.leonardo.ai",)
    default_poll_interval = 2.0
    job_id_pattern = re.compile(r"[A-Za-z0-9-]{1,64}")  # §5.2: a UUID
    job_noun = "generation id"

    def __init__(
        self,
        *,
        alchemy: bool = False,
        preset_style: str | None = None,
        public: bool = False,
        credit_price: Decimal | str | int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        for name, value in (("alchemy", alchemy), ("public", public)):
            if not isinstance(value, bool):
                raise self.option_error(name, "must be True or False.")
        if preset_style is not None and preset_style not in PRESET_STYLES:
            styles = ", ".join(PRESET_STYLES)
            problem = f"must be one of {styles}; got {preset_style!r}."
            raise self.option_error("preset_style", problem)
        if preset_style is not None and not alchemy and preset_style not in PLAIN_STYLES:
            raise InvalidProviderError(
                f'OPTIONS["preset_style"] {preset_style!r} of {self.config_path} needs "alchemy": '
                f"True; without alchemy Leonardo takes only {' or '.join(PLAIN_STYLES)}."
            )
        if credit_price is not None and as_number(credit_price) is None:
            raise self.option_error(
                "credit_price",
                'must be a non-negative number of dollars per credit, such as "0.0015"; '
                f"got {credit_price!r}.",
            )
        self.alchemy = alchemy
        self.preset_style = preset_style
        self.public = public
        self.credit_price = None if credit_price is None else Decimal(str(credit_price))

    # Catalog -------------------------------------------------------------------------------

    @property
    def rate(self) -> Decimal:
        """Return the dollars per credit: OPTIONS ``credit_price``, else the documented default."""
        return CREDIT_PRICE if self.credit_price is None else self.credit_price

    def model_info(self, model: str | None = None) -> catalog.ModelInfo:
        """Return ``model``'s catalog entry; any other v1 model gets the v1 limits and price.

        An uncatalogued model UUID shares the v1 endpoint's limits and is estimated like the
        default model (a ``IMAGEGEN["PRICES"]`` entry replaces that price); OPTIONS
        ``credit_price`` then sets the dollars per credit of any per-credit price.
        """
        model = model or self.model
        info = catalog.get_model(self.catalog_key, model)
        if not any(known.id == model for known in catalog.models_for(self.catalog_key)):
            base = catalog.ModelInfo(
                provider=self.catalog_key,
                id=model,
                label="Leonardo.Ai model",
                capabilities=V1_CAPS,
                price=catalog.get_model(self.catalog_key, DEFAULT_MODEL).price,
                notes="Not in imagegen's catalog: estimated like the default model.",
            )
            info = base if info is None else replace(base, price=info.price)
        if self.credit_price is not None and isinstance(info.price, PerCredit):
            info = replace(info, price=replace(info.price, credit_price=self.credit_price))
        return info

    def checked_model(self, model: str) -> str:
        if not MODEL_ID.fullmatch(model):
            raise self.unsupported(
                f"{model!r} is not a Leonardo.Ai model UUID. imagegen uses Leonardo's v1 "
                "generations endpoint, which takes model UUIDs (modelId); models reachable "
                "only through v2 (flux-pro-2.0, gpt-image-2...) are not supported."
            )
        return model

    # Calling -------------------------------------------------------------------------------

    def _generate(self, request: ImageRequest, context: CallContext) -> ImageResult:
        model = self.checked_model(request.model or self.model)
        body = self.body(request, model)
        credits: list[Any] = []

        def submit() -> str:
            answer = self.call_json("POST", "/generations", context, json=body)
            job = answer.get("sdGenerationJob")
            if not isinstance(job, dict):
                said = self.quote(str(answer.get("error") or "no sdGenerationJob"))
                message = f"Leonardo.Ai did not start a generation ({said})."
                raise self.fail(InvalidResponse, "invalid_job_id", message)
            credits.append(job.get("apiCreditCost"))
            return self.checked_job_id(job.get("generationId"))

        job_id = self.checked_job_id(self.submit_or_resume(context, submit))
        generation = self.poll_job(
            lambda: self._poll(job_id, context),
            lambda answer: answer is None or answer.get("status") in TERMINAL,
            context=context,
            job_id=job_id,
        )
        if generation is None:
            message = (
                f"Leonardo.Ai has no generation {job_id}: the id is wrong, or it belongs to "
                "another API key."
            )
            raise self.fail(ProviderError, "job_not_found", message)
        if generation.get("status") != "COMPLETE":
            message = (
                f"Leonardo.Ai reported generation {job_id} as FAILED. Try again; Leonardo.Ai "
                "gives no reason."
            )
            raise self.fail(ProviderError, "generation_failed", message)
        credit = credits[0] if credits else None
        return generation_result(self, request, generation, job_id, credit, context)

    def body(self, request: ImageRequest, model: str) -> dict[str, Any]:
        """Return the JSON body of ``POST /generations`` (§5.2), field names cased as the API's."""
        self.refuse_reserved(request, RESERVED)
        if request.source_images or request.mask is not None:
            raise self.unsupported(
                "imagegen does not upload init images to Leonardo.Ai; only text-to-image is "
                "supported."
            )
        # §5.2: the spec's defaults (alchemy on, 4 images, DYNAMIC) are never relied upon.
        fields: dict[str, Any] = {
            "prompt": request.prompt,
            "modelId": model,
            "width": request.width,
            "height": request.height,
            "num_images": request.count,
            "alchemy": self.alchemy,
            "public": self.public,
        }
        if request.negative_prompt:
            fields["negative_prompt"] = request.negative_prompt
        if request.seed is not None:
            fields["seed"] = request.seed
        if self.preset_style is not None:
            fields["presetStyle"] = self.preset_style
        if model in GUIDED_MODELS:
            # Their guides list contrast as required; extra may choose another level.
            fields.update(GUIDED_FIELDS)
        fields.update(request.extra)
        return fields

    def _poll(self, job_id: str, context: CallContext) -> dict[str, Any] | None:
        answer = self.call_json("GET", f"/generations/{job_id}", context)
        # §5.4: generations_by_pk is null for an unknown id [UNCERTAIN].
        generation = answer.get("generations_by_pk")
        if generation is not None and not isinstance(generation, dict):
            message = "Leonardo.Ai answered the poll without a generation object."
            raise self.fail(InvalidResponse, "invalid_json", message)
        return generation

    # Reading answers -----------------------------------------------------------------------

    def error_for_response(self, response: httpx.Response, error: ApiError) -> ProviderError:
        # §5.6: Hasura-style {"error": "...", "path": "$", "code": "..."} [UNCERTAIN]; the base
        # parse_error reads it.
        status, method, said = response.status_code, response.request.method, error.message
        if status == 404 and method == "GET":
            what = "Leonardo.Ai does not know this generation (HTTP 404)"
            return self.answer_error(response, ProviderError, what, said, code="job_not_found")
        if status == 400:
            what = "Leonardo.Ai refused the request (HTTP 400)"
            return self.answer_error(response, ProviderError, what, said, code="invalid_request")
        return super().error_for_response(response, error)
