"""Where generated files go: the ``IMAGEGEN["STORAGE"]`` alias and content-addressed names.

Pure storage: naming, saving, comparing and listing files through Django's storage API. It
knows nothing of the ledger; :mod:`imagegen.pipeline.cleanup` decides which files rows still
use and deletes the others.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import posixpath
from collections.abc import Iterator
from typing import NoReturn

from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import InvalidStorageError, Storage, storages
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
            content = ContentFile(data)
            # The bytes are in memory already: a storage that writes chunk by chunk gets them
            # in one piece (64 KiB chunks would copy and write a 1.5 MB image 24 times).
            content.DEFAULT_CHUNK_SIZE = max(len(data), 1)
            return storage.save(candidate, content), True
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
