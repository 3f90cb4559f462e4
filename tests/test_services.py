"""The pipeline end to end: generate(), failure paths, estimates, budgets and fallbacks."""

from __future__ import annotations

import zlib
from decimal import Decimal
from unittest import mock

import pytest
from django.core.files.storage import FileSystemStorage

import imagegen
from imagegen.exceptions import (
    BudgetExceeded,
    ContentRejected,
    ProviderUnavailable,
    RateLimited,
    UnsupportedRequest,
)
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.providers.locmem import LocmemProvider
from imagegen.services import run_generation
from imagegen.types import ImageOutput, ImageResult
from tests.conftest import media_files, png_bytes
from tests.testapp.models import Article, Product

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def article():
    return Article.objects.create(title="A lighthouse at dawn", summary="waves & rocks")


def test_generate_with_placeholder_attaches_image_and_records_ledger(settings, article):
    generation = imagegen.generate(target=article)

    assert generation.status == Status.SUCCEEDED
    assert generation.provider == "default"
    assert generation.preset == "hero"
    assert generation.cost == Decimal("0")
    assert generation.prompt.startswith("A lighthouse at dawn: waves & rocks, cinematic")
    assert generation.started_at and generation.finished_at
    assert set(generation.timings) >= {"provider_ms", "check_ms", "storage_ms", "total_ms"}
    article.refresh_from_db()
    image = generation.images.get()
    assert article.hero.name == image.file.name
    assert (image.width, image.height) == (1536, 864)
    assert image.selected is True
    assert image.alt_text == "A lighthouse at dawn: waves & rocks"
    assert (
        image.file.name
        == f"{image.file.name.rsplit('/', 2)[0]}/{image.sha256[:2]}/{image.sha256}.png"
    )
    derived = [d["name"] for d in image.derivatives]
    assert media_files(settings) == sorted([image.file.name, *derived])
    assert Generation.objects.for_object(article).get() == generation
    assert imagegen.cost_for(article) == Decimal("0")


def test_cost_usage_and_split_calls_recorded(locmem):
    generation = imagegen.generate(prompt="a red bicycle", provider="paid", count=6, seed=7)

    assert generation.status == Status.SUCCEEDED
    # The locmem model makes at most 4 images per call: 6 images take two calls.
    assert [r.count for r in locmem] == [4, 2]
    assert [r.seed for r in locmem] == [7, 11]
    assert generation.images.count() == 6
    assert generation.cost == Decimal("0.24")
    assert generation.usage["images"] == 6
    assert any("2 calls" in w for w in generation.warnings)


def test_estimate_calls_nothing_and_writes_nothing(locmem):
    assert imagegen.estimate(prompt="a red bicycle", provider="test", count=3) == Decimal("0.12")
    assert locmem == []
    assert Generation.objects.count() == 0


def test_same_image_twice_is_stored_once(settings, locmem):
    LocmemProvider.script(png_bytes(), png_bytes())
    first = imagegen.generate(prompt="one", provider="test")
    second = imagegen.generate(prompt="two", provider="test")
    a, b = first.images.get(), second.images.get()
    assert a.file.name == b.file.name and a.derivatives == b.derivatives
    assert media_files(settings) == sorted([a.file.name, *(d["name"] for d in a.derivatives)])


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ContentRejected("The prompt was refused by the safety system."), "content_rejected"),
        (ProviderUnavailable("OpenAI answered 503."), "provider_unavailable"),
        (RateLimited("Slow down.", retry_after=3), "rate_limited"),
    ],
)
def test_provider_error_fails_row_and_leaves_target_untouched(settings, locmem, error, code):
    product = Product.objects.create(name="Teapot")
    LocmemProvider.script(error)

    generation = imagegen.generate(target=product, provider="test")

    assert generation.status == Status.FAILED
    assert generation.error_code == code
    assert generation.error_message == str(error)
    assert generation.cost is None
    assert generation.finished_at is not None
    product.refresh_from_db()
    assert not product.photo
    assert media_files(settings) == []


