"""A fake of Gemini's Batch Mode and Files API: batches that move through Google's states.

:class:`GeminiBatchAPI` answers like ``generativelanguage.googleapis.com`` behind
``httpx.MockTransport`` (or :class:`StreamingTransport`, which reads request bodies piece by
piece): it creates batches from inline requests or uploaded JSONL files (the resumable upload
handshake with ``X-Goog-Upload-*`` headers), answers Operations with ``metadata.state`` and
``batchStats``, lists them, cancels them, and serves result files for download. A test moves a
batch along with :meth:`GeminiBatchAPI.advance` and :meth:`GeminiBatchAPI.finish`, and scripts
failures with :meth:`GeminiBatchAPI.fail_next`. The result entries are built with
:func:`image_entry`, :func:`blocked_entry`, :func:`safety_entry` and :func:`error_entry`::

    api = GeminiBatchAPI(key="test-key")
    provider = GoogleProvider(alias="google", api_key="test-key", transport=api.transport)
    state = provider.batch_submit(items, key="run-1")
    api.finish(state.batch_id, {"row-2": blocked_entry()})

The shapes follow Google's Batch API guide and REST reference (see
:mod:`imagegen.providers.google_batch`); nothing here needs pytest or Django.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from imagegen.testing.google_responses import (
    gemini_blocked_response,
    gemini_image_response,
    google_error,
)

__all__ = [
    "FakeBatch",
    "GeminiBatchAPI",
    "StreamingTransport",
    "blocked_entry",
    "error_entry",
    "image_entry",
    "safety_entry",
]

ROOT = "https://generativelanguage.googleapis.com"
_BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
_OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
_FINAL = {"SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"}
Handler = Callable[[httpx.Request], httpx.Response]


def image_entry(images: Sequence[bytes] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Return a result entry with a generateContent answer (see ``gemini_image_response``)."""
    return {"response": gemini_image_response(images, **kwargs).json()}


def blocked_entry(reason: str = "PROHIBITED_CONTENT", message: str | None = None) -> dict:
    """Return a result entry whose ``promptFeedback`` blocks the prompt."""
    args = (reason,) if message is None else (reason, message)
    return {"response": gemini_blocked_response(*args).json()}


def safety_entry(reason: str = "IMAGE_SAFETY", message: str = "") -> dict[str, Any]:
    """Return a result entry whose candidate stopped for ``reason``, without an image."""
    candidate = {"content": {"role": "model", "parts": []}, "finishReason": reason}
    if message:
        candidate["finishMessage"] = message
    usage = {"promptTokenCount": 10, "totalTokenCount": 10}
    return {"response": {"candidates": [candidate], "usageMetadata": usage}}


def error_entry(
    code: int = 400, message: str = "Request contains an invalid argument.", status: str = ""
) -> dict[str, Any]:
    """Return a result entry with a ``google.rpc.Status`` error instead of a response."""
    status = status or google_error(code).json()["error"]["status"]
    return {"error": {"code": code, "message": message, "status": status}}


@dataclass
class FakeBatch:
    """One batch the fake holds: what was submitted and where it stands."""

    name: str
    model: str
    display_name: str
    #: The submitted ``(key, GenerateContentRequest)`` pairs, in order.
    requests: list[tuple[str, dict[str, Any]]]
    #: "inline" or "file".
    source: str
    state: str = "BATCH_STATE_PENDING"
    #: The result entry of each key that has one.
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    results_file: str = ""


