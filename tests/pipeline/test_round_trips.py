"""Round trips: the SQL statements and transactions of one generation on the immediate runner.

One ``imagegen.generate()`` with a target, against a fake of the OpenAI API, is pinned
statement by statement on SQLite and on PostgreSQL (the same list on both), so that a change
which adds a round trip fails here and has to say why. docs/performance.md ("Round trips")
lists the statements before and after, and why each one that remains is needed.
"""

from __future__ import annotations

import io
import re
import zlib
from decimal import Decimal

import pytest
from django.core.signals import request_finished, request_started
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from PIL import ExifTags, Image, ImageFile, ImageOps

import imagegen
from imagegen import images
from imagegen.exceptions import InvalidResponse
from imagegen.models import BudgetUse, GeneratedImage, ObjectSpend, SpendDay, Status
from imagegen.runners import ImmediateRunner
from imagegen.signals import wait_for_background
from imagegen.testing import OPENAI, MockAPI, fake_provider_settings, openai_image_response
from tests.conftest import png_bytes
from tests.testapp.models import Article

# Real transactions, so BEGIN and COMMIT are the ones a site's request would send.
pytestmark = pytest.mark.django_db(transaction=True)

#: Each test runs once on SQLite (the default suite) and once on PostgreSQL (``-m postgres``).
DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", marks=pytest.mark.postgres, id="postgresql"),
]

#: One generation with the default settings (no budget caps), attached to an article.
DEFAULT = [
    # Transaction 1, recording: the row and its counts commit together, before the provider
    # is called, so a crash during the call still leaves the row (and the charge) recorded.
    "BEGIN",
    # The ledger row, recorded already claimed ("running", attempt 1): the immediate runner
    # runs it here at once, so the separate claim UPDATE of a queued row is not needed.
    "INSERT imagegen_generation",
    # The rollups count the new row (generations, estimate) in the row's own transaction:
    # one upsert per rollup table (day totals, then the target object's "AI spend").
    "INSERT imagegen_spendday",
    "INSERT imagegen_objectspend",
    "COMMIT",
    # (The provider call, the image check and the file write happen here, outside any
    # transaction: no lock is held while the provider works.)
    # Transaction 2, the outcome: the image, the attached field, the fenced status change and
    # the counts of the charge commit together, or none of them does.
    "BEGIN",
    # The image row, marked selected (one INSERT ... RETURNING gives its id).
    "INSERT imagegen_generatedimage",
    # The target's field now shows the image.
    "UPDATE testapp_article",
    # Any earlier image of that field is no longer the selected one.
    "UPDATE imagegen_generatedimage",
    # The fenced transition running -> succeeded with cost, usage and timings in one UPDATE:
    # it writes nothing if another worker took the row over, and the run then rolls back.
    "UPDATE imagegen_generation",
    # The rollups count the charge and the image (the image count is known: no SELECT).
    "INSERT imagegen_spendday",
    "INSERT imagegen_objectspend",
    "COMMIT",
]

#: The same with a site budget in "block" mode (and no warning threshold).
WITH_BUDGET = [
    "BEGIN",
    # The cap's running total for this month (created from the ledger the first time).
    "SELECT imagegen_budgetuse",
    # The reservation: one conditional UPDATE that succeeds only while the cap has room, so
    # two requests can never both take the last of it. Nothing is read back: the condition
    # proved the total stays under the cap, and no threshold signal is configured.
    "UPDATE imagegen_budgetuse",
    "INSERT imagegen_generation",
    "INSERT imagegen_spendday",
    "INSERT imagegen_objectspend",
    "COMMIT",
    "BEGIN",
    "INSERT imagegen_generatedimage",
    "UPDATE testapp_article",
    "UPDATE imagegen_generatedimage",
    # Settling: the estimate released, the charge added, before the row's own update (the
    # lock order recording took). Not read back: no threshold signal is configured.
    "UPDATE imagegen_budgetuse",
    "UPDATE imagegen_generation",
    "INSERT imagegen_spendday",
    "INSERT imagegen_objectspend",
    "COMMIT",
]


