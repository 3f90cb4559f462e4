"""Tests that the example project runs offline: migrate, seed, generate, serve pages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MANAGE = REPO / "example_project" / "manage.py"
DEMO_OBJECTS = 16

# Runs inside the example project (``manage.py shell -c``) and prints what the pages returned.
PAGES_SCRIPT = """
import json
from django.contrib.auth import get_user_model
from django.test import Client
from django.test.utils import setup_test_environment

setup_test_environment()
client = Client()
result = {}
for url in ["/", "/products/"]:
    response = client.get(url)
    result[url] = {"status": response.status_code, "html": response.content.decode()}
admin = get_user_model().objects.create_superuser("demo-admin", "admin@example.com", "x")
client.force_login(admin)
for url in ["/admin/demo/article/", "/admin/demo/product/", "/admin/demo/story/"]:
    response = client.get(url)
    result[url] = {"status": response.status_code, "html": response.content.decode()}
print("RESULT" + json.dumps(result))
"""


@dataclass
class Project:
    """A migrated and seeded copy of the example project's database and media."""

    env: dict[str, str]
    media: Path
    first_run: str

    def manage(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``example_project/manage.py`` with ``args``; fail the test on a non-zero exit."""
        proc = subprocess.run(
            [sys.executable, str(MANAGE), *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert proc.returncode == 0, f"manage.py {' '.join(args)} failed:\n{proc.stderr}"
        return proc


def _media_files(media: Path) -> list[Path]:
    return [path for path in media.rglob("*") if path.is_file()]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Migrate a fresh SQLite database in a temporary directory and run ``imagegen_demo`` once."""
    root = tmp_path_factory.mktemp("example_project")
    env = dict(os.environ)
    # pytest-django exports the test suite's settings module; the example must use its own,
    # and nothing from the developer's shell may switch it to a queue or production mode.
    for name in ("DJANGO_SETTINGS_MODULE", "IMAGEGEN_TASK_RUNNER", "DJANGO_DEBUG"):
        env.pop(name, None)
    env["DJANGO_DB_PATH"] = str(root / "db.sqlite3")
    env["DJANGO_MEDIA_ROOT"] = str(root / "media")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    project = Project(env=env, media=root / "media", first_run="")
    project.manage("migrate", "--no-input", "-v", "0")
    project.first_run = project.manage("imagegen_demo").stdout
    return project


def test_demo_generates_every_image_offline(project: Project) -> None:
    lines = project.first_run.splitlines()
    generated = [line for line in lines if ": generated (placeholder, $0.00)" in line]
    assert len(generated) == DEMO_OBJECTS, project.first_run
    assert any(line.startswith("Article '") for line in generated)
    assert any(line.startswith("Product '") for line in generated)
    assert any(line.startswith("Story '") for line in generated)
    assert lines[-1] == f"Generated {DEMO_OBJECTS} images; total cost $0.00"
    files = [path for path in _media_files(project.media) if path.suffix == ".png"]
    assert len(files) == DEMO_OBJECTS
    assert all(path.stat().st_size > 0 for path in files)


def test_second_run_does_nothing_and_is_quick(project: Project) -> None:
    before = sorted(_media_files(project.media))
    started = time.monotonic()
    out = project.manage("imagegen_demo").stdout
    assert out.strip() == f"All {DEMO_OBJECTS} objects already have images."
    assert time.monotonic() - started < 10
    assert sorted(_media_files(project.media)) == before


def test_pages_show_generated_images(project: Project) -> None:
    out = project.manage("shell", "-c", PAGES_SCRIPT).stdout
    pages = json.loads(out[out.index("RESULT") + len("RESULT") :])
    assert {url: page["status"] for url, page in pages.items()} == dict.fromkeys(pages, 200)
    front = pages["/"]["html"]
    # Six article heroes and four story images, all real files, none a placeholder.
    assert front.count('<img src="/media/imagegen/') == 10
    assert 'loading="lazy"' in front
    assert 'height="864"' in front and 'width="1536"' in front
    assert "<svg" not in front
    assert pages["/products/"]["html"].count('<img src="/media/imagegen/') == 6
    for url in ("/admin/demo/article/", "/admin/demo/product/", "/admin/demo/story/"):
        html = pages[url]["html"]
        assert '<img src="/media/imagegen/' in html, url
        assert "$0.00" in html, url


EDITOR_SCRIPT = """
from django.contrib.auth import get_user_model
editor = get_user_model().objects.get(username="editor")
print("RESULT", editor.is_staff, editor.is_superuser, editor.check_password("editor"),
      editor.has_perm("imagegen.generate_image"), editor.has_perm("demo.change_article"),
      editor.has_perm("demo.delete_article"))
"""


def test_demo_has_an_editor_who_may_generate_but_is_no_superuser(project: Project) -> None:
    assert "Editor editor/editor created" in project.first_run
    out = project.manage("shell", "-c", EDITOR_SCRIPT).stdout
    assert out.split("RESULT", 1)[1].split() == ["True", "False", "True", "True", "True", "False"]


def test_regenerate_generates_again(project: Project) -> None:
    out = project.manage("imagegen_demo", "--regenerate").stdout
    assert out.splitlines()[-1] == f"Generated {DEMO_OBJECTS} images; total cost $0.00"


def test_check_passes_and_migrations_are_current(project: Project) -> None:
    assert "no issues" in project.manage("check").stdout
    project.manage("makemigrations", "--check", "--dry-run", "demo")
