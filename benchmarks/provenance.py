"""What do Content Credentials add to storing an image: reading the original, signing derivatives?

Both sides handle the same 1024x1024 PNGs with photo-like noise, each signed with a C2PA
manifest by a pretend provider (a test chain made here with ``cryptography``):

* baseline: what the pipeline's ``Store.derive`` does without credentials: clean the pixels,
  make the derived files (WebP and AVIF at 480, 960 and the image's own width, with IPTC XMP).
* with credentials: the same, plus :func:`imagegen.provenance.read` of the original (verify the
  signature, the hashes and the signer against a trust anchor) and
  :func:`imagegen.provenance.sign_derived` of every derived file (a new manifest, ES256, with
  the original as parent ingredient).

The two run interleaved in one process, after a warm-up; the script prints medians per image,
what reading and signing cost apart, the ratio, and the bytes a manifest adds to each file.
Storage writes are left out of both sides (they are the same, give or take the manifest bytes).
Needs the ``c2pa`` extra.

Goal: the worker's work per image stays within 1.5 times the baseline; requests are not
touched at all (pages read the recorded state, never a file).
"""

from __future__ import annotations

import io
import statistics
import time

from django_setup import setup

ROUNDS = 15


def main() -> None:
    setup(DERIVATIVE_WIDTHS=[480, 960, 1600], DERIVATIVE_FORMATS=["webp", "avif"])
    from django.test import override_settings
    from PIL import Image

    from imagegen import derivatives, images, provenance
    from imagegen.testing.credentials import make_chain, settings_for, signed_image

    if not provenance.is_available():
        raise SystemExit('Needs the c2pa extra: pip install "django-imagegen[c2pa]"')
    provider, site = make_chain("Pretend AI"), make_chain("Example Site")
    base = Image.effect_noise((1024, 1024), 40).convert("RGB")
    originals = []
    for index in range(2 * ROUNDS + 2):
        image = base.copy()
        image.putpixel((index, 0), (index % 256, 0, 0))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        originals.append(signed_image(buffer.getvalue(), "image/png", provider))

    def derive(data: bytes) -> list:
        _info, decoded = images.decode_and_open(data)
        with decoded:
            return derivatives.make_derivatives(images.clean(decoded))

    def run_baseline(data: bytes) -> float:
        started = time.perf_counter()
        derive(data)
        return time.perf_counter() - started

    reading, signing, added = [], [], []

    def run_credentials(data: bytes) -> float:
        started = time.perf_counter()
        found = provenance.read(data, "image/png")
        read_done = time.perf_counter()
        made = derive(data)
        sign_started = time.perf_counter()
        for derivative in made:
            signed = provenance.sign_derived(
                derivative.content,
                derivative.mime_type,
                original=data,
                original_type="image/png",
                resized=derivative.width != 1024,
                converted=True,
            )
            added.append(len(signed) - len(derivative.content))
        ended = time.perf_counter()
        assert found.state == "valid", found
        reading.append(read_done - started)
        signing.append(ended - sign_started)
        return ended - started

    credentials = settings_for(site, TRUST_ANCHORS=provider.root_pem)
    ours, baseline = [], []
    with override_settings(
        IMAGEGEN={
            "DERIVATIVE_WIDTHS": [480, 960, 1600],
            "DERIVATIVE_FORMATS": ["webp", "avif"],
            "CONTENT_CREDENTIALS": credentials,
        }
    ):
        run_credentials(originals.pop())  # warm up: the signer, the context, the codecs
        run_baseline(originals.pop())
        reading.clear(), signing.clear(), added.clear()
        for index in range(ROUNDS):
            ours.append(run_credentials(originals[2 * index]))
            baseline.append(run_baseline(originals[2 * index + 1]))
        files = len(derive(originals[0]))

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    print(f"images:               {ROUNDS} x 1024x1024 PNG, each with a provider manifest")
    print(f"derived files:        {files} per image (WebP and AVIF, 480/960/1024 px)")
    print(f"baseline derive:      median {ms(baseline):.1f} ms per image")
    print(f"with credentials:     median {ms(ours):.1f} ms per image")
    print(f"  reading original:   median {ms(reading):.1f} ms")
    print(f"  signing {files} files:    median {ms(signing):.1f} ms")
    print(f"added per image:      {ms(reading) + ms(signing):.1f} ms (reading + signing)")
    print(f"manifest bytes:       median {statistics.median(added) / 1024:.1f} KiB per file")
    print(f"ratio:                {ms(ours) / ms(baseline):.2f}  (goal: at most 1.5)")


if __name__ == "__main__":
    main()