def _bomb_png(side: int = 10_000) -> bytes:
    """Return a tiny PNG whose header claims side x side pixels."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"<html>not an image</html>", "not_an_image"),
        (b"", "not_an_image"),
        (png_bytes()[:60], "corrupt_image"),
        (_bomb_png(), "decompression_bomb"),
        (png_bytes(fmt="GIF"), "not_an_image"),
    ],
)
def test_hostile_image_bytes_are_refused_but_charged(settings, locmem, content, code):
    article = Article.objects.create(title="Bombs away")
    LocmemProvider.script(content)

    generation = imagegen.generate(target=article, provider="paid")

    assert generation.status == Status.FAILED
    assert generation.error_code == code
    assert generation.error_message
    # The provider did its work and billed for it; the ledger says so.
    assert generation.cost == Decimal("0.04")
    assert media_files(settings) == []
    article.refresh_from_db()
    assert not article.hero


def test_oversized_body_refused(settings, locmem):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "MAX_IMAGE_BYTES": 1000}
    LocmemProvider.script(png_bytes(400, 400, fmt="BMP") + b"x" * 1000)
    generation = imagegen.generate(prompt="big", provider="test")
    assert generation.error_code == "image_too_large"
    assert "1,000-byte limit" in generation.error_message


def test_pixel_cap_refused(settings, locmem):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "MAX_IMAGE_PIXELS": 100 * 100}
    LocmemProvider.script(png_bytes(101, 100))
    generation = imagegen.generate(prompt="wide", provider="test")
    assert generation.error_code == "decompression_bomb"


def test_second_image_failing_removes_the_first_file(settings, locmem):
    good = png_bytes(color=(1, 2, 3))
    result = ImageResult(
        images=(ImageOutput(content=good), ImageOutput(content=b"garbage")), model="locmem"
    )
    LocmemProvider.script(result)
    generation = imagegen.generate(prompt="two", provider="test", count=2)
    assert generation.status == Status.FAILED
    assert media_files(settings) == []
    assert GeneratedImage.objects.count() == 0


def test_storage_failure_fails_row_without_orphans(settings, locmem):
    article = Article.objects.create(title="Storage down")
    with mock.patch.object(FileSystemStorage, "save", side_effect=OSError("disk full")):
        generation = imagegen.generate(target=article, provider="test")
    assert generation.status == Status.FAILED
    assert generation.error_code == "storage_error"
    assert "could not be saved to storage (OSError)" in generation.error_message
    assert media_files(settings) == []


def test_attach_failure_rolls_back_images_and_deletes_files(settings, locmem):
    article = Article.objects.create(title="Save fails")
    with mock.patch.object(Article, "save", side_effect=RuntimeError("database said no")):
        generation = imagegen.generate(target=article, provider="test")
    assert generation.status == Status.FAILED
    assert GeneratedImage.objects.count() == 0
    assert media_files(settings) == []
    assert not article.hero  # the caller's instance is put back too
    article.refresh_from_db()
    assert not article.hero


def test_new_image_replaces_selection_and_keeps_history(locmem):
    article = Article.objects.create(title="Twice")
    other = Article.objects.create(title="Another article")
    first = imagegen.generate(target=article, provider="test")
    LocmemProvider.script(png_bytes(color=(5, 5, 5)))
    others = imagegen.generate(target=other, provider="test")
    LocmemProvider.script(png_bytes(color=(9, 9, 9)))
    second = imagegen.generate(target=article, provider="test")
    article.refresh_from_db()
    assert article.hero.name == second.images.get().file.name
    assert first.images.get().selected is False
    assert second.images.get().selected is True
    assert others.images.get().selected is True  # another object's field is its own
    assert Generation.objects.for_object(article, "hero").count() == 2


def test_attach_false_leaves_field_empty(locmem):
    article = Article.objects.create(title="Candidates")
    generation = imagegen.generate(target=article, provider="test", count=3, attach=False)
    article.refresh_from_db()
    assert generation.images.count() == 3
    assert not article.hero


def test_attach_false_records_any_field_of_the_target(locmem):
    """Integrations that store images elsewhere (Wagtail's image model) name any field."""
    article = Article.objects.create(title="Not an image field")
    generation = imagegen.generate(
        target=article, field="title", prompt="a kite", provider="test", attach=False
    )
    assert generation.status == Status.SUCCEEDED
    assert generation.field_name == "title"
    assert list(Generation.objects.for_object(article, "title")) == [generation]
    with pytest.raises(UnsupportedRequest, match="not an image field"):
        imagegen.generate(target=article, field="title", prompt="a kite", provider="test")


def test_attach_false_records_a_target_without_generated_fields(locmem, django_user_model):
    owner = django_user_model.objects.create(username="owner")
    generation = imagegen.generate(target=owner, prompt="a kite", provider="test", attach=False)
    assert (generation.target, generation.field_name) == (owner, "")
    assert imagegen.cost_for(owner) == (generation.cost or Decimal("0"))
    with pytest.raises(UnsupportedRequest, match="0 GeneratedImageFields"):
        imagegen.generate(target=owner, prompt="a kite", provider="test")


def test_cost_for_sums_actual_costs(locmem):
    article = Article.objects.create(title="Spend")
    imagegen.generate(target=article, provider="paid")
    imagegen.generate(target=article, provider="paid", count=2)
    LocmemProvider.script(ContentRejected("no"))
    imagegen.generate(target=article, provider="paid")
    assert imagegen.cost_for(article) == Decimal("0.12")


def test_run_generation_is_idempotent(locmem):
    generation = imagegen.generate(prompt="once", provider="test")
    assert run_generation(generation.pk).status == Status.SUCCEEDED
    assert len(locmem) == 1  # the second run found the row finished and did nothing


def test_running_row_is_not_claimed_twice(locmem):
    generation = Generation.objects.create(
        provider="test", prompt="x", status=Status.RUNNING, params={"width": 8, "height": 8}
    )
    assert run_generation(generation.pk).status == Status.RUNNING
    assert locmem == []


def test_retryable_error_requeues_when_retrying(locmem):
    generation = imagegen.generate(prompt="flaky", provider="test", count=1)
    generation.status = Status.QUEUED
    Generation.objects.filter(pk=generation.pk).update(status=Status.QUEUED)
    LocmemProvider.script(RateLimited("busy", retry_after=2))
    with pytest.raises(RateLimited):
        run_generation(generation.pk, retrying=True)
    generation.refresh_from_db()
    assert generation.status == Status.QUEUED
    assert generation.error_code == "rate_limited"


def test_filtered_result_is_charged_without_images(settings, locmem):
    LocmemProvider.script(
        ImageResult(images=(), model="locmem", cost=Decimal("0.03"), filtered=True)
    )
    generation = imagegen.generate(prompt="edgy", provider="test")
    assert generation.status == Status.FILTERED
    assert generation.cost == Decimal("0.03")
    assert media_files(settings) == []


def test_unknown_argument_and_missing_prompt_are_clear(locmem):
    with pytest.raises(TypeError, match="colour"):
        imagegen.generate(prompt="x", colour="red")
    with pytest.raises(UnsupportedRequest, match="prompt is required"):
        imagegen.generate(prompt="   ")
    with pytest.raises(UnsupportedRequest, match="count"):
        imagegen.generate(prompt="x", count=0)
    assert Generation.objects.count() == 0


def test_field_must_be_an_image_field(locmem):
    article = Article.objects.create(title="x")
    with pytest.raises(UnsupportedRequest, match="not an image field"):
        imagegen.generate(target=article, field="title")
    with pytest.raises(UnsupportedRequest, match="no field"):
        imagegen.generate(target=article, field="nope")


def test_plain_image_field_uses_str_of_object(locmem):
    product = Product.objects.create(name="Kettle")
    generation = imagegen.generate(target=product, field="thumbnail", provider="test")
    product.refresh_from_db()
    assert generation.prompt == "Kettle"
    assert product.thumbnail.name == generation.images.get().file.name


def test_budget_blocks_before_anything_is_written(settings, locmem, django_user_model):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"SITE_MONTHLY": "0.10"}}
    imagegen.generate(prompt="a", provider="paid", count=2)  # $0.08
    with pytest.raises(BudgetExceeded, match=r"over the \$0.10 monthly budget"):
        imagegen.generate(prompt="b", provider="paid", count=1)
    assert Generation.objects.count() == 1
    assert len(locmem) == 1


