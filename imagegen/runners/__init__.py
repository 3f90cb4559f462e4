"""Task runners: where a new row's generation runs, and how a row is run by any of them.

``IMAGEGEN["TASK_RUNNER"]`` picks one explicitly, never by sniffing what is installed:
``"immediate"`` runs in the calling process before ``generate()`` returns; ``"celery"`` sends a
Celery task (:class:`imagegen.tasks.CeleryRunner`); ``"django"`` enqueues a Django Tasks task
(:class:`imagegen.django_tasks.DjangoTasksRunner`); a dotted path names a :class:`BaseRunner`
subclass. Runners are loaded by dotted path, as Django loads its backends, so the queued
runners live beside the tasks they send and their optional dependency is imported only when
one is configured. Queued runners dispatch only when the transaction that wrote the row
commits, so a worker never looks for a row that does not exist yet.

:func:`execute` runs one row and then the fallback rows its failure recorded: in this process
with the immediate runner, through the configured runner otherwise. A row that succeeded has
its images' derived files and placeholders still to make: :func:`execute` hands it to
:meth:`BaseRunner.derive_later`, which queues the follow-up job
(:mod:`imagegen.pipeline.deriving`) with a queued runner, and runs it after the HTTP response
(or on a background thread outside a request) with the immediate runner. The worker side of
the queued runners is :mod:`imagegen.runners.worker`; their settings are
:mod:`imagegen.runners.options`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.db import models, transaction
from django.utils.module_loading import import_string

from imagegen.conf import imagegen_settings, register_cache
from imagegen.exceptions import ImagegenConfigurationError
from imagegen.models import Generation, Status
from imagegen.pipeline import run
from imagegen.pipeline.deriving import derive_generations
from imagegen.pipeline.leases import Lease
from imagegen.signals import after_response

logger = logging.getLogger("imagegen")


class BaseRunner:
    """Dispatch generation rows for execution."""

    #: Whether ``enqueue`` returns a finished row.
    is_immediate = False
    #: Whether :func:`imagegen.generate` records rows already claimed and hands them to
    #: :meth:`run_recorded` (saving the claim's round trip) instead of ``enqueue``.
    claims_on_record = False

    def enqueue(self, generation: Generation) -> Generation:
        """Arrange for ``generation`` to run; return the row (finished if immediate).

        Runners with ``is_immediate`` set are also given ``target=``, the caller's instance of
        the row's target, so the image is set on the object the caller holds.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement enqueue().")

    def enqueue_many(self, generations: list[Generation]) -> list[Generation]:
        """Arrange for every row of ``generations`` to run; return them (finished if immediate).

        Queued runners dispatch the whole batch from one ``on_commit`` callback.
        """
        return [self.enqueue(generation) for generation in generations]

    def derive_later(self, generation_ids: list[int]) -> None:
        """Arrange for the derived files and placeholders of these generations' images.

        By default they are made in this process once the transaction commits, after the HTTP
        response when this is called during a request (:func:`imagegen.signals.after_response`),
        on a background thread otherwise. Queued runners send a task instead.
        """
        if generation_ids:
            job = functools.partial(derive_generations, list(generation_ids))
            transaction.on_commit(functools.partial(after_response, job))

    def run_recorded(self, generation: Generation, *, target: Any = None) -> Generation:
        """Run a row recorded already claimed for this process; only if ``claims_on_record``."""
        raise NotImplementedError(f"{type(self).__name__} does not claim rows on record.")

    def check(self) -> list:
        """Return system-check messages about this runner's setup."""
        return []


class ImmediateRunner(BaseRunner):
    """Run the generation now, in this process (development, tests, small sites)."""

    is_immediate = True

    #: :func:`imagegen.generate` records rows already claimed (``running``, attempt 1) and runs
    #: them with :meth:`run_recorded`: no other worker ever sees them ``queued``. A subclass
    #: whose ``enqueue`` must see every new row sets this to False.
    claims_on_record = True

    def enqueue(self, generation: Generation, *, target: Any = None) -> Generation:
        # The row was created a moment ago in this process: hand it over rather than re-read it.
        return execute(generation, target=target)

    def run_recorded(self, generation: Generation, *, target: Any = None) -> Generation:
        """Run a row recorded already claimed for this process; return it finished."""
        return execute(generation, target=target, claimed=True)


