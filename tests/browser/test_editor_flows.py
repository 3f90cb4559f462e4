"""What an editor does in the admin, in a real browser: bulk action, candidates, history, access.

These tests also save the screenshots the docs embed (see ``screenshot`` in ``conftest.py``):
``bulk-confirm``, ``bulk-done``, ``bulk-progress``, ``widget``, ``widget-candidates``,
``widget-history`` and ``widget-dark``.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from django.test import override_settings

import imagegen
from imagegen.models import GeneratedImage, Generation, Status
from imagegen.runners import QueuedRunner
from tests.browser.conftest import (
    TIMEOUT_MS,
    VIEWPORT,
    login,
    make_user,
    screenshot,
    screenshot_dir,
)
from tests.testapp.models import Article

try:
    from playwright.sync_api import expect
except ImportError:  # the ``chromium`` fixture skips these tests (or fails them, if required)
    expect = None

CHANGELIST = "/admin/testapp/article/"
ARTICLES = [
    ("A lighthouse at dawn", "Waves break on the rocks below a white tower."),
    ("Autumn in the old town", "Cobbled lanes under orange leaves."),
    ("The night market", "Lanterns and food stalls along the river."),
]
#: The prompt of an article's earlier image. The placeholder provider draws the same prompt the
#: same way, so a different one keeps the current image apart from the new candidates.
EARLIER_PROMPT = "A red lighthouse in the fog"


# Helpers --------------------------------------------------------------------------------------


def element_screenshot(locator, name: str, *, margin: int = 12) -> Path:
    """Save ``locator``'s element, with ``margin`` pixels around it, as ``<dir>/<name>.png``.

    The directory is the one ``screenshot()`` uses; the path is returned.
    """
    path = screenshot_dir() / f"{name}.png"
    page = locator.page
    page.wait_for_load_state("networkidle")
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not visible"
    scroll_x, scroll_y, width, height = page.evaluate(
        "() => [scrollX, scrollY, document.documentElement.scrollWidth,"
        " document.documentElement.scrollHeight]"
    )
    left = max(box["x"] + scroll_x - margin, 0)
    top = max(box["y"] + scroll_y - margin, 0)
    right = min(box["x"] + scroll_x + box["width"] + margin, width)
    bottom = min(box["y"] + scroll_y + box["height"] + margin, height)
    page.screenshot(
        path=str(path),
        full_page=True,
        clip={"x": left, "y": top, "width": right - left, "height": bottom - top},
        animations="disabled",
        caret="hide",
    )
    return path


@pytest.fixture
def page_errors(page):
    """Collect the page's JavaScript errors; the test fails at teardown unless there are none."""
    errors: list[str] = []
    watch(page, errors)
    yield errors
    assert errors == [], "JavaScript errors on the page:\n  " + "\n  ".join(errors)


def watch(page, errors: list[str]) -> None:
    """Record console errors and uncaught exceptions of ``page`` into ``errors``.

    The browser's own request for ``/favicon.ico`` (which the admin does not serve) is no error
    of the page.
    """

    def on_console(message) -> None:
        if message.type != "error":
            return
        url = (message.location or {}).get("url", "")
        if url.endswith("/favicon.ico"):
            return
        errors.append(f"console: {message.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))


def make_articles(n: int = 3) -> list[Article]:
    return [Article.objects.create(title=title, summary=summary) for title, summary in ARTICLES[:n]]


def widget(page):
    return page.locator("[data-imagegen-widget]")


def open_change_form(page, article: Article) -> None:
    page.goto(f"{CHANGELIST}{article.pk}/change/")
    expect(widget(page)).to_be_visible()


def wait_for_images(page) -> None:
    """Wait until every visible <img> on the page has loaded (and none is broken)."""
    page.wait_for_function(
        """() => Array.from(document.images)
            .filter(img => img.checkVisibility())
            .every(img => img.complete && img.naturalWidth > 0)"""
    )


def field_row(page):
    """The change form's row of the ``hero`` field: its label, the widget and all."""
    return page.locator(".form-row.field-hero")


def save_and_continue(page) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator(".messagelist .success")).to_be_visible()


def tab_to(page, locator, *, limit: int = 40) -> None:
    """Press Tab until ``locator`` has the focus (at most ``limit`` times)."""
    for _ in range(limit):
        if locator.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    expect(locator).to_be_focused()


