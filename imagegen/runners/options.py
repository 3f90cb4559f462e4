"""Settings of the queued runners (``IMAGEGEN["TASK_OPTIONS"]``) and their retry timing.

:data:`TASK_DEFAULTS` lists the keys and their defaults (see docs/deployment.md): a queue per
provider alias, limits shared by every worker, time limits, retries and the lease after which a
job whose worker died is taken over. :func:`check_task_options` says what is wrong with a value,
:func:`task_options` merges the setting over the defaults, and :func:`queue_for`,
:func:`limit_for` and :func:`retry_delay` answer the questions the runners and workers ask.
"""

from __future__ import annotations

import random
from typing import Any

from imagegen.conf import imagegen_settings
from imagegen.exceptions import ImagegenConfigurationError, ImagegenError
from imagegen.runners.ratelimit import Limit

#: ``IMAGEGEN["TASK_OPTIONS"]`` keys and their defaults.
TASK_DEFAULTS: dict[str, Any] = {
    # Provider alias -> queue name; aliases not listed go to the runner's default queue.
    "QUEUES": {},
    # The queue of the follow-up jobs that make derived files ("": the default queue).
    "DERIVE_QUEUE": "",
    # Provider alias -> {"CONCURRENCY": n, "RATE": "50/m"}, shared by all workers.
    "RATE_LIMITS": {},
    # The CACHES alias the limits are kept in (Redis or Memcached in production).
    "CACHE": "default",
    # Seconds before a job is asked to stop (SoftTimeLimitExceeded), and killed.
    "SOFT_TIME_LIMIT": 600,
    "TIME_LIMIT": 660,
    # Runs of one job, retries and takeovers included, before it fails for good.
    "MAX_ATTEMPTS": 5,
    # Retry delays: RETRY_BACKOFF seconds, doubled per attempt up to RETRY_BACKOFF_MAX, plus
    # up to half as much again at random. A provider's Retry-After wins when it says more.
    "RETRY_BACKOFF": 2.0,
    "RETRY_BACKOFF_MAX": 300.0,
    # Seconds without a heartbeat after which a running job's worker is presumed dead.
    "LEASE": 60.0,
    # imagegen_sweep --jobs: re-dispatch rows queued and untouched for this many seconds.
    "QUEUED_TIMEOUT": 900.0,
}


def check_task_options(value: Any) -> list[str]:
    """Return what is wrong with an ``IMAGEGEN["TASK_OPTIONS"]`` value, one sentence each."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return ['IMAGEGEN["TASK_OPTIONS"] must be a dict.']
    where = 'IMAGEGEN["TASK_OPTIONS"]'
    problems = [
        f'{where} has an unknown key "{key}".' for key in sorted(set(value) - set(TASK_DEFAULTS))
    ]
    options = {**TASK_DEFAULTS, **value}
    for key in ("SOFT_TIME_LIMIT", "TIME_LIMIT", "RETRY_BACKOFF", "RETRY_BACKOFF_MAX", "LEASE",
                "QUEUED_TIMEOUT", "MAX_ATTEMPTS"):  # fmt: skip
        number = options[key]
        nullable = key in ("SOFT_TIME_LIMIT", "TIME_LIMIT")
        if number is None and nullable:
            continue
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number <= 0:
            problems.append(f'{where}["{key}"] must be a positive number, not {number!r}.')
    soft, hard = options["SOFT_TIME_LIMIT"], options["TIME_LIMIT"]
    if not problems and soft and hard and soft >= hard:
        problems.append(f'{where}["SOFT_TIME_LIMIT"] ({soft}) must be below "TIME_LIMIT" ({hard}).')
    queues = options["QUEUES"]
    if not isinstance(queues, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in queues.items()
    ):
        problems.append(f'{where}["QUEUES"] must map provider aliases to queue names.')
    if not isinstance(options["DERIVE_QUEUE"], str):
        problems.append(f'{where}["DERIVE_QUEUE"] must be a queue name, or "" for the default.')
    limits = options["RATE_LIMITS"]
    if not isinstance(limits, dict):
        problems.append(f'{where}["RATE_LIMITS"] must map provider aliases to limits.')
    else:
        for alias, config in limits.items():
            try:
                Limit.from_settings(alias, config, cache_alias="default", lease=1)
            except ImagegenConfigurationError as err:
                problems.append(str(err))
    return problems


def task_options() -> dict[str, Any]:
    """Return ``IMAGEGEN["TASK_OPTIONS"]`` merged over :data:`TASK_DEFAULTS`."""
    options = imagegen_settings.TASK_OPTIONS or {}
    return {**TASK_DEFAULTS, **(options if isinstance(options, dict) else {})}


def queue_for(alias: str, options: dict[str, Any] | None = None) -> str | None:
    """Return the queue that jobs of provider ``alias`` go to, or None for the default queue."""
    queues = (options or task_options())["QUEUES"] or {}
    return queues.get(alias) or None


def limit_for(alias: str, options: dict[str, Any] | None = None) -> Limit | None:
    """Return the shared :class:`~imagegen.runners.ratelimit.Limit` of ``alias``, or None."""
    options = options or task_options()
    config = (options["RATE_LIMITS"] or {}).get(alias)
    if not config:
        return None
    return Limit.from_settings(
        alias, config, cache_alias=options["CACHE"], lease=float(options["LEASE"])
    )


def retry_delay(
    error: ImagegenError | None, attempt: int, options: dict[str, Any] | None = None
) -> float:
    """Return seconds to wait before retry number ``attempt`` (1 for the first retry).

    Exponential backoff with jitter: ``RETRY_BACKOFF`` seconds doubled per attempt, capped at
    ``RETRY_BACKOFF_MAX``, plus up to half of it at random, so retries of a burst spread out. A
    provider's ``Retry-After`` is honoured: the delay is never shorter than what it asked.
    """
    options = options or task_options()
    base = min(
        float(options["RETRY_BACKOFF_MAX"]),
        float(options["RETRY_BACKOFF"]) * 2 ** max(attempt - 1, 0),
    )
    delay = base + random.uniform(0, base / 2)
    asked = getattr(error, "retry_after", None) if error is not None else None
    if asked:
        # Everyone told to come back in N seconds should not come back at the same instant.
        delay = max(delay, float(asked) + random.uniform(0, min(float(asked) / 10, 5.0)))
    return delay
