"""What does importing imagegen and all its providers cost, against importing what it builds on?

Each side is a fresh interpreter that imports one set of modules and reports its own CPU time
(user + system, ``resource.getrusage``) and peak resident memory (``ru_maxrss``):

- **baseline**: ``import django, django.conf, httpx, PIL.Image``, what any project that uses
  imagegen has imported anyway;
- **imagegen**: the same, then ``imagegen`` and every built-in provider module.

The two sides alternate, ROUNDS times each (15, or the ``ROUNDS`` environment variable), so
both see the same machine state; the script prints the medians and their ratios, and the ratio
of the CPU minima, which other jobs on the machine disturb least. Issue 18's targets: at most
1.2x the CPU time and 1.1x the peak memory. Interpreter start-up is part of both sides, as it
is of every real process.

It measures twice, because compiling source costs more than importing it:

- **installed**: every module is read from its compiled bytecode, as from an installed wheel.
  The children read and write their ``.pyc`` files under a temporary ``PYTHONPYCACHEPREFIX``,
  whatever ``PYTHONDONTWRITEBYTECODE`` says, and a warm-up round fills it;
- **from source**: the same, except that imagegen's own modules have no bytecode and are
  compiled on every run: an editable checkout under ``PYTHONDONTWRITEBYTECODE=1``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = int(os.environ.get("ROUNDS", "15"))

BASELINE = "import django, django.conf, httpx, PIL.Image"
IMAGEGEN = (
    BASELINE
    + "; import imagegen, "
    + ", ".join(
        f"imagegen.providers.{name}"
        for name in (
            "openai",
            "stability",
            "replicate",
            "google",
            "leonardo",
            "bfl",
            "placeholder",
            "locmem",
        )
    )
)

#: Run inside the child after the imports: its own CPU time and peak RSS, as JSON.
REPORT = (
    "; import json, resource, sys; u = resource.getrusage(resource.RUSAGE_SELF); "
    "json.dump({'cpu': u.ru_utime + u.ru_stime, 'rss': u.ru_maxrss}, sys.stdout)"
)


def measure(code: str, env: dict[str, str]) -> dict[str, float]:
    """Run ``code`` in a fresh interpreter and return its CPU seconds and peak RSS (KiB)."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", code + REPORT],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


def compare(title: str, env: dict[str, str]) -> None:
    """Run both sides alternately ROUNDS times with ``env``; print medians, minima and ratios."""
    sides: dict[str, list[dict[str, float]]] = {"baseline": [], "imagegen": []}
    for _ in range(ROUNDS):
        sides["baseline"].append(measure(BASELINE, env))
        sides["imagegen"].append(measure(IMAGEGEN, env))
    stats = {
        name: {
            (key, how.__name__): how(run[key] for run in runs)
            for key in ("cpu", "rss")
            for how in (statistics.median, min)
        }
        for name, runs in sides.items()
    }
    print(f"{title} ({ROUNDS} runs each):")
    for name, stat in stats.items():
        print(
            f"  {name:9} CPU median {stat['cpu', 'median'] * 1000:6.1f} ms"
            f" (min {stat['cpu', 'min'] * 1000:6.1f})"
            f"   peak RSS median {stat['rss', 'median'] / 1024:5.1f} MiB"
        )
    base, ours = stats["baseline"], stats["imagegen"]
    cpu = ours["cpu", "median"] / base["cpu", "median"]
    cpu_min = ours["cpu", "min"] / base["cpu", "min"]
    rss = ours["rss", "median"] / base["rss", "median"]
    print(
        f"  ratio     CPU {cpu:.2f}x (of the minima {cpu_min:.2f}x; target 1.2)"
        f"   peak RSS {rss:.2f}x (target 1.1)"
    )


def main() -> None:
    pycache = tempfile.mkdtemp(prefix="imagegen-import-cost-")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    try:
        measure(BASELINE, env)  # compile both sides' bytecode and warm the file system cache
        measure(IMAGEGEN, env)
        compare("installed: everything from bytecode", env)
        # The prefix mirrors absolute paths: drop imagegen's bytecode, keep everyone else's.
        shutil.rmtree(os.path.join(pycache, ROOT.lstrip(os.sep), "imagegen"))
        compare(
            "from source: imagegen compiled on every run",
            {**env, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    finally:
        shutil.rmtree(pycache, ignore_errors=True)


if __name__ == "__main__":
    main()
