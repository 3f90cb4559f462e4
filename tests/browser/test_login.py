"""Logging in to the admin and opening the ledger in a real browser."""

from __future__ import annotations

import imagegen
from tests.browser.conftest import login, make_user, screenshot

LEDGER = "/admin/imagegen/generation/"
#: The admin's header colour (--header-bg) in light mode.
ADMIN_HEADER_BG = "rgb(65, 118, 144)"


def test_a_superuser_logs_in_and_sees_the_ledger_link(page, live_server):
    login(page, live_server, make_user("admin", superuser=True))

    assert page.url == f"{live_server.url}/admin/"
    assert page.locator("#site-name").is_visible()
    ledger_link = page.locator("#content-main").get_by_role("link", name="Generations", exact=True)
    assert ledger_link.get_attribute("href") == LEDGER
    assert page.get_by_role("link", name="Image generation").is_visible()
    screenshot(page, "admin-index")


def test_the_admin_css_is_served(page, live_server):
    page.goto("/admin/login/")

    assert page.request.get(f"{live_server.url}/static/admin/css/base.css").status == 200
    header_bg = page.locator("#header").evaluate("e => getComputedStyle(e).backgroundColor")
    assert header_bg == ADMIN_HEADER_BG


def test_the_ledger_shows_the_generated_thumbnail(page, live_server):
    generation = imagegen.generate(prompt="A lighthouse at dawn")
    assert generation.status == "succeeded"
    login(page, live_server, make_user("admin", superuser=True), next_url=LEDGER)

    assert page.url == f"{live_server.url}{LEDGER}"
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert f"{generation.pk}" in rows.first.inner_text()
    thumb = rows.first.locator("img.imagegen-thumb")
    thumb.wait_for(state="visible")
    page.wait_for_function("img => img.complete", arg=thumb.element_handle())
    # Loaded from MEDIA_URL, not a broken image: media is served to the browser.
    assert thumb.evaluate("img => img.naturalWidth") > 0
    # imagegen's own admin CSS is loaded too.
    assert thumb.evaluate("img => getComputedStyle(img).borderRadius") == "4px"
    screenshot(page, "ledger")


def test_a_staff_user_with_view_permission_sees_a_read_only_ledger(page, live_server):
    login(page, live_server, make_user("viewer", perms=["imagegen.view_generation"]))

    page.goto(LEDGER)
    assert page.locator("#content h1").inner_text() == "Select generation to view"
    assert page.locator(f'a[href="{LEDGER}add/"]').count() == 0


def test_requests_outside_localhost_are_blocked_and_recorded(page, external_requests):
    page.set_content('<img src="http://cdn.example.invalid/logo.png">')
    page.wait_for_load_state("networkidle")

    assert external_requests == ["http://cdn.example.invalid/logo.png"]
    external_requests.clear()  # this test expected it; anywhere else it fails the test
