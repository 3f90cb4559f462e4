"""Where generated files go: the ``IMAGEGEN["STORAGE"]`` alias and content-addressed names.

Storage writes are not transactional, so this module also holds the pieces that keep the
storage in step with the database: :func:`referenced_names` (which files rows still use),
:func:`delete_on_rollback` (delete files whose rows a transaction rolled back) and
:func:`walk` (every file under a prefix, for ``imagegen_sweep``).
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import posixpath
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import NoReturn

from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import InvalidStorageError, Storage, storages
from django.db import router, transaction
from django.db.models import Q
from django.utils import timezone

from imagegen.conf import imagegen_settings
from imagegen.exceptions import ImagegenConfigurationError, ImproperlyInstalled

logger = logging.getLogger("imagegen")

EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/avif": "avif",
}

#: How many other names ``save_content`` tries when a name holds different bytes.
MAX_ALTERNATIVES = 8

_CHUNK = 64 * 1024


def get_storage() -> Storage:
    """Return the storage named by ``IMAGEGEN["STORAGE"]`` (a ``STORAGES`` alias).

    Model fields use this callable as their ``storage`` so migrations never freeze a setting.
    Django calls it while the models load, so an alias that is missing, or whose backend does
    not import (S3 without the ``s3`` extra), gives an :class:`UnavailableStorage` instead of
    an exception: Django starts, and the system checks (``imagegen.E008``, ``imagegen.E014``)
    say what to fix.
    """
    alias = imagegen_settings.STORAGE
    try:
        return storages[alias]
    except ImproperlyConfigured as err:
        # InvalidStorageError (an ImproperlyConfigured) covers a missing alias and a backend
        # module that does not import; django-storages raises ImproperlyConfigured itself when
        # boto3 is missing. Any other error (bad OPTIONS) still stops the start, as before.
        if isinstance(err, InvalidStorageError) or _caused_by_import_error(err):
            return UnavailableStorage(alias, err)
        raise


def _caused_by_import_error(error: BaseException) -> bool:
    """Return whether ``error`` is, or was caused by, an ``ImportError``."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:  # a chain can loop back on itself
        if isinstance(error, ImportError):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


class UnavailableStorage(Storage):
    """Stand in for a storage that could not be created; every use raises why.

    :func:`get_storage` returns it so that a settings mistake is reported by the system checks
    rather than by an exception while Django loads the models.
    """

    def __init__(self, alias: str, error: Exception) -> None:
        self.alias = alias
        self.error = error

    def __repr__(self) -> str:
        return f"<UnavailableStorage {self.alias!r}: {self.error}>"

    def unavailable(self, *args: object, **kwargs: object) -> NoReturn:
        """Raise the configuration error that keeps this storage from being created."""
        message = (
            f'Storage {self.alias!r} (IMAGEGEN["STORAGE"]) cannot be created ({self.error}); '
            "`manage.py check` says how to fix it."
        )
        if _caused_by_import_error(self.error):
            raise ImproperlyInstalled(message) from self.error
        raise ImagegenConfigurationError(message) from self.error

    _open = _save = delete = exists = listdir = size = url = path = unavailable
    get_accessed_time = get_created_time = get_modified_time = unavailable
    get_available_name = generate_filename = unavailable


def content_name(
    data: bytes, mime_type: str, *, when: datetime.datetime | None = None
) -> tuple[str, str]:
    """Return (sha256 hex, storage name) for ``data``: ``<UPLOAD_TO>/<sha[:2]>/<sha>.<ext>``.

    Names depend only on the bytes (and the month prefix), so saving the same image twice is
    harmless and a different image can never overwrite another.
    """
    digest = hashlib.sha256(data).hexdigest()
    prefix = (when or timezone.now()).strftime(imagegen_settings.UPLOAD_TO)
    ext = EXTENSIONS.get(mime_type, "bin")
    return digest, f"{prefix.rstrip('/')}/{digest[:2]}/{digest}.{ext}"


