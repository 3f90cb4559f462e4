"""How long do the derived files of one 1024x1024 image take, before and after issue 18?

Both sides do the follow-up job's pixel work for the same 1024x1024 PNGs, from the bytes:
decode once, clean (upright, sRGB), the placeholders (dominant colour, LQIP, ThumbHash) and the
derived WebP and AVIF files at the default widths (480, 960 and the image's own 1024):

* before: the encoder settings of django-imagegen up to issue 18 (WebP ``method`` 4, AVIF
  ``speed`` 8, both at the same quality as now) and its Lanczos resample. They are kept here
  only, for comparison.
* after: :data:`imagegen.derivatives.FORMATS` and the bicubic resample, as they ship.

The two run alternately in one process (the order flips every round, so drift in the machine's
load falls on both); the script prints the medians of the wall-clock and CPU times and their
ratios. Goal: at most 0.5. On a shared machine the CPU time is the steadier of the two.

Quality is measured with SSIM (structural similarity, Wang et al. 2004) on the luma channel, in
8x8 windows, of each derived file decoded again against the source pixels at its width,
resampled as before (Lanczos), so a cheaper resample counts against the new side. The
threshold: the new files' SSIM may not fall more than 0.005 below the old files' (same image,
width and format), and both sides' mean is printed. The SSIM is computed with Pillow's
ImageMath, so the benchmark needs nothing beyond imagegen's dependencies.
"""

from __future__ import annotations

import io
import random
import statistics
import time
from typing import Any

from django_setup import setup

ROUNDS = 12
IMAGES = 3
SIDE = 1024
#: How far below the old files' SSIM the new ones may be, per file.
SSIM_TOLERANCE = 0.005
#: The encoder settings before issue 18 (Pillow format, MIME type, parameters), for comparison.
OLD_FORMATS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "webp": ("WEBP", "image/webp", {"quality": 80, "method": 4}),
    "avif": ("AVIF", "image/avif", {"quality": 60, "speed": 8}),
    "jpeg": ("JPEG", "image/jpeg", {"quality": 82, "optimize": True, "progressive": True}),
}


def photo_like(seed: int) -> bytes:
    """Return a 1024x1024 PNG with soft shapes, gradients and grain, like a generated photo."""
    from PIL import Image, ImageDraw, ImageFilter

    rnd = random.Random(seed)
    ramp = Image.linear_gradient("L").resize((SIDE, SIDE))
    flat = Image.new("L", (SIDE, SIDE), rnd.randint(60, 200))
    image = Image.merge("RGB", (ramp, ramp.rotate(90), flat))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y, r = rnd.randint(0, SIDE), rnd.randint(0, SIDE), rnd.randint(10, 200)
        colour = (rnd.randint(0, 255), rnd.randint(0, 255), rnd.randint(0, 255))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(3))
    grain = Image.effect_noise((SIDE, SIDE), 18).convert("RGB")
    image = Image.blend(image, grain, 0.12)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def ssim(reference: Any, candidate: Any, window: int = 8) -> float:
    """Return the mean SSIM of two same-sized images' luma, over ``window``-pixel squares."""
    from PIL import ImageMath

    x = reference.convert("L").convert("F")
    y = candidate.convert("L").convert("F")

    def mean(image: Any) -> Any:
        return image.reduce(window)  # the box average of each window

    def product(a: Any, b: Any) -> Any:
        return ImageMath.lambda_eval(lambda v: v["a"] * v["b"], a=a, b=b)

    mx, my = mean(x), mean(y)
    xx, yy, xy = mean(product(x, x)), mean(product(y, y)), mean(product(x, y))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    index = ImageMath.lambda_eval(
        lambda v: (
            ((2 * v["mx"] * v["my"] + c1) * (2 * (v["xy"] - v["mx"] * v["my"]) + c2))
            / (
                (v["mx"] * v["mx"] + v["my"] * v["my"] + c1)
                * ((v["xx"] - v["mx"] * v["mx"]) + (v["yy"] - v["my"] * v["my"]) + c2)
            )
        ),
        mx=mx,
        my=my,
        xx=xx,
        yy=yy,
        xy=xy,
    )
    values = list(index.get_flattened_data())
    return sum(values) / len(values)


