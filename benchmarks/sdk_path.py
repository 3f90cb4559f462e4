"""How does imagegen.generate() compare with the path a developer would write with the SDK?

One OpenAI generation, stored and attached to an article, against a local fake of the OpenAI
Images API that answers every ``POST /images/generations`` with a fresh 1024x1024 PNG as
``b64_json`` (a new image each time, as real generations are, so content-addressed storage
never finds the file already there):

* A, imagegen: ``imagegen.generate(prompt=..., target=article, provider="openai")`` with the
  example project's settings (the immediate runner, the default derived files and
  placeholders; only an ``openai`` alias added, pointed at the fake).
* B, the SDK path: the official ``openai`` SDK's ``client.images.generate(...)``, then
  ``base64.b64decode``, then ``article.hero.save(name, ContentFile(data))``.

The fake API is in-process on both sides: each HTTP client's own ``MockTransport`` (httpx's
for imagegen's provider, the SDK's HTTP library's for the SDK) calls the same handler, which
returns the same prebuilt bodies. No sockets, so neither side pays for a network stack the
other skips. A and B alternate in one process; the script prints the medians and the ratio
A/B (target: at most 1.0), once with the default settings and once with derived files off
(``DERIVATIVE_WIDTHS=[]``) and the placeholders (LQIP, ThumbHash, dominant colour) skipped.

imagegen does not depend on ``openai``. When it is not importable, the script makes a
virtualenv for it, ``benchmarks/.venv-sdk`` (git-ignored), with this interpreter, runs
``pip install openai`` there once, and puts that environment's packages after its own on
``sys.path``. Run it from the repository root::

    python benchmarks/sdk_path.py [--rounds 20] [--only default|off]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import time
import venv
from collections.abc import Callable
from typing import Any

from django_setup import ROOT, setup
from pipeline_overhead import make_pngs

SDK_VENV = os.path.join(ROOT, "benchmarks", ".venv-sdk")
PROMPT = "A red fox in fresh snow at dawn"
MODEL = "gpt-image-2"


def import_openai() -> Any:
    """Return the ``openai`` module, installing it into ``benchmarks/.venv-sdk`` if needed."""
    try:
        import openai
    except ImportError:
        pass
    else:
        return openai
    python = os.path.join(SDK_VENV, "bin", "python")
    if not os.path.exists(python):
        print(f"Creating {SDK_VENV} for the openai SDK...", file=sys.stderr)
        venv.create(SDK_VENV, with_pip=True)
    # Fixed arguments and the interpreter this script made: no untrusted input.
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site_packages = subprocess.check_output([python, "-c", where], text=True).strip()  # noqa: S603
    if not os.path.isdir(os.path.join(site_packages, "openai")):
        subprocess.check_call([python, "-m", "pip", "install", "--quiet", "openai"])  # noqa: S603
    # After this interpreter's own packages: Django, Pillow and httpx stay the ones imagegen
    # is tested with; the SDK brings what it needs besides.
    sys.path.append(site_packages)
    import openai

    return openai


def answer_body(png: bytes) -> bytes:
    """Return the JSON body of a ``gpt-image`` answer holding ``png``, as OpenAI sends it."""
    return json.dumps(
        {
            "created": 1713833628,
            "data": [{"b64_json": base64.b64encode(png).decode()}],
            "output_format": "png",
            "size": "1024x1024",
            "quality": "medium",
            "background": "opaque",
            "usage": {
                "input_tokens": 10,
                "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
                "output_tokens": 1056,
                "output_tokens_details": {"image_tokens": 1056, "text_tokens": 0},
                "total_tokens": 1066,
            },
        }
    ).encode()


class FakeImagesAPI:
    """The fake ``/v1/images/generations``: hands out the next prebuilt body per request."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.calls = 0

    def next_body(self, path: str) -> bytes:
        assert path.endswith("/images/generations"), path
        self.calls += 1
        return self.bodies.pop()

    def httpx_transport(self) -> Any:
        import httpx

        def handle(request: httpx.Request) -> httpx.Response:
            body = self.next_body(request.url.path)
            return httpx.Response(200, content=body, headers=HEADERS)

        return httpx.MockTransport(handle)

    def sdk_http_client(self, openai: Any) -> Any:
        """Return an HTTP client of the SDK's own HTTP library, on its MockTransport."""
        # DefaultHttpxClient subclasses the Client of the HTTP library the SDK is built on
        # (httpx in older releases, httpx2 in newer ones): use that library's MockTransport.
        base = next(
            cls for cls in openai.DefaultHttpxClient.__mro__[1:] if cls.__name__ == "Client"
        )
        http = sys.modules[base.__module__.split(".")[0]]

        def handle(request: Any) -> Any:
            body = self.next_body(request.url.path)
            return http.Response(200, content=body, headers=HEADERS)

        return openai.DefaultHttpxClient(transport=http.MockTransport(handle))


