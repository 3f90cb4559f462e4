"""The provider contract: a request goes in, a result comes out, nothing else is touched.

A provider never uses the ORM, storage or signals; :mod:`imagegen.services` does. A concrete
provider sets its identity as class attributes, takes its own OPTIONS as keyword arguments in
``__init__`` (passing the rest to ``super().__init__``), and implements :meth:`_generate`.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from imagegen import catalog
from imagegen.exceptions import ImagegenError, InvalidProviderError, UnsupportedRequest
from imagegen.types import CallContext, ImageRequest, ImageResult

if TYPE_CHECKING:
    from django.core.checks import CheckMessage


class BaseProvider:
    """Base class of every provider backend."""

    #: Name of the provider's models in :mod:`imagegen.catalog`.
    catalog_key: ClassVar[str] = ""
    #: Human-readable name shown to editors.
    display_name: ClassVar[str] = ""
    #: Model used when OPTIONS give none.
    default_model: ClassVar[str] = ""
    #: Whether calls leave this machine (and may therefore cost money).
    is_remote: ClassVar[bool] = False
    #: Operations this provider implements (see :data:`imagegen.types.OPERATIONS`).
    operations: ClassVar[tuple[str, ...]] = ("generate",)
    #: Operations answered by a job the provider polls (a retried task resumes it, never
    #: paying twice); empty when every call answers at once.
    polled_operations: ClassVar[tuple[str, ...]] = ()
    #: Whether a finished job can be reported by a signed webhook (:mod:`imagegen.webhooks`).
    webhooks: ClassVar[bool] = False

    def __init__(self, *, alias: str, model: str | None = None, **options: Any) -> None:
        if options:
            unknown = ", ".join(sorted(options))
            raise InvalidProviderError(
                f'Unknown OPTIONS for IMAGEGEN["PROVIDERS"][{alias!r}] '
                f"({type(self).__name__}): {unknown}."
            )
        self.alias = alias
        self.model = model or self.default_model

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r} model={self.model!r}>"

    # Configuration and refusals ----------------------------------------------------------

    @property
    def config_path(self) -> str:
        """Return where this provider is configured, as messages name it."""
        return f'IMAGEGEN["PROVIDERS"][{self.alias!r}]'

    def option_error(self, name: str, problem: str) -> InvalidProviderError:
        """Return the error for a bad OPTIONS ``name``; ``problem`` says what it must be."""
        return InvalidProviderError(f'OPTIONS["{name}"] of {self.config_path} {problem}')

    def unsupported(self, message: str) -> UnsupportedRequest:
        """Return the error for a request this provider refuses before sending anything."""
        return UnsupportedRequest(message, provider=self.alias)

    def refuse_reserved(self, request: ImageRequest, reserved: Set[str], why: str = "") -> None:
        """Refuse ``request`` if its ``extra`` sets any of the ``reserved`` fields.

        ``why`` adds a reason to the message, such as " (streaming is not supported)".
        """
        refused = sorted(reserved & set(request.extra))
        if refused:
            raise self.unsupported(
                f"extra may not set {', '.join(refused)}: imagegen sets these itself{why}."
            )

    # Catalog ------------------------------------------------------------------------------

    def model_info(self, model: str | None = None) -> catalog.ModelInfo:
        """Return the catalog entry for ``model`` (default capabilities, free, if uncatalogued).

        An uncatalogued alias of a catalogued model (see :meth:`base_model`) gets that model's
        entry under its own id.
        """
        model = model or self.model
        info = catalog.get_model(self.catalog_key, model)
        base = self.base_model(model)
        if info is None and base != model:
            found = catalog.get_model(self.catalog_key, base)
            info = None if found is None else replace(found, id=model)
        return info or catalog.ModelInfo(provider=self.catalog_key, id=model)

    def base_model(self, model: str) -> str:
        """Return the model ``model`` is an alias of (a pinned version, a dated snapshot).

        The default is ``model`` itself; providers whose ids carry such suffixes override it.
        """
        return model

    def checked_model(self, model: str) -> str:
        """Return ``model`` if this provider can call it; raise ``UnsupportedRequest`` if not.

        :meth:`prepare` asks first of all; the default takes any id.
        """
        return model

    def prepare(self, request: ImageRequest) -> tuple[list[ImageRequest], list[str]]:
        """Adapt ``request`` to the model; return the calls to make and the warnings."""
        self.checked_model(request.model or self.model)
        if request.operation not in self.operations:
            raise UnsupportedRequest(
                f"{self.display_name or type(self).__name__} cannot {request.operation} images.",
                provider=self.alias,
            )
        request = request if request.model else replace(request, model=self.model)
        return catalog.adapt(request, self.model_info(request.model))

    def estimate_cost(self, request: ImageRequest) -> Decimal:
        """Return the estimated cost of ``request`` after adaptation, without calling anything."""
        calls, _ = self.prepare(request)
        return catalog.estimate_calls(calls, self.model_info(request.model))

    # Calling ------------------------------------------------------------------------------

    def generate(self, request: ImageRequest, *, context: CallContext | None = None) -> ImageResult:
        """Make one call for an already adapted ``request`` and return its result, costed.

        The cost comes from the provider's own report when :meth:`_generate` sets it, otherwise
        from the catalog's price rule applied to the reported usage.
        """
        request = request if request.model else replace(request, model=self.model)
        try:
            result = self._generate(request, context or CallContext())
        except ImagegenError as err:
            if err.billed and err.cost is None and err.usage:
                # A refused answer that reported its usage: price it like an accepted one.
                info = self.model_info(request.model)
                err.cost = info.price.actual(request, err.usage, request.count)
            raise
        if result.cost is None:
            info = self.model_info(request.model)
            result = replace(
                result, cost=info.price.actual(request, result.usage, len(result.images))
            )
        return result

    def _generate(self, request: ImageRequest, context: CallContext) -> ImageResult:
        """Call the provider; every subclass implements this."""
        raise NotImplementedError(f"{type(self).__name__} must implement _generate().")

    def cancel(self, job_id: str) -> None:
        """Ask the provider to stop a job it accepted; a no-op for synchronous providers."""

    # Lifecycle ----------------------------------------------------------------------------

    def check(self) -> list[CheckMessage]:
        """Return system-check messages about this provider's configuration.

        Subclasses import ``django.core.checks`` inside this method, never at module level: it
        loads the database, cache, URL and translation machinery, and importing a provider
        module stays light.
        """
        return []

    def close(self) -> None:
        """Release connections; called when settings change or the process ends."""
