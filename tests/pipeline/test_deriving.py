"""The follow-up job: derived files and placeholders are made after generate(), never inside it.

With the immediate runner the job runs after the HTTP response (``request_finished``), or at
once outside a request; queued runners send a task; the sweeper makes what a lost job left
pending. The job is idempotent, and a failure leaves the image pending, never the generation
failed. Templates render pending images from the original.
"""

from __future__ import annotations

import datetime
import io
import os
import subprocess
import sys
import threading
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template import Context, Template
from django.test import Client
from django.urls import path
from django.utils import timezone
from PIL import ImageFile

import imagegen
from imagegen import images, provenance
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.pipeline import deriving
from imagegen.pipeline.storing import PENDING, Store
from imagegen.providers.locmem import LocmemProvider
from imagegen.runners.sweeper import sweep_jobs
from imagegen.runners.worker import work
from imagegen.signals import wait_for_background
from imagegen.tasks import derive_images_task
from tests.conftest import deriving as run_on_commit
from tests.conftest import media_files, png_bytes
from tests.pipeline.test_round_trips import crafted
from tests.testapp.models import Article

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

IMAGE = png_bytes(96, 64, color=(30, 90, 200))
#: What a view saw of the image it generated, before its response was sent.
SEEN: dict[str, object] = {}


def generate_view(request: HttpRequest) -> HttpResponse:
    """Generate an image for a new article and render it, as a page would."""
    article = Article.objects.create(title="A lighthouse")
    LocmemProvider.script(IMAGE)
    generation = imagegen.generate(target=article, field="hero", provider="test")
    image = generation.images.get()
    SEEN.update(status=generation.status, pending=image.pending, derivatives=image.derivatives)
    html = Template('{% load imagegen %}{% imagegen_image article "hero" %}').render(
        Context({"article": article})
    )
    return HttpResponse(html)


urlpatterns = [path("generate/", generate_view)]


@pytest.fixture
def derived(settings, locmem):
    """The locmem provider, one derived width in WebP, the immediate runner."""
    settings.IMAGEGEN = {
        **settings.IMAGEGEN,
        "DERIVATIVE_WIDTHS": [32],
        "DERIVATIVE_FORMATS": ["webp"],
    }
    SEEN.clear()
    return settings


def make(**kwargs) -> Generation:
    LocmemProvider.script(IMAGE)
    generation = imagegen.generate(prompt="a lake", provider="test", **kwargs)
    assert generation.status == Status.SUCCEEDED, generation.error_message
    return generation


def fresh(generation: Generation) -> GeneratedImage:
    return GeneratedImage.objects.get(generation=generation)


def render(article: Article) -> str:
    return Template('{% load imagegen %}{% imagegen_image article "hero" %}').render(
        Context({"article": article})
    )


# -- the immediate runner --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls(__name__)
def test_a_request_gets_its_response_before_the_derived_files_are_made(derived):
    response = Client().get("/generate/")

    assert response.status_code == 200
    # Inside the request the image was stored, charged and attached, and nothing else.
    assert SEEN == {"status": Status.SUCCEEDED, "pending": PENDING, "derivatives": []}
    html = response.content.decode()
    assert html.startswith("<img ") and 'width="96"' in html and "<source" not in html
    # After the response, the same process made them.
    image = GeneratedImage.objects.get()
    assert (image.pending, image.deriving_since) == ("", None)
    assert [entry["width"] for entry in image.derivatives] == [32]
    assert image.lqip.startswith("data:image/webp") and image.dominant_color
    assert sorted(media_files(derived)) == sorted([image.file.name, image.derivatives[0]["name"]])
    assert "derivatives_ms" in image.generation.timings


@pytest.mark.django_db(transaction=True)
def test_generate_returns_before_the_work_that_waits_for_the_response(derived):
    request_started.send(sender=None)
    try:
        generation = make()
        image = fresh(generation)
        assert image.pending == PENDING and image.derivatives == [] and image.lqip == ""
        assert media_files(derived) == [image.file.name]
    finally:
        request_finished.send(sender=None)
    image = fresh(generation)
    assert image.pending == "" and len(image.derivatives) == 1 and image.lqip


