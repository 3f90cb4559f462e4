"""Tests for the template tags: imagegen_image, imagegen_disclosure, imagegen_placeholder."""

from __future__ import annotations

import io
import logging
import re
import uuid
from fractions import Fraction
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.template import Context, Template
from django.utils import translation
from PIL import Image

import imagegen
from imagegen.models import GeneratedImage, Generation
from imagegen.prefetch import PREFETCH_ATTR
from imagegen.rendering import disclosure, picture
from imagegen.rendering.placeholder_svg import valid_color
from imagegen.storage import get_storage
from tests.conftest import deriving
from tests.testapp.models import Article, Product

HOSTILE = '"><script>alert(1)</script>'


def render(source: str, **context: object) -> str:
    """Render ``source`` with the imagegen tags loaded."""
    return Template("{% load imagegen %}" + source).render(Context(context))


def attr(html: str, name: str, tag: str = "") -> str | None:
    """Return the (still escaped) value of attribute ``name`` on the first ``tag`` element."""
    element = re.search(rf"<{tag or '[a-z]+'}\b[^>]*>", html)
    assert element, html
    match = re.search(rf'\s{re.escape(name)}="([^"]*)"', element.group(0))
    return match.group(1) if match else None


def view_box_ratio(html: str) -> Fraction:
    """Return width / height of the viewBox of the first ``<svg>`` in ``html``."""
    _x, _y, width, height = attr(html, "viewBox", "svg").split()
    return Fraction(int(width), int(height))


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "#336699").save(buffer, "PNG")
    return buffer.getvalue()


def fake_image(
    obj: Any,
    field: str,
    *,
    provider: str = "openai",
    backend: str = "imagegen.providers.openai.OpenAIProvider",
    model: str = "gpt-image-2",
    width: int = 1536,
    height: int = 864,
    mime_type: str = "image/png",
    name: str | None = None,
    selected: bool = True,
    attach: bool = True,
    target: Any = None,
) -> GeneratedImage:
    """Write a Generation and a GeneratedImage row with fake derived files; no image is made.

    The row targets ``target`` (default ``obj``); with ``attach`` the file is set on ``obj``.
    """
    target = obj if target is None else target
    generation = Generation.objects.create(
        content_type=ContentType.objects.get_for_model(target),
        object_id=str(target.pk),
        field_name=field,
        provider=provider,
        backend=backend,
        model=model,
        prompt="a fake image",
        status="succeeded",
    )
    stem = uuid.uuid4().hex
    ext = mime_type.split("/")[1]
    name = name or f"imagegen/2026/11/{stem[:2]}/{stem}.{ext}"
    derivatives = [
        {
            "width": w,
            "height": round(height * w / width),
            "format": fmt,
            "mime_type": f"image/{fmt}",
            "name": f"imagegen/2026/11/{stem[:2]}/{stem}-{w}.{fmt}",
            "bytes": 1000 + w,
        }
        for w in (480, 960)
        for fmt in ("webp", "avif")
    ]
    row = GeneratedImage.objects.create(
        generation=generation,
        file=name,
        width=width,
        height=height,
        mime_type=mime_type,
        bytes=12345,
        sha256=stem * 2,
        alt_text=f"Alt of {obj}",
        lqip="data:image/webp;base64,UklGRh4AAABXRUJQVlA4",
        dominant_color="#336699",
        derivatives=derivatives,
        selected=selected,
    )
    if attach:
        type(obj).objects.filter(pk=obj.pk).update(**{field: name})
        setattr(obj, field, name)
    return row


@pytest.fixture
def generated_article(db) -> Article:
    """An article whose hero was generated (and attached) by the placeholder provider."""
    article = Article.objects.create(title="Lighthouse at dusk", summary="waves on rocks")
    with deriving():  # its derived files and placeholders too
        generation = imagegen.generate(target=article, field="hero")
    assert generation.status == "succeeded", generation.error_message
    article.refresh_from_db()
    return article


# --- imagegen_image -------------------------------------------------------------------------


def sources(html: str) -> list[tuple[str, str, str]]:
    """Return (type, srcset, sizes) of each ``<source>`` in ``html``."""
    return [
        (attr(tag, "type", "source"), attr(tag, "srcset", "source"), attr(tag, "sizes", "source"))
        for tag in re.findall(r"<source\b[^>]*>", html)
    ]


