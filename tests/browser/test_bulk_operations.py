"""The bulk operations and the history's chains in a real browser.

Upscale from the changelist (the confirmation page's estimate, the run, images twice as wide,
each with its old image as parent), fit images to the preset (1:1 to 16:9), no action for a
user without the permission, and a chain generated → inpainted → upscaled in the widget's
history, reverted to its middle link. Saves the screenshots ``bulk-upscale-confirm`` and
``widget-history-chain``.
"""

from __future__ import annotations

import re

import imagegen
from imagegen.models import GeneratedImage, Status
from tests.browser.conftest import login, make_user, screenshot
from tests.browser.test_editor_flows import (
    ARTICLES,
    CHANGELIST,
    element_screenshot,
    make_articles,
    open_change_form,
    page_errors,  # noqa: F401 - a fixture, used by name
    save_and_continue,
    wait_for_images,
    widget,
)
from tests.testapp.models import Article

try:
    from playwright.sync_api import expect
except ImportError:  # the ``chromium`` fixture skips these tests (or fails them, if required)
    expect = None


def with_image(article: Article, width: int, height: int, **kwargs) -> GeneratedImage:
    """Give ``article`` a generated image of ``width`` x ``height`` (the offline placeholder)."""
    generation = imagegen.generate(target=article, width=width, height=height, **kwargs)
    assert generation.status == Status.SUCCEEDED, generation.error_message
    return generation.images.get()


def current(article: Article) -> GeneratedImage:
    article.refresh_from_db()
    return GeneratedImage.objects.filter(file=article.hero.name, selected=True).get()


def run_action(page, articles: list[Article], label: str, title: str) -> None:
    """Select ``articles`` on the changelist and run the action ``label`` up to its page."""
    page.goto(CHANGELIST)
    for article in articles:
        page.locator(f'input[name="_selected_action"][value="{article.pk}"]').check()
    page.locator('select[name="action"]').select_option(label=label)
    with page.expect_navigation():
        page.get_by_role("button", name="Go").click()
    expect(page.locator("#content h1")).to_have_text(title)


def row_of(page, article: Article):
    rows = page.locator(".imagegen-bulk-objects tbody tr")
    return rows.filter(has=page.get_by_role("rowheader", name=article.title, exact=True))


def test_upscale_from_the_bulk_action(page, live_server, page_errors):  # noqa: F811
    articles = make_articles()
    old = {article.pk: with_image(article, 64, 48) for article in articles}
    login(page, live_server, make_user("admin", superuser=True), next_url=CHANGELIST)

    run_action(page, articles, "Upscale images…", "Upscale images")
    expect(page.locator(".imagegen-bulk-objects tbody tr")).to_have_count(3)
    for article in articles:
        row = row_of(page, article)
        expect(row.locator(".imagegen-size")).to_have_text("64 x 48 px → 128 x 96 px")
        expect(row.locator(".imagegen-cost")).to_have_text("$0.00")
    expect(page.get_by_label("Scale")).to_have_value("2")
    expect(page.locator(".imagegen-bulk-estimate")).to_contain_text("Estimated total: $0.00")
    screenshot(page, "bulk-upscale-confirm")

    with page.expect_navigation():
        page.get_by_role("button", name="Upscale", exact=True).click()

    assert page.url == f"{live_server.url}{CHANGELIST}"
    expect(page.locator(".messagelist .success")).to_contain_text(
        "Upscaled the images of 3 objects, costing $0.00."
    )
    for article in articles:
        image = current(article)
        assert (image.width, image.height) == (128, 96)
        assert image.parent == old[article.pk]
        assert image.generation.operation == "upscale"


def test_fit_images_to_the_preset(page, live_server, page_errors):  # noqa: F811
    square, wide = make_articles(2)
    before = with_image(square, 90, 90)
    with_image(wide, 160, 90)  # already the hero preset's 16:9
    login(page, live_server, make_user("admin", superuser=True), next_url=CHANGELIST)

    run_action(page, [square, wide], "Fit images to the preset…", "Fit images to the preset")
    expect(row_of(page, square).locator(".imagegen-size")).to_have_text("90 x 90 px → 160 x 90 px")
    skipped = page.locator(".imagegen-bulk-skipped tbody tr")
    expect(skipped).to_have_count(1)
    expect(skipped).to_contain_text(wide.title)
    expect(skipped).to_contain_text("already the preset's shape")

    with page.expect_navigation():
        page.get_by_role("button", name="Fit images", exact=True).click()

    expect(page.locator(".messagelist .success")).to_contain_text(
        "Fitted the image of 1 object to its preset"
    )
    expect(page.locator(".messagelist .info")).to_contain_text(
        f"Skipped 1 object with nothing to do: {wide.title}."
    )
    image = current(square)
    assert (image.width, image.height) == (160, 90)
    assert image.parent == before


def test_a_user_without_the_permission_sees_none_of_the_actions(page, live_server, page_errors):  # noqa: F811
    make_articles(1)
    perms = ["testapp.view_article", "testapp.change_article", "testapp.delete_article"]
    login(page, live_server, make_user("editor", perms=perms), next_url=CHANGELIST)

    action = page.locator('select[name="action"]')
    expect(action.locator("option")).not_to_have_count(0)
    for label in ("Upscale images", "Remove backgrounds", "Fit images", "Generate images"):
        expect(action.locator("option", has_text=label)).to_have_count(0)


def test_the_history_shows_a_chain_and_reverts_to_its_middle_link(
    page,
    live_server,
    page_errors,  # noqa: F811
):
    admin = make_user("admin", superuser=True)
    article = Article.objects.create(title=ARTICLES[0][0], summary=ARTICLES[0][1])
    generated = with_image(article, 96, 64, user=admin)
    inpainted = imagegen.generate(
        operation="inpaint",
        source=generated,
        mask=(8, 8, 40, 40),
        prompt="a gull over the tower",
        user=admin,
    ).images.get()
    article.refresh_from_db()  # the inpaint set the field on its own copy of the article
    upscaled = imagegen.generate(operation="upscale", target=article, user=admin).images.get()
    assert current(article) == upscaled

    login(page, live_server, admin)
    open_change_form(page, article)
    box = widget(page)
    history = box.locator("details.imagegen-history-panel")
    history.locator("summary", has_text="History").click()
    expect(history).to_contain_text("3 generations, $0.00 in total.")
    top = history.locator(f'figure[data-image="{upscaled.pk}"]')
    expect(top.locator("[data-imagegen-chain]")).to_have_text("generated → inpainted → upscaled")
    lineage = history.locator(f'[data-imagegen-parent="{inpainted.pk}"]')
    expect(lineage).to_have_text(f"Upscaled from image #{inpainted.pk}")
    middle = history.locator(f'figure[data-image="{inpainted.pk}"]')
    expect(middle.locator("[data-imagegen-chain]")).to_have_text("generated → inpainted")
    wait_for_images(page)
    element_screenshot(history, "widget-history-chain")

    # The parent link leads to the parent's image in the panel.
    lineage.get_by_role("link").click()
    assert page.url.endswith(f"#imagegen-hero-image-{inpainted.pk}")

    middle.get_by_role("button", name=re.compile("^Use this image")).click()
    expect(box.get_by_role("status")).to_have_text("This earlier image will be set when you save.")
    save_and_continue(page)
    assert current(article) == inpainted
    assert not GeneratedImage.objects.get(pk=upscaled.pk).selected