def shape(sql: str) -> str:
    """Return a statement as its verb and table ("INSERT imagegen_generation", "COMMIT")."""
    verb = sql.split(None, 1)[0].upper()
    found = re.search(r'(?:INTO|UPDATE|FROM)\s+"(\w+)"', sql)
    return f"{verb} {found.group(1)}" if found else verb


def configure(settings, **imagegen_settings) -> MockAPI:
    api = MockAPI()
    api.reply(openai_image_response(), times=3)
    settings.IMAGEGEN = {
        "PROVIDERS": {"default": fake_provider_settings(OPENAI, api)},
        **imagegen_settings,
    }
    return api


def statements_of_one_generation() -> list[str]:
    # A first generation warms the caches (content types, the provider, the month's budget
    # row), as a running site's would be; its follow-up job is over before the measured one.
    imagegen.generate(prompt="a fox", target=Article.objects.create(title="Warm-up"))
    assert wait_for_background(timeout=30)
    article = Article.objects.create(title="Foxes")
    # As in a view: the derived files and placeholders are made after the response, by a
    # follow-up job whose statements are not the request's.
    request_started.send(sender=None)
    try:
        with CaptureQueriesContext(connection) as captured:
            generation = imagegen.generate(prompt="a fox", target=article)
    finally:
        request_finished.send(sender=None)
    assert generation.status == Status.SUCCEEDED, generation.error_message
    assert article.hero.name == generation.images.get().file.name
    return [shape(query["sql"]) for query in captured.captured_queries]


@pytest.mark.parametrize("database", DATABASES)
def test_one_generation_takes_nine_statements_in_two_transactions(settings, database):
    configure(settings)

    assert statements_of_one_generation() == DEFAULT


@pytest.mark.parametrize("database", DATABASES)
def test_a_budget_cap_adds_two_statements_to_reserve_and_one_to_settle(settings, database):
    configure(settings, BUDGETS={"SITE_MONTHLY": "100"})

    assert statements_of_one_generation() == WITH_BUDGET
    use = BudgetUse.objects.get()
    assert use.reserved == 0  # both reservations were settled
    assert use.spent > 0


@pytest.mark.parametrize("database", DATABASES)
def test_the_rollups_and_the_row_are_what_the_separate_claim_wrote(settings, database):
    configure(settings)
    article = Article.objects.create(title="Foxes")

    generation = imagegen.generate(prompt="a fox", target=article)

    generation.refresh_from_db()
    assert generation.status == Status.SUCCEEDED
    assert generation.attempts == 1  # the fencing token a claim would have set
    assert generation.started_at is not None
    assert generation.started_at <= generation.finished_at
    assert generation.cost > 0
    day = SpendDay.objects.get()
    assert (day.generations, day.images, day.failed) == (1, 1, 0)
    assert day.cost == generation.cost
    assert ObjectSpend.objects.get().cost == generation.cost
    assert GeneratedImage.objects.get().selected


@pytest.mark.parametrize("database", DATABASES)
def test_a_failure_inside_the_callers_transaction_leaves_it_usable(settings, database):
    # Nothing queued: the fake API answers 599, a provider failure.
    settings.IMAGEGEN = {
        "PROVIDERS": {"default": fake_provider_settings(OPENAI, MockAPI())},
        "BUDGETS": {"SITE_MONTHLY": "100"},
    }
    with transaction.atomic():
        generation = imagegen.generate(prompt="a fox", target=Article.objects.create(title="F"))
        # The caller's transaction goes on after the failed run.
        Article.objects.create(title="After the failure")

    generation.refresh_from_db()
    assert generation.status == Status.FAILED
    assert generation.error_message
    assert Article.objects.filter(title="After the failure").exists()
    assert BudgetUse.objects.get().reserved == Decimal(0)  # the reservation was released
    assert SpendDay.objects.get().failed == 1


