"""The batch protocol: providers that run many requests as one discounted, asynchronous job.

OpenAI's Batch API and Gemini's Batch Mode take a file (or a list) of requests, run them within
24 hours at about half the synchronous price, and return one result per request, matched by
the key imagegen gave it. A provider that offers this implements :class:`BatchProvider`'s
methods; the pipeline (:mod:`imagegen.pipeline.batches`) writes the rows, groups them, and
calls these methods. Like every provider method, they touch no ORM and no storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from imagegen.types import ImageRequest, ImageResult

#: The batch states imagegen knows, in the words of OpenAI's Batch API; every provider's own
#: states are mapped onto these (Gemini's ``BATCH_STATE_RUNNING`` is ``in_progress``).
STATES = (
    "validating",
    "in_progress",
    "finalizing",
    "completed",
    "failed",
    "expired",
    "cancelling",
    "cancelled",
)
#: States after which a batch changes no more.
FINAL_STATES = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True, kw_only=True)
class BatchItem:
    """One request of a batch and the key its result comes back under (a row's id)."""

    custom_id: str
    request: ImageRequest


@dataclass(frozen=True, kw_only=True)
class BatchState:
    """What the provider says about a batch when it is created, polled or cancelled."""

    batch_id: str
    #: One of :data:`STATES`.
    status: str
    #: The provider's own word for the state ("BATCH_STATE_RUNNING"), for the admin.
    provider_status: str = ""
    total: int = 0
    completed: int = 0
    failed: int = 0
    #: Why the whole batch failed, in the provider's words; ``""`` otherwise.
    error: str = ""
    #: What :meth:`BatchProvider.batch_results` needs to read the results (file ids, inline
    #: responses' location); JSON-serialisable, stored on the batch's row.
    output: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATES


@dataclass(frozen=True, kw_only=True)
class BatchOutcome:
    """The result of one request of a batch: images, or the provider's message why not."""

    custom_id: str
    #: The images and usage of a request that succeeded. Its ``cost``, when set, is what the
    #: provider charged at the batch price; None lets the pipeline price ``usage`` with the
    #: catalog's rule times the model's ``batch_factor``.
    result: ImageResult | None = None
    #: The provider's message for a request that failed inside the batch.
    error: str = ""
    #: True when the provider refused the request's content (moderation).
    refused: bool = False


@runtime_checkable
class BatchProvider(Protocol):
    """What a provider with a batch API implements besides :class:`BaseProvider`."""

    #: Most requests, and most bytes of request data, one batch may hold.
    batch_max_requests: ClassVar[int]
    batch_max_bytes: ClassVar[int]

    def batch_submit(
        self,
        items: Iterable[BatchItem],
        *,
        key: str,
        on_created: Callable[[str], None] | None = None,
    ) -> BatchState:
        """Send ``items`` as one batch labelled ``key``; return its first state.

        The request data is streamed, never held whole. ``on_created`` is called with the
        provider's batch id as soon as it is known, before anything else can fail.
        """
        ...

    def batch_find(self, key: str) -> BatchState | None:
        """Return the batch labelled ``key`` if the provider has one (recovery after a crash
        between creating the batch and recording its id), else None."""
        ...

    def batch_poll(self, batch_id: str) -> BatchState:
        """Return the batch's current state."""
        ...

    def batch_results(self, state: BatchState) -> Iterator[BatchOutcome]:
        """Yield the outcome of each finished request of a batch, streaming its results."""
        ...

    def batch_cancel(self, batch_id: str) -> BatchState:
        """Ask the provider to cancel the batch; return its state."""
        ...
