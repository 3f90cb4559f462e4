"""Deprecated: moved to :mod:`imagegen.providers.http.inputs`; kept for one release."""

from __future__ import annotations

import warnings

warnings.warn(
    "imagegen.providers.inputs is deprecated; import from imagegen.providers.http.inputs.",
    DeprecationWarning,
    stacklevel=2,
)

from imagegen.providers.http.inputs import b64, data_url, file_part, present  # noqa: E402

__all__ = ["b64", "data_url", "file_part", "present"]