class QueueingImmediateRunner(ImmediateRunner):
    """An immediate runner whose own ``enqueue`` wants to see every new row queued."""

    claims_on_record = False
    seen: list[str] = []

    def enqueue(self, generation, *, target=None):
        self.seen.append(generation.status)
        return super().enqueue(generation, target=target)


@pytest.mark.parametrize("database", DATABASES)
def test_a_runner_that_does_not_claim_on_record_gets_the_row_queued(settings, database):
    configure(settings, TASK_RUNNER="tests.pipeline.test_round_trips.QueueingImmediateRunner")
    QueueingImmediateRunner.seen = []

    generation = imagegen.generate(prompt="a fox", target=Article.objects.create(title="F"))

    assert QueueingImmediateRunner.seen == [Status.QUEUED]
    assert generation.status == Status.SUCCEEDED
    assert generation.attempts == 1


# The image check on the request path ----------------------------------------------------------


def damaged_in_its_image_data(png: bytes) -> bytes:
    """Return ``png`` with one byte of its compressed pixel data changed (the CRC then fails)."""
    at = png.index(b"IDAT") + 8
    return png[:at] + bytes([png[at] ^ 0xFF]) + png[at + 1 :]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(damaged_in_its_image_data(png_bytes()), id="damaged"),
        pytest.param(png_bytes()[:-12], id="no-IEND"),
        pytest.param(png_bytes()[: len(png_bytes()) // 2], id="cut-in-half"),
    ],
)
def test_a_damaged_png_is_refused_and_its_charge_kept(settings, content):
    api = MockAPI()
    api.reply(openai_image_response([content]))
    settings.IMAGEGEN = {"PROVIDERS": {"default": fake_provider_settings(OPENAI, api)}}
    article = Article.objects.create(title="Foxes")

    generation = imagegen.generate(prompt="a fox", target=article)

    assert generation.status == Status.FAILED
    assert generation.error_code == "corrupt_image"
    assert generation.error_message == "The provider returned a truncated or corrupt image."
    assert generation.cost > 0  # OpenAI billed the call: the charge stays in the ledger
    article.refresh_from_db()
    assert not article.hero
    assert not GeneratedImage.objects.exists()


def with_image_data(png: bytes, pixels: bytes) -> bytes:
    """Return ``png`` with its IDAT chunks replaced by one holding ``pixels``, CRC correct."""
    chunks, offset = [], 8
    while offset < len(png):
        length = int.from_bytes(png[offset : offset + 4], "big")
        kind = png[offset + 4 : offset + 8]
        if kind != b"IDAT":
            chunks.append(png[offset : offset + 12 + length])
        elif not any(chunk[4:8] == b"IDAT" for chunk in chunks):
            body = kind + pixels
            chunks.append(
                len(pixels).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
            )
        offset += 12 + length
    return png[:8] + b"".join(chunks)


