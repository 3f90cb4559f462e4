"""A cap holds on SQLite too: callers in three processes, several threads each, one file."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.burst import run_in_processes

ROOT = Path(__file__).resolve().parents[2]
PROCESSES, THREADS, IMAGES = 3, 6, 4


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_callers_in_several_processes_on_sqlite_make_exactly_the_capped_images(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_sqlite_load",
        "IMAGEGEN_LOAD_DB": str(tmp_path / "load.sqlite3"),
        "IMAGEGEN_TEST_MEDIA": str(tmp_path / "media"),
        "IMAGEGEN_IT_BUDGET": str(Decimal("0.05") * IMAGES),
        "PYTHONPATH": str(ROOT),
    }
    migrated = run([sys.executable, "-m", "django", "migrate", "-v", "0"], env)
    assert migrated.returncode == 0, migrated.stderr
    counts = run_in_processes(env, PROCESSES, THREADS)
    assert sum(c["errors"] for c in counts) == 0, counts
    assert sum(c["recorded"] for c in counts) == IMAGES, counts
    check = run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); "
            "from imagegen.models import BudgetUse, Generation; "
            "u = BudgetUse.objects.get(cap='site::month'); "
            "print(Generation.objects.filter(status='succeeded').count(), u.spent, u.reserved)",
        ],
        env,
    )
    assert check.returncode == 0, check.stderr
    succeeded, spent, reserved = check.stdout.split()
    assert (int(succeeded), Decimal(spent), Decimal(reserved)) == (IMAGES, Decimal("0.2"), 0)


pytestmark = pytest.mark.slow
