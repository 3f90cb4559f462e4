"""``scripts/install-chromium.sh`` (``make browsers``) installs only Chromium, and gently.

The script runs against stand-ins for ``apt-get``, ``apt-cache`` and ``sudo`` that log their
arguments, so these tests change nothing on the machine.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "install-chromium.sh"

# The stand-ins read their behaviour from files in $STUB (see the fixture).
APT_GET = r"""#!/usr/bin/env bash
echo "apt-get $*" >> "$STUB/log"
case " $* " in
  *" update "*) touch "$STUB/updated"; exit 0 ;;
  *" -s "*) cat "$STUB/simulation" 2>/dev/null; exit 0 ;;
  *" install "*)
    if [ -e "$STUB/stale" ] && [ ! -e "$STUB/updated" ]; then exit 100; fi
    printf '#!/bin/sh\n' > "$IMAGEGEN_CHROMIUM_PACKAGED"; chmod +x "$IMAGEGEN_CHROMIUM_PACKAGED"
    exit 0 ;;
esac
exit 1
"""
APT_CACHE = r"""#!/usr/bin/env bash
echo "apt-cache $*" >> "$STUB/log"
echo "chromium:"
echo "  Installed: (none)"
if [ -e "$STUB/no-lists" ] && [ ! -e "$STUB/updated" ]; then
  echo "  Candidate: (none)"
else
  echo "  Candidate: 156.0-1~deb12u1"
fi
"""
SUDO = """#!/usr/bin/env bash
echo "sudo $*" >> "$STUB/log"
exec "$@"
"""
NEW_ONLY = "Inst libopus0 (1.3.1-3 Debian:12/stable [amd64])\nInst chromium (156.0-1 [amd64])\n"
UPGRADES = "Inst libudev1 [252.38-1] (252.39-1 Debian:12/stable [amd64])\n" + NEW_ONLY


@pytest.fixture
def apt(tmp_path):
    """Return a function that runs the script with the stand-ins; the log is in ``apt.log``."""
    stub = tmp_path / "stub"
    bin_dir = stub / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("apt-get", APT_GET), ("apt-cache", APT_CACHE), ("sudo", SUDO)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    chromium = tmp_path / "usr-bin-chromium"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGEN_")}
    env |= {
        "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
        "STUB": str(stub),
        "IMAGEGEN_CHROMIUM_PACKAGED": str(chromium),
    }

    def run(simulation: str = NEW_ONLY, *flags: str) -> subprocess.CompletedProcess[str]:
        (stub / "simulation").write_text(simulation)
        for flag in flags:
            (stub / flag).touch()
        return subprocess.run(
            ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30
        )

    run.log = stub / "log"
    run.chromium = chromium
    return run


def apt_calls(apt) -> list[str]:
    lines = apt.log.read_text().splitlines() if apt.log.exists() else []
    return [line for line in lines if line.startswith("apt-get") and " -s " not in line]


def test_installs_without_recommends_and_without_updating(apt):
    proc = apt()
    assert proc.returncode == 0, proc.stderr
    assert apt.chromium.exists()
    calls = apt_calls(apt)
    assert calls == ["apt-get install -y -q --no-install-recommends --no-upgrade chromium"]


def test_updates_the_lists_first_only_when_they_lack_chromium(apt):
    proc = apt(NEW_ONLY, "no-lists")
    assert proc.returncode == 0, proc.stderr
    calls = apt_calls(apt)
    assert calls[0] == "apt-get update -q"
    assert calls[1:] == ["apt-get install -y -q --no-install-recommends --no-upgrade chromium"]


def test_stale_lists_are_updated_once_and_the_install_retried(apt):
    proc = apt(NEW_ONLY, "stale")
    assert proc.returncode == 0, proc.stderr
    assert [call.split()[1] for call in apt_calls(apt)] == ["install", "update", "install"]


def test_refuses_to_upgrade_installed_packages(apt):
    proc = apt(UPGRADES)
    assert proc.returncode == 1
    assert "libudev1" in proc.stderr and "never upgrades" in proc.stderr
    assert apt_calls(apt) == []
    assert not apt.chromium.exists()


def test_does_nothing_when_chromium_is_there(apt):
    apt.chromium.write_text("#!/bin/sh\n")
    apt.chromium.chmod(0o755)
    proc = apt(UPGRADES)
    assert proc.returncode == 0
    assert "is installed" in proc.stdout
    assert not apt.log.exists()


def test_never_runs_apt_get_upgrade():
    text = SCRIPT.read_text()
    assert "apt-get upgrade" not in text and "dist-upgrade" not in text
    assert "--no-install-recommends" in text
