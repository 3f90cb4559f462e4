"""Fixtures of the integration tests: services, a test run's Redis names, a real Celery worker.

The worker is a ``celery worker`` subprocess on the test database (pytest-django's, shared
because the tests use ``transactional_db``), killed at teardown. These tests are marked
``postgres``: they run in the PostgreSQL pass of ``make test`` and skip on SQLite, whose
in-memory test database no other process can see.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import require_service

REPO = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("IMAGEGEN_IT_REDIS", "redis://127.0.0.1:6379/11")


@pytest.fixture
def services(settings):
    """Skip unless PostgreSQL is the database and Redis is up (fail if they must be)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip(
            "integration tests run on PostgreSQL: pytest -m postgres --ds=tests.settings_postgres"
        )
    require_service("Redis", "127.0.0.1", 6379)


@pytest.fixture
def run_id(services) -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def redis_client(run_id, monkeypatch):
    """The run's Redis client; the provider's keys (and the queue) are deleted afterwards."""
    import redis

    monkeypatch.setenv("IMAGEGEN_IT_RUN", run_id)
    monkeypatch.setenv("IMAGEGEN_IT_REDIS", REDIS_URL)
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    # Messages a killed worker left unacknowledged would be restored to this run's queue by
    # a later run's worker: drop them with the queue.
    queue = f"imagegen-it-{run_id}".encode()
    for tag, payload in client.hscan_iter("unacked"):
        if queue in payload:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
    for pattern in (f"it:{run_id}:*", f"*imagegen-it-{run_id}*", f"it-{run_id}:*"):
        keys = list(client.scan_iter(pattern, count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def celery_app(run_id, redis_client):
    """Make a Celery app on the run's queue current in this process, for dispatching."""
    from celery import _state  # noqa: PLC2701 - Celery has no public "current app" getter

    from tests.integration.celery_app import make_app

    previous = _state.get_current_app()
    app = make_app(REDIS_URL, f"imagegen-it-{run_id}")
    app.set_current()
    yield app
    app.close()
    previous.set_current()


@pytest.fixture
def it_settings(settings, run_id, redis_client):
    """Give this process the worker's IMAGEGEN and cache settings."""
    from tests.integration import settings as it

    settings.IMAGEGEN = it.IMAGEGEN
    settings.CACHES = {
        **it.CACHES,
        "default": {**it.CACHES["default"], "KEY_PREFIX": f"it-{run_id}"},
    }
    return settings


class Worker:
    """A ``celery worker`` subprocess in its own process group."""

    def __init__(self, env: dict[str, str], log: Path, concurrency: int, pool: str) -> None:
        self.env, self.log, self.concurrency, self.pool = env, log, concurrency, pool
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 30) -> Worker:
        self.starts += 1
        offset = self.log.stat().st_size if self.log.exists() else 0
        command = [
            sys.executable, "-m", "celery", "-A", "tests.integration.celery_app", "worker",
            f"--pool={self.pool}", f"--concurrency={self.concurrency}", "--loglevel=INFO",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "-n", f"it{self.starts}-{self.env['IMAGEGEN_IT_RUN']}@%h",
        ]  # fmt: skip
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                command, cwd=REPO, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"The Celery worker exited:\n{self.output()[-4000:]}")
            with open(self.log, "rb") as log:
                log.seek(offset)
                if b" ready." in log.read():
                    return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(
            f"The Celery worker did not start in {timeout} s:\n{self.output()[-4000:]}"
        )

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes: no warm shutdown, no acks."""
        if self.proc is not None:
            # The whole group: the pool's children too, even if the main process is gone.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def it_env(transactional_db, it_settings, celery_app, run_id) -> dict[str, str]:
    """Return the environment of a process that works on this run's database and queue."""
    from django.conf import settings
    from django.db import connection

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.integration.settings",
        "IMAGEGEN_IT_DB": connection.settings_dict["NAME"],
        "IMAGEGEN_TEST_MEDIA": str(settings.MEDIA_ROOT),
        "IMAGEGEN_IT_QUEUE": f"imagegen-it-{run_id}",
        "IMAGEGEN_IT_REDIS": REDIS_URL,
        "IMAGEGEN_IT_RUN": run_id,
        "PYTHONPATH": str(REPO),
    }


@pytest.fixture
def worker_factory(it_env, tmp_path):
    """Return a function starting a worker on the run's queue; every worker dies at teardown."""
    workers: list[Worker] = []

    def start(concurrency: int = 2, pool: str = "prefork") -> Worker:
        worker = Worker(it_env, tmp_path / "worker.log", concurrency, pool)
        workers.append(worker)
        return worker.start()

    yield start
    for worker in workers:
        worker.kill()
