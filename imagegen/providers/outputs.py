"""Deprecated: moved to :mod:`imagegen.providers.http.outputs`; kept for one release.

``decode_base64`` and ``download_images`` are now methods of
:class:`~imagegen.providers.http.HttpProvider`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

warnings.warn(
    "imagegen.providers.outputs is deprecated; import from imagegen.providers.http.outputs, "
    "and call decode_base64() and download_images() on the provider.",
    DeprecationWarning,
    stacklevel=2,
)

from imagegen.providers.http.outputs import (  # noqa: E402
    FORMAT_MIME,
    as_int,
    as_number,
    count,
    dicts,
    image_mime,
    image_output,
    json_number,
)

__all__ = [
    "FORMAT_MIME",
    "as_int",
    "as_number",
    "count",
    "decode_base64",
    "dicts",
    "download_images",
    "image_mime",
    "image_output",
    "json_number",
]


def decode_base64(provider: Any, data: Any, *, max_bytes: int | None = None) -> bytes:
    """Decode one base64 image: the old spelling of ``provider.decode_base64(data)``."""
    return provider.decode_base64(data, max_bytes=max_bytes)


def download_images(provider: Any, urls: Iterable[str], context: Any, **kw: Any) -> list[Any]:
    """Download result URLs: the old spelling of ``provider.download_images(urls, context)``."""
    return provider.download_images(urls, context, **kw)