def upload_prefix() -> str:
    """Return the fixed leading folder of ``UPLOAD_TO``, such as ``"imagegen/"``.

    That is the part before the first ``%`` directive, cut back to a ``/``. Every file imagegen
    writes is under it; it is ``""`` when ``UPLOAD_TO`` starts with a directive.
    """
    static = imagegen_settings.UPLOAD_TO.split("%", 1)[0]
    return static[: static.rfind("/") + 1]


def save_content(storage: Storage, name: str, data: bytes) -> tuple[str, bool]:
    """Save ``data`` under ``name`` unless that file exists; return (name, created).

    A file already stored under a content-addressed name normally holds the same bytes and is
    reused rather than written again (and must not be deleted by a failing caller). It is
    checked first: its size must match, and on storages with local paths its bytes too. A file
    that differs (truncated, corrupted or put there by something else) is left alone, and the
    data goes under the next free alternative name, ``<sha>-1.<ext>``, ``<sha>-2.<ext>`` and
    so on, which later saves of the same bytes find and reuse. Raises ``FileExistsError`` when
    every alternative is taken by different bytes.
    """
    for candidate in _alternatives(name):
        if not storage.exists(candidate):
            return storage.save(candidate, ContentFile(data)), True
        if holds(storage, candidate, data):
            return candidate, False
        logger.warning(
            "imagegen: %s already exists with different content; it is left alone and the "
            "image is saved under another name",
            candidate,
        )
    raise FileExistsError(
        f"{name} and {MAX_ALTERNATIVES} alternative names hold different content."
    )


def _alternatives(name: str) -> Iterator[str]:
    yield name
    stem, ext = posixpath.splitext(name)
    for number in range(1, MAX_ALTERNATIVES + 1):
        yield f"{stem}-{number}{ext}"


def holds(storage: Storage, name: str, data: bytes) -> bool:
    """Return whether the existing file ``name`` holds exactly ``data``, as far as is cheap.

    Sizes are compared on every storage (a HEAD request on S3). The bytes themselves are compared
    only where the storage has local paths, since reading a remote object back costs a download.
    A storage that cannot report sizes is trusted, as content-addressed names deserve.
    """
    try:
        if storage.size(name) != len(data):
            return False
    except NotImplementedError:
        return True
    try:
        storage.path(name)
    except NotImplementedError:
        return True
    with storage.open(name, "rb") as handle:
        for start in range(0, len(data), _CHUNK):
            if handle.read(_CHUNK) != data[start : start + _CHUNK]:
                return False
        return handle.read(1) == b""


def referenced_names(names: Iterable[str], *, using: str | None = None) -> set[str]:
    """Return those of ``names`` that a ``GeneratedImage`` row uses, as file or as derivative.

    One query. Derivative names live in a JSON list, which no index covers, so rows are matched
    by substring and the names compared exactly here.
    """
    from imagegen.models import GeneratedImage

    wanted = set(names)
    if not wanted:
        return set()
    query = Q(file__in=wanted)
    for name in wanted:
        query |= Q(derivatives__icontains=name)
    found = set()
    rows = GeneratedImage._default_manager.db_manager(using).filter(query)
    for file, derivatives in rows.values_list("file", "derivatives"):
        if file in wanted:
            found.add(file)
        for item in derivatives or ():
            if isinstance(item, dict) and item.get("name") in wanted:
                found.add(item["name"])
    return found


def delete_unreferenced(
    files: Iterable[tuple[Storage, str]], *, using: str | None = None
) -> list[str]:
    """Delete those of ``files`` (storage, name) that no row uses; return the deleted names.

    Another generation may have stored the same bytes meanwhile and saved a row for them: such
    files are kept. Delete errors are logged, never raised, so cleanup cannot hide the error
    that made it necessary.
    """
    files = list(files)
    return _delete(files, keep=referenced_names((name for _s, name in files), using=using))


def _delete(files: Iterable[tuple[Storage, str]], *, keep: set[str]) -> list[str]:
    deleted = []
    for storage, name in files:
        if name in keep:
            continue
        try:
            storage.delete(name)
        except Exception:  # cleanup must not hide the original error
            logger.warning("imagegen: could not delete %s", name, exc_info=True)
        else:
            deleted.append(name)
    return deleted


