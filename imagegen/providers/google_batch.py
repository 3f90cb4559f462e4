"""Gemini Batch Mode: many generateContent requests run as one job within 48 hours, at half price.

The wire follows Google's Batch API guide (https://ai.google.dev/gemini-api/docs/batch-api) and
REST reference (https://ai.google.dev/api/batch-api), read 2026-12-05, and the official
``google-genai`` SDK (``batches.py``, ``_api_client.py``) where the guide is silent:

* ``POST /models/{model}:batchGenerateContent`` creates the batch:
  ``{"batch": {"displayName", "inputConfig": {...}}}``. Small batches carry their requests
  inline (``inputConfig.requests.requests[]``, each ``{"request", "metadata": {"key"}}``);
  the guide keeps that under 20 MB. Larger ones go as a JSONL file of ``{"key", "request"}``
  lines (at most 2 GB), uploaded with the Files API's resumable protocol to
  ``/upload/v1beta/files`` and named in ``inputConfig.fileName``.
* The answer, and ``GET /batches/{id}``, is a long-running Operation: ``name``
  ("batches/…"), ``done``, ``error``, and ``metadata`` holding the batch (``displayName``,
  ``model``, ``state``, ``batchStats`` with int64 counts as strings). The results are in the
  Operation's ``response`` (the guide's REST example) or ``metadata.output`` (where the SDK
  reads them): ``inlinedResponses.inlinedResponses[]`` (``{"response" | "error",
  "metadata": {"key"}}``, in input order) or ``responsesFile``, a JSONL file of
  ``{"key", "response" | "error"}`` lines fetched from
  ``/download/v1beta/{file}:download?alt=media`` and read here line by line.
* ``POST /batches/{id}:cancel`` cancels; ``GET /batches`` lists (``operations``,
  ``nextPageToken``), which is how a batch is found again by its display name after a crash.

The reference names the states ``BATCH_STATE_*``; the guide's REST example compares
``metadata.state`` with the SDK's ``JOB_STATE_*`` spellings, so both are understood
(:data:`STATE_MAP`). Each result is read by the synchronous parser
(:func:`~imagegen.providers.google_output.parse_gemini`) and priced from its ``usageMetadata``
at the catalog's ``batch_factor`` (Google: "50% of the standard interactive API cost").
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from imagegen.exceptions import (
    ContentRejected,
    ImagegenError,
    InvalidResponse,
    ProviderUnavailable,
)
from imagegen.pricing import money
from imagegen.providers.batching import BatchItem, BatchOutcome, BatchState
from imagegen.providers.google_output import parse_gemini, usage_from
from imagegen.providers.http.errors import sentence
from imagegen.providers.http.outputs import dicts
from imagegen.providers.http.transport import NOT_SENT, read_capped, with_body
from imagegen.types import ImageRequest, ImageResult

if TYPE_CHECKING:
    from imagegen.providers.google import GoogleProvider

__all__ = ["INLINE_MAX_BYTES", "STATE_MAP", "GeminiBatchMode"]

logger = logging.getLogger("imagegen.http")

#: Google's batch states, and the ``JOB_STATE_*`` spellings of the SDK and the guide's REST
#: example, in imagegen's words (:data:`imagegen.providers.batching.STATES`). PENDING is
#: "preparing to run the batch", the closest to OpenAI's ``validating``.
STATE_MAP: dict[str, str] = {
    "BATCH_STATE_UNSPECIFIED": "validating",
    "BATCH_STATE_PENDING": "validating",
    "BATCH_STATE_RUNNING": "in_progress",
    "BATCH_STATE_SUCCEEDED": "completed",
    "BATCH_STATE_FAILED": "failed",
    "BATCH_STATE_CANCELLED": "cancelled",
    "BATCH_STATE_EXPIRED": "expired",
    "JOB_STATE_UNSPECIFIED": "validating",
    "JOB_STATE_QUEUED": "validating",
    "JOB_STATE_PENDING": "validating",
    "JOB_STATE_RUNNING": "in_progress",
    "JOB_STATE_PAUSED": "in_progress",
    "JOB_STATE_UPDATING": "in_progress",
    "JOB_STATE_SUCCEEDED": "completed",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "completed",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLING": "cancelling",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_EXPIRED": "expired",
}
#: Largest inline batch, in bytes of request JSON: half the guide's 20 MB, because Google
#: counts the whole creation request and its envelope against that limit.
INLINE_MAX_BYTES = 10 * 1024 * 1024
#: Worst-case base64 size of one result image by image size: raw RGB pixels, inflated by a
#: third. Inline results come back inside the batch's GET answer, which is read whole under
#: ``max_response_bytes``, so a batch goes inline only when these add up to half of that cap.
RESULT_BYTES = {"1K": 4 * 1024 * 1024, "2K": 16 * 1024 * 1024, "4K": 64 * 1024 * 1024}
#: The request body of an upload chunk is read from the spool in pieces of this size.
PIECE_BYTES = 64 * 1024
#: Request data kept in memory before the spool moves to a temporary file.
SPOOL_MEMORY_BYTES = 1024 * 1024
#: A batch's ``displayName`` is looked for in this many pages of this many recent batches.
FIND_PAGES, FIND_PAGE_SIZE = 50, 10
JSONL = "application/jsonl"
EXPIRED = (
    "Google expired the batch: it was pending or running for more than 48 hours. "
    "Requests without a result can be submitted again, in smaller batches."
)


@dataclass(frozen=True, kw_only=True)
class _Spooled:
    """What writing a batch's JSONL found: its model, size and how big its results may be."""

    model: str
    count: int
    size: int
    result_bytes: int


