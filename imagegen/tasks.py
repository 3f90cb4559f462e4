"""The Celery runner and tasks of imagegen; used when ``TASK_RUNNER`` is ``"celery"``.

:class:`CeleryRunner` sends :func:`run_generation_task` for each new row when its transaction
commits. It lives here, beside the task it sends, and is loaded by its dotted path only when
it is configured, so a site without Celery never imports it.

:func:`run_generation_task` takes a primary key, never a model instance, and is safe to
deliver more than once (see :func:`imagegen.runners.worker.work`): the claim of the row is a
conditional update, a finished job is never run again, a duplicate of a live job waits and
never calls the provider, and a job whose worker died is taken over, resuming the provider's
job when it had accepted one. That is what makes late acknowledgement safe:

* ``acks_late`` and ``reject_on_worker_lost``: a job whose worker is killed goes back to the
  queue instead of being lost;
* retries only for retryable errors that cannot pay twice, with exponential backoff, jitter and
  the provider's ``Retry-After``; a job waiting for room under the shared rate limits is retried
  without calling the provider, and without using up an attempt;
* soft and hard time limits from ``IMAGEGEN["TASK_OPTIONS"]`` (sent with each message); the
  provider is given a deadline a little before the soft limit;
* ``ignore_result``: the ``Generation`` row is the result.

:func:`derive_images_task` makes the derived files and placeholders of a succeeded row's images
(:mod:`imagegen.pipeline.deriving`); :class:`CeleryRunner` sends it when the row succeeds, to
``TASK_OPTIONS["DERIVE_QUEUE"]`` when set. It is idempotent too: a duplicate finds nothing
pending, or the row held by the first, and makes nothing.

:func:`sweep_jobs_task` is the periodic reconciler for Celery beat: see
:mod:`imagegen.runners.sweeper`. :func:`check_models_task` is the periodic live check of the
configured models (``imagegen_providers --live``): see :mod:`imagegen.providers.listing`.

Reusable apps cannot import a project's Celery app, so these are ``shared_task``\\ s.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app, shared_task
from django.core import checks

from imagegen.exceptions import ImagegenError
from imagegen.pipeline.deriving import derive_generation
from imagegen.providers.listing import run_live_check
from imagegen.runners import QueuedRunner
from imagegen.runners.options import queue_for, task_options
from imagegen.runners.sweeper import sweep_batches, sweep_jobs
from imagegen.runners.worker import monotonic_deadline, work

logger = logging.getLogger("imagegen.live")

#: The defaults (``IMAGEGEN["TASK_OPTIONS"]`` may override them per message).
SOFT_TIME_LIMIT = 600
TIME_LIMIT = 660


@shared_task(
    bind=True,
    name="imagegen.run_generation",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # imagegen counts attempts on the row (TASK_OPTIONS["MAX_ATTEMPTS"]); waits for a live
    # worker or for the rate limits are not failures and must not run out.
    max_retries=None,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=TIME_LIMIT,
)
def run_generation_task(self: Any, pk: int) -> None:
    """Run generation ``pk``; retry later when it must wait or failed in a retryable way."""
    limits = self.request.timelimit or (None, None)
    soft = limits[1] if limits[1] else self.soft_time_limit
    outcome = work(pk, deadline=monotonic_deadline(soft), deferrals=self.request.retries or 0)
    if outcome.retry_in is None:
        return
    error: ImagegenError | None = outcome.error
    raise self.retry(countdown=outcome.retry_in, exc=error, max_retries=None)


@shared_task(
    name="imagegen.derive_images",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=SOFT_TIME_LIMIT,
    time_limit=TIME_LIMIT,
)
def derive_images_task(generation_pk: int) -> list[str]:
    """Make the pending derived files and placeholders of generation ``generation_pk``'s images.

    A failure of the work is logged, not raised: the image stays pending for the sweeper.
    """
    return derive_generation(generation_pk)


@shared_task(name="imagegen.sweep_jobs", ignore_result=True)
def sweep_jobs_task() -> dict[str, int]:
    """Re-dispatch jobs stuck in ``queued``, resume or fail jobs whose worker died, and poll
    the provider batches (storing their results)."""
    tally = sweep_jobs().as_dict()
    try:
        batches = sweep_batches().as_dict()
    except Exception:  # one provider's outage must not stop the job sweep's next run
        logging.getLogger("imagegen").exception("imagegen: the batch sweep failed")
        batches = {}
    return {**tally, **{f"batches_{key}": value for key, value in batches.items()}}


@shared_task(name="imagegen.check_models", ignore_result=True)
def check_models_task() -> int:
    """Run the live check of ``imagegen_providers --live``; return how many problems it logged.

    Each problem (a model no longer served, an announced shutdown the catalog lacks, ids the
    catalog lacks, a price that differs) is a warning on the ``imagegen.live`` logger. The task
    never raises: a check that cannot run at all is logged too, and beat runs it again.
    """
    try:
        _reports, problems = run_live_check()
    except Exception:  # a periodic check warns, it never fails
        logger.warning("The live model check could not run.", exc_info=True)
        return 0
    return problems


class CeleryRunner(QueuedRunner):
    """Send :func:`run_generation_task` to a Celery worker on commit.

    A succeeded row's follow-up job, :func:`derive_images_task`, goes to
    ``TASK_OPTIONS["DERIVE_QUEUE"]`` (or Celery's default routing). Each generation job goes
    to the queue its provider alias is mapped to in ``TASK_OPTIONS["QUEUES"]``
    (or Celery's default routing), with the time limits of ``TASK_OPTIONS``; a batch is sent
    over one broker connection.
    """

    def dispatch(self, jobs: list[tuple[int, str]]) -> None:
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

    def dispatch_derive(self, generation_ids: list[int]) -> None:
        queue = task_options()["DERIVE_QUEUE"]
        app = derive_images_task.app
        with app.producer_or_acquire() as producer:
            for pk in generation_ids:
                derive_images_task.apply_async(
                    (pk,), producer=producer, **({"queue": queue} if queue else {})
                )

    def check(self) -> list:
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