def run_bulk_action(page, articles: list[Article]):
    """Select ``articles`` on the changelist and run "Generate images…" up to its page."""
    page.goto(CHANGELIST)
    for article in articles:
        page.locator(f'input[name="_selected_action"][value="{article.pk}"]').check()
    page.locator('select[name="action"]').select_option(label="Generate images…")
    with page.expect_navigation():
        page.get_by_role("button", name="Go").click()
    expect(page.locator("#content h1")).to_have_text("Generate images")


# The bulk action ------------------------------------------------------------------------------


def test_bulk_action_on_three_articles(page, live_server, page_errors):
    articles = make_articles()
    login(page, live_server, make_user("admin", superuser=True), next_url=CHANGELIST)

    run_bulk_action(page, articles)
    prompts = page.locator(".imagegen-bulk-objects tbody tr")
    expect(prompts).to_have_count(3)
    for article in articles:
        row = prompts.filter(has=page.get_by_role("rowheader", name=article.title, exact=True))
        expect(row.get_by_role("textbox")).to_have_value(f"{article.title}: {article.summary}")
        expect(row.locator(".imagegen-cost")).to_have_text("$0.00")
    expect(page.locator(".imagegen-bulk-estimate")).to_contain_text("Estimated total: $0.00")
    screenshot(page, "bulk-confirm")

    with page.expect_navigation():
        page.get_by_role("button", name="Generate", exact=True).click()

    assert page.url == f"{live_server.url}{CHANGELIST}"
    expect(page.locator(".messagelist .success")).to_contain_text(
        "Generated images for 3 objects, costing $0.00."
    )
    for article in articles:
        article.refresh_from_db()
        assert article.hero.name, f"{article} has no image"
        generation = Generation.objects.for_object(article, "hero").get()
        assert generation.status == Status.SUCCEEDED
        assert generation.images.get().file.name == article.hero.name
    header = page.locator("#result_list thead th").filter(has_text="AI spend")
    expect(header).to_have_count(1)
    expect(page.locator("#result_list tbody td.field-imagegen_spend")).to_have_text(["$0.00"] * 3)
    screenshot(page, "bulk-done")


# The widget -----------------------------------------------------------------------------------


def test_generate_candidates_pick_second_and_save(page, live_server, page_errors):
    admin = make_user("admin", superuser=True)
    article = make_articles(1)[0]
    # The article already has an image, from an earlier generation with another prompt.
    earlier = imagegen.generate(target=article, field="hero", user=admin, prompt=EARLIER_PROMPT)
    article.refresh_from_db()
    first_image = earlier.images.get()
    assert article.hero.name == first_image.file.name

    login(page, live_server, admin)
    open_change_form(page, article)
    box = widget(page)
    expect(box.get_by_label("Prompt")).to_have_value(f"{article.title}: {article.summary}")
    expect(box.locator("[data-imagegen-estimate]")).to_have_text("Estimated cost: $0.00")
    wait_for_images(page)
    element_screenshot(field_row(page), "widget")

    box.get_by_label("Images").fill("3")
    expect(box.locator("[data-imagegen-estimate]")).to_have_text("Estimated cost: $0.00")
    box.get_by_role("button", name="Generate", exact=True).click()
    candidates = [box.get_by_role("radio", name=f"Candidate {n}", exact=True) for n in (1, 2, 3)]
    for radio in candidates:
        expect(radio).to_be_visible()
    expect(box.get_by_role("radio")).to_have_count(4)
    expect(box.get_by_role("radio", name="Keep the current image")).to_be_checked()
    expect(box.get_by_role("status")).to_have_text("Done: pick a candidate, then save. Cost: $0.00")
    generation = Generation.objects.for_object(article, "hero").exclude(pk=earlier.pk).get()
    assert generation.count == 3
    images = list(generation.images.order_by("pk"))
    assert len(images) == 3
    # Nothing is set before the editor saves.
    article.refresh_from_db()
    assert article.hero.name == first_image.file.name

    candidates[1].check()
    expect(box.get_by_role("status")).to_have_text("Image 2 will be set when you save.")
    expect(box.locator("[data-imagegen-pick]")).to_have_value(str(images[1].pk))
    wait_for_images(page)
    element_screenshot(field_row(page), "widget-candidates")

    save_and_continue(page)
    article.refresh_from_db()
    second = GeneratedImage.objects.get(pk=images[1].pk)
    assert article.hero.name == second.file.name
    assert second.selected, [
        (i.pk, i.generation_id, i.file.name, i.selected) for i in GeneratedImage.objects.all()
    ]
    others = [images[0].pk, images[2].pk, first_image.pk]
    assert not GeneratedImage.objects.filter(pk__in=others, selected=True).exists()

    box = widget(page)
    current = box.locator("img.imagegen-current")
    expect(current).to_have_attribute("src", re.compile(re.escape(second.file.name) + "$"))
    history = box.locator("details.imagegen-history-panel")
    history.locator("summary", has_text="History").click()
    expect(history).to_have_attribute("open", "")
    expect(history).to_contain_text("2 generations, $0.00 in total.")
    row = history.locator(f'tr[data-generation="{generation.pk}"]')
    expect(row.get_by_role("cell", name="$0.00", exact=True)).to_be_visible()
    expect(row.locator(f'figure[data-image="{second.pk}"] .imagegen-badge')).to_have_text("In use")
    expect(history.locator(".imagegen-badge")).to_have_count(1)
    wait_for_images(page)
    # The table fits in the widget: nothing sticks out on the right.
    overflow = history.evaluate(
        "e => e.querySelector('table').getBoundingClientRect().right"
        " - e.getBoundingClientRect().right"
    )
    assert overflow <= 0, f"the history table sticks out by {overflow}px"
    element_screenshot(history, "widget-history")

    # Going back: the earlier image, from the history, then Save.
    older = history.locator(f'tr[data-generation="{earlier.pk}"]')
    older.get_by_role("button", name=re.compile("^Use this image")).click()
    expect(box.get_by_role("status")).to_have_text("This earlier image will be set when you save.")
    expect(older.locator(f'figure[data-image="{first_image.pk}"]')).to_have_class(
        re.compile(r"\bis-chosen\b")
    )
    save_and_continue(page)
    article.refresh_from_db()
    assert article.hero.name == first_image.file.name
    assert GeneratedImage.objects.get(pk=first_image.pk).selected
    assert not GeneratedImage.objects.get(pk=second.pk).selected
    assert Generation.objects.for_object(article, "hero").count() == 2  # nothing generated