def img(html: str) -> str:
    """Return the ``<img>`` element of ``html``."""
    match = re.search(r"<img\b[^>]*>", html)
    assert match, html
    return match.group(0)


def test_image_renders_picture_with_sources_and_img(generated_article) -> None:
    html = render('{% imagegen_image article "hero" %}', article=generated_article)
    row = GeneratedImage.objects.get(file=generated_article.hero.name)
    assert html.startswith('<picture class="imagegen-picture"><source ')
    assert html.endswith("></picture>")
    storage = get_storage()
    expected = {}
    for entry in row.derivatives:
        expected.setdefault(entry["mime_type"], []).append(
            f"{storage.url(entry['name'])} {entry['width']}w"
        )
    assert [s[0] for s in sources(html)] == ["image/avif", "image/webp"]
    for mime, srcset, sizes in sources(html):
        assert srcset == ", ".join(expected[mime])
        assert sizes == "auto, 100vw"
    tag = img(html)
    assert attr(tag, "src") == generated_article.hero.url
    assert (attr(tag, "width"), attr(tag, "height")) == (str(row.width), str(row.height))
    assert Fraction(row.width, row.height) == Fraction(16, 9)
    assert attr(tag, "alt") == row.alt_text != ""
    assert attr(tag, "loading") == "lazy"
    assert attr(tag, "decoding") == "async"
    assert attr(tag, "class") == "imagegen-image"
    assert attr(tag, "srcset") == f"{generated_article.hero.url} {row.width}w"
    assert attr(tag, "sizes") == "auto, 100vw"


def test_image_shows_lqip_and_dominant_colour_as_background(generated_article) -> None:
    row = GeneratedImage.objects.get(file=generated_article.hero.name)
    assert row.lqip.startswith("data:image/webp;base64,") and row.dominant_color
    html = render('{% imagegen_image article "hero" %}', article=generated_article)
    assert attr(img(html), "style") == (
        f"background-color:{row.dominant_color};"
        f"background-image:url({row.lqip});background-size:cover"
    )


def test_image_lqip_false_drops_the_style_attribute(generated_article) -> None:
    html = render('{% imagegen_image article "hero" lqip=False %}', article=generated_article)
    assert "style=" not in html and "data:" not in html


def test_image_lqip_color_keeps_only_the_colour(generated_article) -> None:
    row = GeneratedImage.objects.get(file=generated_article.hero.name)
    html = render('{% imagegen_image article "hero" lqip="color" %}', article=generated_article)
    assert attr(img(html), "style") == f"background-color:{row.dominant_color}"


def test_image_own_style_follows_the_placeholder_background(generated_article) -> None:
    html = render(
        '{% imagegen_image article "hero" lqip="color" style="border:0" %}',
        article=generated_article,
    )
    assert attr(img(html), "style").endswith(";border:0")


def test_image_options_override_defaults(generated_article) -> None:
    html = render(
        '{% imagegen_image article "hero" class="hero wide" loading="eager" alt="A lighthouse" '
        'fetchpriority="high" %}',
        article=generated_article,
    )
    tag = img(html)
    assert attr(tag, "class") == "imagegen-image hero wide"
    assert attr(tag, "loading") == "eager"
    assert attr(tag, "fetchpriority") == "high"
    assert attr(tag, "alt") == "A lighthouse"
    # sizes="auto" is only valid on lazy images.
    assert {s[2] for s in sources(html)} == {"100vw"} == {attr(tag, "sizes")}


def test_image_sizes_option(generated_article) -> None:
    html = render(
        '{% imagegen_image article "hero" sizes="(min-width: 60rem) 50vw, 100vw" %}',
        article=generated_article,
    )
    assert {s[2] for s in sources(html)} == {"(min-width: 60rem) 50vw, 100vw"}
    assert attr(img(html), "sizes") == "(min-width: 60rem) 50vw, 100vw"


def test_image_loading_none_drops_lazy_loading(generated_article) -> None:
    html = render('{% imagegen_image article "hero" loading=None %}', article=generated_article)
    assert "loading=" not in html
    assert {s[2] for s in sources(html)} == {"100vw"}