class _CommitMarker:
    """An on-commit callback that only tells its finalizer the rows were committed.

    Django keeps on-commit callbacks in a list on the connection and drops them, without calling
    them, when the transaction or the savepoint they were registered in rolls back. The marker
    has no other strong reference, so it is freed at that moment and its finalizer deletes the
    files. On commit it runs first and detaches the finalizer.
    """

    __slots__ = ("__weakref__", "finalizer")

    def __init__(self) -> None:
        self.finalizer: weakref.finalize | None = None

    def __call__(self) -> None:
        if self.finalizer is not None:
            self.finalizer.detach()


def delete_on_rollback(files: Sequence[tuple[Storage, str]], *, using: str | None = None) -> None:
    """Delete ``files`` (storage, name) if the current transaction does not commit.

    Call this after the rows naming the files were saved. Outside a transaction (autocommit)
    the rows are already committed and nothing happens. Inside ``atomic()``, the files are
    deleted as soon as the block, or an enclosing one, rolls back, unless a committed row uses
    them by then. Django has no on-rollback hook; this relies on Django dropping the on-commit
    callbacks of a rolled-back block and on CPython freeing them at once (see docs/storage.md).
    Never raises.
    """
    if not files:
        return
    try:
        if using is None:
            from imagegen.models import GeneratedImage

            using = router.db_for_write(GeneratedImage)
        marker = _CommitMarker()
        finalizer = weakref.finalize(marker, _discard, list(files), using)
        # A process that exits inside a transaction leaves the files to imagegen_sweep.
        finalizer.atexit = False
        marker.finalizer = finalizer
    except Exception:  # the rows are saved; cleanup is best effort
        logger.warning("imagegen: could not arrange cleanup on rollback", exc_info=True)
        return
    try:
        transaction.on_commit(marker, using=using)
    except Exception:  # e.g. manual transaction management: cannot tell
        finalizer.detach()
        logger.warning("imagegen: could not arrange cleanup on rollback", exc_info=True)


def _discard(files: list[tuple[Storage, str]], using: str) -> None:
    """Delete the files of rolled-back rows: the finalizer of a dropped ``_CommitMarker``.

    It runs inside Django's rollback handling, so it must never raise, and it reads the
    database in whatever state the rollback left:

    - after a savepoint rolled back, the enclosing transaction goes on: the read runs in a
      savepoint of its own, so that even a failed read cannot break the caller's transaction;
    - after the outermost block rolled back, Django has not yet switched autocommit back on: the
      read may open a transaction (PostgreSQL does), which is rolled back here so that Django
      can switch.
    """
    names = [name for _storage, name in files]
    try:
        connection = transaction.get_connection(using)
        if connection.in_atomic_block:
            with transaction.atomic(using=using):
                in_use = referenced_names(names, using=using)
        else:
            between = not connection.get_autocommit()
            try:
                in_use = referenced_names(names, using=using)
            finally:
                if between:
                    connection.rollback()
    except Exception:  # runs inside Django's rollback: never raise there
        logger.warning(
            "imagegen: could not check %s after a rollback; imagegen_sweep removes unused "
            "files later",
            ", ".join(names),
            exc_info=True,
        )
        return
    deleted = _delete(files, keep=in_use)
    if deleted:
        logger.info("imagegen: deleted %d file(s) of rolled-back rows", len(deleted))


def walk(storage: Storage, top: str) -> Iterator[str]:
    """Yield the name of every file under the folder ``top``, using ``listdir`` only.

    Works on any storage that implements ``listdir`` (the file system, S3 and other object
    stores, where folders are key prefixes). A missing folder yields nothing.
    """
    pending = [top.strip("/")]
    while pending:
        folder = pending.pop()
        try:
            dirs, files = storage.listdir(folder)
        except FileNotFoundError:
            continue
        for name in sorted(files):
            yield posixpath.join(folder, name) if folder else name
        pending.extend(
            posixpath.join(folder, name) if folder else name for name in sorted(dirs, reverse=True)
        )