def test_keyboard_only_generate(page, live_server, page_errors):
    article = make_articles(1)[0]
    login(page, live_server, make_user("admin", superuser=True))
    open_change_form(page, article)
    box = widget(page)

    # Every input of the widget has a label.
    prompt = box.get_by_label("Prompt")
    expect(prompt).to_be_visible()
    expect(box.get_by_label("Preset")).to_be_visible()
    expect(box.get_by_label("Provider")).to_be_visible()
    count = box.get_by_label("Images")
    expect(count).to_be_visible()
    unlabelled = box.evaluate(
        """root => Array.from(root.querySelectorAll('input, select, textarea'))
            .filter(el => el.type !== 'hidden' && !el.closest('[hidden]'))
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby'))
            .map(el => el.outerHTML)"""
    )
    assert unlabelled == []

    # Tab from the prompt to "Images", step it up to 3, then Tab on to Generate: no mouse.
    prompt.focus()
    tab_to(page, count)
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    expect(count).to_have_value("3")
    generate = box.get_by_role("button", name="Generate", exact=True)
    tab_to(page, generate)
    page.keyboard.press("Enter")

    keep = box.get_by_role("radio", name="Leave the field empty")
    expect(box.get_by_role("radio")).to_have_count(4)
    expect(keep).to_be_checked()
    # The button keeps the focus while it works, so the keyboard user is not sent to the top.
    expect(generate).to_be_focused()
    # Tab lands on the group's checked radio; the arrow keys move the choice.
    tab_to(page, keep)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    second = box.get_by_role("radio", name="Candidate 2", exact=True)
    expect(second).to_be_focused()
    expect(second).to_be_checked()
    expect(box.get_by_role("status")).to_have_text("Image 2 will be set when you save.")

    generation = Generation.objects.for_object(article, "hero").get()
    images = list(generation.images.order_by("pk"))
    assert len(images) == 3
    expect(box.locator("[data-imagegen-pick]")).to_have_value(str(images[1].pk))

    # Space on the focused Save button submits too.
    tab_to(page, page.get_by_role("button", name="Save and continue editing"))
    with page.expect_navigation():
        page.keyboard.press("Space")
    article.refresh_from_db()
    assert article.hero.name == images[1].file.name


# Access ---------------------------------------------------------------------------------------


