"""How much does imagegen.generate() add over the raw work it has to do?

Both sides handle the same 1024x1024 PNGs (a fresh one per iteration, as real generations are):

* imagegen: ``imagegen.generate(prompt=..., target=article)`` with a LocmemProvider returning
  the PNG: plan, ledger row, safe decode, content-addressed storage, image row, attach.
* baseline: decode the bytes with Pillow, ``default_storage.save``, one model save.

The two run interleaved in the same process; the script prints medians and the ratios.
Goal (issue 2): ratio at most 1.5 for the core pipeline. Derived files are off
(``DERIVATIVE_WIDTHS=[]``; their cost is their own). The placeholders (LQIP data URI, ThumbHash,
dominant colour) are measured both ways: "core" skips them, as the baseline does no such work.
"""

from __future__ import annotations

import io
import statistics
import time

from django_setup import setup

ROUNDS = 40


def make_pngs(count: int) -> list[bytes]:
    """Return ``count`` distinct 1024x1024 PNGs with photo-like noise (not trivially small)."""
    from PIL import Image

    base = Image.effect_noise((1024, 1024), 40).convert("RGB")
    pngs = []
    for index in range(count):
        image = base.copy()
        image.putpixel((index % 1024, index // 1024), (index % 256, 0, 0))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        pngs.append(buffer.getvalue())
    return pngs


def main() -> None:
    setup(
        DEFAULT_PROVIDER="bench",
        PROVIDERS={"bench": {"BACKEND": "imagegen.providers.locmem.LocmemProvider"}},
        # The raw baseline makes no derived files; their cost is measured in
        # benchmarks/derivatives.py. The placeholders (LQIP, ThumbHash) stay on.
        DERIVATIVE_WIDTHS=[],
    )
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from PIL import Image

    import imagegen
    from imagegen.pipeline.storing import Store
    from imagegen.providers.locmem import LocmemProvider
    from tests.testapp.models import Article

    pngs = make_pngs(3 * ROUNDS + 3)
    ours, core, baseline = [], [], []
    with_placeholders = Store.derive

    def run_core(data: bytes) -> float:
        Store.derive = lambda self, image, **kwargs: {}
        try:
            return run_imagegen(data)
        finally:
            Store.derive = with_placeholders

    def run_imagegen(data: bytes) -> float:
        article = Article.objects.create(title="Benchmark")
        LocmemProvider.script(data)
        started = time.perf_counter()
        generation = imagegen.generate(target=article, width=1024, height=1024)
        elapsed = time.perf_counter() - started
        assert generation.status == "succeeded", generation.error_message
        return elapsed

    def run_baseline(data: bytes) -> float:
        article = Article.objects.create(title="Benchmark")
        started = time.perf_counter()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        name = default_storage.save(f"raw/{time.time_ns()}.png", ContentFile(data))
        article.hero = name
        article.save(update_fields=["hero"])
        return time.perf_counter() - started

    # Warm up both paths (imports, first queries, provider instance).
    run_imagegen(pngs.pop())
    run_core(pngs.pop())
    run_baseline(pngs.pop())
    for index in range(ROUNDS):
        ours.append(run_imagegen(pngs[3 * index]))
        core.append(run_core(pngs[3 * index + 1]))
        baseline.append(run_baseline(pngs[3 * index + 2]))
        LocmemProvider.reset()

    ours_ms = statistics.median(ours) * 1000
    core_ms = statistics.median(core) * 1000
    base_ms = statistics.median(baseline) * 1000
    print(f"images:                  {ROUNDS} x 1024x1024 PNG ({len(pngs[0]) // 1024} KiB each)")
    print(f"raw baseline:            median {base_ms:.2f} ms")
    print(f"imagegen core:           median {core_ms:.2f} ms")
    print(f"imagegen + placeholders: median {ours_ms:.2f} ms")
    print(f"ratio core:              {core_ms / base_ms:.2f}  (goal: at most 1.5)")
    print(f"ratio with placeholders: {ours_ms / base_ms:.2f}")


if __name__ == "__main__":
    main()