def test_user_budget_and_warn_mode(settings, locmem, django_user_model):
    alice = django_user_model.objects.create(username="alice")
    bob = django_user_model.objects.create(username="bob")
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"USER_MONTHLY": "0.05"}}
    imagegen.generate(prompt="a", provider="paid", user=alice)
    with pytest.raises(BudgetExceeded, match="your spend"):
        imagegen.generate(prompt="a", provider="paid", user=alice)
    assert imagegen.generate(prompt="a", provider="paid", user=bob).created_by == bob
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"USER_MONTHLY": "0.05", "ACTION": "warn"}}
    generation = imagegen.generate(prompt="a", provider="paid", user=alice)
    assert generation.status == Status.SUCCEEDED
    assert any("monthly budget" in w for w in generation.warnings)


def test_preset_falls_back_to_next_provider(settings, locmem):
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "PRESETS": {"product": {"providers": ["paid", "test"]}},
    }
    product = Product.objects.create(name="Lamp")
    LocmemProvider.script(ProviderUnavailable("down"))
    fallback = imagegen.generate(target=product)
    assert fallback.provider == "test" and fallback.status == Status.SUCCEEDED
    first = Generation.objects.exclude(pk=fallback.pk).get()
    assert first.provider == "paid" and first.status == Status.FAILED
    assert first.error_code == "provider_unavailable"
    assert fallback.fallback_of == first
    assert list(first.fallbacks.all()) == [fallback]
    product.refresh_from_db()
    assert product.photo.name == fallback.images.get().file.name


