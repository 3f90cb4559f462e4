"""Deprecated: polling moved to :mod:`imagegen.providers.http.polling`; kept for one release.

``Clock`` and ``ManualClock`` are importable from :mod:`imagegen.providers.http`; ``poll`` is
the method :meth:`HttpProvider.poll_until <imagegen.providers.http.HttpProvider.poll_until>`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

warnings.warn(
    "imagegen.providers.polling is deprecated; import Clock and ManualClock from "
    "imagegen.providers.http, and poll with HttpProvider.poll_until().",
    DeprecationWarning,
    stacklevel=2,
)

from imagegen.providers.http.polling import (  # noqa: E402
    DEFAULT_POLL_TIMEOUT,
    Clock,
    ManualClock,
    submit_or_resume,
)

__all__ = ["DEFAULT_POLL_TIMEOUT", "Clock", "ManualClock", "poll", "submit_or_resume"]

T = TypeVar("T")


def poll(provider: Any, fetch: Callable[[], T], done: Callable[[T], bool], **kw: Any) -> T:
    """Poll until ``done(fetch())``: the old spelling of ``provider.poll_until(fetch, done)``."""
    return provider.poll_until(fetch, done, **kw)
