"""Deprecated: retry and cancel moved to :mod:`imagegen.services`; this module is removed in 0.2.

``imagegen.control.retry``, ``cancel``, ``NotRetryable`` and ``RETRYABLE`` still work for one
release, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings

from imagegen.services import RETRYABLE, NotRetryable, cancel, retry

warnings.warn(
    "imagegen.control is deprecated; use imagegen.services.retry(), cancel(), NotRetryable "
    "and RETRYABLE instead.",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["RETRYABLE", "NotRetryable", "cancel", "retry"]