def crafted(kind: str) -> bytes:
    """Return a 16x8 RGB PNG whose chunks are intact (every CRC right) but whose pixels are not."""
    rows = b"".join(b"\x00" + bytes(16 * 3) for _ in range(8))
    png = png_bytes(16, 8)
    if kind == "broken-stream":
        return with_image_data(png, zlib.compress(rows)[:-6] + b"\xff" * 6)
    if kind == "rows-missing":
        return with_image_data(png, zlib.compress(rows[: len(rows) // 2]))
    return with_image_data(png, zlib.compress(b"\x07" + rows[1:]))  # filter type 7


@pytest.mark.parametrize("kind", ["broken-stream", "rows-missing", "bad-filter"])
def test_a_png_with_intact_chunks_but_broken_pixels_is_refused(kind):
    with pytest.raises(InvalidResponse) as refused:
        images.decode_and_open(crafted(kind))
    assert refused.value.code == "corrupt_image"


def interlaced_png(width: int, height: int, *, last_pass: bool = True) -> bytes:
    """Return a grey RGB PNG written with Adam7 interlacing (Pillow only writes it plain)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
        )

    raw = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4)):
        raw += _pass(width, height, x0, y0, dx, dy)
    raw += _pass(width, height, 1, 0, 2, 2)
    raw += _pass(width, height, 0, 1, 1, 2) if last_pass else b""
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 1])
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        (chunk(b"IHDR", header), chunk(b"IDAT", zlib.compress(raw)), chunk(b"IEND", b""))
    )


def _pass(width: int, height: int, x0: int, y0: int, dx: int, dy: int) -> bytes:
    columns, rows = len(range(x0, width, dx)), len(range(y0, height, dy))
    return b"".join(b"\x00" + b"\x80" * 3 * columns for _ in range(rows)) if columns else b""


def test_interlaced_and_paletted_pngs_pass_the_check():
    interlaced = interlaced_png(37, 23)
    with Image.open(io.BytesIO(interlaced)) as decoded:
        assert decoded.info.get("interlace") and decoded.convert("RGB").getpixel((36, 22))
    pngs = [interlaced]
    for mode in ("P", "LA", "1", "I;16"):
        buffer = io.BytesIO()
        Image.new(mode, (37, 23)).save(buffer, "PNG")
        pngs.append(buffer.getvalue())
    for png in pngs:
        info, image = images.decode_and_open(png)
        image.close()
        assert (info.width, info.height) == (37, 23)
    with pytest.raises(InvalidResponse):  # CRCs right, but the last pass's rows are missing
        images.decode_and_open(interlaced_png(37, 23, last_pass=False))


def test_a_png_is_checked_without_decoding_its_pixels(monkeypatch):
    loads = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(
        ImageFile.ImageFile, "load", lambda image: loads.append(image.format) or real_load(image)
    )
    inflated = []
    real_inflate = images._png_pixels_complete
    monkeypatch.setattr(
        images, "_png_pixels_complete", lambda data: inflated.append(1) or real_inflate(data)
    )

    info = images.check(png_bytes(64, 48))
    assert (info.mime_type, info.width, info.height) == ("image/png", 64, 48)
    assert loads == [] and inflated == []  # the chunks' CRCs were checked, nothing inflated

    # The follow-up job's decode reads the pixels.
    decoded_info, image = images.decode_and_open(png_bytes(64, 48))
    with image:
        assert decoded_info == info
        assert set(loads) == {"PNG"} and inflated == [1]
        assert images.clean(image).getpixel((0, 0)) == (200, 30, 30)


@pytest.mark.parametrize("kind", ["broken-stream", "rows-missing", "bad-filter"])
def test_the_run_s_check_leaves_crafted_pixel_data_to_the_decode(kind):
    # Only a crafted file has intact chunks around broken pixel data: the run's check, which
    # inflates nothing, lets it through; the follow-up job's decode refuses it.
    assert images.check(crafted(kind)).mime_type == "image/png"
    with pytest.raises(InvalidResponse):
        images.decode(crafted(kind))


def test_a_png_turned_by_exif_reports_its_displayed_size_without_a_decode():
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # a quarter turn
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20)).save(buffer, "PNG", exif=exif)

    info, image = images.decode_and_open(buffer.getvalue())
    image.close()

    assert (info.width, info.height) == (20, 40)
    with Image.open(buffer) as decoded:  # what a full decode says
        assert ImageOps.exif_transpose(decoded).size == (20, 40)
    assert images.decode(buffer.getvalue()) == info


def test_other_formats_are_still_decoded_whole():
    info, image = images.decode_and_open(png_bytes(32, 16, fmt="JPEG"))
    with image:
        assert info.mime_type == "image/jpeg"
        assert image.getpixel((0, 0))  # already loaded: the decode was the check
    with pytest.raises(InvalidResponse) as refused:
        images.decode_and_open(png_bytes(fmt="JPEG")[:200])
    assert refused.value.code == "corrupt_image"