def main() -> None:
    setup(DERIVATIVE_WIDTHS=[480, 960, 1600], DERIVATIVE_FORMATS=["webp", "avif"])
    from PIL import Image

    from imagegen import derivatives, images, lqip

    new_formats = dict(derivatives.FORMATS)

    def job(data: bytes, formats: dict) -> list[Any]:
        """The follow-up job's pixel work: decode once, placeholders, derived files."""
        derivatives.FORMATS = formats
        try:
            _info, decoded = images.decode_and_open(data)
            with decoded:
                image = images.clean(decoded)
                lqip.make_placeholders(image)
                return derivatives.make_derivatives(image)
        finally:
            derivatives.FORMATS = new_formats

    def job_with_old_resize(data: bytes, formats: dict) -> list[Any]:
        """The job as it was: the old encoder settings and a Lanczos resample."""
        new_resize = derivatives._resize  # swapped for the comparison only
        derivatives._resize = old_resize
        try:
            return job(data, formats)
        finally:
            derivatives._resize = new_resize

    def timed(data: bytes, formats: dict) -> tuple[float, float]:
        run = job_with_old_resize if formats is OLD_FORMATS else job
        started, cpu = time.perf_counter(), time.process_time()
        run(data, formats)
        return time.perf_counter() - started, time.process_time() - cpu

    pngs = [photo_like(seed) for seed in range(IMAGES)]
    timed(pngs[0], OLD_FORMATS)  # warm up: imports, codec initialisation
    timed(pngs[0], new_formats)
    old, new = [], []
    for index in range(ROUNDS):
        data = pngs[index % IMAGES]
        if index % 2:
            new.append(timed(data, new_formats))
            old.append(timed(data, OLD_FORMATS))
        else:
            old.append(timed(data, OLD_FORMATS))
            new.append(timed(data, new_formats))

    # Quality: each derived file against the pixels it was encoded from, old and new.
    old_scores, new_scores, worst, sizes = [], [], 1.0, {"old": 0, "new": 0}
    for data in pngs:
        source = images.load(data)
        pairs = zip(job_with_old_resize(data, OLD_FORMATS), job(data, new_formats), strict=True)
        for before, after in pairs:
            assert (before.width, before.format) == (after.width, after.format)
            scaled = source
            if before.width != source.width:  # the reference: today's Lanczos resample
                scaled = old_resize(source, before.width, before.height)
            score_old = ssim(scaled, Image.open(io.BytesIO(before.content)))
            score_new = ssim(scaled, Image.open(io.BytesIO(after.content)))
            old_scores.append(score_old)
            new_scores.append(score_new)
            worst = min(worst, score_new - score_old)
            sizes["old"] += len(before.content)
            sizes["new"] += len(after.content)

    old_ms = statistics.median(wall for wall, _cpu in old) * 1000
    new_ms = statistics.median(wall for wall, _cpu in new) * 1000
    old_cpu = statistics.median(cpu for _wall, cpu in old) * 1000
    new_cpu = statistics.median(cpu for _wall, cpu in new) * 1000
    files = len(old_scores) // IMAGES
    print(f"images:        {IMAGES} x {SIDE}x{SIDE} PNG, {ROUNDS} rounds, {files} files each")
    print(f"old settings:  median {old_ms:.0f} ms, CPU {old_cpu:.0f} ms  "
          "(WebP method 4, AVIF speed 8, Lanczos)")  # fmt: skip
    print(f"new settings:  median {new_ms:.0f} ms, CPU {new_cpu:.0f} ms  "
          f"({settings_text(new_formats)}, bicubic)")  # fmt: skip
    print(f"ratio:         {new_ms / old_ms:.2f}, CPU {new_cpu / old_cpu:.2f}  (goal: at most 0.5)")
    print(
        f"SSIM vs source: old mean {statistics.mean(old_scores):.4f}, "
        f"new mean {statistics.mean(new_scores):.4f}; worst file new - old {worst:+.4f} "
        f"(threshold: not below -{SSIM_TOLERANCE})"
    )
    print(
        f"bytes per image: old {sizes['old'] // IMAGES // 1024} KiB, "
        f"new {sizes['new'] // IMAGES // 1024} KiB"
    )
    print("quality:       " + ("OK" if worst >= -SSIM_TOLERANCE else "WORSE than the threshold"))


def old_resize(image: Any, width: int, height: int) -> Any:
    """Resize as the derived files were resized before issue 18: Lanczos, reducing gap 3."""
    from PIL import Image

    return image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)


def settings_text(formats: dict) -> str:
    """Return the WebP and AVIF parameters of ``formats`` as text."""
    webp, avif = formats["webp"][2], formats["avif"][2]
    return f"WebP method {webp.get('method')}, AVIF speed {avif.get('speed')}"


if __name__ == "__main__":
    main()
