"""Cleanup: which stored files ledger rows use, and deleting files of rolled-back rows.

The rollback tests use ``transaction=True``, so that transactions really commit and roll back
(a plain ``django_db`` test runs inside a transaction that never commits).
"""

from __future__ import annotations

import logging
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.db import connection, transaction

import imagegen
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.pipeline.cleanup import delete_on_rollback, referenced_names
from imagegen.providers.locmem import LocmemProvider
from imagegen.signals import wait_for_background
from imagegen.storage import get_storage
from tests.conftest import deriving, media_files, png_bytes
from tests.testapp.models import Article

IMAGE = png_bytes(color=(10, 120, 200))


class Boom(Exception):
    """Raised by a test to roll a transaction back."""


@pytest.fixture
def derived(settings, locmem):
    """The locmem provider with one derivative width, so a run stores several files."""
    settings.IMAGEGEN = {**settings.IMAGEGEN, "DERIVATIVE_WIDTHS": [32]}
    return settings


def all_names(generation: Generation) -> set[str]:
    """Return the original and derivative names of every image of ``generation``."""
    names = set()
    for image in generation.images.all():
        names.add(image.file.name)
        names.update(item["name"] for item in image.derivatives)
    return names


@pytest.mark.django_db
def test_referenced_names_finds_files_and_derivatives(derived):
    with deriving():
        generation = imagegen.generate(prompt="a lake", provider="test")
    image = generation.images.get()
    derivative = image.derivatives[0]["name"]
    other = "imagegen/2026/01/aa/aa.png"
    assert referenced_names([image.file.name, derivative, other]) == {image.file.name, derivative}
    # A name that is only part of a used name is not used.
    assert referenced_names([derivative[:-5]]) == set()


# -- deleting files on rollback ------------------------------------------------------------------

rollback = pytest.mark.django_db(transaction=True)


@rollback
@pytest.mark.postgres
def test_outer_rollback_deletes_the_files(derived):
    with pytest.raises(Boom), transaction.atomic():
        generation = imagegen.generate(prompt="a lake", provider="test")
        assert generation.status == Status.SUCCEEDED
        # The original only: the derived files are made once the transaction commits.
        assert len(media_files(derived)) == 1
        raise Boom

    assert media_files(derived) == []
    assert not Generation.objects.exists()
    assert connection.get_autocommit()  # the connection is back to normal


@rollback
@pytest.mark.postgres
def test_set_rollback_deletes_the_files(derived):
    with transaction.atomic():
        imagegen.generate(prompt="a lake", provider="test")
        transaction.set_rollback(True)
    assert media_files(derived) == []
    assert Generation.objects.count() == 0


@rollback
@pytest.mark.postgres
def test_savepoint_rollback_deletes_only_its_files(derived):
    with transaction.atomic():
        kept = imagegen.generate(prompt="kept", provider="test")
        LocmemProvider.script(png_bytes(color=(1, 2, 3)))
        with pytest.raises(Boom), transaction.atomic():
            imagegen.generate(prompt="dropped", provider="test")
            raise Boom
        # Rolled back to the savepoint: the transaction goes on and still works.
        assert Generation.objects.count() == 1

    assert wait_for_background(timeout=30)  # the kept image's follow-up job
    assert sorted(media_files(derived)) == sorted(all_names(kept))


@rollback
@pytest.mark.postgres
def test_rollback_around_a_committed_savepoint_deletes_the_files(derived):
    with pytest.raises(Boom), transaction.atomic():
        with transaction.atomic():
            imagegen.generate(prompt="a lake", provider="test")
        raise Boom
    assert media_files(derived) == []


@rollback
@pytest.mark.postgres
def test_commit_keeps_the_files(derived):
    with transaction.atomic():
        generation = imagegen.generate(prompt="a lake", provider="test")
    assert wait_for_background(timeout=30)
    names = all_names(generation)
    assert sorted(media_files(derived)) == sorted(names)

    # A later rollback on the same connection does not touch them.
    with pytest.raises(Boom), transaction.atomic():
        raise Boom
    assert sorted(media_files(derived)) == sorted(names)