def test_image_empty_alt_is_kept_for_decorative_images(generated_article) -> None:
    html = render('{% imagegen_image article "hero" alt="" %}', article=generated_article)
    assert attr(img(html), "alt") == ""


def test_image_cannot_override_src_srcset_or_dimensions(generated_article) -> None:
    html = render(
        '{% imagegen_image article "hero" src="evil.png" srcset="evil.png 1w" width="1" %}',
        article=generated_article,
    )
    tag = img(html)
    assert attr(tag, "src") == generated_article.hero.url
    assert attr(tag, "width") != "1"
    assert "evil" not in html


def test_image_escapes_hostile_alt_class_and_sizes(generated_article) -> None:
    html = render(
        '{% imagegen_image article "hero" alt=bad class=bad sizes=bad %}',
        article=generated_article,
        bad=HOSTILE,
    )
    assert "<script>" not in html
    tag = img(html)
    assert "&quot;&gt;&lt;script&gt;" in attr(tag, "alt")
    assert "&quot;&gt;&lt;script&gt;" in attr(tag, "class")
    assert all("&quot;&gt;&lt;script&gt;" in s[2] for s in sources(html))


def test_image_escapes_and_filters_hostile_row_values(generated_article) -> None:
    row = GeneratedImage.objects.get(file=generated_article.hero.name)
    row.alt_text = HOSTILE
    row.lqip = "data:image/webp;base64,AAAA);background:url(https://evil.example/x"
    row.dominant_color = "red;background:url(//evil.example)"
    row.derivatives = [
        {"width": 480, "mime_type": "image/webp", "name": 'a" onerror="alert(1).webp'},
        {"width": "960", "mime_type": "image/webp", "name": "bad-width.webp"},
        {"width": 960, "mime_type": "image/webp", "name": ""},
        "not a mapping",
    ]
    setattr(generated_article, PREFETCH_ATTR, {"hero": row})
    html = render('{% imagegen_image article "hero" %}', article=generated_article)
    assert "<script>" not in html and "evil" not in html and "bad-width" not in html
    assert 'onerror="' not in html
    assert "style=" not in html
    assert [s[0] for s in sources(html)] == ["image/webp"]
    assert "&quot;&gt;&lt;script&gt;" in attr(img(html), "alt")


def test_image_without_derived_files_is_a_plain_img(generated_article) -> None:
    row = GeneratedImage.objects.get(file=generated_article.hero.name)
    row.derivatives = []
    setattr(generated_article, PREFETCH_ATTR, {"hero": row})
    html = render('{% imagegen_image article "hero" %}', article=generated_article)
    assert html.startswith('<img src="') and "<picture" not in html
    assert "srcset=" not in html and "sizes=" not in html
    assert attr(html, "class") == "imagegen-image"
    assert attr(html, "style")  # the placeholder background still applies


def test_original_joins_srcset_of_its_own_type_when_wider(db) -> None:
    article = Article.objects.create(title="Wide")
    row = fake_image(article, "hero", width=2048, height=1152, mime_type="image/webp")
    html = render('{% imagegen_image article "hero" %}', article=article)
    webp = {s[0]: s[1] for s in sources(html)}["image/webp"]
    assert webp.endswith(f", {article.hero.url} 2048w")
    assert row.file.url == article.hero.url
    avif = {s[0]: s[1] for s in sources(html)}["image/avif"]
    assert article.hero.url not in avif


def test_derived_file_urls_come_from_the_imagegen_storage(db, settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "cdn": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"base_url": "https://cdn.example.com/m/"},
        },
    }
    settings.IMAGEGEN = {"STORAGE": "cdn"}
    article = Article.objects.create(title="CDN")
    fake_image(article, "hero")
    html = render('{% imagegen_image article "hero" %}', article=article)
    for _mime, srcset, _sizes in sources(html):
        assert all(c.startswith("https://cdn.example.com/m/imagegen/") for c in srcset.split(", "))


@pytest.mark.parametrize(
    "name",
    [
        "imagegen/2026/11/ab/abcdef0123.webp",
        "/imagegen/x.png",
        "a b/c d.png",
        "a//b.png",
        "a/../b.png",
        "./a.png",
        "a/.hidden.png",
        "é/ü.png",
        "a?b#c.png",
        "http:/x.png",
        "~user/(x)!.png",
    ],
)
@pytest.mark.parametrize("base_url", ["/media/", "https://cdn.example.com/m/", "//cdn.example/"])
def test_url_shortcut_equals_storage_url(name: str, base_url: str) -> None:
    storage = FileSystemStorage(base_url=base_url)
    assert picture.url_function(storage)(name) == storage.url(name)