HEADERS = {"content-type": "application/json", "x-request-id": "req_bench"}


def configure(api: FakeImagesAPI, *, derived: bool) -> None:
    """Apply the example project's IMAGEGEN, plus an ``openai`` alias on the fake API."""
    from django.conf import settings

    from imagegen.conf import reset_caches

    imagegen = {
        "DEFAULT_PROVIDER": "default",
        "PROVIDERS": {
            "default": {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"},
            "openai": {
                "BACKEND": "imagegen.providers.openai.OpenAIProvider",
                "OPTIONS": {"api_key": "sk-bench", "transport": api.httpx_transport()},
            },
        },
        "TASK_RUNNER": "immediate",
    }
    if not derived:
        imagegen["DERIVATIVE_WIDTHS"] = []
    settings.IMAGEGEN = imagegen
    reset_caches()


def measure(
    name: str, rounds: int, run_a: Callable[[], float], run_b: Callable[[], float]
) -> tuple[float, float]:
    """Alternate A and B ``rounds`` times after a warm-up; print and return the medians."""
    run_a(), run_b()  # imports, first queries, the clients
    a_times, b_times = [], []
    for index in range(rounds):
        # Alternate which side goes first, so neither always runs right after the other.
        if index % 2:
            b_times.append(run_b())
            a_times.append(run_a())
        else:
            a_times.append(run_a())
            b_times.append(run_b())
    a_ms = statistics.median(a_times) * 1000
    b_ms = statistics.median(b_times) * 1000
    print(f"{name}:")
    print(f"  A imagegen.generate():   median {a_ms:7.1f} ms")
    print(f"  B openai SDK + save:     median {b_ms:7.1f} ms")
    print(f"  ratio A/B:               {a_ms / b_ms:7.2f}  (target: at most 1.0)")
    return a_ms, b_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--only", choices=["default", "off"])
    args = parser.parse_args()

    openai = import_openai()
    setup()
    from django.core.files.base import ContentFile

    import imagegen
    from imagegen import provenance
    from imagegen.pipeline.storing import Store
    from imagegen.signals import wait_for_background
    from tests.testapp.models import Article

    api = FakeImagesAPI()
    client = openai.OpenAI(
        api_key="sk-bench",
        base_url="https://api.openai.com/v1",
        http_client=api.sdk_http_client(openai),
        max_retries=0,
    )
    modes = [m for m in ("default", "off") if args.only in (None, m)]
    pngs = make_pngs(2 * (args.rounds + 1) * len(modes))
    print(f"images: 1024x1024 PNG, {len(pngs[0]) // 1024} KiB each; {args.rounds} rounds")
    print(f"openai SDK {openai.__version__}; {sys.version.split()[0]}; {sysconfig.get_platform()}")
    print(f"c2pa extra installed: {provenance.c2pa_module() is not None}")

    steps: dict[str, list[int]] = {}

    def run_imagegen() -> float:
        article = Article.objects.create(title="Foxes")
        api.bodies.append(answer_body(pngs.pop()))
        started = time.perf_counter()
        generation = imagegen.generate(prompt=PROMPT, target=article, provider="openai")
        elapsed = time.perf_counter() - started
        # The follow-up job (derived files, placeholders, credentials) runs on the background
        # thread after generate() returns, as after a response: let it finish before the next
        # call, so that neither side is timed while it runs.
        assert wait_for_background(timeout=60)
        assert generation.status == "succeeded", generation.error_message
        assert article.hero.name
        for step, ms in generation.timings.items():
            steps.setdefault(step, []).append(ms)
        return elapsed

    def run_sdk() -> float:
        article = Article.objects.create(title="Foxes")
        api.bodies.append(answer_body(pngs.pop()))
        started = time.perf_counter()
        result = client.images.generate(model=MODEL, prompt=PROMPT, size="1024x1024")
        data = base64.b64decode(result.data[0].b64_json)
        article.hero.save(f"{time.time_ns()}.png", ContentFile(data))
        elapsed = time.perf_counter() - started
        assert article.hero.name
        return elapsed

    with_placeholders = Store.derive
    for mode in modes:
        configure(api, derived=mode == "default")
        if mode == "off":
            Store.derive = lambda self, image, **kwargs: {}
        try:
            title = (
                "default settings (derived files and placeholders as on this branch)"
                if mode == "default"
                else "derived files off, placeholders skipped"
            )
            steps.clear()
            measure(title, args.rounds, run_imagegen, run_sdk)
            # The row's own timings: where A's time goes (credentials_ms is the C2PA read,
            # made when the optional c2pa extra is installed).
            medians = {step: statistics.median(ms) for step, ms in steps.items()}
            print(
                "  A's steps (median ms):  " + ", ".join(f"{k} {v:g}" for k, v in medians.items())
            )
        finally:
            Store.derive = with_placeholders


if __name__ == "__main__":
    main()