def test_content_rejection_does_not_fall_back(settings, locmem):
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "PRESETS": {"product": {"providers": ["paid", "test"]}},
    }
    LocmemProvider.script(ContentRejected("no"))
    imagegen.generate(target=Product.objects.create(name="Lamp"))
    assert Generation.objects.count() == 1


def test_request_hash_stable_and_distinct(locmem):
    a = imagegen.generate(prompt="same", provider="test", seed=1)
    b = imagegen.generate(prompt="same", provider="test", seed=1)
    c = imagegen.generate(prompt="same", provider="test", seed=2)
    assert a.request_hash == b.request_hash != c.request_hash
    assert len(a.request_hash) == 64


def test_generation_finished_signal(locmem):
    from imagegen.signals import generation_finished

    seen = []

    def receiver(sender, generation, **kwargs):
        seen.append(generation.status)

    generation_finished.connect(receiver)
    try:
        imagegen.generate(prompt="x", provider="test")
    finally:
        generation_finished.disconnect(receiver)
    assert seen == [Status.SUCCEEDED]


def test_long_subject_gives_short_alt_text(locmem):
    subject = "A very long description of a scene " * 10
    image = imagegen.generate(prompt=subject, provider="test").images.get()
    assert len(image.alt_text) <= 125
    assert image.alt_text.endswith("…")
    assert subject.startswith(image.alt_text[:-1])


def test_fallback_chain_walks_every_preset_provider(settings, locmem):
    providers = settings.IMAGEGEN["PROVIDERS"]
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "PROVIDERS": {**providers, "third": providers["test"]},
        "PRESETS": {"product": {"providers": ["paid", "test", "third"]}},
    }
    LocmemProvider.script(ProviderUnavailable("down"), RateLimited("busy"))
    final = imagegen.generate(target=Product.objects.create(name="Lamp"))
    assert final.provider == "third" and final.status == Status.SUCCEEDED
    assert final.fallback_of.provider == "test"
    assert final.fallback_of.fallback_of.provider == "paid"


