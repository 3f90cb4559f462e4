"""Keeping storage in step with the ledger: which files rows use, and deleting the others.

Storage writes are not transactional. A failed run deletes the files it created unless another
row uses them meanwhile (:func:`delete_unreferenced`); files whose rows a caller's transaction
rolls back are deleted then (:func:`delete_on_rollback`); ``imagegen_sweep`` asks
:func:`referenced_names` which stored files are still in use.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable, Sequence

from django.core.files.storage import Storage
from django.db import router, transaction
from django.db.models import Q

from imagegen.models import GeneratedImage, Generation

logger = logging.getLogger("imagegen")


def referenced_names(names: Iterable[str], *, using: str | None = None) -> set[str]:
    """Return those of ``names`` that a row uses: a ``GeneratedImage``'s file or derivative,
    or a ``Generation``'s source, mask or reference image.

    Two queries. Derivative and reference names live in JSON, which no index covers, so rows
    are matched by substring and the names compared exactly here.
    """
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
    inputs = Q(source_file__in=wanted) | Q(mask_file__in=wanted)
    for name in wanted:
        inputs |= Q(params__icontains=name)
    generations = Generation._default_manager.db_manager(using).filter(inputs)
    for source, mask, params in generations.values_list("source_file", "mask_file", "params"):
        found.update({source, mask, *((params or {}).get("references") or ())} & wanted)
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