class GeminiBatchMode:
    """The Batch Mode half of :class:`~imagegen.providers.google.GoogleProvider`.

    It implements :class:`~imagegen.providers.batching.BatchProvider` with the provider's own
    HTTP plumbing (key header, error mapping, redaction). Every request of a batch goes to one
    model, the batch's; Imagen ids have no Batch Mode.
    """

    #: Google documents no count limit; imagegen keeps a batch to 2,000 requests so its results
    #: file (about 2 to 3 MB of base64 per 1K image) stays a few gigabytes, and one failed batch
    #: fails few rows.
    batch_max_requests: ClassVar[int] = 2_000
    #: The guide's limit on a batch's input file: 2 GB.
    batch_max_bytes: ClassVar[int] = 2 * 1000**3
    #: Bytes per upload request: the SDK's 8 MB chunks, a multiple of the 256 KiB granularity
    #: of Google's resumable uploads. Tests lower it to see several chunks.
    batch_upload_chunk_bytes: int = 8 * 1024 * 1024

    # Submitting --------------------------------------------------------------------------

    def batch_submit(
        self: GoogleProvider,
        items: Iterable[BatchItem],
        *,
        key: str,
        on_created: Callable[[str], None] | None = None,
    ) -> BatchState:
        """Send ``items`` as one batch with display name ``key``; return its first state.

        The JSONL is written to a spool (memory, then a temporary file), never held as one
        string; small batches are then sent inline, larger ones uploaded in chunks streamed
        from the spool. ``on_created`` gets the batch name ("batches/…") as soon as Google
        answers. Raises ``UnsupportedRequest`` before anything is sent for an empty batch, more
        than :attr:`batch_max_requests` or :attr:`batch_max_bytes`, mixed models, or a model
        without a batch price in the catalog.
        """
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
            spooled = self.batch_spool(items, spool)
            inline = (
                spooled.size <= INLINE_MAX_BYTES
                and spooled.result_bytes <= self.max_response_bytes // 2
            )
            if inline:
                spool.seek(0)
                requests = _inline_requests(spool)
                source: dict[str, Any] = {"requests": {"requests": requests}}
                # Inline results come back in input order: the keys let them be matched even
                # if Google did not echo each request's metadata.
                keys = [entry["metadata"]["key"] for entry in requests]
                described: dict[str, Any] = {"input": "inline", "keys": keys}
            else:
                file_name = self.batch_upload(spool, spooled.size, key)
                source = {"fileName": file_name}
                described = {"input": "file", "inputFile": file_name}
        body = {"batch": {"displayName": key, "inputConfig": source}}
        path = f"/models/{quote(spooled.model, safe='')}:batchGenerateContent"
        operation = self.json_object(self.request("POST", path, json=body))
        name = operation.get("name")
        if not isinstance(name, str) or not name:
            message = f"{self.name} created a batch but did not say its name."
            raise self.fail(InvalidResponse, "invalid_json", message)
        if on_created is not None:
            on_created(name)
        state = self.batch_state(operation)
        output = {**state.output, **described, "model": state.output.get("model", spooled.model)}
        return replace(state, output=output)

    def batch_spool(self: GoogleProvider, items: Iterable[BatchItem], spool: IO[bytes]) -> _Spooled:
        """Write ``items`` to ``spool`` as Google's ``{"key", "request"}`` JSONL; check limits."""
        model, count, size, result_bytes, keys = "", 0, 0, 0, set()
        for item in items:
            request = item.request
            item_model = request.model or self.model
            if not model:
                model = self.batch_model(item_model)
            elif item_model != model:
                raise self.unsupported(
                    f"A Gemini batch runs one model; got {model} and {item_model}."
                )
            if item.custom_id in keys:
                raise self.unsupported(f"Two requests of a batch share the key {item.custom_id!r}.")
            keys.add(item.custom_id)
            line = json.dumps(
                {"key": item.custom_id, "request": self.gemini_body(request, model)},
                separators=(",", ":"),
            ).encode()
            count, size = count + 1, size + len(line) + 1
            if count > self.batch_max_requests or size > self.batch_max_bytes:
                raise self.unsupported(
                    f"A Gemini batch holds at most {self.batch_max_requests:,} requests and "
                    f"{self.batch_max_bytes:,} bytes; split it."
                )
            size_name = self.image_size_for(request, model) or "1K"
            result_bytes += RESULT_BYTES.get(size_name, RESULT_BYTES["4K"])
            spool.write(line + b"\n")
        if not count:
            raise self.unsupported("A batch needs at least one request.")
        return _Spooled(model=model, count=count, size=size, result_bytes=result_bytes)

    def batch_model(self: GoogleProvider, model: str) -> str:
        """Return ``model`` if Batch Mode can run it; raise ``UnsupportedRequest`` if not."""
        if model.startswith("imagen-"):
            raise self.unsupported(f"{model} has no Batch Mode; only Gemini image models do.")
        if self.model_info(model).batch_factor is None:
            raise self.unsupported(
                f"The catalog has no batch price for {model}, so it is not sent to Batch Mode."
            )
        return model

    def batch_upload(self: GoogleProvider, spool: IO[bytes], size: int, key: str) -> str:
        """Upload the spooled JSONL with the resumable protocol; return its name ("files/…").

        The start request declares the size and type and gets the upload URL; the bytes follow
        in :attr:`batch_upload_chunk_bytes` chunks ("upload", then "upload, finalize"), each
        body streamed from the spool in small pieces.
        """
        start = self.request(
            "POST",
            self.media_url("upload", "/files"),
            json={"file": {"displayName": key}},
            headers={
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(size),
                "X-Goog-Upload-Header-Content-Type": JSONL,
            },
        )
        url = start.headers.get("x-goog-upload-url", "")
        if not url:
            message = f"{self.name} did not send an upload URL for the batch's request file."
            raise self.fail(InvalidResponse, "invalid_response", message)
        spool.seek(0)
        chunk = max(1, int(self.batch_upload_chunk_bytes))
        offset, status, response = 0, "", start
        while offset < size:
            length = min(chunk, size - offset)
            last = offset + length >= size
            response = self.request(
                "POST",
                url,
                content=_pieces(spool, length),
                headers={
                    "Content-Length": str(length),
                    "X-Goog-Upload-Command": "upload, finalize" if last else "upload",
                    "X-Goog-Upload-Offset": str(offset),
                },
            )
            offset += length
            status = response.headers.get("x-goog-upload-status", "")
            if not last and status != "active":
                break
        file = self.json_object(response).get("file") if status == "final" else None
        name = file.get("name") if isinstance(file, dict) else None
        if not isinstance(name, str) or not name:
            message = (
                f"{self.name} did not finish the upload of the batch's request file "
                f"(upload status {status or 'missing'!r})."
            )
            raise self.fail(InvalidResponse, "invalid_response", message)
        return name

    def media_url(self: GoogleProvider, kind: str, path: str) -> str:
        """Return the Files API's ``upload`` or ``download`` URL for ``path`` under base_url.

        Google serves them beside the API root: ``https://host/upload/v1beta/files`` for a
        base_url of ``https://host/v1beta``.
        """
        base = urlsplit(self.base_url)
        return urlunsplit((base.scheme, base.netloc, f"/{kind}{base.path}{path}", "", ""))

    # Polling -----------------------------------------------------------------------------

    def batch_poll(self: GoogleProvider, batch_id: str) -> BatchState:
        """Return the batch's current state (``GET /batches/{id}``)."""
        return self.batch_state(self.json_object(self.request("GET", _batch_path(batch_id))))

    def batch_find(self: GoogleProvider, key: str) -> BatchState | None:
        """Return the most recent batch whose display name is ``key``, or None.

        Google's list has no filter on the Gemini API (the SDK refuses one), so the recent
        batches are paged through: :data:`FIND_PAGES` pages of :data:`FIND_PAGE_SIZE`.
        """
        token = ""
        for _ in range(FIND_PAGES):
            params = {"pageSize": FIND_PAGE_SIZE, **({"pageToken": token} if token else {})}
            page = self.json_object(self.request("GET", "/batches", params=params))
            for operation in dicts(page.get("operations")):
                metadata = operation.get("metadata")
                if isinstance(metadata, dict) and metadata.get("displayName") == key:
                    return self.batch_state(operation)
            token = page.get("nextPageToken") or ""
            if not isinstance(token, str) or not token:
                return None
        return None

    def batch_cancel(self: GoogleProvider, batch_id: str) -> BatchState:
        """Ask Google to cancel the batch (``POST /batches/{id}:cancel``); return its state.

        A batch that finished meanwhile cannot be cancelled; its state is returned all the same.
        """
        try:
            self.request("POST", f"{_batch_path(batch_id)}:cancel")
        except ImagegenError as err:
            if err.code != "invalid_request":
                raise
            logger.info("imagegen: %s could not cancel %s (%s)", self.alias, batch_id, err.code)
        return self.batch_poll(batch_id)

    def batch_state(self: GoogleProvider, operation: dict[str, Any]) -> BatchState:
        """Return the :class:`BatchState` an Operation describes."""
        metadata = operation.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        raw = str(metadata.get("state") or "")
        error = operation.get("error") if isinstance(operation.get("error"), dict) else {}
        status = STATE_MAP.get(raw)
        if status is None:
            # An unknown or missing state: the Operation's own fields still say whether it ended
            # (a cancelled Operation carries error code 1, CANCELLED).
            if operation.get("done"):
                status = (
                    "cancelled" if error.get("code") == 1 else "failed" if error else "completed"
                )
            else:
                status = "in_progress" if raw else "validating"
            if raw:
                logger.warning("imagegen: %s reported an unknown batch state %s", self.alias, raw)
        said = self.quote(str(error.get("message") or ""))
        reason = ""
        if status == "failed":
            reason = sentence(f"{self.name} reported that the batch failed", said)
        elif status == "expired":
            reason = f"{EXPIRED} {said}".strip()
        stats = metadata.get("batchStats")
        stats = stats if isinstance(stats, dict) else {}
        output: dict[str, Any] = {}
        model = str(metadata.get("model") or "").removeprefix("models/")
        if model:
            output["model"] = model
        results = _results_of(operation)
        if isinstance(results.get("responsesFile"), str):
            output["responsesFile"] = results["responsesFile"]
        elif "inlinedResponses" in results:
            output["inlineResults"] = True
        return BatchState(
            batch_id=str(operation.get("name") or metadata.get("name") or ""),
            status=status,
            provider_status=raw or ("done" if operation.get("done") else ""),
            total=_count(stats.get("requestCount")),
            completed=_count(stats.get("successfulRequestCount")),
            failed=_count(stats.get("failedRequestCount")),
            error=reason,
            output=output,
        )

    # Results -----------------------------------------------------------------------------

    def batch_results(self: GoogleProvider, state: BatchState) -> Iterator[BatchOutcome]:
        """Yield an outcome per request with a result, read from the file line by line.

        Inline results are read from a fresh ``GET`` of the batch (they are too large to keep
        on the batch's row). A batch that ended without results (cancelled early, expired)
        yields nothing; its requests simply have no outcome.
        """
        model = str(state.output.get("model") or "")
        file_name = state.output.get("responsesFile")
        keys = state.output.get("keys") if isinstance(state.output.get("keys"), list) else []
        entries: Iterable[tuple[int, dict[str, Any]]] = ()
        if not isinstance(file_name, str) or not file_name:
            operation = self.json_object(self.request("GET", _batch_path(state.batch_id)))
            fresh = self.batch_state(operation)
            model = model or str(fresh.output.get("model") or "")
            file_name = fresh.output.get("responsesFile")
            inline = _results_of(operation).get("inlinedResponses")
            inline = inline.get("inlinedResponses") if isinstance(inline, dict) else inline
            entries = enumerate(dicts(inline))
        if isinstance(file_name, str) and file_name:
            entries, keys = enumerate(self.batch_download(file_name)), []
        model = model or self.model
        for index, entry in entries:
            metadata = entry.get("metadata")
            key = entry.get("key") or (metadata.get("key") if isinstance(metadata, dict) else None)
            if not key and index < len(keys):
                key = keys[index]
            if not isinstance(key, str) or not key:
                logger.warning(
                    "imagegen: %s sent batch result %d without its key", self.alias, index
                )
                continue
            yield self.batch_outcome(key, entry, model)

    def batch_outcome(
        self: GoogleProvider, key: str, entry: dict[str, Any], model: str
    ) -> BatchOutcome:
        """Return the outcome of one result entry: images at the batch price, or why not."""
        error = entry.get("error")
        if isinstance(error, dict):
            code = str(error.get("status") or error.get("code") or "")
            what = f"{self.name} could not run this request" + (f" ({code})" if code else "")
            said = self.quote(str(error.get("message") or ""))
            return BatchOutcome(custom_id=key, error=sentence(what, said))
        response = entry.get("response")
        if not isinstance(response, dict):
            message = f"{self.name} sent a batch result with neither a response nor an error."
            return BatchOutcome(custom_id=key, error=message)
        request = ImageRequest(prompt="", model=model)
        factor = self.model_info(model).batch_factor or Decimal(1)
        try:
            result = parse_gemini(self, request, httpx.Response(200, json=response))
        except ImagegenError as err:
            # Google bills what the usage reports, refused or not (as for synchronous calls).
            usage = usage_from(response.get("usageMetadata"))
            charged = None
            if usage:
                cost = self.model_info(model).price.actual(request, usage, 0)
                charged = ImageResult(images=(), model=model, cost=money(factor * cost),
                                      usage=usage, filtered=True)  # fmt: skip
            refused = isinstance(err, ContentRejected)
            return BatchOutcome(custom_id=key, result=charged, error=err.message, refused=refused)
        cost = result.cost
        if cost is None:
            cost = self.model_info(model).price.actual(request, result.usage, len(result.images))
        batch_cost = money(factor * cost)
        return BatchOutcome(custom_id=key, result=replace(result, cost=batch_cost))

    def batch_download(self: GoogleProvider, file_name: str) -> Iterator[dict[str, Any]]:
        """Yield the JSON objects of a results file, read line by line as it downloads.

        Each line may hold several images, so a line (not the file) is capped at
        ``max_response_bytes``; a line that is not a JSON object is logged and skipped.
        """
        url = self.media_url("download", f"/{quote(file_name, safe='/')}:download")
        request = self.client.build_request(
            "GET", url, params={"alt": "media"}, headers=self.auth_headers()
        )
        try:
            response = self.client.send(request, stream=True)
        except NOT_SENT as err:
            message = f"Could not connect to {self.name} ({type(err).__name__})."
            raise self.fail(ProviderUnavailable, "connection_failed", message) from err
        except httpx.TimeoutException as err:
            message = f"{self.name} did not answer in time ({type(err).__name__})."
            raise self.fail(ProviderUnavailable, "timeout", message) from err
        except httpx.HTTPError as err:
            message = f"The connection to {self.name} broke ({type(err).__name__})."
            raise self.fail(ProviderUnavailable, "connection_lost", message) from err
        try:
            if not response.is_success:
                # An error answer is small: read at most 1 MiB of it for the message.
                unreadable = f"{self.name} sent an unreadable error answer."
                body = read_capped(
                    response,
                    1024 * 1024,
                    float("inf"),
                    too_large=lambda: self.fail(InvalidResponse, "response_too_large", unreadable),
                    too_slow=lambda: self.fail(ProviderUnavailable, "timeout", unreadable),
                )
                self.raise_for_response(with_body(response, body))
            for number, line in enumerate(self.batch_lines(response), start=1):
                try:
                    entry = json.loads(line)
                except ValueError:
                    entry = None
                if isinstance(entry, dict):
                    yield entry
                else:
                    logger.warning(
                        "imagegen: %s results file line %d is not a JSON object", self.alias, number
                    )
        except httpx.HTTPError as err:
            message = f"The download of the batch's results from {self.name} broke"
            raise self.fail(
                ProviderUnavailable, "connection_lost", f"{message} ({type(err).__name__})."
            ) from err
        finally:
            response.close()

    def batch_lines(self: GoogleProvider, response: httpx.Response) -> Iterator[bytes]:
        """Yield the non-empty lines of a streamed body, each under ``max_response_bytes``."""
        limit, buffer, searched = self.max_response_bytes, bytearray(), 0
        for chunk in response.iter_bytes():
            buffer += chunk
            while (end := buffer.find(b"\n", searched)) >= 0:
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                searched = 0
                if line.strip():
                    yield line
            searched = len(buffer)
            if searched > limit:
                message = (
                    f"{self.name} sent a batch result larger than the {limit:,}-byte limit "
                    '(OPTIONS["max_response_bytes"]).'
                )
                raise self.fail(InvalidResponse, "response_too_large", message)
        if bytes(buffer).strip():
            yield bytes(buffer)


