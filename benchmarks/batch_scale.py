"""Do batch runs scale? 10,000 rows submitted as provider batches, polled and ingested.

The script writes 1,000 and then 10,000 products' rows with
``imagegen.generate_many(..., mode="batch")`` against a local fake of OpenAI's Batch API, and
then ingests every result with ``imagegen.services.poll_batches()``. It records:

* the queries per 1,000 rows of writing and submitting, which must stay constant (the rows
  are inserted a ``BULK_BATCH`` at a time and the batch's requests read in chunks);
* the peak memory of submitting (``tracemalloc``): the JSONL is written line by line to a
  temporary file and uploaded from it, never held whole, so 10,000 rows must not take ten
  times the memory of 1,000;
* the time and the queries per 1,000 rows of ingesting the results (decode, store, ledger
  row, attach to the product, budgets and rollups).

The fake speaks the real wire protocol (``POST /files``, ``POST /batches``,
``GET /batches/{id}``, ``GET /files/{id}/content``) but keeps the files on disk and streams
them both ways, so its own memory does not count. SQLite, in a temporary directory.

    .venv/bin/python benchmarks/batch_scale.py [--rows 10000] [--no-ingest]

Queries are counted with an execute wrapper (their SQL is not kept), and the rows are consumed
from ``iter_generate_many()`` without being kept, so the peak is the pipeline's own.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.django_setup import setup


class DiskFake(httpx.BaseTransport):
    """OpenAI's Batch API for images, files on disk, bodies streamed in and out."""

    def __init__(self, directory: str, image: bytes) -> None:
        self.dir = directory
        self.ids = itertools.count(1)
        self.batches: dict[str, dict] = {}
        self.b64 = __import__("base64").b64encode(image).decode()

    def path(self, file_id: str) -> str:
        return os.path.join(self.dir, file_id)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1")
        if path == "/files":
            return self.upload(request)
        if path == "/batches":
            body = json.loads(request.read())
            batch_id = f"batch_{next(self.ids)}"
            with open(self.path(body["input_file_id"]), "rb") as file:
                total = sum(1 for _ in file)
            self.batches[batch_id] = {
                "id": batch_id, "status": "validating", "metadata": body["metadata"],
                "input_file_id": body["input_file_id"], "output_file_id": None,
                "error_file_id": None, "errors": None,
                "request_counts": {"total": total, "completed": 0, "failed": 0},
            }  # fmt: skip
            return httpx.Response(200, json=self.batches[batch_id])
        if path.startswith("/batches/"):
            return httpx.Response(200, json=self.batches[path.split("/")[2]])
        if path.startswith("/files/") and path.endswith("/content"):
            return httpx.Response(200, content=self.stream(self.path(path.split("/")[2])))
        return httpx.Response(404, json={"error": {"message": path}})

    def upload(self, request: httpx.Request) -> httpx.Response:
        # The multipart body is copied to disk chunk by chunk; the JSONL part is cut out of it.
        file_id = f"file-{next(self.ids)}"
        raw = self.path(file_id + ".raw")
        with open(raw, "wb") as out:
            for chunk in request.stream:
                out.write(chunk)
        with open(raw, "rb") as source, open(self.path(file_id), "wb") as out:
            for line in source:
                if line.startswith(b"{"):  # a request line; the rest is multipart framing
                    out.write(line.rstrip(b"\r\n") + b"\n")
        os.remove(raw)
        return httpx.Response(200, json={"id": file_id, "object": "file", "purpose": "batch"})

    def stream(self, name: str) -> Iterator[bytes]:
        with open(name, "rb") as file:
            yield from file

    def finish(self) -> None:
        """Complete every batch: one image per request, in an output file on disk."""
        for batch in self.batches.values():
            output = f"file-{next(self.ids)}"
            with (
                open(self.path(batch["input_file_id"]), "rb") as source,
                open(self.path(output), "w") as out,
            ):
                for index, line in enumerate(source):
                    custom_id = json.loads(line)["custom_id"]
                    body = {"created": 1, "data": [{"b64_json": self.b64}],
                            "usage": {"input_tokens": 10, "output_tokens": 1056}}  # fmt: skip
                    response = {"status_code": 200, "request_id": f"req_{index}", "body": body}
                    out.write(json.dumps({"id": f"r{index}", "custom_id": custom_id,
                                          "response": response, "error": None}) + "\n")  # fmt: skip
            batch.update(status="completed", output_file_id=output)
            batch["request_counts"]["completed"] = batch["request_counts"]["total"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--no-ingest", action="store_true", help="Stop after submitting.")
    args = parser.parse_args()

    files = tempfile.mkdtemp(prefix="imagegen-batch-fake-")
    from PIL import Image

    buffer = __import__("io").BytesIO()
    Image.new("RGB", (32, 32), (90, 120, 200)).save(buffer, format="PNG")
    fake = DiskFake(files, buffer.getvalue())
    setup(
        DEFAULT_PROVIDER="openai",
        PROVIDERS={
            "openai": {
                "BACKEND": "imagegen.providers.openai.OpenAIProvider",
                "OPTIONS": {"api_key": "sk-bench", "transport": fake},
            }
        },
        DERIVATIVE_WIDTHS=[],
        BUDGETS={"SITE_MONTHLY": "100000"},
    )
    from django.db import connection, transaction

    from imagegen import services
    from imagegen.models import Generation, ProviderBatch, Status
    from tests.testapp.models import Product

    count = [0]

    def counted(execute, sql, params, many, context):
        count[0] += 1
        return execute(sql, params, many, context)

    def submit(n: int) -> tuple[float, int, int, float]:
        first = Product.objects.count()
        Product.objects.bulk_create(Product(name=f"Product {first + i}") for i in range(n))
        targets = Product.objects.filter(pk__gt=first).order_by("pk").iterator(chunk_size=500)
        before = set(ProviderBatch.objects.values_list("pk", flat=True))
        tracemalloc.start()
        started, count[0], written = time.perf_counter(), 0, 0
        # One transaction, as an admin request would hold: the batches are submitted when it
        # commits, after the last row is written.
        with connection.execute_wrapper(counted), transaction.atomic():
            for _target, outcome in services.iter_generate_many(targets, "photo", mode="batch"):
                written += isinstance(outcome, Generation)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert written == n, written
        made = ProviderBatch.objects.exclude(pk__in=before).exclude(batch_id=None).count()
        return elapsed, count[0], made, peak / 1024 / 1024

    print(f"{'rows':>7} {'write+submit s':>14} {'queries/1000':>12} {'batches':>7} {'peak MiB':>8}")
    for n in (1_000, args.rows):
        elapsed, queries, batches, peak = submit(n)
        print(f"{n:>7,} {elapsed:>14.1f} {queries * 1000 / n:>12.1f} {batches:>7} {peak:>8.1f}")

    if args.no_ingest:
        return
    fake.finish()
    total = Generation.objects.count()
    started, count[0] = time.perf_counter(), 0
    with connection.execute_wrapper(counted):
        tally = services.poll_batches()
    elapsed = time.perf_counter() - started
    done = Generation.objects.filter(status=Status.SUCCEEDED).count()
    assert done == total, (done, total, tally)
    print(
        f"ingest: {total:,} results in {elapsed:.1f} s ({total / elapsed:,.0f} rows/s), "
        f"{count[0] * 1000 / total:.1f} queries per 1,000 rows, {tally.polled} batches"
    )


if __name__ == "__main__":
    main()
