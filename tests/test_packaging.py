"""The sdist and the wheel: their contents, their metadata, and a bare install that works.

These tests are marked ``slow``: they build both once (in an isolated build environment, so
hatchling comes from the package index) and install the wheel in a fresh virtualenv.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = [
    "imagegen/migrations/0001_initial.py",
    "imagegen/static/imagegen/admin.css",
    "imagegen/py.typed",
    "imagegen/locale/",
    # The Wagtail integration's chooser template, client-side controller and migration.
    "imagegen/contrib/wagtail/templates/wagtailimages/chooser/chooser.html",
    "imagegen/contrib/wagtail/static/imagegen_wagtail/generate.js",
    "imagegen/contrib/wagtail/migrations/0001_initial.py",
]
#: What the unit tests need from the sdist besides the package (``make test-sdist`` runs them).
SDIST_ONLY = [
    "tests/conftest.py",
    "tests/fixtures/",
    "example_project/manage.py",
    "scripts/install-chromium.sh",
    "docs/",
]
#: The optional dependencies a bare ``pip install django-imagegen`` must not pull in.
EXTRAS_ONLY = ["celery", "kombu", "billiard", "storages", "boto3", "c2pa", "wagtail"]

BARE_SETTINGS = """
SECRET_KEY = "bare-install"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "imagegen",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
MEDIA_ROOT = "media"
USE_TZ = True
"""

# The Celery runner and an S3 storage, named by a site that did not install the extras.
EXTRAS_SETTINGS = """
from bare_settings import *

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "images": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"bucket_name": "b"}},
}
IMAGEGEN = {"TASK_RUNNER": "celery", "STORAGE": "images"}
"""

GENERATE_SCRIPT = """
import importlib.util
import json
import json

import django
from django.core.management import call_command

django.setup()
import imagegen

call_command("migrate", verbosity=0)
generation = imagegen.generate(prompt="A lighthouse at dusk")
image = generation.images.get()
print("RESULT" + json.dumps({
    "imagegen": imagegen.__file__,
    "status": generation.status,
    "provider": generation.provider,
    "bytes": image.file.size,
    "installed": [name for name in %r if importlib.util.find_spec(name) is not None],
}))
"""


def run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output when it fails."""
    proc = subprocess.run(
        [str(arg) for arg in args], capture_output=True, text=True, check=False, **kwargs
    )
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout}{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the sdist and the wheel once, into a temporary directory."""
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--sdist", "--wheel", "-o", out, ROOT, timeout=600)
    return out


@pytest.mark.slow
def test_sdist_and_wheel_contents(dist):
    wheel = next(dist.glob("*.whl"))
    sdist = next(dist.glob("*.tar.gz"))
    wheel_names = zipfile.ZipFile(wheel).namelist()
    with tarfile.open(sdist) as archive:
        sdist_names = ["/".join(n.split("/")[1:]) for n in archive.getnames()]
    templates = [n for n in wheel_names if n.startswith("imagegen/templates/")]
    for names, where in ((wheel_names, "wheel"), (sdist_names, "sdist")):
        for required in REQUIRED:
            assert any(n.startswith(required) for n in names), f"{required} missing from {where}"
        assert [n for n in names if n.startswith("imagegen/templates/")] or not templates
    for required in SDIST_ONLY:
        assert any(n.startswith(required) for n in sdist_names), f"{required} missing from sdist"
    assert not any("__pycache__" in n or n.endswith(".sqlite3") for n in sdist_names)
    assert not any("__pycache__" in n for n in wheel_names)
    assert not any(n.startswith(("tests/", "example_project/")) for n in wheel_names)


@pytest.mark.slow
def test_metadata_renders_on_the_package_index(dist):
    if importlib.util.find_spec("twine") is None:
        pytest.skip("twine is not installed: pip install 'django-imagegen[test]'")
    run(sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()))
    wheel = next(dist.glob("*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    for label in ("Homepage", "Source", "Issues", "Documentation", "Changelog"):
        assert f"Project-URL: {label}, https://" in metadata
    # The long description is the README: on the package index, relative links break.
    readme = metadata.split("\n\n", 1)[1]
    assert "# django-imagegen" in readme
    assert not re.findall(r"\]\((?!https://)[^)]*\)", readme)
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    core = [line for line in requires if "extra ==" not in line]
    assert not [line for line in core if any(name in line for name in EXTRAS_ONLY)], core


@pytest.mark.slow
def test_bare_install_checks_and_generates_offline(dist, tmp_path):
    """The wheel with no extras, in a fresh virtualenv: checks pass, an offline image is made."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    wheel = next(dist.glob("*.whl"))
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel, timeout=600)
    site = tmp_path / "site"
    site.mkdir()
    (site / "bare_settings.py").write_text(BARE_SETTINGS)
    (site / "extras_settings.py").write_text(EXTRAS_SETTINGS)
    # Nothing from this checkout or from pytest-django's environment may leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DJANGO"))}
    env |= {"PYTHONPATH": str(site), "DJANGO_SETTINGS_MODULE": "bare_settings"}

    check = run(python, "-m", "django", "check", "--fail-level", "WARNING", cwd=site, env=env)
    assert "no issues" in check.stdout
    proc = run(python, "-c", GENERATE_SCRIPT % (EXTRAS_ONLY,), cwd=site, env=env, timeout=120)
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT"))
    result = json.loads(line.removeprefix("RESULT"))
    assert result["imagegen"].startswith(str(venv))
    assert result["installed"] == []
    assert result["status"] == "succeeded"
    assert result["provider"] == "default"
    assert result["bytes"] > 0

    # Naming the Celery runner and S3 storage without their extras: check errors, with the
    # install command, and no ImportError while Django starts.
    env["DJANGO_SETTINGS_MODULE"] = "extras_settings"
    proc = subprocess.run(
        [str(python), "-m", "django", "check"], cwd=site, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "imagegen.E021" in proc.stderr and "imagegen.E014" in proc.stderr, proc.stderr
    assert 'pip install "django-imagegen[celery]"' in proc.stderr
    assert 'pip install "django-imagegen[s3]"' in proc.stderr
