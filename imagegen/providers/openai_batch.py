"""OpenAI's Batch API for images: upload a JSONL file, create a batch, poll it, read its files.

The wire protocol (OpenAI's OpenAPI spec, provider-apis.md §2.1): the requests go up as one
JSONL file through ``POST /files`` (multipart, ``purpose=batch``), one line per request::

    {"custom_id": "42", "method": "POST", "url": "/v1/images/generations", "body": {...}}

``POST /batches`` creates the batch from the file (``endpoint`` ``/v1/images/generations`` or
``/v1/images/edits``, ``completion_window`` ``24h``, ``metadata`` carrying imagegen's key so
that :meth:`OpenAIBatch.batch_find` can list ``/batches`` and find it after a crash);
``GET /batches/{id}`` reports its ``status`` and ``request_counts``; the results are two
JSONL files, ``output_file_id`` (answers) and ``error_file_id`` (failed requests), read from
``GET /files/{id}/content`` line by line; ``POST /batches/{id}/cancel`` cancels it. A result
line is ``{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}``.

An edit batch sends the JSON form of ``/images/edits``: each source image (and the mask, as the
alpha PNG the synchronous call sends) as a ``data:`` URL in ``images: [{"image_url": ...}]``
and ``mask: {"image_url": ...}``.

A batch runs at :attr:`~imagegen.catalog.ModelInfo.batch_factor` of the synchronous price
(50%); the cost of each result is its ``usage`` priced by the catalog at that share.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import IO, Any

import httpx

from imagegen.exceptions import (
    ImagegenError,
    InvalidResponse,
    ProviderUnavailable,
    UnsupportedRequest,
)
from imagegen.providers.batching import STATES, BatchItem, BatchOutcome, BatchState
from imagegen.providers.http.errors import parse_error_body
from imagegen.providers.http.inputs import alpha_mask
from imagegen.types import ImageRequest

#: Most requests and most bytes of JSONL one OpenAI batch takes (provider-apis.md §2.1).
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
#: The metadata key that carries imagegen's label of a batch.
KEY_FIELD = "imagegen_key"
#: Batches read per page when looking for a lost one, and pages read at most (newest first:
#: a batch lost in a crash is among the latest).
LIST_PAGE = 100
LIST_PAGES = 20
#: The Batch API endpoint of each kind of request; OpenAI's batch statuses are imagegen's
#: own (:data:`imagegen.providers.batching.STATES`).
ENDPOINTS = {"generate": "/v1/images/generations", "edit": "/v1/images/edits"}


class OpenAIBatch:
    """The Batch API half of :class:`~imagegen.providers.openai.OpenAIProvider` (a mixin).

    It uses the provider's ``request``, ``client``, ``fields`` and ``parse_result``.
    """

    batch_max_requests = MAX_REQUESTS
    batch_max_bytes = MAX_BYTES

    # The provider's own methods, for type checkers.
    alias: str
    model: str
    request: Callable[..., httpx.Response]
    fields: Callable[[ImageRequest], dict[str, Any]]

    def batch_submit(
        self,
        items: Iterable[BatchItem],
        *,
        key: str,
        on_created: Callable[[str], None] | None = None,
    ) -> BatchState:
        """Upload ``items`` as a JSONL file and create the batch labelled ``key``."""
        with tempfile.TemporaryFile() as jsonl:
            # The file is written to disk line by line, never held whole in memory.
            endpoint, model = self._write_jsonl(items, jsonl)
            jsonl.seek(0)
            upload = self.request(
                "POST",
                "/files",
                data={"purpose": "batch"},
                files={"file": ("imagegen-batch.jsonl", jsonl, "application/jsonl")},
            )
        file_id = self._object(upload).get("id")
        if not isinstance(file_id, str) or not file_id:
            raise self._invalid("OpenAI accepted the batch file without giving its id.")
        created = self.request(
            "POST",
            "/batches",
            json={
                "input_file_id": file_id,
                "endpoint": endpoint,
                "completion_window": "24h",
                "metadata": {KEY_FIELD: key, "imagegen_model": model},
            },
        )
        state = self._state(self._object(created))
        if on_created is not None:
            on_created(state.batch_id)
        return state

    def batch_find(self, key: str) -> BatchState | None:
        """Return the batch whose metadata carries ``key``, looking through the latest ones."""
        after: str | None = None
        for _page in range(LIST_PAGES):
            params: dict[str, Any] = {"limit": LIST_PAGE}
            if after:
                params["after"] = after
            page = self._object(self.request("GET", "/batches", params=params))
            batches = page.get("data") or []
            for batch in batches:
                metadata = batch.get("metadata") if isinstance(batch, dict) else None
                if isinstance(metadata, dict) and metadata.get(KEY_FIELD) == key:
                    return self._state(batch)
            if not page.get("has_more") or not batches:
                return None
            after = page.get("last_id") or batches[-1].get("id")
        return None

    def batch_poll(self, batch_id: str) -> BatchState:
        """Return the batch's current state."""
        return self._state(self._object(self.request("GET", f"/batches/{batch_id}")))

    def batch_cancel(self, batch_id: str) -> BatchState:
        """Cancel the batch: OpenAI stops it (``cancelling``, then ``cancelled``)."""
        return self._state(self._object(self.request("POST", f"/batches/{batch_id}/cancel")))

    def batch_results(self, state: BatchState) -> Iterator[BatchOutcome]:
        """Yield one outcome per line of the batch's output and error files, streamed."""
        model = str(state.output.get("model") or self.model)
        for name in ("output_file_id", "error_file_id"):
            file_id = state.output.get(name)
            if file_id:
                for line in self._lines(str(file_id)):
                    outcome = self._outcome(line, model)
                    if outcome is not None:
                        yield outcome

    # Writing -------------------------------------------------------------------------------

    def _write_jsonl(self, items: Iterable[BatchItem], out: IO[bytes]) -> tuple[str, str]:
        """Write one JSONL line per item to ``out``; return the batch's endpoint and model."""
        endpoint, model, size, count = "", "", 0, 0
        for item in items:
            request = item.request
            kind = "generate" if request.operation == "generate" else "edit"
            if request.operation not in ("generate", "edit", "inpaint"):
                raise UnsupportedRequest(
                    f"OpenAI's Batch API takes generations and edits, not {request.operation}."
                )
            url = ENDPOINTS[kind]
            if endpoint and url != endpoint:
                raise UnsupportedRequest(
                    "One OpenAI batch holds generations or edits, not both: imagegen groups "
                    "them apart."
                )
            endpoint, model = url, request.model or self.model
            body = self.fields(request)
            if kind == "edit":
                body.update(_edit_images(request))
            line = json.dumps(
                {"custom_id": item.custom_id, "method": "POST", "url": url, "body": body},
                separators=(",", ":"),
            ).encode()
            size += len(line) + 1
            count += 1
            if size > MAX_BYTES or count > MAX_REQUESTS:
                raise UnsupportedRequest(
                    f"An OpenAI batch holds at most {MAX_REQUESTS:,} requests and "
                    f"{MAX_BYTES // (1024 * 1024)} MB; this one is larger."
                )
            out.write(line + b"\n")
        if not count:
            raise UnsupportedRequest("An OpenAI batch needs at least one request.")
        return endpoint, model

    # Reading -------------------------------------------------------------------------------

    def _lines(self, file_id: str) -> Iterator[str]:
        """Yield the lines of file ``file_id``'s content, streamed from OpenAI."""
        provider: Any = self
        url = f"/files/{file_id}/content"
        try:
            with provider.client.stream("GET", url, headers=provider.auth_headers()) as response:
                if not response.is_success:
                    response.read()
                    provider.raise_for_response(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield line
        except httpx.HTTPError as err:
            raise provider.fail(
                ProviderUnavailable,
                "connection_lost",
                f"The download of OpenAI's batch results broke ({type(err).__name__}).",
            ) from err

    def _outcome(self, line: str, model: str) -> BatchOutcome | None:
        """Return the outcome one result line says, or None for a line without a custom_id."""
        try:
            data = json.loads(line)
        except ValueError:
            return None
        if not isinstance(data, dict) or not data.get("custom_id"):
            return None
        custom_id = str(data["custom_id"])
        error = data.get("error")
        if isinstance(error, dict) and error:
            said = str(error.get("message") or error.get("code") or "unknown error")
            return BatchOutcome(custom_id=custom_id, error=f"OpenAI: {said}")
        response = data.get("response") if isinstance(data.get("response"), dict) else {}
        status = int(response.get("status_code") or 0)
        body = response.get("body")
        answer = httpx.Response(status or 500, json=body if body is not None else {})
        if status != 200:
            api_error = parse_error_body(answer)
            said = api_error.message or f"HTTP {status}"
            provider: Any = self
            refused = (api_error.code or "") in _SAFETY_CODES or _SAFETY in said.lower()
            what = "OpenAI's safety system refused this prompt or image" if refused else "OpenAI"
            return BatchOutcome(
                custom_id=custom_id, error=provider.redact(f"{what}: {said}"), refused=refused
            )
        request = ImageRequest(prompt="", model=model, output_format=_format(body))
        provider = self
        try:
            result = provider.parse_result(request, answer)
        except ImagegenError as err:
            return BatchOutcome(custom_id=custom_id, error=str(err))
        factor = _factor(provider, model)
        if result.cost is not None:  # no usage: the catalog estimate, at the batch price
            result = replace(result, cost=(result.cost * factor).quantize(Decimal("0.000001")))
        else:
            info = provider.model_info(model)
            cost = info.price.actual(request, result.usage, len(result.images)) * factor
            result = replace(result, cost=cost.quantize(Decimal("0.000001")))
        job = response.get("request_id") or data.get("id")
        return BatchOutcome(custom_id=custom_id, result=replace(result, job_id=job))

    def _state(self, batch: dict[str, Any]) -> BatchState:
        """Return the :class:`BatchState` of an OpenAI batch object."""
        batch_id = batch.get("id")
        if not isinstance(batch_id, str) or not batch_id:
            raise self._invalid("OpenAI sent a batch without an id.")
        status = str(batch.get("status") or "")
        counts = (
            batch.get("request_counts") if isinstance(batch.get("request_counts"), dict) else {}
        )
        errors = batch.get("errors") if isinstance(batch.get("errors"), dict) else {}
        messages = [
            str(item.get("message") or item.get("code"))
            for item in errors.get("data") or []
            if isinstance(item, dict)
        ]
        metadata = _dict(batch.get("metadata"))
        output = {
            name: batch[name] for name in ("output_file_id", "error_file_id") if batch.get(name)
        }
        if metadata.get("imagegen_model"):
            output["model"] = metadata["imagegen_model"]
        return BatchState(
            batch_id=batch_id,
            status=status if status in _KNOWN else "in_progress",
            provider_status=status,
            total=int(counts.get("total") or 0),
            completed=int(counts.get("completed") or 0),
            failed=int(counts.get("failed") or 0),
            error="; ".join(messages)[:2000],
            output=output,
        )

    def _object(self, response: httpx.Response) -> dict[str, Any]:
        provider: Any = self
        return provider.json_object(response)

    def _invalid(self, message: str) -> ImagegenError:
        provider: Any = self
        return provider.fail(InvalidResponse, "invalid_response", message)


def _edit_images(request: ImageRequest) -> dict[str, Any]:
    """Return the JSON form of an edit's images: ``data:`` URLs (provider-apis.md §2.1)."""
    if not request.source_images:
        raise UnsupportedRequest("An OpenAI edit needs at least one source image.")
    fields: dict[str, Any] = {
        "images": [{"image_url": _data_url(content)} for content in request.source_images]
    }
    if request.mask is not None:
        # As on the synchronous call: OpenAI's mask is transparent where the image changes.
        mask = alpha_mask(request.mask, request.source_images[0])
        fields["mask"] = {"image_url": _data_url(mask)}
    return fields


def _data_url(content: bytes) -> str:
    return f"data:{_mime(content)};base64,{base64.b64encode(content).decode('ascii')}"


def _mime(content: bytes) -> str:
    if content.startswith(b"\x89PNG"):
        return "image/png"
    if content.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if content[8:12] == b"WEBP":
        return "image/webp"
    return "image/png"


def _format(body: Any) -> str:
    fmt = body.get("output_format") if isinstance(body, dict) else None
    return "jpg" if fmt == "jpeg" else str(fmt or "png")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _factor(provider: Any, model: str) -> Decimal:
    factor = provider.model_info(model).batch_factor
    return Decimal(1) if factor is None else factor


_KNOWN = frozenset(STATES)
_SAFETY_CODES = frozenset({"moderation_blocked", "content_policy_violation"})
_SAFETY = "rejected by the safety system"