def test_user_without_permission_sees_no_action_and_no_button(page, live_server, page_errors):
    article = make_articles(1)[0]
    # delete_article too, so that the changelist has an action select ("Delete selected…").
    perms = ["testapp.view_article", "testapp.change_article", "testapp.delete_article"]
    login(page, live_server, make_user("editor", perms=perms), next_url=CHANGELIST)

    assert page.url == f"{live_server.url}{CHANGELIST}"
    action = page.locator('select[name="action"]')
    expect(action.locator("option")).not_to_have_count(0)
    expect(action.locator("option", has_text="Generate images")).to_have_count(0)

    open_url = f"{CHANGELIST}{article.pk}/change/"
    page.goto(open_url)
    expect(page.locator('input[type="file"][name="hero"]')).to_be_attached()
    expect(page.locator("[data-imagegen-widget]")).to_have_count(0)
    expect(page.get_by_role("button", name="Generate", exact=True)).to_have_count(0)


# A queued run -----------------------------------------------------------------------------------


class ThreadRunner(QueuedRunner):
    """A queued runner whose "worker" is a thread: it waits a moment, then runs each job.

    After the first job it waits for ``gate`` (when set up), so that a test can look at a run
    caught halfway.
    """

    delay = 1.5
    gate: threading.Event | None = None
    threads: list[threading.Thread] = []

    def dispatch(self, jobs: list[tuple[int, str]]) -> None:
        thread = threading.Thread(target=self.work, args=([pk for pk, _alias in jobs],))
        type(self).threads.append(thread)
        thread.start()

    def work(self, pks: list[int]) -> None:
        from django.db import connection

        from imagegen.services import run_generation

        try:
            time.sleep(self.delay)
            for number, pk in enumerate(pks):
                if number == 1 and self.gate is not None:
                    self.gate.wait(timeout=TIMEOUT_MS / 1000)
                run_generation(pk)
        finally:
            connection.close()


@pytest.fixture
def thread_runner(settings):
    """Use :class:`ThreadRunner`; join its threads at the end."""
    settings.IMAGEGEN = {"TASK_RUNNER": "tests.browser.test_editor_flows.ThreadRunner"}
    ThreadRunner.threads = []
    ThreadRunner.gate = threading.Event()
    yield ThreadRunner
    ThreadRunner.gate.set()
    for thread in ThreadRunner.threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in ThreadRunner.threads)
    ThreadRunner.gate = None


def test_queued_run_shows_live_progress(page, live_server, page_errors, thread_runner):
    articles = make_articles()
    login(page, live_server, make_user("admin", superuser=True), next_url=CHANGELIST)

    run_bulk_action(page, articles)
    with page.expect_navigation():
        page.get_by_role("button", name="Generate", exact=True).click()

    assert re.search(r"/admin/testapp/article/imagegen/batch/[0-9a-f-]{36}/$", page.url)
    url = page.url
    summary = page.locator("[data-imagegen-summary]")
    expect(summary).to_contain_text("0 of 3 finished")
    expect(page.locator(".messagelist .success")).to_have_text(
        "Queued image generation for 3 objects."
    )
    assert len(thread_runner.threads) == 1

    # No reload from here on: the page follows the run by polling.
    expect(summary).to_contain_text("1 of 3 finished; cost so far $0.00.", timeout=TIMEOUT_MS)
    expect(summary).not_to_contain_text("All done.")
    expect(page.locator("progress")).to_have_js_property("value", 1)
    statuses = page.locator("[data-imagegen-rows] [data-cell=status]")
    expect(statuses.filter(has_text="Succeeded")).to_have_count(1)
    expect(statuses.filter(has_text="Queued")).to_have_count(2)
    screenshot(page, "bulk-progress")

    thread_runner.gate.set()
    expect(summary).to_contain_text(
        "3 of 3 finished; cost so far $0.00. All done.", timeout=TIMEOUT_MS
    )
    expect(page.locator("progress")).to_have_js_property("value", 3)
    expect(statuses).to_have_text(["Succeeded"] * 3)
    counts = page.locator("[data-imagegen-counts]")
    expect(counts.locator('[data-status="succeeded"] [data-count]')).to_have_text("3")
    expect(counts.locator('[data-status="queued"] [data-count]')).to_have_text("0")
    assert page.url == url
    for thread in thread_runner.threads:
        thread.join(timeout=10)
    for article in articles:
        article.refresh_from_db()
        assert article.hero.name
    assert set(Generation.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}


