"""Tests for ``imagegen_sweep``: unused files under imagegen's folder, a grace period, a dry run.

These run on the file system; tests/test_s3.py sweeps a bucket on a local moto server.
"""

from __future__ import annotations

import io
import os
import time
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.management import CommandError, call_command

import imagegen
from imagegen.management.commands import imagegen_sweep
from imagegen.models import GeneratedImage, Generation
from imagegen.storage import get_storage
from tests.conftest import deriving, media_files
from tests.testapp.models import Article, Product

pytestmark = pytest.mark.django_db

ORPHAN = "imagegen/2025/01/ab/" + "ab" * 32 + ".png"
YOUNG = "imagegen/2025/02/cd/" + "cd" * 32 + ".webp"


@pytest.fixture
def media(settings, locmem):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "DERIVATIVE_WIDTHS": [32]}
    return settings


def put(name: str, data: bytes = b"orphan", *, minutes_old: float = 120) -> str:
    """Store a file and date it ``minutes_old`` minutes back."""
    name = get_storage().save(name, ContentFile(data))
    age(name, minutes_old)
    return name


def age(name: str, minutes_old: float) -> None:
    then = time.time() - minutes_old * 60
    os.utime(get_storage().path(name), (then, then))


def sweep(*args: str, **kwargs) -> str:
    out = io.StringIO()
    call_command("imagegen_sweep", *args, stdout=out, **kwargs)
    return out.getvalue()


def generated() -> list[str]:
    """Generate one image (an original and two derived files), dated two hours back."""
    with deriving():
        generation = imagegen.generate(prompt="a lake", provider="test")
    image = generation.images.get()
    names = [image.file.name, *(item["name"] for item in image.derivatives)]
    for name in names:
        age(name, 120)
    return names


def test_deletes_old_unused_files_and_keeps_the_rest(media):
    used = generated()
    put(ORPHAN, b"123456")
    put(YOUNG, minutes_old=5)
    put("thumbs/old.png")  # not under imagegen/
    put("imagegen.txt")

    output = sweep()

    assert sorted(media_files(media)) == sorted([*used, YOUNG, "thumbs/old.png", "imagegen.txt"])
    assert f"Deleted {ORPHAN} (6 bytes)" in output
    assert (
        'Scanned 5 files under imagegen/ in storage "default": 3 in use, '
        "1 newer than 60 minutes, 1 unused (6 bytes)."
    ) in output
    assert output.endswith("Deleted 1 file (6 bytes).\n")


def test_dry_run_lists_and_deletes_nothing(media):
    put(ORPHAN, b"123456")
    put(YOUNG, b"1234", minutes_old=5)

    output = sweep("--dry-run", "--older-than", "0")

    assert f"Would delete {ORPHAN} (6 bytes)" in output
    assert f"Would delete {YOUNG} (4 bytes)" in output
    assert "Dry run: would delete 2 files (10 bytes); nothing was deleted." in output
    assert sorted(media_files(media)) == sorted([ORPHAN, YOUNG])


def test_older_than_sets_the_grace_period(media):
    put(ORPHAN, minutes_old=30)
    put(YOUNG, minutes_old=5)
    assert "Deleted 1 file" in sweep("--older-than", "10")
    assert media_files(media) == [YOUNG]
    assert "Deleted 1 file" in sweep("--older-than", "0")
    assert media_files(media) == []


def test_files_set_on_model_fields_are_kept(media):
    article = Article.objects.create(title="A lake")
    generation = imagegen.generate(target=article, provider="test")
    hero = article.hero.name
    thumbnail = put("imagegen/2025/03/ef/thumb.png")
    Product.objects.create(name="Mug", thumbnail=thumbnail)
    Generation.objects.filter(pk=generation.pk).delete()  # the ledger rows are gone
    for name in media_files(media):
        age(name, 120)

    sweep()

    remaining = media_files(media)
    assert hero in remaining and thumbnail in remaining
    assert len(remaining) == 2  # the unused derived files of the deleted rows went


def test_a_file_reused_since_the_listing_is_kept(media):
    used = generated()
    # As if a generation had reused these files after the names in use were read.
    with mock.patch.object(imagegen_sweep, "in_use", return_value=set()):
        output = sweep()
    assert sorted(media_files(media)) == sorted(used)
    assert "Deleted 0 files (0 bytes)." in output


def test_batches(media, monkeypatch):
    monkeypatch.setattr(imagegen_sweep, "BATCH", 2)
    for n in range(5):
        put(f"imagegen/2025/01/{n:02}/{n}.png")
    assert "Deleted 5 files (30 bytes)." in sweep()
    assert media_files(media) == []


def test_files_of_unknown_age_are_kept_unless_older_than_zero(media):
    put(ORPHAN)
    with mock.patch.object(FileSystemStorage, "get_modified_time", side_effect=NotImplementedError):
        output = sweep()
        assert "1 of unknown age (the storage cannot tell; --older-than 0 includes them)" in output
        assert media_files(media) == [ORPHAN]
        sweep("--older-than", "0")
    assert media_files(media) == []


def test_a_failed_delete_is_reported_and_fails_the_command(media):
    put(ORPHAN)
    err = io.StringIO()
    with (
        mock.patch.object(FileSystemStorage, "delete", side_effect=PermissionError("read-only")),
        pytest.raises(CommandError, match="1 file could not be checked or deleted"),
    ):
        sweep(stderr=err)
    assert f"Error: {ORPHAN}: PermissionError: read-only" in err.getvalue()


def test_empty_storage(media):
    output = sweep()
    assert 'Scanned 0 files under imagegen/ in storage "default"' in output
    assert "Deleted 0 files (0 bytes)." in output


def test_verbosity_zero_is_quiet(media):
    put(ORPHAN)
    assert sweep("--verbosity", "0") == ""
    assert media_files(media) == []


def test_negative_grace_period_is_refused(media):
    with pytest.raises(CommandError, match="--older-than must be 0 or more"):
        sweep("--older-than", "-1")


def test_upload_to_without_a_fixed_folder_is_refused(settings):
    settings.IMAGEGEN = {"UPLOAD_TO": "%Y/%m/"}
    put("2025/01/a.png")
    with pytest.raises(CommandError, match="does not start with a fixed folder"):
        sweep()
    assert media_files(settings) == ["2025/01/a.png"]


def test_help_says_how_to_sweep_stuck_jobs():
    assert "With --jobs, sweep stuck jobs instead" in imagegen_sweep.Command.help


def test_in_use_reads_files_and_derivatives(media):
    used = generated()
    GeneratedImage.objects.create(
        generation=Generation.objects.get(),
        file="elsewhere/x.png",
        width=1,
        height=1,
        mime_type="image/png",
        bytes=1,
        sha256="0" * 64,
    )
    assert imagegen_sweep.in_use("imagegen/") == set(used)