class StreamingTransport(httpx.BaseTransport):
    """A transport that reads each request body piece by piece, as a server reads a socket.

    It records the size of every piece of every body (:attr:`pieces`), so a test can check
    that a body was streamed rather than sent as one bytes object, then hands ``handler`` the
    request whole.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        #: For each request, in order, the sizes of the pieces its body arrived in.
        self.pieces: list[list[int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body, sizes = bytearray(), []
        for piece in request.stream:
            sizes.append(len(piece))
            body += piece
        self.pieces.append(sizes)
        whole = httpx.Request(
            request.method, request.url, headers=request.headers, content=bytes(body)
        )
        return self.handler(whole)


class GeminiBatchAPI:
    """A scripted Gemini Batch Mode server that records every request.

    ``key`` is the API key it accepts in ``x-goog-api-key`` (any other answers 400
    API_KEY_INVALID, as Google does); ``granularity`` is the resumable upload's chunk
    granularity (non-final chunks must be multiples of it); ``page_size`` caps list pages;
    ``output_in`` says where finished batches carry their results: the Operation's
    ``"response"`` (the guide's REST example), its ``"metadata"`` (``metadata.output``, where
    the SDK reads them) or ``"both"``; ``state_prefix`` is ``"BATCH_STATE_"`` or the
    ``"JOB_STATE_"`` spelling; ``echo_metadata=False`` leaves each inline response's
    ``metadata`` (with its key) out.
    """

    def __init__(
        self,
        *,
        key: str = "test-key",
        granularity: int = 256 * 1024,
        page_size: int = 100,
        output_in: str = "response",
        state_prefix: str = "BATCH_STATE_",
        echo_metadata: bool = True,
    ) -> None:
        self.key = key
        self.granularity = granularity
        self.page_size = page_size
        self.output_in = output_in
        self.state_prefix = state_prefix
        self.echo_metadata = echo_metadata
        #: Every request received, oldest first, with its body read.
        self.requests: list[httpx.Request] = []
        #: The batches by name ("batches/…"), oldest first.
        self.batches: dict[str, FakeBatch] = {}
        #: Stored files by name ("files/…"): uploaded requests and results.
        self.files: dict[str, bytes] = {}
        self._uploads: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._failures: deque[tuple[str, str, httpx.Response]] = deque()
        #: Pass this as the provider's ``transport`` option.
        self.transport = httpx.MockTransport(self._handle)
        #: The same server behind a :class:`StreamingTransport`.
        self.streaming = StreamingTransport(self._handle)

    # Scripting ---------------------------------------------------------------------------

    def fail_next(
        self, method: str, path_part: str, status: int, message: str = "The request failed.", **kw
    ) -> GeminiBatchAPI:
        """Answer the next ``method`` request whose path contains ``path_part`` with an error.

        ``kw`` goes to ``google_error`` (``rpc_status``, ``reason``, ``retry_delay``).
        """
        self._failures.append((method, path_part, google_error(status, message, **kw)))
        return self

    def advance(self, name: str, state: str = "RUNNING") -> None:
        """Move batch ``name`` to ``state`` ("RUNNING", or any full state name)."""
        self.batches[name].state = self._state(state)

    def finish(
        self,
        name: str,
        results: Mapping[str, dict[str, Any]] | None = None,
        *,
        state: str = "SUCCEEDED",
        missing: Sequence[str] = (),
        error: dict[str, Any] | None = None,
    ) -> FakeBatch:
        """End batch ``name`` in ``state`` with a result entry for each request.

        ``results`` gives some keys their entry (:func:`error_entry`, :func:`blocked_entry`…);
        the others get :func:`image_entry`, except the ``missing`` ones, which get none (as in
        an expired batch). ``error`` is the Operation's ``google.rpc.Status``.
        """
        batch = self.batches[name]
        batch.state, batch.error = self._state(state), error
        chosen = dict(results or {})
        for key, _ in batch.requests:
            if key not in missing:
                batch.results[key] = chosen.get(key) or image_entry()
        if batch.source == "file" and batch.results:
            batch.results_file = f"files/batch-{name.rsplit('/', 1)[-1]}-results"
            lines = [json.dumps({"key": k, **e}) for k, e in batch.results.items()]
            self.files[batch.results_file] = ("\n".join(lines) + "\n").encode()
        return batch

    def uploaded_lines(self, name: str) -> list[dict[str, Any]]:
        """Return the JSONL lines of an uploaded file, parsed."""
        return [json.loads(line) for line in self.files[name].splitlines() if line.strip()]

    # The server --------------------------------------------------------------------------

    def _state(self, state: str) -> str:
        # "RUNNING" gets the configured spelling; a full name ("JOB_STATE_QUEUED") is kept.
        return state if "_STATE_" in state else f"{self.state_prefix}{state}"

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        path = request.url.path
        for index, (method, part, answer) in enumerate(self._failures):
            if method == request.method and part in path:
                del self._failures[index]
                return answer
        if request.headers.get("x-goog-api-key") != self.key and "upload_id" not in str(
            request.url
        ):
            message = "API key not valid. Please pass a valid API key."
            return google_error(400, message, reason="API_KEY_INVALID")
        if path == "/upload/v1beta/files":
            if "upload_id" in request.url.params:
                return self._upload_chunk(request)
            return self._upload_start(request)
        if path.startswith("/download/v1beta/files/") and path.endswith(":download"):
            return self._download(path.removeprefix("/download/v1beta/").removesuffix(":download"))
        if path.startswith("/v1beta/models/") and path.endswith(":batchGenerateContent"):
            return self._create(request, path)
        if path == "/v1beta/batches" and request.method == "GET":
            return self._list(request)
        if path.startswith("/v1beta/batches/"):
            name = path.removeprefix("/v1beta/").removesuffix(":cancel")
            if name not in self.batches:
                return google_error(404, f"Batch {name} not found.", rpc_status="NOT_FOUND")
            if path.endswith(":cancel") and request.method == "POST":
                return self._cancel(self.batches[name])
            if request.method == "GET":
                return httpx.Response(200, json=self._operation(self.batches[name]))
        return google_error(404, f"No route for {request.method} {path}.")

    def _create(self, request: httpx.Request, path: str) -> httpx.Response:
        model = path.removeprefix("/v1beta/models/").removesuffix(":batchGenerateContent")
        batch = json.loads(request.content)["batch"]
        config = batch["inputConfig"]
        if "fileName" in config:
            if config["fileName"] not in self.files:
                return google_error(400, f"File {config['fileName']} not found.")
            lines = self.uploaded_lines(config["fileName"])
            pairs = [(line["key"], line["request"]) for line in lines]
            source = "file"
        else:
            inline = config["requests"]["requests"]
            pairs = [(entry["metadata"]["key"], entry["request"]) for entry in inline]
            source = "inline"
        name = f"batches/{next(self._ids):012d}"
        self.batches[name] = FakeBatch(
            name=name, model=model, display_name=batch["displayName"], requests=pairs,
            source=source, state=self._state("PENDING"),
        )  # fmt: skip
        return httpx.Response(200, json=self._operation(self.batches[name]))

    def _operation(self, batch: FakeBatch) -> dict[str, Any]:
        ok = sum(1 for entry in batch.results.values() if "response" in entry)
        failed = len(batch.results) - ok
        stats = {
            "requestCount": str(len(batch.requests)),
            "successfulRequestCount": str(ok),
            "failedRequestCount": str(failed),
            "pendingRequestCount": str(len(batch.requests) - ok - failed),
        }
        metadata: dict[str, Any] = {
            "@type": _BATCH_TYPE,
            "model": f"models/{batch.model}",
            "displayName": batch.display_name,
            "createTime": "2026-12-05T10:00:00.000000Z",
            "updateTime": "2026-12-05T10:05:00.000000Z",
            "batchStats": stats,
            "state": batch.state,
            "name": batch.name,
        }
        done = batch.state.rsplit("_", 1)[-1] in _FINAL
        operation: dict[str, Any] = {"name": batch.name, "metadata": metadata, "done": done}
        output: dict[str, Any] = {"@type": _OUTPUT_TYPE}
        if batch.results_file:
            output["responsesFile"] = batch.results_file
        elif batch.results:
            # In input order, as Google documents.
            order = [key for key, _ in batch.requests if key in batch.results]
            inline = [
                {**batch.results[key], **({"metadata": {"key": key}} if self.echo_metadata else {})}
                for key in order
            ]
            output["inlinedResponses"] = {"inlinedResponses": inline}
        if len(output) > 1:
            if self.output_in in ("response", "both"):
                operation["response"] = output
            if self.output_in in ("metadata", "both"):
                metadata["output"] = output
        if batch.error is not None:
            operation["error"] = batch.error
        return operation

    def _list(self, request: httpx.Request) -> httpx.Response:
        size = min(int(request.url.params.get("pageSize", self.page_size)), self.page_size)
        start = int(request.url.params.get("pageToken") or 0)
        newest = list(reversed(self.batches.values()))
        page = newest[start : start + size]
        body: dict[str, Any] = {"operations": [self._operation(batch) for batch in page]}
        if start + size < len(newest):
            body["nextPageToken"] = str(start + size)
        return httpx.Response(200, json=body)

    def _cancel(self, batch: FakeBatch) -> httpx.Response:
        if batch.state.rsplit("_", 1)[-1] in _FINAL:
            message = f"Batch {batch.name} has already finished."
            return google_error(400, message, rpc_status="FAILED_PRECONDITION")
        batch.state = self._state("CANCELLED")
        batch.error = {"code": 1, "message": "Batch was cancelled by the user."}
        return httpx.Response(200, json={})

    def _upload_start(self, request: httpx.Request) -> httpx.Response:
        headers = request.headers
        if headers.get("x-goog-upload-protocol") != "resumable" or (
            headers.get("x-goog-upload-command") != "start"
        ):
            return google_error(400, "Expected a resumable upload start.")
        upload_id = f"upload-{next(self._ids)}"
        declared = int(headers.get("x-goog-upload-header-content-length", "-1"))
        meta = json.loads(request.content or b"{}").get("file", {})
        kind = headers.get("x-goog-upload-header-content-type")
        upload = {"size": declared, "data": bytearray(), "meta": meta, "type": kind}
        self._uploads[upload_id] = upload
        url = f"{ROOT}/upload/v1beta/files?upload_id={upload_id}&upload_protocol=resumable"
        return httpx.Response(
            200,
            headers={
                "x-goog-upload-url": url,
                "x-goog-upload-status": "active",
                "x-goog-upload-chunk-granularity": str(self.granularity),
            },
        )

    def _upload_chunk(self, request: httpx.Request) -> httpx.Response:
        upload = self._uploads.get(parse_qs(urlsplit(str(request.url)).query)["upload_id"][0])
        if upload is None:
            return google_error(404, "Unknown upload session.")
        command = request.headers.get("x-goog-upload-command", "")
        offset = int(request.headers.get("x-goog-upload-offset", "-1"))
        if offset != len(upload["data"]):
            return google_error(400, f"Offset {offset} does not match {len(upload['data'])}.")
        final = command == "upload, finalize"
        if not final and (command != "upload" or len(request.content) % self.granularity):
            return google_error(400, "A non-final chunk must be a multiple of the granularity.")
        upload["data"] += request.content
        if not final:
            return httpx.Response(200, headers={"x-goog-upload-status": "active"})
        if len(upload["data"]) != upload["size"]:
            return google_error(400, "The upload does not have the declared size.")
        name = f"files/input-{next(self._ids)}"
        self.files[name] = bytes(upload["data"])
        file = {
            "name": name,
            "displayName": upload["meta"].get("displayName", ""),
            "mimeType": upload["type"],
            "sizeBytes": str(len(upload["data"])),
            "state": "ACTIVE",
            "uri": f"{ROOT}/v1beta/{name}",
        }
        return httpx.Response(200, json={"file": file}, headers={"x-goog-upload-status": "final"})

    def _download(self, name: str) -> httpx.Response:
        if name not in self.files:
            return google_error(404, f"File {name} not found.", rpc_status="NOT_FOUND")
        content = self.files[name]

        def pieces() -> Iterator[bytes]:
            # Served in small pieces, so a reader must join lines across them.
            for start in range(0, len(content), 1000):
                yield content[start : start + 1000]

        return httpx.Response(200, content=pieces(), headers={"content-type": "application/json"})
