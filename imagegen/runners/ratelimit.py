"""A per-provider concurrency and rate limit shared by every worker, on Django's cache.

Celery's own ``rate_limit`` counts per worker process, so ten workers allowed "60/m" each send
600 requests a minute. The limits here live in a cache every worker shares (Redis or Memcached
in production), configured per provider alias::

    IMAGEGEN = {
        "TASK_OPTIONS": {
            "RATE_LIMITS": {
                "openai": {"CONCURRENCY": 4, "RATE": "50/m"},
                "flux": {"CONCURRENCY": 10},
            },
            "CACHE": "default",  # a CACHES alias
        },
    }

``CONCURRENCY`` caps the generations of one alias running at the same time, everywhere.
Each running job holds one of that many slot keys, taken with the atomic ``cache.add()``; the
slot expires by itself ``LEASE`` seconds after its last renewal, so a killed worker never leaks
one for long (a live job's heartbeat renews it). ``RATE`` caps calls per second, minute, hour
or day ("5/s", "50/m", "1000/h", "20000/d") with a fixed-window counter: ``cache.add()`` starts
the window's key and ``cache.incr()`` counts in it, both atomic on Redis and Memcached.

A job that finds no room is not run: the task runner retries it after :attr:`Ticket.retry_after`
seconds, without calling the provider. The cache must be shared by all workers and atomic:
``LocMemCache`` is per process (good for tests only) and ``DatabaseCache`` increments with a
read and a write, so two workers can both take the last place.
"""

from __future__ import annotations

import logging
import math
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import caches

from imagegen.exceptions import ImagegenConfigurationError

logger = logging.getLogger("imagegen")

__all__ = ["Limit", "Ticket", "acquire", "parse_rate"]

#: Seconds per rate unit.
PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Cache key prefix; the alias and window or slot number follow.
PREFIX = "imagegen:limit"


def parse_rate(rate: str) -> tuple[int, int]:
    """Return ``(calls, seconds)`` for a rate such as ``"50/m"``; raise on anything else."""
    try:
        number, unit = str(rate).replace(" ", "").split("/")
        calls, seconds = int(number), PERIODS[unit[:1].lower()]
    except (KeyError, ValueError):
        raise ImagegenConfigurationError(
            f"Invalid rate {rate!r}: use calls per second, minute, hour or day, such as "
            '"5/s", "50/m", "1000/h" or "20000/d".'
        ) from None
    if calls < 1:
        raise ImagegenConfigurationError(f"Invalid rate {rate!r}: the count must be at least 1.")
    return calls, seconds


@dataclass(frozen=True)
class Limit:
    """The shared limits of one provider alias."""

    alias: str
    concurrency: int | None = None
    rate: tuple[int, int] | None = None
    cache_alias: str = "default"
    #: Seconds a concurrency slot lives without renewal.
    lease: float = 60.0

    @classmethod
    def from_settings(
        cls, alias: str, config: dict[str, Any], *, cache_alias: str, lease: float
    ) -> Limit:
        """Build the limit of ``alias`` from its ``RATE_LIMITS`` entry; raise if malformed."""
        if not isinstance(config, dict) or set(config) - {"CONCURRENCY", "RATE"}:
            raise ImagegenConfigurationError(
                f'IMAGEGEN["TASK_OPTIONS"]["RATE_LIMITS"][{alias!r}] must be a dict with '
                '"CONCURRENCY" (an integer) and/or "RATE" (such as "50/m").'
            )
        concurrency = config.get("CONCURRENCY")
        if concurrency is not None and (
            isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1
        ):
            raise ImagegenConfigurationError(
                f'IMAGEGEN["TASK_OPTIONS"]["RATE_LIMITS"][{alias!r}]["CONCURRENCY"] must be a '
                f"positive integer, not {concurrency!r}."
            )
        rate = parse_rate(config["RATE"]) if config.get("RATE") else None
        return cls(alias, concurrency, rate, cache_alias, float(lease))

    @property
    def cache(self) -> Any:
        return caches[self.cache_alias]

    def slot_key(self, index: int) -> str:
        return f"{PREFIX}:{self.alias}:slot:{index}"

    def window_key(self, window: int) -> str:
        return f"{PREFIX}:{self.alias}:rate:{window}"


@dataclass
class Ticket:
    """The answer of :func:`acquire`: a place to run now, or how long to wait for one."""

    limit: Limit | None = None
    granted: bool = True
    #: Seconds to wait before asking again, when not granted.
    retry_after: float = 0.0
    #: Why not granted: "concurrency" or "rate".
    reason: str = ""
    slot: str | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def renew(self) -> None:
        """Keep the concurrency slot for another lease (called by the job's heartbeat)."""
        if self.slot is not None and self.limit is not None:
            self.limit.cache.touch(self.slot, self.limit.lease)

    def release(self) -> None:
        """Give the concurrency slot back, if this ticket still holds it."""
        if self.slot is None or self.limit is None:
            return
        slot, self.slot = self.slot, None
        try:
            cache = self.limit.cache
            # Another job may have taken the slot after ours expired: leave theirs alone.
            if cache.get(slot) == self.token:
                cache.delete(slot)
        except Exception:  # the slot expires by itself
            logger.warning("imagegen: could not release limiter slot %s", slot, exc_info=True)


def acquire(limit: Limit | None, *, now: float | None = None) -> Ticket:
    """Take a concurrency slot and count one call against the rate, or say how long to wait.

    The slot is taken first and given back if the rate is exhausted, so a job that waits holds
    nothing. A ticket for no limit is always granted.
    """
    if limit is None:
        return Ticket()
    ticket = Ticket(limit)
    cache = limit.cache
    if limit.concurrency:
        # Start at a random slot, so workers do not all queue on slot 0.
        first = random.randrange(limit.concurrency)
        for offset in range(limit.concurrency):
            key = limit.slot_key((first + offset) % limit.concurrency)
            if cache.add(key, ticket.token, limit.lease):
                ticket.slot = key
                break
        else:
            return Ticket(limit, granted=False, retry_after=1.0, reason="concurrency")
    if limit.rate:
        calls, period = limit.rate
        now = time.time() if now is None else now
        window = math.floor(now / period)
        key = limit.window_key(window)
        used = 1
        for _ in range(3):
            cache.add(key, 0, period + 1)
            try:
                used = cache.incr(key)
                break
            except ValueError:  # the key expired between add() and incr(): start again
                continue
        if used > calls:
            ticket.release()
            wait = (window + 1) * period - now
            return Ticket(limit, granted=False, retry_after=max(wait, 0.05), reason="rate")
    return ticket
