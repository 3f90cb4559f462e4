"""Storage: content-addressed names, files that differ, and listing what is stored."""

from __future__ import annotations

import datetime
import hashlib
import logging

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, InMemoryStorage, Storage

import imagegen
from imagegen.providers.locmem import LocmemProvider
from imagegen.storage import (
    MAX_ALTERNATIVES,
    content_name,
    get_storage,
    holds,
    save_content,
    upload_prefix,
    walk,
)
from tests.conftest import media_files, png_bytes

IMAGE = png_bytes(color=(10, 120, 200))


# -- names ----------------------------------------------------------------------------------------


def test_content_name_is_the_sha256_under_the_month():
    when = datetime.datetime(2026, 3, 5, tzinfo=datetime.UTC)
    digest, name = content_name(IMAGE, "image/png", when=when)
    assert digest == hashlib.sha256(IMAGE).hexdigest()
    assert name == f"imagegen/2026/03/{digest[:2]}/{digest}.png"


@pytest.mark.parametrize(
    ("upload_to", "prefix"),
    [
        ("imagegen/%Y/%m/", "imagegen/"),
        ("media/ai/%Y/", "media/ai/"),
        ("gen-%Y/", ""),
        ("%Y/%m/", ""),
        ("generated/", "generated/"),
    ],
)
def test_upload_prefix_is_the_fixed_folder(settings, upload_to, prefix):
    settings.IMAGEGEN = {"UPLOAD_TO": upload_to}
    assert upload_prefix() == prefix


# -- save_content ---------------------------------------------------------------------------------


@pytest.fixture
def storage(settings):
    return FileSystemStorage(location=settings.MEDIA_ROOT)


def test_save_content_creates_then_reuses(storage):
    _digest, name = content_name(IMAGE, "image/png")
    assert save_content(storage, name, IMAGE) == (name, True)
    assert save_content(storage, name, IMAGE) == (name, False)
    assert storage.listdir(name.rsplit("/", 1)[0])[1] == [name.rsplit("/", 1)[1]]


@pytest.mark.parametrize(
    "foreign",
    [IMAGE[:-10], b"x" * len(IMAGE), IMAGE + b"x"],
    ids=["truncated", "same-size-other-bytes", "longer"],
)
def test_a_file_with_other_bytes_is_left_alone(storage, caplog, foreign):
    _digest, name = content_name(IMAGE, "image/png")
    storage.save(name, ContentFile(foreign))

    with caplog.at_level(logging.WARNING, logger="imagegen"):
        saved, created = save_content(storage, name, IMAGE)

    assert created is True
    assert saved == name.replace(".png", "-1.png")
    assert storage.open(saved).read() == IMAGE
    assert storage.open(name).read() == foreign  # never overwritten, never deleted
    assert "already exists with different content" in caplog.text
    # The next save of the same bytes finds the alternative and reuses it.
    assert save_content(storage, name, IMAGE) == (saved, False)


def test_every_alternative_taken_raises(storage):
    _digest, name = content_name(IMAGE, "image/png")
    storage.save(name, ContentFile(b"other"))
    for number in range(1, MAX_ALTERNATIVES + 1):
        storage.save(name.replace(".png", f"-{number}.png"), ContentFile(b"other"))
    with pytest.raises(FileExistsError):
        save_content(storage, name, IMAGE)


class ObjectStore(Storage):
    """Like S3: sizes, no local paths (``Storage.path`` raises NotImplementedError)."""

    def __init__(self, files):
        self.files = files

    def size(self, name):
        return len(self.files[name])

    def _open(self, name, mode="rb"):
        raise AssertionError("an object store is not read back")


def test_holds_compares_sizes_where_there_is_no_local_path():
    storage = ObjectStore({"a.png": b"abc"})
    assert holds(storage, "a.png", b"abc")
    assert not holds(storage, "a.png", b"abcd")
    assert holds(storage, "a.png", b"xyz")  # same size: not worth a download


def test_holds_trusts_a_storage_without_sizes():
    assert holds(Storage(), "a.png", b"abc")


def test_holds_compares_bytes_where_there_is_a_local_path():
    storage = InMemoryStorage()
    storage.save("a.png", ContentFile(b"abc"))
    assert holds(storage, "a.png", b"abc")
    assert not holds(storage, "a.png", b"xyz")


@pytest.mark.django_db
def test_pipeline_does_not_reuse_a_foreign_file(settings, locmem):
    _digest, name = content_name(IMAGE, "image/png")
    get_storage().save(name, ContentFile(b"not the image"))
    LocmemProvider.script(IMAGE, IMAGE)

    first = imagegen.generate(prompt="a lake", provider="test").images.get()
    second = imagegen.generate(prompt="a lake", provider="test").images.get()

    assert first.file.name == second.file.name == name.replace(".png", "-1.png")
    assert hashlib.sha256(first.file.read()).hexdigest() == first.sha256
    assert sorted(media_files(settings)) == sorted([name, first.file.name])


def test_walk_lists_every_file_under_a_folder(storage):
    for name in ["imagegen/2026/01/aa/1.png", "imagegen/2026/02/bb/2.png", "imagegen/x.txt"]:
        storage.save(name, ContentFile(b"x"))
    storage.save("other/3.png", ContentFile(b"x"))
    assert sorted(walk(storage, "imagegen/")) == [
        "imagegen/2026/01/aa/1.png",
        "imagegen/2026/02/bb/2.png",
        "imagegen/x.txt",
    ]
    assert list(walk(storage, "missing/")) == []
