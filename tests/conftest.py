"""Shared fixtures: a clean media directory, reset providers, and service gating."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator

import pytest
from django.test import TestCase

REQUIRE_SERVICES = os.environ.get("IMAGEGEN_REQUIRE_SERVICES") == "1"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Give every test its own MEDIA_ROOT, so "no file left behind" is checkable."""
    from imagegen.signals import wait_for_background

    settings.MEDIA_ROOT = str(tmp_path / "media")
    os.makedirs(settings.MEDIA_ROOT, exist_ok=True)
    yield
    # Work a test's generate() left on the background thread ends with the test, in its
    # settings and its media directory.
    assert wait_for_background(timeout=60), "background work still running after a minute"
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture(autouse=True)
def _reset_imagegen():
    from imagegen.conf import reset_caches
    from imagegen.providers.locmem import LocmemProvider

    reset_caches()
    LocmemProvider.reset()
    yield
    reset_caches()
    LocmemProvider.reset()


def media_files(settings) -> list[str]:
    """Return every file under MEDIA_ROOT, relative to it."""
    found = []
    for root, _dirs, files in os.walk(settings.MEDIA_ROOT):
        for name in files:
            found.append(os.path.relpath(os.path.join(root, name), settings.MEDIA_ROOT))
    return sorted(found)


@contextlib.contextmanager
def deriving() -> Iterator[None]:
    """Run, on leaving the block, the on-commit work started in it: derived files, placeholders.

    A ``django_db`` test runs inside a transaction that never commits, so the follow-up job a
    generation dispatches when its transaction commits would never run by itself.
    """
    with TestCase.captureOnCommitCallbacks(execute=True):
        yield


def service_available(host: str, port: int) -> bool:
    """Return whether something listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, with IMAGEGEN_REQUIRE_SERVICES=1, fail) when a service is down."""
    if service_available(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and IMAGEGEN_REQUIRE_SERVICES=1 is set.")
    pytest.skip(message)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Check that PostgreSQL is up before pytest-django tries to create the test database."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("postgresql"):
        require_service("PostgreSQL", db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))


@pytest.fixture
def locmem(settings):
    """Configure a "test" alias on the LocmemProvider (as default) and return the outbox."""
    from imagegen.providers import locmem as locmem_module

    settings.IMAGEGEN = {
        "DEFAULT_PROVIDER": "test",
        "PROVIDERS": {
            "test": {"BACKEND": "imagegen.providers.locmem.LocmemProvider"},
            "paid": {
                "BACKEND": "imagegen.providers.locmem.LocmemProvider",
                "OPTIONS": {"cost": "0.04"},
            },
            "default": {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"},
        },
        "PRICES": {"locmem": {"per_image": "0.04"}},
        # Derived files have their own tests; most pipeline tests need only the original.
        "DERIVATIVE_WIDTHS": [],
    }
    return locmem_module.requests


def png_bytes(width: int = 64, height: int = 48, color=(200, 30, 30), fmt: str = "PNG") -> bytes:
    """Return an encoded solid image."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format=fmt)
    return buffer.getvalue()