def _batch_path(batch_id: str) -> str:
    """Return the API path of a batch given its name ("batches/abc") or bare id ("abc")."""
    return f"/batches/{quote(batch_id.removeprefix('batches/'), safe='')}"


def _results_of(operation: dict[str, Any]) -> dict[str, Any]:
    # The guide's REST example reads the Operation's response; the SDK reads metadata.output.
    response = operation.get("response")
    if isinstance(response, dict) and (
        "responsesFile" in response or "inlinedResponses" in response
    ):
        return response
    metadata = operation.get("metadata")
    output = metadata.get("output") if isinstance(metadata, dict) else None
    return output if isinstance(output, dict) else {}


def _inline_requests(spool: IO[bytes]) -> list[dict[str, Any]]:
    """Return the spooled ``{"key", "request"}`` lines as inline ``InlinedRequest`` objects."""
    requests = []
    for line in spool:
        entry = json.loads(line)
        requests.append({"request": entry["request"], "metadata": {"key": entry["key"]}})
    return requests


def _pieces(spool: IO[bytes], length: int) -> Iterator[bytes]:
    """Yield the next ``length`` bytes of ``spool`` in pieces of :data:`PIECE_BYTES`."""
    left = length
    while left > 0:
        piece = spool.read(min(PIECE_BYTES, left))
        if not piece:
            return
        left -= len(piece)
        yield piece


def _count(value: Any) -> int:
    # batchStats counts are int64, which proto JSON sends as strings.
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return 0
