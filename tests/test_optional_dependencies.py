"""Celery and S3 are extras: naming them without the extra is a check error, not a crash.

A missing package is simulated by a ``None`` entry in ``sys.modules``, which makes its import
fail as if it were not installed. ``tests/test_packaging.py`` checks the same with a real bare
install in a fresh virtualenv (a slow test).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage

from imagegen.checks import check_settings
from imagegen.exceptions import ImagegenConfigurationError, ImproperlyInstalled
from imagegen.fields import GeneratedImageField
from imagegen.storage import UnavailableStorage, get_storage

ROOT = Path(__file__).resolve().parent.parent
S3 = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {"bucket_name": "images"}}
BASE_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


def hide(monkeypatch, *names: str) -> None:
    """Make ``import name`` fail for each of ``names`` during the test."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)
    if "celery" in names:
        # The Celery runner's module imports Celery: make it import afresh, as in a new process.
        monkeypatch.delitem(sys.modules, "imagegen.tasks", raising=False)


def found(settings, **imagegen):
    settings.IMAGEGEN = imagegen
    return {m.id: m for m in check_settings()}


def use_storage(settings, backend: dict) -> None:
    settings.STORAGES = {**BASE_STORAGES, "images": backend}


@pytest.mark.parametrize("runner", ["celery", "imagegen.tasks.CeleryRunner"])
def test_celery_runner_without_celery_is_an_error_with_the_install_command(
    settings, monkeypatch, runner
):
    hide(monkeypatch, "celery")
    error = found(settings, TASK_RUNNER=runner)["imagegen.E021"]
    assert error.is_serious()
    assert repr(runner) in error.msg
    assert error.hint == 'Install the celery extra: pip install "django-imagegen[celery]"'


def test_celery_runner_with_celery_is_fine(settings):
    pytest.importorskip("celery")
    assert "imagegen.E021" not in found(settings, TASK_RUNNER="celery")


def test_other_runners_do_not_need_celery(settings, monkeypatch):
    hide(monkeypatch, "celery")
    assert found(settings, TASK_RUNNER="immediate") == {}


def test_s3_storage_without_django_storages_is_an_error_with_the_install_command(
    settings, monkeypatch
):
    hide(monkeypatch, "storages", "storages.backends", "storages.backends.s3")
    use_storage(settings, S3)
    error = found(settings, STORAGE="images")["imagegen.E014"]
    assert error.is_serious()
    assert "'images'" in error.msg and "storages.backends.s3.S3Storage" in error.msg
    assert 'pip install "django-imagegen[s3]"' in error.hint


def test_s3_storage_without_boto3_is_the_same_error(settings, monkeypatch):
    pytest.importorskip("storages")
    hide(monkeypatch, "boto3", "boto3.session")
    # Imported afresh, django-storages' S3 module finds no boto3 (and raises
    # ImproperlyConfigured, not ImportError); the original module is put back afterwards.
    monkeypatch.delitem(sys.modules, "storages.backends.s3", raising=False)
    use_storage(settings, S3)
    error = found(settings, STORAGE="images")["imagegen.E014"]
    assert "boto3" in error.msg.lower()
    assert 'pip install "django-imagegen[s3]"' in error.hint


def test_other_backend_that_does_not_import(settings):
    use_storage(settings, {"BACKEND": "example.storage.Nope"})
    error = found(settings, STORAGE="images")["imagegen.E014"]
    assert "example.storage.Nope" in error.msg
    assert "dotted path" in error.hint


def test_importable_storage_passes(settings):
    use_storage(settings, {"BACKEND": "django.core.files.storage.InMemoryStorage"})
    assert found(settings, STORAGE="images") == {}


def test_missing_alias_is_only_e008(settings):
    ids = found(settings, STORAGE="nowhere")
    assert "imagegen.E008" in ids and "imagegen.E014" not in ids


def test_a_field_made_while_the_backend_is_missing_gets_a_stand_in(settings, monkeypatch):
    """Models call get_storage() while they load: Django starts, and any use says why not."""
    hide(monkeypatch, "storages", "storages.backends", "storages.backends.s3")
    use_storage(settings, S3)
    settings.IMAGEGEN = {"STORAGE": "images"}
    storage = GeneratedImageField(preset="hero").storage
    assert isinstance(storage, UnavailableStorage)
    with pytest.raises(ImproperlyInstalled, match=r"Storage 'images' .*manage.py check"):
        storage.save("a.png", None)
    with pytest.raises(ImportError):  # ImproperlyInstalled is an ImportError too
        storage.url("a.png")


def test_a_missing_alias_gets_a_stand_in_that_raises_a_configuration_error(settings):
    settings.IMAGEGEN = {"STORAGE": "nowhere"}
    storage = get_storage()
    with pytest.raises(ImagegenConfigurationError) as raised:
        storage.exists("a.png")
    assert not isinstance(raised.value, ImportError)


def test_other_storage_errors_still_raise(settings):
    use_storage(settings, {**BASE_STORAGES["default"], "OPTIONS": {"colour": "red"}})
    settings.IMAGEGEN = {"STORAGE": "images"}
    with pytest.raises(TypeError):
        get_storage()


def test_configured_storage_is_returned(settings):
    assert isinstance(get_storage(), FileSystemStorage)


# Runs in a fresh interpreter with Celery, django-storages and c2pa unimportable.
WITHOUT_EXTRAS = """
import sys
for name in ("celery", "storages", "boto3", "kombu", "c2pa"):
    sys.modules[name] = None

import django
from django.conf import settings
from django.core.management import call_command

settings.configure(
    SECRET_KEY="x",
    USE_TZ=True,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "imagegen"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    MEDIA_ROOT=sys.argv[1],
)
django.setup()
import imagegen

call_command("check", fail_level="WARNING")
call_command("migrate", verbosity=0)
generation = imagegen.generate(prompt="A lighthouse at dusk")
assert generation.status == "succeeded", generation.status
assert generation.images.get().file.size > 0
assert generation.images.get().content_credentials == "not_checked"
print("OK")
"""


def test_startup_checks_and_an_offline_generation_without_the_extras(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("OK")