@pytest.mark.django_db(transaction=True)
def test_the_request_never_decodes_inflates_or_reads_credentials(derived, monkeypatch):
    # What generate() does in the request: check the PNG's chunks, hash and store it, record
    # it. Decoding its pixels, inflating them and reading its Content Credentials wait for
    # the follow-up job.
    work: list[str] = []

    def spy(name, real):
        return lambda *args, **kwargs: work.append(name) or real(*args, **kwargs)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy("decode", ImageFile.ImageFile.load))
    monkeypatch.setattr(images, "_png_pixels_complete", spy("inflate", images._png_pixels_complete))
    monkeypatch.setattr(provenance, "read", spy("credentials", provenance.read))
    request_started.send(sender=None)
    try:
        image = fresh(make())
        assert work == []
        assert image.content_credentials == "not_checked"
    finally:
        request_finished.send(sender=None)
    assert {"decode", "inflate", "credentials"} <= set(work)
    assert work.count("inflate") == 1  # the original is inflated once, by the job


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_outside_a_request_they_are_made_on_a_background_thread(derived):
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("two threads writing need PostgreSQL: pytest -m postgres --ds=...postgres")
    started, release = threading.Event(), threading.Event()
    real_derive = Store.derive

    def derive_when_released(self, *args, **kwargs):
        started.set()
        assert release.wait(timeout=30)
        return real_derive(self, *args, **kwargs)

    with mock.patch.object(Store, "derive", derive_when_released):
        generation = make()  # returns while the job waits on the background thread
        assert started.wait(timeout=30)
        image = fresh(generation)
        assert image.pending == PENDING and image.derivatives == [] and image.thumbhash == ""
        assert threading.current_thread() is threading.main_thread()
        release.set()
        assert wait_for_background(timeout=30)
    image = fresh(generation)
    assert image.pending == "" and len(image.derivatives) == 1 and image.thumbhash
    # Read by the same job, from the same bytes (the c2pa extra decides what it can say).
    assert image.content_credentials == ("none" if provenance.c2pa_module() else "not_checked")


@pytest.mark.django_db(transaction=True)
def test_on_an_in_memory_sqlite_database_they_are_made_at_the_end_of_generate(derived):
    # SQLite's shared cache, which Django's in-memory test database uses, fails a second
    # writing thread at once instead of letting it wait: the job stays on this thread.
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        pytest.skip("needs the in-memory SQLite test database")
    image = fresh(make())
    assert image.pending == "" and len(image.derivatives) == 1 and image.thumbhash