def test_the_widget_follows_a_queued_generation(page, live_server, page_errors, thread_runner):
    admin = make_user("admin", superuser=True)
    article = make_articles(1)[0]
    with override_settings(IMAGEGEN={}):  # an earlier generation, made on the spot
        imagegen.generate(target=article, field="hero", user=admin, prompt=EARLIER_PROMPT)
    login(page, live_server, admin)
    open_change_form(page, article)
    box = widget(page)

    box.get_by_label("Images").fill("2")
    box.get_by_role("button", name="Generate", exact=True).click()
    status = box.get_by_role("status")
    expect(status).to_have_text("Queued, waiting for a worker…")
    expect(box).to_have_attribute("aria-busy", "true")
    generate = box.get_by_role("button", name="Generate", exact=True)
    expect(generate).to_have_attribute("aria-disabled", "true")
    # The spinner is on the status line only, not on the status badges of the history.
    spinner = status.evaluate("e => getComputedStyle(e, '::before').content")
    assert spinner == '""', spinner
    badge = box.locator("[data-imagegen-history] .imagegen-status")
    expect(badge).to_have_text("Succeeded")
    assert badge.evaluate("e => getComputedStyle(e, '::before').content") == "none"

    expect(box.get_by_role("radio", name="Candidate 2", exact=True)).to_be_visible()
    expect(status).to_have_text("Done: pick a candidate, then save. Cost: $0.00")
    expect(box).not_to_have_attribute("aria-busy", "true")
    expect(generate).not_to_have_attribute("aria-disabled", "true")
    # The history was refreshed with the new generation.
    expect(box.locator("[data-imagegen-history-total]")).to_have_text(
        "2 generations, $0.00 in total."
    )
    statuses = Generation.objects.for_object(article, "hero").values_list("status", flat=True)
    assert list(statuses) == [Status.SUCCEEDED] * 2


# Dark mode -----------------------------------------------------------------------------------


def luminance(css_color: str) -> float:
    """Return the relative lightness (0-1) of an ``rgb(...)``/``rgba(...)`` colour."""
    r, g, b = (int(v) for v in re.findall(r"\d+", css_color)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def css_color(page, expression: str) -> str:
    """Return the computed colour of a CSS expression such as ``var(--body-fg)``."""
    return page.evaluate(
        """expression => {
            const probe = document.createElement('div');
            probe.style.color = expression;
            document.body.append(probe);
            const color = getComputedStyle(probe).color;
            probe.remove();
            return color;
        }""",
        expression,
    )


def test_the_widget_follows_the_dark_theme(chromium, live_server, external_requests):
    admin = make_user("admin", superuser=True)
    article = make_articles(1)[0]
    imagegen.generate(target=article, field="hero", user=admin, prompt=EARLIER_PROMPT)
    context = chromium.new_context(
        viewport=VIEWPORT,
        locale="en-US",
        timezone_id="UTC",
        color_scheme="dark",
        base_url=live_server.url,
    )
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    try:
        page = context.new_page()
        watch(page, errors)
        login(page, live_server, admin)
        open_change_form(page, article)
        box = widget(page)

        background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        assert luminance(background) < 0.2, background  # the admin's dark theme is on
        fieldset = box.locator("fieldset.imagegen-generate")
        legend = fieldset.locator("legend")
        color = legend.evaluate("e => getComputedStyle(e).color")
        assert color == css_color(page, "var(--body-fg)")
        assert luminance(color) > 0.7, color
        border = fieldset.evaluate("e => getComputedStyle(e).borderTopColor")
        assert border == css_color(page, "var(--hairline-color)")
        assert luminance(border) < 0.4, border  # a dark hairline, not the light theme's
        quiet = box.locator("[data-imagegen-estimate]")
        expect(quiet).to_have_text("Estimated cost: $0.00")
        assert quiet.evaluate("e => getComputedStyle(e).color") == css_color(
            page, "var(--body-quiet-color)"
        )

        box.get_by_label("Images").fill("3")
        box.get_by_role("button", name="Generate", exact=True).click()
        picked = box.get_by_role("radio", name="Candidate 2", exact=True)
        picked.check()
        card = box.locator(
            "label.imagegen-candidate",
            has=page.get_by_role("radio", name="Candidate 2", exact=True),
        )
        card_bg = card.evaluate("e => getComputedStyle(e).backgroundColor")
        assert card_bg == css_color(page, "var(--selected-bg)")
        assert luminance(card_bg) < 0.3, card_bg
        assert card.evaluate("e => getComputedStyle(e).color") == color
        wait_for_images(page)
        element_screenshot(field_row(page), "widget-dark")
    finally:
        context.close()
    assert errors == [], "JavaScript errors on the page:\n  " + "\n  ".join(errors)
