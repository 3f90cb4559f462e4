"""Fakes for your own test suite: a scripted HTTP API and real-shaped provider answers.

:class:`MockAPI` stands in for a vendor's server behind ``httpx.MockTransport``: queue answers,
hand ``api.transport`` to a provider (:func:`fake_provider_settings` builds the whole
``IMAGEGEN["PROVIDERS"]`` entry), then assert on :attr:`MockAPI.requests`. The builders return
``httpx.Response`` objects shaped exactly like what OpenAI, Stability AI and Google send, so the
real provider runs its real request building, error mapping and parsing (and
:class:`StabilityServer` fakes Stability AI's whole v2beta protocol, checking every form)::

    api = MockAPI().reply(openai_image_response([png_bytes(64, 64)]))
    settings.IMAGEGEN = {"PROVIDERS": {"default": fake_provider_settings(OPENAI, api)}}

Nothing here needs pytest or Django settings; only ``httpx`` (and Pillow for :func:`png_bytes`).
:mod:`imagegen.testing.credentials`, imported on its own, makes certificate chains and images
with signed C2PA Content Credentials (it needs the ``c2pa`` extra).
"""

from __future__ import annotations

from imagegen.testing.google_responses import (
    gemini_blocked_response,
    gemini_image_response,
    google_error,
)
from imagegen.testing.images import png_bytes
from imagegen.testing.mock_api import (
    GOOGLE,
    OPENAI,
    STABILITY,
    MockAPI,
    Part,
    fake_provider_settings,
    multipart_parts,
)
from imagegen.testing.mock_api import Handler as Handler
from imagegen.testing.openai_responses import openai_error, openai_image_response
from imagegen.testing.stability_responses import (
    StabilityServer,
    stability_error,
    stability_image_response,
)

__all__ = [
    "GOOGLE",
    "OPENAI",
    "STABILITY",
    "MockAPI",
    "Part",
    "StabilityServer",
    "fake_provider_settings",
    "gemini_blocked_response",
    "gemini_image_response",
    "google_error",
    "multipart_parts",
    "openai_error",
    "openai_image_response",
    "png_bytes",
    "stability_error",
    "stability_image_response",
]
