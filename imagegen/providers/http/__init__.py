"""The HTTP layer every remote provider is built on: its base classes and shared plumbing.

Subclass :class:`HttpProvider` for a vendor reached over HTTPS with an API key, or
:class:`JobProvider` for one that answers with a job to poll. The modules of this package hold
what those classes use, each taking plain values rather than a provider:

- :mod:`~imagegen.providers.http.provider`: :class:`HttpProvider`, where everything that raises
  in the provider's name lives (sending, the status mapping, decoding, downloading, polling);
- :mod:`~imagegen.providers.http.jobs`: :class:`JobProvider`, the poll OPTIONS and job-id checks;
- :mod:`~imagegen.providers.http.transport`: the pooled client, timeouts and capped body reads;
- :mod:`~imagegen.providers.http.errors`: reading error bodies and ``Retry-After``;
- :mod:`~imagegen.providers.http.credentials`: the API key as a :class:`Secret`, and redaction;
- :mod:`~imagegen.providers.http.hosts` and :mod:`~imagegen.providers.http.download`: which result
  URLs may be fetched, and the :class:`SafeDownloader` that fetches them;
- :mod:`~imagegen.providers.http.polling`: submitting a job once, and the :class:`Clock`;
- :mod:`~imagegen.providers.http.inputs` and :mod:`~imagegen.providers.http.outputs`: building
  request payloads and reading answers (base64, data URLs, multipart parts, MIME sniffing).
"""

from __future__ import annotations

from imagegen.providers.http.credentials import MAX_QUOTED_CHARS, Secret
from imagegen.providers.http.download import SafeDownloader
from imagegen.providers.http.errors import ApiError
from imagegen.providers.http.jobs import JobProvider
from imagegen.providers.http.outputs import image_mime
from imagegen.providers.http.polling import Clock, ManualClock
from imagegen.providers.http.provider import HttpProvider

__all__ = [
    "MAX_QUOTED_CHARS",
    "ApiError",
    "Clock",
    "HttpProvider",
    "JobProvider",
    "ManualClock",
    "SafeDownloader",
    "Secret",
    "image_mime",
]