def test_missing_api_key_fails_row_with_readable_message(settings, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings.IMAGEGEN = {
        "PROVIDERS": {
            "default": {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"},
            "openai": {"BACKEND": "imagegen.providers.openai.OpenAIProvider"},
        }
    }
    generation = imagegen.generate(prompt="a red bicycle", provider="openai")
    assert generation.status == Status.FAILED
    assert generation.error_code == "configuration_error"
    assert "OPENAI_API_KEY" in generation.error_message


def test_callers_instance_shows_the_new_image(locmem):
    article = Article.objects.create(title="Fresh")
    generation = imagegen.generate(target=article, provider="test")
    assert article.hero.name == generation.images.get().file.name


def test_failing_signal_receiver_does_not_fail_the_generation(locmem, caplog):
    from imagegen.signals import generation_finished

    def receiver(sender, generation, **kwargs):
        raise ValueError("receiver bug")

    generation_finished.connect(receiver)
    try:
        generation = imagegen.generate(prompt="x", provider="test")
    finally:
        generation_finished.disconnect(receiver)
    assert generation.status == Status.SUCCEEDED
    assert "receiver bug" in caplog.text


def test_fallback_keeps_the_callers_arguments(settings, locmem):
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "PRESETS": {"product": {"providers": ["paid", "test"]}},
    }
    product = Product.objects.create(name="Lamp")
    LocmemProvider.script(ProviderUnavailable("down"))
    fallback = imagegen.generate(target=product, seed=42, attach=False, width=640, height=640)
    assert fallback.provider == "test"
    assert locmem[-1].seed == 42 and (locmem[-1].width, locmem[-1].height) == (640, 640)
    product.refresh_from_db()
    assert not product.photo


def test_a_fallback_row_is_linked_to_the_failed_one_before_it_runs(settings, locmem):
    """Receivers of generation_finished see the whole chain, and the caller's object updates."""
    from imagegen.signals import generation_finished

    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "PRESETS": {"product": {"providers": ["paid", "test"]}},
    }
    seen = []

    def receiver(sender, generation, **kwargs):
        seen.append((generation.provider, generation.fallback_of_id))

    product = Product.objects.create(name="Lamp")
    LocmemProvider.script(ProviderUnavailable("down"))
    generation_finished.connect(receiver)
    try:
        fallback = imagegen.generate(target=product)
    finally:
        generation_finished.disconnect(receiver)
    assert seen == [("paid", None), ("test", fallback.fallback_of_id)]
    assert product.photo.name == fallback.images.get().file.name  # no refresh needed


def test_a_fallback_chain_runs_in_a_loop_not_by_recursion(settings, locmem):
    """Each fallback runs at the same stack depth: a long chain cannot exhaust the stack."""
    import inspect

    from imagegen.signals import generation_finished

    aliases = [f"p{n}" for n in range(6)]
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "PROVIDERS": {
            **settings.IMAGEGEN["PROVIDERS"],
            **dict.fromkeys(aliases, settings.IMAGEGEN["PROVIDERS"]["test"]),
        },
        "PRESETS": {"product": {"providers": aliases}},
    }
    depths = []

    def receiver(sender, generation, **kwargs):
        depths.append(len(inspect.stack(0)))

    LocmemProvider.script(*[ProviderUnavailable("down")] * 5)
    generation_finished.connect(receiver)
    try:
        final = imagegen.generate(target=Product.objects.create(name="Lamp"))
    finally:
        generation_finished.disconnect(receiver)
    assert final.provider == "p5" and final.status == Status.SUCCEEDED
    assert len(depths) == 6 and len(set(depths[:5])) == 1  # the five failures
