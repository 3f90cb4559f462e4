"""Load the image rows of many objects at once, so a list page makes no query per template tag.

``{% imagegen_image %}`` and ``{% imagegen_disclosure %}`` need the ``GeneratedImage`` row of
the file in a field (its derived files, placeholders, alt text and the ``Generation`` that made
it). Looked up one object at a time, that is one query per tag. In a view::

    from imagegen.prefetch import prefetch_images

    articles = prefetch_images(Article.objects.all(), "hero")

returns a lazy queryset that, when it is evaluated, loads the rows of every article's hero, with
their generations, in one query (more only for thousands of objects on a database with a small
parameter limit), and stores them on each article. The tags then make no query at all.
``prefetch_images`` also takes a list (or any iterable) of instances, which it fills at once.

The rows are :class:`~imagegen.rendering.rows.ImageRow` objects: just the columns the tags
read, which is several times cheaper to load than model instances (see that module). They are
stored on each instance under :data:`PREFETCH_ATTR` as ``{field name: row or None}``, the hook
the template tags read; third-party code may fill it the same way, with rows or with
``GeneratedImage`` instances (their ``generation`` selected).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from django.contrib.contenttypes.models import ContentType
from django.db import connections, models
from django.db.models.query import ModelIterable, QuerySet

from imagegen.models import GeneratedImage
from imagegen.rendering.rows import fetch_rows, stored_name

#: Attribute on a model instance holding ``{field name: row or None}``.
PREFETCH_ATTR = "_imagegen_images"
#: Attribute on a model instance remembering lookups by file name:
#: ``{(field name, file name): row or None}``. Keyed by name, so a field changed
#: after the lookup is looked up again rather than answered from a stale entry.
LOOKUP_ATTR = "_imagegen_lookups"
#: Attribute on a ``Query`` listing the fields to prefetch; the query is copied with every
#: queryset clone, so the request survives ``filter()``, slicing and pagination.
_QUERY_FIELDS = "imagegen_prefetch_fields"
_QUERY_USING = "imagegen_prefetch_using"

Objects = TypeVar("Objects")


def prefetch_images(objects: Objects, *fields: str, using: str | None = None) -> Objects:
    """Load the ``GeneratedImage`` rows of ``fields`` for every object in ``objects``.

    ``objects`` is a queryset (a lazy clone is returned; the rows are loaded when it is
    evaluated, for exactly the objects it returns) or an iterable of model instances (filled
    now; a list is returned, the same one if a list was given). ``using`` names the database of
    the image rows; by default it is routed like a read of the first object's database.

    Raises ``FieldDoesNotExist`` or ``TypeError`` at once for a field that is not an image
    field: that is a mistake in the view, not something to hide from a template.
    """
    if not fields:
        raise TypeError("prefetch_images() needs at least one field name.")
    for name in fields:
        if not isinstance(name, str):
            raise TypeError(f"prefetch_images() takes field names, not {name!r}.")
    if isinstance(objects, QuerySet):
        return _prefetching_queryset(objects, fields, using)  # type: ignore[return-value]
    items = objects if isinstance(objects, list) else list(objects)  # type: ignore[call-overload]
    load_images(items, fields, using=using)
    return items  # type: ignore[return-value]


def _prefetching_queryset(
    queryset: QuerySet, fields: tuple[str, ...], using: str | None
) -> QuerySet:
    for name in fields:
        _image_field(queryset.model, name)
    if queryset._result_cache is not None:
        # Already evaluated: fill the cached instances rather than query them again.
        load_images(queryset._result_cache, fields, using=using)
        return queryset
    if not issubclass(queryset._iterable_class, ModelIterable):
        raise TypeError("prefetch_images() needs model instances, not values() or values_list().")
    clone = queryset.all()
    wanted = getattr(clone.query, _QUERY_FIELDS, ())
    setattr(clone.query, _QUERY_FIELDS, wanted + tuple(f for f in fields if f not in wanted))
    if using is not None:
        setattr(clone.query, _QUERY_USING, using)
    clone._iterable_class = _iterable_for(clone._iterable_class)
    return clone


class _PrefetchImagesMixin:
    """Fill the instances a queryset yields with their image rows before handing them out."""

    queryset: QuerySet
    chunked_fetch: bool
    chunk_size: int

    def __iter__(self) -> Iterator[models.Model]:
        instances = super().__iter__()  # type: ignore[misc]
        fields = getattr(self.queryset.query, _QUERY_FIELDS, ())
        if not fields:
            yield from instances
            return
        using = getattr(self.queryset.query, _QUERY_USING, None)
        if not self.chunked_fetch:
            # Evaluating the queryset (list(), a for loop in a template): one batch.
            batch = list(instances)
            load_images(batch, fields, using=using)
            yield from batch
            return
        # .iterator(): one batch per chunk, so memory stays bounded.
        batch = []
        for instance in instances:
            batch.append(instance)
            if len(batch) >= self.chunk_size:
                load_images(batch, fields, using=using)
                yield from batch
                batch = []
        load_images(batch, fields, using=using)
        yield from batch


class PrefetchImagesIterable(_PrefetchImagesMixin, ModelIterable):
    """``ModelIterable`` that loads the image rows of the fields the query asks for."""


@functools.cache
def _iterable_for(base: type) -> type:
    if issubclass(base, _PrefetchImagesMixin):
        return base
    if base is ModelIterable:
        return PrefetchImagesIterable
    # A custom ModelIterable subclass (from another library) keeps its behaviour.
    return type(f"PrefetchImages{base.__name__}", (_PrefetchImagesMixin, base), {})


def _image_field(model: type[models.Model], field_name: str) -> models.ImageField:
    field = model._meta.get_field(field_name)
    if not isinstance(field, models.ImageField):
        raise TypeError(f"{model._meta.label}.{field_name} is not an image field.")
    return field


def load_images(
    objects: Sequence[models.Model], fields: Iterable[str], *, using: str | None = None
) -> None:
    """Store the image rows of ``fields`` on each of ``objects``, in one query for all.

    Every object gets ``{field: row or None}`` under :data:`PREFETCH_ATTR` (merged with what
    it already has); an empty field, or a file imagegen did not make, gets None.
    """
    fields = tuple(fields)
    if not objects or not fields:
        return
    # file name -> (object, field, its PREFETCH_ATTR dict, its LOOKUP_ATTR dict)
    wanted: dict[str, list[tuple[models.Model, str, dict, dict]]] = defaultdict(list)
    checked: set[tuple[type, str]] = set()
    for obj in objects:
        previous = obj.__dict__.get(PREFETCH_ATTR)
        found = dict(previous) if previous is not None and isinstance(previous, Mapping) else {}
        lookups = _lookups(obj)
        for field_name in fields:
            if (type(obj), field_name) not in checked:
                _image_field(type(obj), field_name)
                checked.add((type(obj), field_name))
            file = getattr(obj, field_name)
            found[field_name] = None
            if file:
                wanted[file.name].append((obj, field_name, found, lookups))
            else:
                lookups[(field_name, "")] = None
        setattr(obj, PREFETCH_ATTR, found)
    if not wanted:
        return
    rows = _rows_by_name(list(wanted), using=using, hint=objects[0])
    for name, targets in wanted.items():
        candidates = rows.get(name, [])
        for obj, field_name, found, lookups in targets:
            row = best_image(candidates, obj, field_name)
            found[field_name] = row
            lookups[(field_name, name)] = row


def _rows_by_name(
    names: list[str], *, using: str | None, hint: models.Model | None
) -> dict[str, list[Any]]:
    if using is not None:
        queryset = GeneratedImage.objects.using(using)
    else:
        queryset = GeneratedImage.objects.db_manager(hints={"instance": hint}).all()
    # best_image() ranks the rows of a name itself: no ORDER BY (and its join) needed.
    queryset = queryset.order_by()
    # Only databases with a small parameter limit (SQLite before Django 6: 999) need batches.
    size = connections[queryset.db].features.max_query_params or len(names)
    rows: dict[str, list[Any]] = defaultdict(list)
    for start in range(0, len(names), size):
        for row in fetch_rows(queryset.filter(file__in=names[start : start + size])):
            rows[row.file_name].append(row)
    return rows


def best_image(rows: Sequence[Any], obj: models.Model, field_name: str) -> Any:
    """Return the row among ``rows`` (all stored under one file name) that fits ``obj``'s field.

    Names are content-addressed, so one file can have several rows (the same bytes generated
    twice). Preferred, in order: the selected row made for this object's field, any row made
    for it, any selected row, the newest row. ``rows`` are :class:`ImageRow` objects, or model
    instances with their generation selected (else this costs queries). Returns None for none.
    """
    if not rows:
        return None
    if len(rows) == 1:
        return rows[0]

    # Cached by Django after the first use per model, so this is no query in practice.
    content_type_id = ContentType.objects.db_manager(obj._state.db).get_for_model(obj).pk
    pk = str(obj.pk)

    def rank(row: Any) -> tuple[bool, bool, bool, int]:
        generation = row.generation
        mine = (
            generation.content_type_id == content_type_id
            and generation.object_id == pk
            and generation.field_name == field_name
        )
        return (mine and row.selected, mine, row.selected, row.pk or 0)

    return max(rows, key=rank)


def _lookups(obj: models.Model) -> dict[tuple[str, str], Any]:
    """Return the :data:`LOOKUP_ATTR` dict of ``obj``, made on first use."""
    lookups = obj.__dict__.get(LOOKUP_ATTR)
    if not isinstance(lookups, dict):
        lookups = {}
        setattr(obj, LOOKUP_ATTR, lookups)
    return lookups


def image_for(obj: models.Model, field_name: str, file_name: str) -> Any:
    """Return the row of the ``GeneratedImage`` stored as ``file_name`` in ``obj.<field_name>``.

    The row is an :class:`ImageRow` (or what other code put in :data:`PREFETCH_ATTR`); None
    when imagegen did not make the file.

    Answered without a query when :func:`prefetch_images` (or anything filling
    :data:`PREFETCH_ATTR`) got there first, or when this instance was asked before; otherwise
    one query, whose answer is remembered on the instance.
    """
    lookups = obj.__dict__.get(LOOKUP_ATTR)
    if isinstance(lookups, dict) and (field_name, file_name) in lookups:
        return lookups[(field_name, file_name)]
    prefetched = getattr(obj, PREFETCH_ATTR, None)
    if isinstance(prefetched, Mapping) and field_name in prefetched:
        row = prefetched[field_name]
        # The field changed since the prefetch if the row is for another file, or if the
        # prefetch saw this field under another name (empty, say): then look again.
        if row is not None and stored_name(row) == file_name:
            return row
        if row is None and not (
            isinstance(lookups, dict) and any(key[0] == field_name for key in lookups)
        ):
            return None
    queryset = GeneratedImage.objects.db_manager(hints={"instance": obj}).filter(file=file_name)
    # A handful of rows at most share a name; the cap keeps a pathological case cheap.
    candidates = fetch_rows(queryset.order_by("-selected", "-pk")[:20])
    row = best_image(candidates, obj, field_name)
    _lookups(obj)[(field_name, file_name)] = row
    return row
