"""Many callers at once: ``python -m tests.integration.burst THREADS START`` in a subprocess.

Each of ``THREADS`` threads calls ``imagegen.generate()`` once, all released together at the
``START`` time (seconds since the epoch), against the database and settings the environment
names: ``tests.integration.settings`` with ``IMAGEGEN_IT_*``, or
``tests.settings_sqlite_load``. It prints one JSON line: how many calls were recorded, how
many the budget refused, and how many failed otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.integration.settings")


def run_in_processes(env: dict[str, str], processes: int, threads: int) -> list[dict[str, int]]:
    """Start ``processes`` of ``threads`` callers each, released together; return their counts.

    ``env`` is the environment of every process (settings module, database, media).
    """
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    start = time.time() + 3.0  # every process has set Django up by then
    command = [sys.executable, "-m", "tests.integration.burst", str(threads), str(start)]
    procs = [
        subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    counts = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"A caller process failed:\n{out}")
        counts.append(json.loads(out.strip().splitlines()[-1]))
    return counts


def main(threads: int, start: float) -> dict[str, int]:
    django.setup()
    from django.db import connection

    import imagegen
    from imagegen.exceptions import BudgetExceeded

    if os.environ.get("IMAGEGEN_IT_RUNNER") == "celery":
        from tests.integration.celery_app import app

        app.set_current()
    counts = {"recorded": 0, "refused": 0, "errors": 0}
    lock = threading.Lock()

    def call(index: int) -> None:
        time.sleep(max(0.0, start - time.time()))
        try:
            imagegen.generate(
                prompt=f"burst {os.getpid()} {index}",
                provider="it",
                width=64,
                height=36,
                extra={"key": f"{os.getpid()}-{index}"},
            )
            outcome = "recorded"
        except BudgetExceeded:
            outcome = "refused"
        except Exception as err:  # noqa: BLE001 - counted and shown, so the test says what broke
            sys.stderr.write(f"error: {type(err).__name__}: {err}\n")
            outcome = "errors"
        finally:
            connection.close()
        with lock:
            counts[outcome] += 1

    workers = [threading.Thread(target=call, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return counts


if __name__ == "__main__":
    sys.stdout.write(json.dumps(main(int(sys.argv[1]), float(sys.argv[2]))) + "\n")