def test_url_shortcut_only_for_filesystem_storage_url() -> None:
    class Signed(FileSystemStorage):
        def url(self, name):
            return super().url(name) + "?sig=1"

    storage = Signed(base_url="/media/")
    assert picture.url_function(storage)("a.png") == "/media/a.png?sig=1"


def test_image_never_touches_storage_files(db, settings, monkeypatch) -> None:
    settings.DEBUG = True  # any error raises instead of rendering a placeholder
    article = Article.objects.create(title="No I/O")
    fake_image(article, "hero")

    def forbidden(*args, **kwargs):
        raise AssertionError("storage I/O in a template tag")

    for method in ("open", "exists", "size", "listdir", "get_modified_time"):
        monkeypatch.setattr(FileSystemStorage, method, forbidden)
    monkeypatch.setattr(Image, "open", forbidden)
    html = render(
        '{% imagegen_image article "hero" %}{% imagegen_disclosure article "hero" %}',
        article=article,
    )
    assert html.startswith("<picture ") and "imagegen-disclosure" in html


def test_plain_upload_renders_img_without_reading_the_file(db) -> None:
    # A file that imagegen did not generate has no GeneratedImage row (and so no alt text).
    article = Article.objects.create(title=HOSTILE)
    article.hero.save("upload.png", ContentFile(png_bytes(40, 30)))
    html = render('{% imagegen_image article "hero" %}', article=article)
    assert html.startswith('<img src="')
    assert "<script>" not in html
    assert attr(html, "alt") == "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    # The field has no width_field/height_field and the file is never opened.
    assert attr(html, "width") is None and attr(html, "height") is None


def test_plain_field_on_default_storage_renders_img(db, settings) -> None:
    # A plain ImageField uses default_storage, a lazy proxy: its URL must not be an error.
    settings.DEBUG = True
    product = Product.objects.create(name="Upload")
    product.thumbnail.save("thumb.png", ContentFile(png_bytes(8, 6)))
    html = render('{% imagegen_image product "thumbnail" %}', product=product)
    assert html == f'<img src="{product.thumbnail.url}" alt="Upload" class="imagegen-image"' + (
        ' decoding="async" loading="lazy">'
    )


def test_image_uses_prefetched_row_without_a_query(
    generated_article, django_assert_num_queries
) -> None:
    row = GeneratedImage.objects.get(file=generated_article.hero.name)
    setattr(generated_article, PREFETCH_ATTR, {"hero": row})
    with django_assert_num_queries(0):
        html = render('{% imagegen_image article "hero" %}', article=generated_article)
    assert attr(img(html), "width") == str(row.width)


def test_image_costs_one_query_without_prefetch_shared_with_disclosure(
    generated_article, django_assert_num_queries
) -> None:
    with django_assert_num_queries(1):
        render(
            '{% imagegen_image article "hero" %}{% imagegen_disclosure article "hero" %}',
            article=generated_article,
        )


def test_image_as_variable(generated_article) -> None:
    html = render(
        '{% imagegen_image article "hero" as img %}<figure>{{ img }}</figure>',
        article=generated_article,
    )
    assert html.startswith("<figure><picture ")


@pytest.mark.parametrize(
    ("model", "field", "ratio"),
    [(Article, "hero", Fraction(16, 9)), (Product, "photo", Fraction(1, 1))],
)
def test_empty_field_renders_placeholder_of_its_preset(db, model, field, ratio) -> None:
    obj = model.objects.create(**{"title" if model is Article else "name": "Empty"})
    html = render('{% imagegen_image obj field class="card" %}', obj=obj, field=field)
    assert html.startswith("<svg ")
    assert "<img" not in html
    assert view_box_ratio(html) == ratio
    assert attr(html, "aria-label") == "Empty"
    assert attr(html, "class") == "imagegen-placeholder card"


def test_empty_plain_image_field_falls_back_to_square(db) -> None:
    product = Product.objects.create(name="Mug")
    html = render('{% imagegen_image product "thumbnail" %}', product=product)
    assert view_box_ratio(html) == 1


