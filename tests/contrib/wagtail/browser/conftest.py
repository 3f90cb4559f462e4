"""Browser tests of the Wagtail integration: the shared Chromium harness, Wagtail's login.

They are marked ``browser`` and run on SQLite (``tests.settings_wagtail``): the immediate
runner generates inside the live server's request, which shares the in-memory database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import (  # noqa: F401 - fixtures of the shared harness
    PASSWORD,
    chromium,
    external_requests,
    page,
)

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this directory's tests ``browser``, and run them last (Playwright keeps a loop)."""
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: HERE in Path(item.path).parents)


def wagtail_login(browser_page, live_server, user, *, password: str = PASSWORD) -> None:
    """Log ``user`` in through the Wagtail admin's login form; ends on the dashboard."""
    browser_page.goto(f"{live_server.url}/cms/login/")
    browser_page.fill("#id_username", user.get_username())
    browser_page.fill("#id_password", password)
    with browser_page.expect_navigation():
        browser_page.locator("form button[type=submit]").first.click()
    assert "/cms/login/" not in browser_page.url, f"login as {user.get_username()!r} failed"
