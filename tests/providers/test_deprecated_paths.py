"""Tests for the old module paths of the HTTP layer: each still imports, with a warning.

``imagegen.providers.jobs``, ``.polling``, ``.outputs`` and ``.inputs`` moved into
:mod:`imagegen.providers.http` and stay one release as shims. A module is imported once per
process, so each test imports its shim afresh, with a plain ``import`` so that the warning can
be seen to point at the importing line (``stacklevel=2``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from imagegen import providers
from imagegen.providers import http
from imagegen.providers.http import inputs, outputs, polling
from imagegen.types import CallContext
from tests.conftest import png_bytes
from tests.providers.http.test_polling import answers, is_done, make

SHIMS = ("jobs", "polling", "outputs", "inputs")


@pytest.fixture(autouse=True)
def forget_shims() -> Iterator[None]:
    """Make the shims import afresh (and warn) in each test, and forget them again after."""

    def forget() -> None:
        for name in SHIMS:
            sys.modules.pop(f"imagegen.providers.{name}", None)
            if name in vars(providers):
                delattr(providers, name)

    forget()
    yield
    forget()


def test_jobs_shim_warns_and_gives_the_job_provider() -> None:
    with pytest.warns(DeprecationWarning, match=r"imagegen\.providers\.http") as caught:
        import imagegen.providers.jobs as shim
    assert shim.JobProvider is http.JobProvider
    assert [warning.filename for warning in caught] == [__file__]


def test_polling_shim_warns_and_still_polls() -> None:
    with pytest.warns(DeprecationWarning, match=r"imagegen\.providers\.http"):
        import imagegen.providers.polling as shim
    assert (shim.Clock, shim.ManualClock) == (http.Clock, http.ManualClock)
    assert shim.submit_or_resume is polling.submit_or_resume
    assert shim.DEFAULT_POLL_TIMEOUT == polling.DEFAULT_POLL_TIMEOUT
    provider = make()
    assert shim.poll(provider, answers("pending", "done"), is_done, context=CallContext()) == "done"
    assert provider.clock.sleeps == [1.0]


def test_outputs_shim_warns_and_still_decodes() -> None:
    with pytest.warns(DeprecationWarning, match=r"imagegen\.providers\.http\.outputs"):
        import imagegen.providers.outputs as shim
    for name in ("FORMAT_MIME", "as_int", "as_number", "count", "dicts", "image_output"):
        assert getattr(shim, name) is getattr(outputs, name)
    assert shim.image_mime is outputs.image_mime
    assert shim.decode_base64(make(), inputs.b64(png_bytes())) == png_bytes()


def test_inputs_shim_warns_and_gives_the_builders() -> None:
    with pytest.warns(DeprecationWarning, match=r"imagegen\.providers\.http\.inputs"):
        import imagegen.providers.inputs as shim
    for name in ("b64", "data_url", "file_part", "present"):
        assert getattr(shim, name) is getattr(inputs, name)