def test_error_renders_placeholder_and_logs_when_debug_is_off(
    generated_article, settings, caplog
) -> None:
    settings.DEBUG = False
    with caplog.at_level(logging.ERROR, logger="imagegen"):
        html = render('{% imagegen_image article "no_such_field" %}', article=generated_article)
    assert html.startswith("<svg ")
    assert view_box_ratio(html) == 1
    assert any("imagegen_image" in r.getMessage() and r.exc_info for r in caplog.records)


def test_error_with_missing_object_renders_placeholder(db, settings) -> None:
    settings.DEBUG = False
    assert render('{% imagegen_image missing "hero" %}').startswith("<svg ")


def test_error_raises_when_debug_is_on(generated_article, settings) -> None:
    settings.DEBUG = True
    with pytest.raises(Exception, match="no_such_field"):
        render('{% imagegen_image article "no_such_field" %}', article=generated_article)


@pytest.mark.parametrize(
    ("debug", "template_debug", "raises"),
    [(True, False, False), (False, True, True), (False, None, False), (True, None, True)],
)
def test_template_debug_setting_overrides_debug(
    db, settings, debug, template_debug, raises
) -> None:
    settings.DEBUG = debug
    settings.IMAGEGEN = {"TEMPLATE_DEBUG": template_debug}
    article = Article.objects.create(title="x")
    source = '{% imagegen_image article "nope" %}'
    if raises:
        with pytest.raises(Exception, match="nope"):
            render(source, article=article)
    else:
        assert render(source, article=article).startswith("<svg ")


