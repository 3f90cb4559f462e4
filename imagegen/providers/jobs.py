"""Deprecated: `JobProvider` moved to :mod:`imagegen.providers.http`; kept for one release."""

from __future__ import annotations

import warnings

warnings.warn(
    "imagegen.providers.jobs is deprecated; import JobProvider from imagegen.providers.http.",
    DeprecationWarning,
    stacklevel=2,
)

from imagegen.providers.http.jobs import JobProvider  # noqa: E402

__all__ = ["JobProvider"]
