"""The Django Tasks runner and task; used when ``TASK_RUNNER`` is ``"django"``.

:class:`DjangoTasksRunner` enqueues :func:`run_generation` for each new row when its
transaction commits. It lives here, beside the task, and is loaded by its dotted path only
when it is configured. :func:`derive_images` makes the derived files and placeholders of a
succeeded row's images (:mod:`imagegen.pipeline.deriving`); the runner enqueues it when the
row succeeds, on ``TASK_OPTIONS["DERIVE_QUEUE"]`` when set.

Django 6 ships ``django.tasks``; on Django 5.2 the ``django-tasks`` backport provides the same
API (``pip install django-imagegen[tasks]``). The worker side is the Celery task's
(:func:`imagegen.runners.worker.work`): conditional claims, leases and takeovers of jobs whose
worker died, resumption of accepted provider jobs, the shared rate limits, retries only when they
cannot pay twice. What Django Tasks itself lacks, and what imagegen does about it:

* no retries: a job to run again later is re-enqueued with ``run_after`` when the backend
  ``supports_defer``; otherwise it stays ``queued`` and ``imagegen_sweep --jobs`` (run it
  periodically) dispatches it again after ``TASK_OPTIONS["QUEUED_TIMEOUT"]``;
* no time limits: the provider gets the deadline of ``TASK_OPTIONS["SOFT_TIME_LIMIT"]``, but
  nothing stops a stuck worker; its lease stops being renewed after ``TIME_LIMIT``, so another
  delivery or the sweeper takes the job over;
* no redelivery when a worker dies: that depends on the backend (a database backend's row
  stays "running"); ``imagegen_sweep --jobs`` resumes or fails such jobs.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from imagegen.exceptions import ImproperlyInstalled
from imagegen.pipeline.deriving import derive_generation
from imagegen.runners import QueuedRunner
from imagegen.runners.options import queue_for, task_options
from imagegen.runners.worker import monotonic_deadline, work

try:
    from django.tasks import task
except ImportError:  # Django 5.2
    try:
        from django_tasks import task
    except ImportError as err:
        raise ImproperlyInstalled(
            'TASK_RUNNER "django" needs Django 6 or the backport: '
            "pip install 'django-imagegen[tasks]'."
        ) from err

logger = logging.getLogger("imagegen")


@task()
def run_generation(pk: int, attempt: int = 1) -> None:
    """Run generation ``pk``; enqueue it again later when it must wait or failed retryably.

    ``attempt`` counts this job's deliveries (the row counts its runs); it backs off waits.
    """
    options = task_options()
    outcome = work(
        pk,
        deadline=monotonic_deadline(options["SOFT_TIME_LIMIT"]),
        deferrals=max(attempt - 1, 0),
        options=options,
    )
    if outcome.retry_in is None:
        return
    if not getattr(run_generation.get_backend(), "supports_defer", False):
        logger.warning(
            "imagegen: generation %s must run again in %.0f s, but the Django Tasks backend "
            "cannot defer tasks; imagegen_sweep --jobs dispatches it again later",
            pk,
            outcome.retry_in,
        )
        return
    when = timezone.now() + timedelta(seconds=outcome.retry_in)
    task_ = run_generation.using(run_after=when)
    if outcome.generation is not None:
        queue = queue_for(outcome.generation.provider, options)
        if queue:
            task_ = task_.using(queue_name=queue)
    task_.enqueue(pk, attempt + 1)


@task()
def derive_images(generation_pk: int) -> list[str]:
    """Make the pending derived files and placeholders of generation ``generation_pk``'s images.

    A failure of the work is logged, not raised: the image stays pending for the sweeper.
    """
    return derive_generation(generation_pk)


class DjangoTasksRunner(QueuedRunner):
    """Enqueue :func:`run_generation` with Django Tasks on commit."""

    def dispatch(self, jobs: list[tuple[int, str]]) -> None:
        options = task_options()
        for pk, alias in jobs:
            queue = queue_for(alias, options)
            task_ = run_generation.using(queue_name=queue) if queue else run_generation
            task_.enqueue(pk)

    def dispatch_derive(self, generation_ids: list[int]) -> None:
        queue = task_options()["DERIVE_QUEUE"]
        task_ = derive_images.using(queue_name=queue) if queue else derive_images
        for pk in generation_ids:
            task_.enqueue(pk)