@rollback
@pytest.mark.postgres
def test_autocommit_keeps_the_files(derived):
    generation = imagegen.generate(prompt="a lake", provider="test")
    assert connection.get_autocommit()
    assert wait_for_background(timeout=30)
    assert sorted(media_files(derived)) == sorted(all_names(generation))


@rollback
@pytest.mark.postgres
def test_rollback_keeps_files_a_committed_row_uses(derived):
    LocmemProvider.script(IMAGE)
    first = imagegen.generate(prompt="a lake", provider="test")  # committed
    assert wait_for_background(timeout=30)
    with pytest.raises(Boom), transaction.atomic():
        LocmemProvider.script(IMAGE)
        again = imagegen.generate(prompt="a lake", provider="test")
        reused = again.images.get().file.name
        assert reused == first.images.get().file.name  # reused, not created
        raise Boom
    assert sorted(media_files(derived)) == sorted(all_names(first))


@rollback
@pytest.mark.postgres
def test_rollback_keeps_files_that_committed_rows_use(settings):
    storage = get_storage()
    used = storage.save("imagegen/2026/01/aa/used.png", ContentFile(b"used"))
    unused = storage.save("imagegen/2026/01/bb/unused.png", ContentFile(b"unused"))
    # Another process saved a row for ``used`` while this transaction was open.
    generation = Generation.objects.create(provider="test", prompt="x")
    GeneratedImage.objects.create(
        generation=generation, file=used, width=1, height=1, mime_type="image/png", bytes=4,
        sha256="0" * 64,
    )  # fmt: skip

    with pytest.raises(Boom), transaction.atomic():
        delete_on_rollback([(storage, used), (storage, unused)])
        raise Boom

    assert media_files(settings) == [used]


@rollback
def test_a_failing_delete_does_not_hide_the_rollback(settings, caplog):
    storage = get_storage()
    name = storage.save("imagegen/2026/01/aa/a.png", ContentFile(b"a"))
    with (
        caplog.at_level(logging.WARNING, logger="imagegen"),
        mock.patch.object(FileSystemStorage, "delete", side_effect=OSError("read-only")),
        pytest.raises(Boom),
        transaction.atomic(),
    ):
        delete_on_rollback([(storage, name)])
        raise Boom
    assert f"could not delete {name}" in caplog.text
    assert media_files(settings) == [name]


@rollback
def test_manual_transactions_keep_the_files(settings, caplog):
    storage = get_storage()
    name = storage.save("imagegen/2026/01/aa/a.png", ContentFile(b"a"))
    transaction.set_autocommit(False)
    try:
        with caplog.at_level(logging.WARNING, logger="imagegen"):
            delete_on_rollback([(storage, name)])
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    assert "could not arrange cleanup on rollback" in caplog.text
    assert media_files(settings) == [name]


@rollback
@pytest.mark.postgres
def test_attached_target_rolls_back_with_its_files(derived):
    article = Article.objects.create(title="A lake")
    with pytest.raises(Boom), transaction.atomic():
        imagegen.generate(target=article, provider="test")
        raise Boom
    article.refresh_from_db()
    assert not article.hero
    assert media_files(derived) == []


@rollback
@pytest.mark.postgres
def test_a_failing_check_after_a_savepoint_rollback_keeps_the_transaction_usable(settings, caplog):
    storage = get_storage()
    name = storage.save("imagegen/2026/01/aa/a.png", ContentFile(b"a"))

    def broken_query(names, using=None):
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM imagegen_no_such_table")

    with (
        caplog.at_level(logging.WARNING, logger="imagegen"),
        mock.patch("imagegen.pipeline.cleanup.referenced_names", broken_query),
        transaction.atomic(),
    ):
        article = Article.objects.create(title="Kept")
        with pytest.raises(Boom), transaction.atomic():
            delete_on_rollback([(storage, name)])
            raise Boom
        # The failed read ran in a savepoint of its own: this transaction still works.
        assert Article.objects.filter(pk=article.pk).exists()

    assert Article.objects.filter(pk=article.pk).exists()
    assert "could not check" in caplog.text
    assert media_files(settings) == [name]  # kept for imagegen_sweep
