"""Browser tests: Playwright for Python drives Debian's Chromium against the live server.

Every test in this directory is marked ``browser`` and ``postgres`` here, so it runs in the
PostgreSQL pass of ``make test`` (and in ``make test-browser``), and is skipped on SQLite: the
live server answers from its own thread, and background jobs run in threads too, so they need a
database that other connections can see.

Fixtures: ``chromium`` (the session's browser), ``page`` (a fresh context per test, on the live
server's URL) and ``external_requests`` (what ``page`` blocked outside localhost; the test fails
unless it is empty). Helpers to import from this module: ``make_user``, ``login`` and
``screenshot``.

Environment: ``IMAGEGEN_CHROMIUM`` (the browser, default ``/usr/bin/chromium``),
``IMAGEGEN_SCREENSHOT_DIR`` (where ``screenshot()`` saves, default ``build/screenshots``, which
also gets the failed tests' screenshots) and ``IMAGEGEN_REQUIRE_SERVICES=1`` (a missing browser
fails instead of skipping).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import REQUIRE_SERVICES

# Playwright's sync API keeps an event loop in the test's thread, so Django's ORM would refuse
# to run there ("You cannot call this from an async context").
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHROMIUM = os.environ.get("IMAGEGEN_CHROMIUM", "/usr/bin/chromium")
#: Without these Chromium phones Google (updates, sync, QUIC probes) and may stall offline.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: One viewport for every test: the docs embed these screenshots side by side.
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 10_000
PASSWORD = "pw"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

_reports = pytest.StashKey[dict]()


def _in_this_dir(item: pytest.Item) -> bool:
    return HERE in Path(item.path).parents


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this directory's tests ``browser`` and ``postgres``; skip them unless on PostgreSQL.

    ``tryfirst`` so that the marks exist before ``-m`` deselects.
    """
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    on_postgres = engine.endswith(("postgresql", "postgis"))
    skip = pytest.mark.skip(
        reason=(
            f"browser tests need PostgreSQL, not {engine}: the live server and background jobs "
            "use other connections. Run make test-browser, or pytest tests/browser "
            '--ds=tests.settings_postgres -m "postgres or browser"'
        )
    )
    for item in items:
        if not _in_this_dir(item):
            continue
        item.add_marker(pytest.mark.browser)
        item.add_marker(pytest.mark.postgres)
        if not on_postgres:
            item.add_marker(skip)
    # Run the browser tests last: Playwright leaves an event loop in the main thread for the
    # rest of the session, which would make Django refuse ORM calls in any test after them
    # that does not set DJANGO_ALLOW_ASYNC_UNSAFE.
    items.sort(key=_in_this_dir)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the item, so ``page`` can tell whether the test failed."""
    report = yield
    if _in_this_dir(item):
        item.stash.setdefault(_reports, {})[report.when] = report
    return report


def _unavailable(message: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and IMAGEGEN_REQUIRE_SERVICES=1 is set.")
    pytest.skip(message)


DEFAULT_SCREENSHOT_DIR = REPO / "build" / "screenshots"


def screenshot_dir() -> Path:
    """Where ``screenshot()`` saves: ``IMAGEGEN_SCREENSHOT_DIR``, else ``build/screenshots``.

    A relative path is taken from the repository root.
    """
    configured = os.environ.get("IMAGEGEN_SCREENSHOT_DIR")
    path = REPO / configured if configured else DEFAULT_SCREENSHOT_DIR
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def chromium():
    """The session's Chromium (Debian's, through Playwright), launched once."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"Chromium is not installed at {CHROMIUM} (make browsers installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed: pip install 'django-imagegen[test]'")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture(autouse=True)
def _browser_urls(settings):
    """Serve MEDIA_ROOT too, so generated images show in the browser."""
    settings.ROOT_URLCONF = "tests.browser.urls"


@pytest.fixture
def external_requests() -> list[str]:
    """The URLs outside localhost that ``page`` blocked; it fails the test unless this is empty."""
    return []


@pytest.fixture
def page(chromium, live_server, external_requests, request):
    """A Playwright page in a new context, its ``base_url`` the live server's.

    Requests outside localhost are aborted and fail the test at teardown: the admin must work
    offline. A failed test leaves ``build/screenshots/FAILED-<test name>.png`` (never in
    ``IMAGEGEN_SCREENSHOT_DIR``, which may be the docs' directory).
    """
    context = chromium.new_context(
        viewport=VIEWPORT,
        locale="en-US",
        timezone_id="UTC",
        color_scheme="light",
        base_url=live_server.url,
    )
    context.set_default_timeout(TIMEOUT_MS)

    def keep_local(route):
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOCAL_HOSTS:
            external_requests.append(url)
            route.abort("blockedbyclient")
        else:
            route.continue_()

    context.route("**/*", keep_local)
    browser_page = context.new_page()
    yield browser_page
    report = request.node.stash.get(_reports, {}).get("call")
    if report is not None and report.failed:
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        try:
            DEFAULT_SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            browser_page.screenshot(path=str(DEFAULT_SCREENSHOT_DIR / f"FAILED-{name}.png"))
        except Exception as error:  # noqa: BLE001 - a broken page must not hide the failure
            print(f"Could not save a screenshot of the failed test: {error}")  # noqa: T201
    context.close()
    if external_requests:
        blocked = "\n  ".join(external_requests)
        pytest.fail(f"The page requested URLs outside localhost (blocked):\n  {blocked}")


def make_user(username: str, *, perms: Iterable[str] = (), superuser: bool = False):
    """Create a staff user with password ``"pw"`` and permissions such as ``"app.codename"``."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user_model = get_user_model()
    if superuser:
        return user_model.objects.create_superuser(username, f"{username}@example.com", PASSWORD)
    user = user_model.objects.create_user(username, f"{username}@example.com", PASSWORD)
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    for perm in perms:
        app_label, codename = perm.split(".", 1)
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def login(page, live_server, user, *, password: str = PASSWORD, next_url: str = "/admin/") -> None:
    """Log ``user`` in through the admin's login form; ends on ``next_url``."""
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
    if "/admin/login/" in page.url:
        errors = page.locator(".errornote").all_inner_texts()
        raise AssertionError(f"login as {user.get_username()!r} failed: {errors}")


def screenshot(page, name: str) -> Path:
    """Save the viewport as ``<screenshot dir>/<name>.png`` and return its path."""
    path = screenshot_dir() / f"{name}.png"
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(path), full_page=False, animations="disabled", caret="hide")
    return path
