"""The light, read-only rows the template tags render from, and the one query that loads them.

A tag needs a dozen columns of a file's ``GeneratedImage`` row and of the ``Generation`` that
made it. Loading them as model instances (``select_related("generation")``) took about 60
microseconds per image on a list page: two instances, every column converted, dates parsed.
So :func:`fetch_rows` loads just the columns the tags read, with ``values_list()``, into an
:class:`ImageRow` holding a :class:`GenerationRow`: about 20 microseconds per image, SQL
included. Both prefetching and the lookup of a single object build them, so the tags only ever
see one row type
(or a ``GeneratedImage`` put in the prefetch hook by other code: both have the same attributes).

The rows stand in for the model instances: same attribute names, equal to the instance with
the same primary key, and any other attribute (``image.seed``, ``generation.prompt``) loads the
whole row the first time it is read, one query, remembered. ``row.instance`` is that instance.

Rows are read-only: one row may be shared by several objects whose fields hold the same file.
That is a contract, not enforced: a frozen dataclass takes four times as long to build (its
``__init__`` goes through ``object.__setattr__``), a millisecond on a page of 500 images. They
have ``__slots__``, so at least no attribute can be added to one by mistake.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, models
from django.db.models import ExpressionWrapper, F, TextField

if TYPE_CHECKING:
    from django.db.models.fields.files import ImageFieldFile
    from django.db.models.query import QuerySet

from imagegen.models import GeneratedImage, Generation

#: Columns of ``GeneratedImage`` read by the tags, in the order of :class:`ImageRow`'s fields.
IMAGE_COLUMNS = (
    "pk",
    "file",
    "width",
    "height",
    "mime_type",
    "alt_text",
    "lqip",
    "dominant_color",
    "selected",
    "content_credentials",
    "derivatives",
    "credentials",
)
#: Columns of its ``Generation``, in the order of :class:`GenerationRow`'s fields.
GENERATION_COLUMNS = (
    "generation_id",
    "generation__provider",
    "generation__backend",
    "generation__model",
    "generation__content_type_id",
    "generation__object_id",
    "generation__field_name",
)
_SPLIT = len(IMAGE_COLUMNS)
_JSON = IMAGE_COLUMNS.index("derivatives")
_CREDENTIALS = IMAGE_COLUMNS.index("credentials")


class _Row:
    """What both row types share: model-like equality and the whole row on demand."""

    __slots__ = ()
    #: ``app_label.ModelName`` of the model the row was read from.
    model_label: ClassVar[str]
    pk: Any
    _db: str
    _instance: Any

    @property
    def id(self) -> Any:
        return self.pk

    @property
    def instance(self) -> models.Model:
        """The model instance of this row, loaded (one query) the first time it is asked for."""
        return self._load()

    def _load(self) -> models.Model:
        if self._instance is None:
            model = apps.get_model(self.model_label)
            self._instance = model._default_manager.using(self._db).get(pk=self.pk)
        return self._instance

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes the row does not have. Private and special names
        # (``__html__``, ``_meta``) are never delegated: probing them must not cost a query.
        if name.startswith("_") or name == "instance":
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(self._load(), name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Row):
            return other.model_label == self.model_label and other.pk == self.pk
        if isinstance(other, models.Model):
            return other._meta.concrete_model._meta.label == self.model_label and (
                other.pk is not None and other.pk == self.pk
            )
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.pk)  # as Model.__hash__, so a row and its instance hash alike


@dataclass(slots=True, eq=False)
class GenerationRow(_Row):
    """The columns of a ``Generation`` the tags read: provider, model and target."""

    model_label: ClassVar[str] = "imagegen.Generation"

    pk: int
    provider: str
    backend: str
    model: str
    content_type_id: int | None
    object_id: str
    field_name: str
    _db: str = field(default=DEFAULT_DB_ALIAS, repr=False)
    _instance: Generation | None = field(default=None, init=False, repr=False)

    def __str__(self) -> str:
        return str(self._load())


@dataclass(slots=True, eq=False)
class ImageRow(_Row):
    """The columns of a ``GeneratedImage`` the tags read, and its :class:`GenerationRow`."""

    model_label: ClassVar[str] = "imagegen.GeneratedImage"

    pk: int
    file_name: str
    width: int
    height: int
    mime_type: str
    alt_text: str
    lqip: str
    dominant_color: str
    selected: bool
    content_credentials: str
    derivatives: Any
    #: The ``credentials`` column as JSON text: only the opt-in credentials output reads it
    #: (:func:`imagegen.rendering.credentials.details_of` decodes it), so it is not decoded here.
    credentials: Any
    generation: GenerationRow
    _db: str = field(default=DEFAULT_DB_ALIAS, repr=False)
    _instance: GeneratedImage | None = field(default=None, init=False, repr=False)

    @property
    def generation_id(self) -> int:
        return self.generation.pk

    @property
    def file(self) -> ImageFieldFile:
        """The file, as ``GeneratedImage.file`` gives it (storage, ``url``), without a query."""
        file_field = GeneratedImage._meta.get_field("file")
        return file_field.attr_class(None, file_field, self.file_name)

    def __str__(self) -> str:
        return self.file_name


def stored_name(row: Any) -> str:
    """Return the storage name of the file of ``row``, an :class:`ImageRow` or a model instance."""
    return row.file_name if isinstance(row, ImageRow) else row.file.name


def fetch_rows(queryset: QuerySet) -> list[ImageRow]:
    """Return an :class:`ImageRow` for each ``GeneratedImage`` of ``queryset``, in one query.

    ``queryset`` may be filtered, ordered and sliced; its database is remembered on each row,
    for reading the rest of the row later.
    """
    db = queryset.db
    # The JSON columns come as their text: derivatives is decoded for all the rows at once
    # below, credentials only if a tag asks for it.
    columns = [
        ExpressionWrapper(F(column), output_field=TextField())
        if column in ("derivatives", "credentials")
        else column
        for column in IMAGE_COLUMNS
    ]
    found = list(queryset.values_list(*columns, *GENERATION_COLUMNS))
    derivatives = decode_json([values[_JSON] for values in found])
    rows = []
    for values, decoded in zip(found, derivatives, strict=True):
        generation = GenerationRow(*values[_SPLIT:], db)
        rows.append(ImageRow(*values[:_JSON], decoded, values[_CREDENTIALS], generation, db))
    return rows


def decode_json(texts: list[Any]) -> list[Any]:
    """Decode the JSON texts of a ``JSONField`` column as the field would, in one call if possible.

    One ``json.loads`` of ``[text, text, ...]`` is a fifth cheaper than one per text. The
    database holds only valid JSON in such a column, so that array has one item per text; if
    not (a NULL, a value a driver decoded already), each is decoded on its own, and a text that
    is not JSON is returned as it is, as ``JSONField`` does.
    """
    if all(type(text) is str for text in texts):
        try:
            decoded = json.loads(f"[{','.join(texts)}]")
        except ValueError:
            pass
        else:
            if len(decoded) == len(texts):
                return decoded
    return [_decode_one(text) for text in texts]


def _decode_one(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