def test_image_error_in_derived_files_renders_placeholder_and_logs(
    generated_article, settings, caplog, monkeypatch
) -> None:
    settings.DEBUG = False

    def broken(*args, **kwargs):
        raise RuntimeError("storage url exploded")

    monkeypatch.setattr(picture, "image_sources", broken)
    with caplog.at_level(logging.ERROR, logger="imagegen"):
        html = render('{% imagegen_image article "hero" class="c" %}', article=generated_article)
    assert html.startswith("<svg ") and view_box_ratio(html) == Fraction(16, 9)
    assert attr(html, "class") == "imagegen-placeholder c"
    assert any("exploded" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_image_error_in_derived_files_raises_with_debug(
    generated_article, settings, monkeypatch
) -> None:
    settings.DEBUG = True
    monkeypatch.setattr(picture, "image_sources", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        render('{% imagegen_image article "hero" %}', article=generated_article)


# --- imagegen_placeholder ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "ratio"),
    [
        ("hero", Fraction(16, 9)),
        ("editorial", Fraction(3, 2)),
        ("product", Fraction(1, 1)),
        ("1200x630", Fraction(1200, 630)),
        ("21:9", Fraction(21, 9)),
    ],
)
def test_placeholder_aspect_ratios(spec: str, ratio: Fraction) -> None:
    html = render("{% imagegen_placeholder spec %}", spec=spec)
    assert view_box_ratio(html) == ratio
    assert Fraction(int(attr(html, "width")), int(attr(html, "height"))) == ratio
    assert attr(html, "role") == "img"
    assert attr(html, "aria-label")


def test_placeholder_exact_size() -> None:
    html = render('{% imagegen_placeholder "1200x630" %}')
    assert attr(html, "viewBox") == "0 0 1200 630"
    assert (attr(html, "width"), attr(html, "height")) == ("1200", "630")


def test_placeholder_is_self_hosted_svg() -> None:
    html = render('{% imagegen_placeholder "hero" %}')
    assert html.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "<image" not in html and "url(" not in html


def test_placeholder_text_color_and_class() -> None:
    html = render('{% imagegen_placeholder "hero" text="Coming soon" color="#123" class="x" %}')
    assert ">Coming soon</text>" in html
    assert 'fill="#123"' in html
    assert attr(html, "aria-label") == "Coming soon"
    assert attr(html, "class") == "imagegen-placeholder x"


def test_placeholder_escapes_hostile_text_and_class() -> None:
    html = render("{% imagegen_placeholder 'hero' text=bad class=bad %}", bad=HOSTILE)
    assert "<script>" not in html
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</text>" in html
    assert "&quot;&gt;&lt;script&gt;" in attr(html, "class")
    assert "&quot;&gt;&lt;script&gt;" in attr(html, "aria-label")


@pytest.mark.parametrize(
    "color", [HOSTILE, "red", "#12345", "#1234567", "#ggg", 'x" onload="alert(1)', "", None]
)
def test_placeholder_rejects_invalid_colours(color: object) -> None:
    html = render("{% imagegen_placeholder 'product' color=color %}", color=color)
    assert 'fill="#e5e7eb"' in html
    assert "onload" not in html and "<script>" not in html


def test_valid_color_accepts_short_and_long_hex() -> None:
    assert valid_color("#ABC") == "#abc"
    assert valid_color("#a1b2c3") == "#a1b2c3"
    assert valid_color("rgb(0,0,0)") == "#e5e7eb"


def test_placeholder_as_variable() -> None:
    html = render('{% imagegen_placeholder "editorial" as ph %}[{{ ph }}]')
    assert html.startswith("[<svg ") and html.endswith("</svg>]")


@pytest.mark.parametrize("spec", ["nonsense", "0x100", "99999x1", "1:0"])
def test_invalid_spec_renders_square_and_logs(spec: str, settings, caplog) -> None:
    settings.DEBUG = False
    with caplog.at_level(logging.ERROR, logger="imagegen"):
        html = render("{% imagegen_placeholder spec text='t' %}", spec=spec)
    assert view_box_ratio(html) == 1
    assert ">t</text>" in html
    assert caplog.records


def test_invalid_spec_raises_with_debug(settings) -> None:
    settings.DEBUG = True
    with pytest.raises(ValueError, match="nonsense"):
        render('{% imagegen_placeholder "nonsense" %}')


# --- imagegen_disclosure ----------------------------------------------------------------------


def test_disclosure_names_provider_and_model(db) -> None:
    article = Article.objects.create(title="Disclosed")
    fake_image(article, "hero")
    html = render('{% imagegen_disclosure article "hero" %}', article=article)
    assert html == (
        '<small class="imagegen-disclosure">AI-generated image · OpenAI gpt-image-2</small>'
    )


def test_disclosure_of_placeholder_provider_does_not_repeat_the_model(generated_article) -> None:
    html = render('{% imagegen_disclosure article "hero" %}', article=generated_article)
    assert ">AI-generated image · Offline placeholder</small>" in html


def test_disclosure_class_and_attributes_are_escaped(db) -> None:
    article = Article.objects.create(title="Disclosed")
    fake_image(article, "hero", model=HOSTILE)
    html = render(
        '{% imagegen_disclosure article "hero" class=bad data_id=bad %}',
        article=article,
        bad=HOSTILE,
    )
    assert "<script>" not in html
    assert attr(html, "class", "small") == (
        "imagegen-disclosure &quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    )
    assert "&quot;&gt;&lt;script&gt;" in attr(html, "data-id", "small")
    assert "OpenAI &quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</small>" in html


def test_disclosure_falls_back_to_alias_for_an_unknown_backend(db) -> None:
    article = Article.objects.create(title="Gone")
    fake_image(article, "hero", provider="old-flux", backend="gone.module.Provider", model="m1")
    html = render('{% imagegen_disclosure article "hero" %}', article=article)
    assert ">AI-generated image · old-flux m1</small>" in html


@pytest.mark.parametrize(
    ("backend", "model", "expected"),
    [
        ("imagegen.providers.stability.StabilityProvider", "core", "Stability AI core"),
        ("imagegen.providers.google.GoogleProvider", "gemini-3.1-flash-image",
         "Google gemini-3.1-flash-image"),
        ("imagegen.providers.openai.OpenAIProvider", "", "OpenAI"),
    ],
)  # fmt: skip
def test_disclosure_text_per_backend(backend, model, expected) -> None:
    generation = Generation(provider="alias", backend=backend, model=model)
    assert disclosure.disclosure_text(generation) == f"AI-generated image · {expected}"


def test_disclosure_text_without_provider_or_model() -> None:
    assert disclosure.disclosure_text(Generation(provider="", backend="", model="")) == (
        "AI-generated image"
    )


def test_disclosure_is_translatable(db, monkeypatch) -> None:
    article = Article.objects.create(title="Übersetzt")
    fake_image(article, "hero")
    catalog = {"AI-generated image · %(source)s": "KI-generiertes Bild · %(source)s"}
    monkeypatch.setattr(disclosure, "gettext", lambda message: catalog.get(message, message))
    with translation.override("de"):
        html = render('{% imagegen_disclosure article "hero" %}', article=article)
    assert ">KI-generiertes Bild · OpenAI gpt-image-2</small>" in html


def test_disclosure_renders_nothing_for_a_plain_upload(db) -> None:
    article = Article.objects.create(title="Upload")
    article.hero.save("upload.png", ContentFile(png_bytes(40, 30)))
    assert render('[{% imagegen_disclosure article "hero" %}]', article=article) == "[]"


def test_disclosure_renders_nothing_for_an_empty_field(db, django_assert_num_queries) -> None:
    article = Article.objects.create(title="Empty")
    with django_assert_num_queries(0):
        assert render('[{% imagegen_disclosure article "hero" %}]', article=article) == "[]"


def test_disclosure_follows_the_file_not_a_stale_prefetch(db) -> None:
    article = Article.objects.create(title="Changed")
    old = fake_image(article, "hero", model="gpt-image-1")
    setattr(article, PREFETCH_ATTR, {"hero": old})
    fake_image(article, "hero", model="gpt-image-2")
    html = render('{% imagegen_disclosure article "hero" %}', article=article)
    assert "gpt-image-2" in html


def test_disclosure_prefers_the_row_made_for_this_object(db) -> None:
    # Content-addressed names: the same bytes generated for two objects share one file.
    first = Article.objects.create(title="First")
    second = Article.objects.create(title="Second")
    shared = fake_image(first, "hero", model="model-a")
    fake_image(second, "hero", model="model-b", name=shared.file.name)
    first.refresh_from_db()
    html = render('{% imagegen_disclosure article "hero" %}', article=first)
    assert "model-a" in html
    second.refresh_from_db()
    assert "model-b" in render('{% imagegen_disclosure article "hero" %}', article=second)


def test_disclosure_as_variable(db) -> None:
    article = Article.objects.create(title="Var")
    fake_image(article, "hero")
    html = render(
        '{% imagegen_disclosure article "hero" as label %}<figcaption>{{ label }}</figcaption>',
        article=article,
    )
    assert html.startswith('<figcaption><small class="imagegen-disclosure">AI-generated')


def test_disclosure_template_can_be_overridden(db, settings, tmp_path) -> None:
    (tmp_path / "imagegen").mkdir()
    (tmp_path / "imagegen" / "disclosure.html").write_text(
        '<p class="{{ class }}" data-model="{{ model }}">{{ text }}</p>'
    )
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]},
    ]
    article = Article.objects.create(title="Custom")
    fake_image(article, "hero")
    html = render('{% imagegen_disclosure article "hero" %}', article=article)
    assert html == (
        '<p class="imagegen-disclosure" data-model="gpt-image-2">'
        "AI-generated image · OpenAI gpt-image-2</p>"
    )


def test_disclosure_error_renders_nothing_and_logs(db, settings, caplog) -> None:
    settings.DEBUG = False
    article = Article.objects.create(title="Broken")
    with caplog.at_level(logging.ERROR, logger="imagegen"):
        html = render('[{% imagegen_disclosure article "no_such_field" %}]', article=article)
    assert html == "[]"
    assert any("imagegen_disclosure" in r.getMessage() and r.exc_info for r in caplog.records)


def test_disclosure_error_raises_with_debug(db, settings) -> None:
    settings.DEBUG = True
    article = Article.objects.create(title="Broken")
    with pytest.raises(Exception, match="no_such_field"):
        render('{% imagegen_disclosure article "no_such_field" %}', article=article)


@pytest.mark.parametrize(("template_debug", "raises"), [(True, True), (False, False)])
def test_disclosure_follows_template_debug(db, settings, template_debug, raises) -> None:
    settings.DEBUG = not template_debug
    settings.IMAGEGEN = {"TEMPLATE_DEBUG": template_debug}
    source = '[{% imagegen_disclosure missing "hero" %}]'
    if raises:
        with pytest.raises(Exception):  # noqa: B017 - whatever the missing object raises
            render(source)
    else:
        assert render(source) == "[]"
