"""Task runners: where :func:`imagegen.services.run_generation` runs for a new row.

``IMAGEGEN["TASK_RUNNER"]`` picks one explicitly, never by sniffing what is installed:
``"immediate"`` runs in the calling process before ``generate()`` returns; ``"celery"`` sends a
Celery task; ``"django"`` enqueues a Django Tasks task; a dotted path names a
:class:`BaseRunner` subclass. Queued runners dispatch only when the transaction that wrote the
row commits, so a worker never looks for a row that does not exist yet.

``IMAGEGEN["TASK_OPTIONS"]`` tunes the queued runners: see :mod:`imagegen.task_options`. The
worker side of both queued runners is :func:`imagegen.worker.work`. Both modules' names are
re-exported here, so ``imagegen.runners.work``, ``imagegen.runners.TASK_DEFAULTS`` and the
rest keep working.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils.module_loading import import_string

from imagegen.conf import imagegen_settings, register_cache
from imagegen.exceptions import ImagegenConfigurationError
from imagegen.models import Generation
from imagegen.task_options import (
    TASK_DEFAULTS,
    check_task_options,
    limit_for,
    queue_for,
    retry_delay,
    task_options,
)
from imagegen.worker import Outcome, monotonic_deadline, work

# Private helpers that lived here too, kept importable from here.
from imagegen.worker import _backoff as _backoff
from imagegen.worker import _wait as _wait

__all__ = [
    "RUNNERS",
    "TASK_DEFAULTS",
    "BaseRunner",
    "CeleryRunner",
    "DjangoTasksRunner",
    "ImmediateRunner",
    "Outcome",
    "QueuedRunner",
    "check_task_options",
    "enqueue_pks",
    "get_runner",
    "limit_for",
    "load_runner_class",
    "monotonic_deadline",
    "queue_for",
    "retry_delay",
    "task_options",
    "work",
]

logger = logging.getLogger("imagegen")

# Dispatch -----------------------------------------------------------------------------------


class BaseRunner:
    """Dispatch generation rows for execution."""

    #: Whether ``enqueue`` returns a finished row.
    is_immediate = False

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

    def check(self) -> list:
        """Return system-check messages about this runner's setup."""
        return []


class ImmediateRunner(BaseRunner):
    """Run the generation now, in this process (development, tests, small sites)."""

    is_immediate = True

    def enqueue(self, generation: Generation, *, target: Any = None) -> Generation:
        from imagegen.services import run_generation

        # The row was created a moment ago in this process: hand it over rather than re-read it.
        return run_generation(generation, target=target)


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


class CeleryRunner(QueuedRunner):
    """Send :func:`imagegen.tasks.run_generation_task` to a Celery worker on commit.

    Each job goes to the queue its provider alias is mapped to in ``TASK_OPTIONS["QUEUES"]``
    (or Celery's default routing), with the time limits of ``TASK_OPTIONS``; a batch is sent
    over one broker connection.
    """

    def dispatch(self, jobs: list[tuple[int, str]]) -> None:
        from imagegen.tasks import run_generation_task

        options = task_options()
        limits = {
            "soft_time_limit": options["SOFT_TIME_LIMIT"],
            "time_limit": options["TIME_LIMIT"],
        }
        app = run_generation_task.app
        with app.producer_or_acquire() as producer:
            for pk, alias in jobs:
                queue = queue_for(alias, options)
                run_generation_task.apply_async(
                    (pk,), producer=producer, **({"queue": queue} if queue else {}), **limits
                )

    def check(self) -> list:
        from celery import current_app
        from django.core import checks

        options = task_options()
        conf = current_app.conf
        broker = str(conf.broker_url or "")
        visibility = (conf.broker_transport_options or {}).get("visibility_timeout", 3600)
        hard = options["TIME_LIMIT"]
        if broker.startswith(("redis", "rediss", "sqs")) and hard and visibility <= hard:
            return [
                checks.Warning(
                    f"The broker's visibility_timeout ({visibility} s) is not longer than "
                    f'IMAGEGEN["TASK_OPTIONS"]["TIME_LIMIT"] ({hard} s): the broker hands a '
                    "job still running to a second worker.",
                    hint='Set CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": ...} above '
                    "the time limit plus the longest retry delay (such as 7200).",
                    id="imagegen.W021",
                )
            ]
        return []


class DjangoTasksRunner(QueuedRunner):
    """Enqueue :func:`imagegen.django_tasks.run_generation` with Django Tasks on commit."""

    def check(self) -> list:
        from django.core import checks

        try:
            import imagegen.django_tasks  # noqa: F401
        except ImportError as err:
            return [
                checks.Error(
                    str(err),
                    hint="Django 6 ships django.tasks; on Django 5.2 install the backport.",
                    id="imagegen.E007",
                )
            ]
        return []

    def dispatch(self, jobs: list[tuple[int, str]]) -> None:
        from imagegen.django_tasks import run_generation

        options = task_options()
        for pk, alias in jobs:
            queue = queue_for(alias, options)
            task = run_generation.using(queue_name=queue) if queue else run_generation
            task.enqueue(pk)


RUNNERS: dict[str, type[BaseRunner]] = {
    "immediate": ImmediateRunner,
    "celery": CeleryRunner,
    "django": DjangoTasksRunner,
}


def load_runner_class(name: str) -> type[BaseRunner]:
    """Return the runner class for a ``TASK_RUNNER`` value; raise if it names nothing usable."""
    if name in RUNNERS:
        return RUNNERS[name]
    if "." not in str(name):
        raise ImagegenConfigurationError(
            f'IMAGEGEN["TASK_RUNNER"] is {name!r}; use "immediate", "celery", "django" or the '
            "dotted path of a BaseRunner subclass."
        )
    try:
        cls = import_string(name)
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


def enqueue_pks(pks: Iterable[int]) -> int:
    """Dispatch existing rows again through the configured runner; return how many.

    Used by the sweeper for rows stuck in ``queued``. Immediate runners run them here.
    """
    rows = list(Generation.objects.filter(pk__in=list(pks)).order_by("pk"))
    get_runner().enqueue_many(rows)
    return len(rows)
