"""Providers whose calls are asynchronous jobs: the poll OPTIONS, checked job ids, polling.

:class:`JobProvider` is the base of the providers that submit a job and then poll for it
(Replicate, Black Forest Labs, Leonardo.Ai, Stability AI's creative upscale). It takes the
``poll_interval`` and ``poll_timeout`` OPTIONS once, refuses a job id that could climb out of a
URL path or smuggle anything onto the ledger row, and polls with those OPTIONS through
:meth:`~imagegen.providers.http.HttpProvider.poll_until`. Submitting goes through
:meth:`~imagegen.providers.http.HttpProvider.submit_or_resume`, so a redelivered task polls the
recorded job instead of paying for a new one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from imagegen.exceptions import InvalidProviderError, InvalidResponse
from imagegen.providers.http.provider import HttpProvider
from imagegen.types import CallContext

__all__ = ["JobProvider"]

T = TypeVar("T")


class JobProvider(HttpProvider):
    """Base class of HTTP providers that submit a job and poll for its result.

    OPTIONS besides the common ones: ``poll_interval`` (seconds before the second poll, growing
    up to :attr:`max_poll_interval`; default :attr:`default_poll_interval`) and ``poll_timeout``
    (seconds to poll when the call has no earlier deadline, default 600).
    """

    #: Seconds before the second poll when OPTIONS give no ``poll_interval``.
    default_poll_interval: ClassVar[float] = 1.0
    #: The longest wait between polls once it has grown (never shorter than ``poll_interval``).
    max_poll_interval: ClassVar[float] = 10.0
    #: What a job id must look like in full: a plain token, never anything path-like.
    job_id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z0-9_-]{1,128}")
    #: What the vendor calls its job ids, in messages.
    job_noun: ClassVar[str] = "job id"

    def __init__(
        self,
        *,
        poll_interval: float | None = None,
        poll_timeout: float = 600.0,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        interval = self.default_poll_interval if poll_interval is None else poll_interval
        self.poll_interval, self.poll_timeout = self.poll_options(
            float(interval), float(poll_timeout)
        )

    def poll_options(self, interval: float, timeout: float) -> tuple[float, float]:
        """Return the ``poll_interval`` and ``poll_timeout`` to use; both must be positive."""
        if not interval > 0 or not timeout > 0:
            raise InvalidProviderError(
                f'OPTIONS["poll_interval"] and ["poll_timeout"] of {self.config_path} '
                "must be positive."
            )
        return interval, timeout

    def checked_job_id(self, job_id: Any) -> str:
        """Return ``job_id`` if it matches :attr:`job_id_pattern`; raise ``InvalidResponse``.

        The id goes into URL paths and onto the ledger row.
        """
        if not isinstance(job_id, str) or not self.job_id_pattern.fullmatch(job_id):
            message = f"{self.quote(repr(job_id))} is not a usable {self.name} {self.job_noun}."
            raise self.fail(InvalidResponse, "invalid_job_id", message)
        return job_id

    def call_json(self, method: str, url: str, context: CallContext, **kwargs: Any) -> dict:
        """Send one request within the call's deadline and return its JSON object."""
        return self.json_object(self.request(method, url, deadline=context.deadline, **kwargs))

    def poll_job(
        self,
        fetch: Callable[[], T],
        done: Callable[[T], bool],
        *,
        context: CallContext,
        job_id: str,
        **kw: Any,
    ) -> T:
        """Poll job ``job_id`` until ``done(fetch())``, paced by the poll OPTIONS.

        See :meth:`~imagegen.providers.http.HttpProvider.poll_until`; ``kw`` may add
        ``cancel_on_timeout``.
        """
        return self.poll_until(
            fetch,
            done,
            context=context,
            job_id=job_id,
            interval=self.poll_interval,
            max_interval=max(self.max_poll_interval, self.poll_interval),
            timeout=self.poll_timeout,
            **kw,
        )