def run_script(tmp_path, body: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``body`` in a fresh interpreter with Django set up on a SQLite file."""
    script = tmp_path / "script.py"
    script.write_text(
        "import logging, threading, time\n"
        "import django\n"
        "from django.conf import settings\n"
        "settings.configure(\n"
        "    INSTALLED_APPS=['django.contrib.contenttypes', 'imagegen'],\n"
        "    DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3',\n"
        f"                           'NAME': {str(tmp_path / 'db.sqlite3')!r}}}}},\n"
        ")\n"
        "django.setup()\n"
        "logging.basicConfig()\n"
        "from imagegen import signals\n" + body
    )
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_a_management_command_exits_only_once_its_derived_files_are_made(tmp_path):
    # The interpreter waits for the background thread's work before it exits.
    done = run_script(
        tmp_path,
        "def job():\n"
        "    time.sleep(0.5)\n"
        "    print('made', threading.current_thread().name, flush=True)\n"
        "signals.after_response(job)\n"
        "print('returned', flush=True)\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["returned", "made imagegen-background"]


def test_a_job_that_hangs_holds_the_exit_only_so_long(tmp_path):
    # The first job sleeps far longer than the exit wait: the process must not wait for it
    # (the subprocess would time out), and the job queued behind it is left to the sweeper.
    done = run_script(
        tmp_path,
        "signals.EXIT_WAIT = 0.2\n"
        "signals.after_response(lambda: time.sleep(120))\n"
        "signals.after_response(lambda: print('never', flush=True))\n",
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "background work still running after 0.2 s at exit (1 more waiting)" in done.stderr


@pytest.mark.django_db(transaction=True)
def test_a_crafted_original_is_kept_with_a_warning_and_nothing_derived(derived):
    # Intact chunks (every CRC right) around pixel data that stops half way: the run's check
    # reads no pixels and stores it; the follow-up job's decode finds the damage.
    LocmemProvider.script(crafted("rows-missing"))
    generation = imagegen.generate(prompt="a lake", provider="test")
    assert generation.status == Status.SUCCEEDED
    charged = generation.cost
    assert wait_for_background(timeout=30)

    image = fresh(generation)
    assert (image.pending, image.derivatives, image.lqip) == ("", [], "")
    generation.refresh_from_db()
    assert any("pixel data could not be decoded" in w for w in generation.warnings)
    assert generation.status == Status.SUCCEEDED and generation.cost == charged
    # Nothing is left for the sweeper to try again: it would fail the same way.
    assert not deriving.stale_pending(timezone.now() + datetime.timedelta(days=1), 0).exists()


@pytest.mark.django_db
def test_nothing_is_made_before_the_transaction_commits(derived):
    with run_on_commit():
        generation = make()
        assert fresh(generation).pending == PENDING  # still inside the caller's transaction
    assert fresh(generation).pending == ""


@pytest.mark.django_db(transaction=True)
def test_a_failing_job_after_the_response_never_reaches_the_client(derived, caplog):
    request_started.send(sender=None)
    with mock.patch.object(Store, "derive", side_effect=RuntimeError("out of memory")):
        generation = make()
        request_finished.send(sender=None)
    assert generation.status == Status.SUCCEEDED
    image = fresh(generation)
    assert image.pending == PENDING and image.deriving_since is None  # for the sweeper
    assert "could not make the derived files of image" in caplog.text


# -- the job ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_running_the_job_twice_makes_each_file_once(derived):
    image = fresh(make())
    assert deriving.derive(image.pk) == deriving.DONE
    files = media_files(derived)
    with mock.patch.object(Store, "derive", wraps=Store.derive, autospec=True) as made:
        assert deriving.derive(image.pk) == deriving.SKIPPED
        assert deriving.derive_generation(image.generation_id) == []
    assert made.call_count == 0
    assert media_files(derived) == files and len(files) == 2


@pytest.mark.django_db
def test_a_job_held_by_another_is_left_alone_until_its_claim_lapses(derived):
    image = fresh(make())
    held = timezone.now() - datetime.timedelta(seconds=10)
    GeneratedImage.objects.filter(pk=image.pk).update(deriving_since=held)
    assert deriving.derive(image.pk) == deriving.SKIPPED
    assert media_files(derived) == [image.file.name]

    lapsed = timezone.now() - datetime.timedelta(seconds=deriving.CLAIM_TIMEOUT + 1)
    GeneratedImage.objects.filter(pk=image.pk).update(deriving_since=lapsed)
    assert deriving.derive(image.pk) == deriving.DONE
    assert fresh(image.generation).pending == ""


@pytest.mark.django_db
def test_a_job_taken_over_while_it_worked_keeps_nothing_of_its_own(derived):
    image = fresh(make())
    real = Store.derive

    def taken_over(store, *args, **kwargs):
        extras = real(store, *args, **kwargs)
        # Another job took the row over meanwhile (this one looked dead) and finished it.
        GeneratedImage.objects.filter(pk=image.pk).update(pending="", deriving_since=None)
        return extras

    with mock.patch.object(Store, "derive", taken_over):
        assert deriving.derive(image.pk) == deriving.SKIPPED
    # The winner's row names no derived file here, so this job's files were orphans: gone.
    assert media_files(derived) == [image.file.name]


@pytest.mark.django_db
def test_a_failed_job_leaves_the_image_pending_and_no_file(derived, caplog):
    image = fresh(make())
    with mock.patch.object(Store, "save_file", side_effect=OSError("disk full")):
        assert deriving.derive(image.pk) == deriving.FAILED
    image.refresh_from_db()
    assert (image.pending, image.deriving_since, image.derivatives) == (PENDING, None, [])
    assert image.generation.status == Status.SUCCEEDED and image.generation.cost is not None
    assert media_files(derived) == [image.file.name]
    assert "could not make the derived files of image" in caplog.text


@pytest.mark.django_db
def test_a_deleted_image_is_skipped(derived):
    image = fresh(make())
    image.delete()
    assert deriving.derive(image.pk) == deriving.SKIPPED


# -- the sweeper -----------------------------------------------------------------------------


def stored_ago(image: GeneratedImage, seconds: float) -> None:
    then = timezone.now() - datetime.timedelta(seconds=seconds)
    GeneratedImage.objects.filter(pk=image.pk).update(created_at=then)


@pytest.mark.django_db
def test_the_sweeper_makes_what_a_restarted_process_left_pending(derived):
    # generate() inside a transaction that never commits: as if the process died after it.
    lost, young = fresh(make()), fresh(make(count=1))
    stored_ago(lost, 3600)

    tally = sweep_jobs(dry_run=True)
    assert tally.derived == 1
    assert any(f"Would make the derived files of image {lost.pk}" in line for line in tally.lines)
    assert fresh(lost.generation).pending == PENDING

    with run_on_commit():
        assert sweep_jobs().derived == 1
    lost.refresh_from_db()
    assert lost.pending == "" and len(lost.derivatives) == 1
    young.refresh_from_db()
    assert young.pending == PENDING  # its own job may still be on its way
    assert sweep_jobs().derived == 0


@pytest.mark.django_db
def test_the_sweep_command_reports_the_images_it_sent(derived):
    image = fresh(make())
    stored_ago(image, 3600)
    out = io.StringIO()
    with run_on_commit():
        call_command("imagegen_sweep", "--jobs", stdout=out)
    assert "Images: 1 still waiting for their derived files were sent to have them made." in (
        out.getvalue()
    )
    assert fresh(image.generation).pending == ""


@pytest.mark.django_db
def test_the_sweeper_leaves_an_image_a_live_job_holds(derived):
    image = fresh(make())
    stored_ago(image, 3600)
    GeneratedImage.objects.filter(pk=image.pk).update(deriving_since=timezone.now())
    assert sweep_jobs().derived == 0


# -- queued runners --------------------------------------------------------------------------


@pytest.fixture
def celery(derived):
    derived.IMAGEGEN = {
        **derived.IMAGEGEN,
        "TASK_RUNNER": "celery",
        "TASK_OPTIONS": {"DERIVE_QUEUE": "imagegen-derive"},
    }
    with (
        mock.patch("imagegen.tasks.run_generation_task.apply_async"),
        mock.patch.object(derive_images_task, "apply_async") as send,
    ):
        yield send


@pytest.mark.django_db
def test_a_celery_worker_sends_the_follow_up_job_once_the_row_succeeds(celery):
    LocmemProvider.script(IMAGE)
    generation = imagegen.generate(prompt="a lake", provider="test")
    assert generation.status == Status.QUEUED
    with run_on_commit():
        outcome = work(generation.pk)
    assert outcome.state == "done"
    args, kwargs = celery.call_args
    assert args == ((generation.pk,),) and kwargs["queue"] == "imagegen-derive"
    image = fresh(generation)
    assert image.pending == PENDING  # the worker that called the provider made nothing else

    derive_images_task(generation.pk)  # what the worker that takes the task does
    assert fresh(generation).pending == ""


@pytest.mark.django_db
def test_the_sweeper_sends_lost_follow_up_jobs_to_celery(celery):
    LocmemProvider.script(IMAGE)
    generation = imagegen.generate(prompt="a lake", provider="test")
    work(generation.pk)
    stored_ago(fresh(generation), 3600)
    with run_on_commit():
        assert sweep_jobs().derived == 1
    assert celery.call_args.args == ((generation.pk,),)


@pytest.mark.django_db
def test_django_tasks_enqueues_the_follow_up_job(derived, settings):
    pytest.importorskip("django_tasks", reason="needs django-imagegen[tasks]")
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    derived.IMAGEGEN = {**derived.IMAGEGEN, "TASK_RUNNER": "django"}
    from imagegen.django_tasks import derive_images, run_generation

    LocmemProvider.script(IMAGE)
    with run_on_commit():
        generation = imagegen.generate(prompt="a lake", provider="test")
    with run_on_commit():
        run_generation.call(generation.pk)
    results = derive_images.get_backend().results
    assert [(r.task.name, list(r.args)) for r in results][-1] == ("derive_images", [generation.pk])
    derive_images.call(generation.pk)
    assert fresh(generation).pending == ""


# -- templates -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_pending_image_renders_from_the_original(derived):
    article = Article.objects.create(title="Pending")
    LocmemProvider.script(IMAGE)
    imagegen.generate(target=article, field="hero", provider="test")  # never committed
    article.refresh_from_db()

    html = render(article)

    assert html.startswith("<img ") and "<picture" not in html and "style=" not in html
    assert f'src="/media/{article.hero.name}"' in html
    assert 'height="64"' in html and 'width="96"' in html


@pytest.mark.django_db
def test_with_placeholders_and_no_derived_files_yet_the_placeholder_shows(derived):
    article = Article.objects.create(title="Half way")
    LocmemProvider.script(IMAGE)
    imagegen.generate(target=article, field="hero", provider="test")
    article.refresh_from_db()
    GeneratedImage.objects.update(
        dominant_color="#1e5ac8", lqip="data:image/webp;base64,UklGRh4AAABXRUJQVlA4"
    )

    html = render(article)

    assert "<picture" not in html and "background-color:#1e5ac8" in html