class QueuedRunner(BaseRunner):
    """A runner that sends each row's primary key to workers once the transaction commits."""

    def enqueue(self, generation: Generation) -> Generation:
        self.enqueue_many([generation])
        return generation

    def enqueue_many(self, generations: list[Generation]) -> list[Generation]:
        jobs = [(generation.pk, generation.provider) for generation in generations]
        if jobs:
            transaction.on_commit(functools.partial(self.dispatch, jobs))
        return generations

    def dispatch(self, jobs: list[tuple[int, str]]) -> None:
        """Send ``(pk, provider alias)`` jobs to the workers now."""
        raise NotImplementedError(f"{type(self).__name__} must implement dispatch().")

    def derive_later(self, generation_ids: list[int]) -> None:
        if generation_ids:
            transaction.on_commit(functools.partial(self.dispatch_derive, list(generation_ids)))

    def dispatch_derive(self, generation_ids: list[int]) -> None:
        """Send the follow-up jobs of these generations' images now.

        This default makes them in this process (the worker's, as :func:`execute` runs there);
        the built-in queued runners send a task of their own.
        """
        derive_generations(generation_ids)


#: The built-in ``TASK_RUNNER`` names and the runner classes they stand for.
RUNNERS: dict[str, str] = {
    "immediate": "imagegen.runners.ImmediateRunner",
    "celery": "imagegen.tasks.CeleryRunner",
    "django": "imagegen.django_tasks.DjangoTasksRunner",
}


def load_runner_class(name: str) -> type[BaseRunner]:
    """Return the runner class for a ``TASK_RUNNER`` value; raise if it names nothing usable."""
    if name in RUNNERS:
        path = RUNNERS[name]
    elif "." in str(name):
        path = name
    else:
        raise ImagegenConfigurationError(
            f'IMAGEGEN["TASK_RUNNER"] is {name!r}; use "immediate", "celery", "django" or the '
            "dotted path of a BaseRunner subclass."
        )
    try:
        cls = import_string(path)
    except ImportError as err:
        raise ImagegenConfigurationError(
            f'IMAGEGEN["TASK_RUNNER"] {name!r} could not be imported: {err}'
        ) from err
    if not (isinstance(cls, type) and issubclass(cls, BaseRunner)):
        raise ImagegenConfigurationError(
            f'IMAGEGEN["TASK_RUNNER"] {name!r} is not a subclass of imagegen.runners.BaseRunner.'
        )
    return cls


@functools.cache
def get_runner() -> BaseRunner:
    """Return the configured runner instance."""
    return load_runner_class(imagegen_settings.TASK_RUNNER)()


register_cache(get_runner.cache_clear)


def execute(
    generation: Generation,
    *,
    retrying: bool = False,
    target: models.Model | None = None,
    lease: Lease | None = None,
    deadline: float | None = None,
    claimed: bool = False,
) -> Generation:
    """Run ``generation`` once, then the fallbacks its failure recorded; return the last row.

    With the immediate runner each fallback runs here in turn, with the caller's ``target``;
    with a queued runner the first fallback is dispatched and comes back ``queued``. See
    :func:`imagegen.services.run_generation` for the arguments; ``claimed`` says the row was
    recorded already claimed for this run (:meth:`ImmediateRunner.run_recorded`).
    """
    result = run.run_generation(
        generation,
        retrying=retrying,
        target=target,
        lease=lease,
        deadline=deadline,
        claimed=claimed,
    )
    while result.fallback is not None:
        runner = get_runner()
        if not runner.is_immediate:
            return runner.enqueue(result.fallback)
        result = run.run_generation(result.fallback, target=target)
    if result.generation.status == Status.SUCCEEDED:
        # Derived files and placeholders come after: never inside generate() or the request.
        get_runner().derive_later([result.generation.pk])
    return result.generation
