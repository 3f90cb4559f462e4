"""A fake of OpenAI's Batch API for images: files, batches, statuses, result and error files.

:class:`FakeOpenAIBatches` keeps state like the real service: an uploaded JSONL file becomes
a batch in ``validating``; the test moves it on with :meth:`FakeOpenAIBatches.advance` and
finishes it with :meth:`FakeOpenAIBatches.finish`, which writes the output file (an images
response with ``b64_json`` and ``usage`` per request) and the error file (moderation refusals,
failed requests) exactly as OpenAI's documented line shapes. Pass ``fake.transport`` to the
provider::

    fake = FakeOpenAIBatches()
    settings.IMAGEGEN = {"PROVIDERS": {"default": fake_provider_settings(OPENAI, fake)}}
    ...
    fake.finish(batch_id, refuse={"12"}, fail={"13": "Invalid size"})
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Mapping
from typing import Any

import httpx

from imagegen.testing.images import b64, png_bytes
from imagegen.testing.mock_api import multipart_parts

__all__ = ["FakeOpenAIBatches"]

#: Usage reported per image: 10 text tokens in, 1056 image tokens out (1024x1024, low).
USAGE = {
    "input_tokens": 10,
    "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
    "output_tokens": 1056,
    "output_tokens_details": {"image_tokens": 1056, "text_tokens": 0},
    "total_tokens": 1066,
}


class FakeOpenAIBatches:
    """OpenAI's ``/v1/files`` and ``/v1/batches`` in memory, behind ``httpx.MockTransport``."""

    def __init__(self, image: bytes | None = None) -> None:
        #: Every request received, oldest first.
        self.requests: list[httpx.Request] = []
        #: File id -> content.
        self.files: dict[str, bytes] = {}
        #: Batch id -> OpenAI batch object, in creation order.
        self.batches: dict[str, dict[str, Any]] = {}
        self.image = image or png_bytes(16, 16)
        self._ids = itertools.count(1)
        self.transport = httpx.MockTransport(self.handle)

    # The server --------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/v1")
        parts = [part for part in path.split("/") if part]
        method = request.method
        if method == "POST" and parts == ["files"]:
            return self._upload(request)
        if method == "GET" and len(parts) == 3 and parts[0] == "files" and parts[2] == "content":
            content = self.files.get(parts[1])
            if content is None:
                return _error(404, "No such File object: " + parts[1])
            return httpx.Response(200, content=content)
        if method == "POST" and parts == ["batches"]:
            return self._create(json.loads(request.content))
        if method == "GET" and parts == ["batches"]:
            return self._list(request)
        if len(parts) >= 2 and parts[0] == "batches":
            batch = self.batches.get(parts[1])
            if batch is None:
                return _error(404, "No batch found with id " + parts[1])
            if method == "GET" and len(parts) == 2:
                return httpx.Response(200, json=batch)
            if method == "POST" and parts[2:] == ["cancel"]:
                if batch["status"] in ("validating", "in_progress", "finalizing"):
                    batch["status"] = "cancelling"
                return httpx.Response(200, json=batch)
        return _error(404, f"Unknown route {method} {path}")

    def _upload(self, request: httpx.Request) -> httpx.Response:
        fields = {part.name: part for part in multipart_parts(request)}
        if fields.get("purpose") is None or fields["purpose"].content != b"batch":
            return _error(400, "purpose must be batch")
        content = fields["file"].content
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = content
        body = {"id": file_id, "object": "file", "bytes": len(content), "created_at": 1,
                "filename": fields["file"].filename or "", "purpose": "batch"}  # fmt: skip
        return httpx.Response(200, json=body)

    def _create(self, body: Mapping[str, Any]) -> httpx.Response:
        content = self.files.get(str(body.get("input_file_id")))
        if content is None:
            return _error(400, "input_file_id is not a file")
        if body.get("endpoint") not in ("/v1/images/generations", "/v1/images/edits"):
            return _error(400, "endpoint is not a batch endpoint")
        if body.get("completion_window") != "24h":
            return _error(400, "completion_window must be 24h")
        lines = [json.loads(line) for line in content.splitlines() if line.strip()]
        if any(line.get("url") != body["endpoint"] for line in lines):
            return _error(400, "every line's url must be the batch's endpoint")
        batch_id = f"batch_{next(self._ids)}"
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": body["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": 1,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": dict(body.get("metadata") or {}),
        }
        return httpx.Response(200, json=self.batches[batch_id])

    def _list(self, request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params.get("limit") or 20)
        after = request.url.params.get("after")
        newest = list(reversed(self.batches.values()))
        if after:
            ids = [batch["id"] for batch in newest]
            newest = newest[ids.index(after) + 1 :] if after in ids else []
        page = newest[:limit]
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(newest) > limit,
            },
        )

    # Test controls -----------------------------------------------------------------------

    def save(self, directory: str) -> None:
        """Write the fake's batches and files to ``directory``, for :meth:`load` elsewhere
        (another process polling the same batches)."""
        state = {
            "batches": self.batches,
            "files": {name: content.decode() for name, content in self.files.items()},
        }
        with open(f"{directory}/openai_batches.json", "w") as out:
            json.dump(state, out)

    @classmethod
    def load(cls, directory: str) -> FakeOpenAIBatches:
        """Return a fake holding the batches and files :meth:`save` wrote to ``directory``."""
        with open(f"{directory}/openai_batches.json") as source:
            state = json.load(source)
        fake = cls()
        fake.batches = state["batches"]
        fake.files = {name: content.encode() for name, content in state["files"].items()}
        return fake

    def lines(self, batch_id: str) -> list[dict[str, Any]]:
        """Return the request lines of a batch's input file."""
        content = self.files[self.batches[batch_id]["input_file_id"]]
        return [json.loads(line) for line in content.splitlines() if line.strip()]

    def advance(self, batch_id: str, status: str) -> None:
        """Set the batch's status ("in_progress", "finalizing", "cancelled"...)."""
        self.batches[batch_id]["status"] = status

    def finish(
        self,
        batch_id: str,
        *,
        status: str = "completed",
        refuse: Collection[str] = (),
        fail: Mapping[str, str] | None = None,
        lost: Mapping[str, str] | None = None,
        only: int | None = None,
        usage: Mapping[str, Any] | None = None,
        errors: list[str] | None = None,
    ) -> None:
        """End the batch with ``status`` and write its output and error files.

        ``refuse`` are custom ids the moderation refuses (HTTP 400 ``moderation_blocked`` in
        the error file); ``fail`` maps custom ids to a 400's message; ``lost`` to a non-HTTP
        error (``error: {code, message}``, no response). ``only`` finishes the first ``only``
        requests and leaves the others unrun, as an expired or cancelled batch does.
        ``errors`` are batch-level errors (a ``failed`` batch's validation errors).
        """
        batch, fail, lost = self.batches[batch_id], dict(fail or {}), dict(lost or {})
        lines = self.lines(batch_id)
        done = lines if only is None else lines[:only]
        output, error_lines, completed, failed = [], [], 0, 0
        for index, line in enumerate(done):
            custom_id = line["custom_id"]
            request_id = f"req_{batch_id}_{index}"
            entry: dict[str, Any] = {"id": f"batch_req_{index}", "custom_id": custom_id}
            if custom_id in lost:
                entry.update(response=None, error={"code": "server_error",
                                                   "message": lost[custom_id]})  # fmt: skip
                error_lines.append(entry)
                failed += 1
            elif custom_id in refuse or custom_id in fail:
                code = "moderation_blocked" if custom_id in refuse else "invalid_value"
                message = (
                    "Your request was rejected by the safety system."
                    if custom_id in refuse
                    else fail[custom_id]
                )
                body = {"error": {"message": message, "type": "invalid_request_error",
                                  "param": None, "code": code}}  # fmt: skip
                entry.update(
                    response={"status_code": 400, "request_id": request_id, "body": body},
                    error=None,
                )
                error_lines.append(entry)
                failed += 1
            else:
                count = int(line["body"].get("n") or 1)
                out = {**USAGE, **(usage or {})}
                body = {
                    "created": 1,
                    "data": [{"b64_json": b64(self.image)} for _ in range(count)],
                    "output_format": line["body"].get("output_format", "png"),
                    "usage": out,
                }
                entry.update(
                    response={"status_code": 200, "request_id": request_id, "body": body},
                    error=None,
                )
                output.append(entry)
                completed += 1
        if output:
            batch["output_file_id"] = self._file(output)
        if error_lines:
            batch["error_file_id"] = self._file(error_lines)
        batch["request_counts"] = {"total": len(lines), "completed": completed, "failed": failed}
        batch["status"] = status
        if errors:
            data = [
                {"code": "invalid_request", "message": message, "param": None, "line": None}
                for message in errors
            ]
            batch["errors"] = {"object": "list", "data": data}

    def _file(self, entries: list[dict[str, Any]]) -> str:
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = b"".join(json.dumps(entry).encode() + b"\n" for entry in entries)
        return file_id


def _error(status: int, message: str) -> httpx.Response:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return httpx.Response(status, json={"error": error})
