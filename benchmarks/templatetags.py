"""How much does {% imagegen_image %} cost on a list page, against a plain <img>?

Both sides render a page of 500 articles, each with a generated hero:

* imagegen: ``{% imagegen_image article "hero" %}`` over
  ``prefetch_images(Article.objects.all(), "hero")``: a ``<picture>`` with AVIF and WebP
  sources (three widths each), the ``<img>`` with width, height, alt, lazy loading, srcset,
  sizes and the LQIP background;
* baseline: ``<img src="{{ article.hero.url }}">`` over ``Article.objects.all()``.

Each side is timed twice: the render of the page (over instances already loaded and, for
imagegen, prefetched), and the whole page (its queries plus the render). For reference, the
imagegen page is also timed without the prefetch helper (a query per tag), and the prefetch on
its own (on instances already loaded). The rows are written directly (fake file names, a real
LQIP data URI); no image is made and no file is read. The two sides run interleaved in one
process; the script prints medians, ratios and the query counts.

Goal (issue 7): a ratio of at most 3, for the render and for the page with its queries, and no
query per tag with the prefetch helper: the imagegen page makes two (the articles, and the
image rows of all of them), whatever its length.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable

from django_setup import setup

OBJECTS = 500
ROUNDS = 25
WIDTHS = (480, 960, 1536)
FORMATS = ("avif", "webp")


def make_rows() -> None:
    """Write OBJECTS articles, their generations and image rows in a few bulk queries."""
    from django.contrib.contenttypes.models import ContentType
    from PIL import Image

    from imagegen.lqip import make_placeholders
    from imagegen.models import GeneratedImage, Generation
    from tests.testapp.models import Article

    placeholders = make_placeholders(Image.effect_noise((1536, 864), 40).convert("RGB"))
    names = [f"imagegen/2026/11/{i % 256:02x}/{i:064x}" for i in range(OBJECTS)]
    Article.objects.bulk_create(
        Article(title=f"Article {i}", hero=f"{name}.png") for i, name in enumerate(names)
    )
    articles = list(Article.objects.order_by("pk"))
    content_type = ContentType.objects.get_for_model(Article)
    Generation.objects.bulk_create(
        Generation(
            content_type=content_type,
            object_id=str(article.pk),
            field_name="hero",
            provider="openai",
            backend="imagegen.providers.openai.OpenAIProvider",
            model="gpt-image-2",
            prompt=article.title,
            status="succeeded",
        )
        for article in articles
    )
    generations = {g.object_id: g for g in Generation.objects.all()}
    GeneratedImage.objects.bulk_create(
        GeneratedImage(
            generation=generations[str(article.pk)],
            file=article.hero.name,
            width=1536,
            height=864,
            mime_type="image/png",
            bytes=1_500_000,
            sha256=name[-64:],
            alt_text=article.title,
            lqip=placeholders.lqip,
            dominant_color=placeholders.dominant_color,
            thumbhash=placeholders.thumbhash,
            derivatives=[
                {
                    "width": width,
                    "height": round(864 * width / 1536),
                    "format": fmt,
                    "mime_type": f"image/{fmt}",
                    "name": f"{name}-{width}.{fmt}",
                    "bytes": 40 * width,
                }
                for width in WIDTHS
                for fmt in FORMATS
            ],
            selected=True,
        )
        for article, name in zip(articles, names, strict=True)
    )


def main() -> None:
    setup()
    from django.db import connection
    from django.template import Context, Template
    from django.test.utils import CaptureQueriesContext

    from imagegen.prefetch import LOOKUP_ATTR, PREFETCH_ATTR, load_images, prefetch_images
    from tests.testapp.models import Article

    make_rows()
    ours_page = Template(
        '{% load imagegen %}{% for article in articles %}{% imagegen_image article "hero" %}'
        "{% endfor %}"
    )
    base_page = Template(
        '{% for article in articles %}<img src="{{ article.hero.url }}">{% endfor %}'
    )

    def forget_prefetch() -> None:
        """Drop the rows the previous round stored on ``spare``, outside the timing."""
        for article in spare:
            article.__dict__.pop(PREFETCH_ATTR, None)
            article.__dict__.pop(LOOKUP_ATTR, None)

    def timed(work: Callable[[], object]) -> tuple[float, int]:
        """Return (seconds, queries) of ``work()``, after a collection outside the timing.

        Without the collection, whichever step happens to trigger the garbage collector pays
        for the garbage of all the others, which hides the differences being measured.
        """
        if work is prefetch_work:
            forget_prefetch()
        gc.collect()
        connection.queries_log.clear()  # the log keeps 9000 queries; counts need room
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            work()
            elapsed = time.perf_counter() - started
        return elapsed, len(queries)

    def ours_page_work() -> str:
        articles = prefetch_images(Article.objects.all(), "hero")
        return ours_page.render(Context({"articles": articles}))

    def base_page_work() -> str:
        return base_page.render(Context({"articles": Article.objects.all()}))

    def naive_page_work() -> str:
        return ours_page.render(Context({"articles": Article.objects.all()}))

    loaded_ours = list(prefetch_images(Article.objects.all(), "hero"))
    loaded_base = list(Article.objects.all())
    spare = list(Article.objects.all())  # for timing the prefetch query on its own

    def prefetch_work() -> None:
        load_images(spare, ["hero"])

    # Warm up (imports, template compilation, storages) and check what each side renders.
    html = ours_page_work()
    assert html.count("<picture ") == OBJECTS and html.count('type="image/avif"') == OBJECTS
    assert base_page_work().count("<img ") == OBJECTS
    _t, ours_queries = timed(ours_page_work)
    _t, base_queries = timed(base_page_work)
    _t, naive_queries = timed(naive_page_work)

    steps: dict[str, Callable[[], object]] = {
        "ours page": ours_page_work,
        "base page": base_page_work,
        "ours render": lambda: ours_page.render(Context({"articles": loaded_ours})),
        "base render": lambda: base_page.render(Context({"articles": loaded_base})),
        "prefetch": prefetch_work,
        "naive page": naive_page_work,
    }
    samples: dict[str, list[float]] = {name: [] for name in steps}
    queries: dict[str, int] = dict.fromkeys(steps, 0)
    for _round in range(ROUNDS):
        for name, work in steps.items():
            elapsed, count = timed(work)
            samples[name].append(elapsed)
            queries[name] += count
    assert queries["ours page"] == ROUNDS * ours_queries

    def ms(name: str) -> float:
        return statistics.median(samples[name]) * 1000

    render_ratio = ms("ours render") / ms("base render")
    derived = len(WIDTHS) * len(FORMATS)
    print(f"page:                          {OBJECTS} articles, {derived} derived files each")
    print(f"render, plain <img>:           median {ms('base render'):.2f} ms")
    print(f"render, imagegen_image:        median {ms('ours render'):.2f} ms")
    print(f"ratio render:                  {render_ratio:.2f}  (goal: at most 3)")
    print(f"per tag:                       {ms('ours render') / OBJECTS * 1000:.1f} us"
          f" (plain {ms('base render') / OBJECTS * 1000:.1f} us)")  # fmt: skip
    print(f"queries, plain page:           {base_queries}")
    print(f"queries, imagegen page:        {ours_queries}"
          f" ({queries['ours render']} in {ROUNDS} renders)")  # fmt: skip
    print(f"queries, imagegen no prefetch: {naive_queries}")
    print(f"prefetch query alone:          median {ms('prefetch'):.2f} ms")
    print(f"page with queries, plain:      median {ms('base page'):.2f} ms")
    print(f"page with queries, imagegen:   median {ms('ours page'):.2f} ms")
    print(f"ratio page with queries:       {ms('ours page') / ms('base page'):.2f}"
          "  (goal: at most 3)")  # fmt: skip
    print(f"page, imagegen no prefetch:    median {ms('naive page'):.2f} ms")


if __name__ == "__main__":
    main()
