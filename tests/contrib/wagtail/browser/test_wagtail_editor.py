"""An editor generates an image from the chooser inside a StreamField block and publishes it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.browser.conftest import screenshot
from tests.contrib.wagtail.browser.conftest import wagtail_login

# serialized_rollback: Wagtail's migrations make the root page, the site and the groups, which a
# transactional test's flush would otherwise remove for the next test.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def wagtail_tree():
    """Return the root page, making what Wagtail's migrations make if a flush removed it.

    A transactional test ends with a flush, and pytest-django restores the migrations' rows
    (serialized_rollback) only in some orders; the browser tests do not rely on it.
    """
    from django.conf import settings
    from django.utils.translation import get_supported_language_variant
    from wagtail.models import Collection, Locale, Page

    if not Collection.get_first_root_node():
        Collection.add_root(name="Root")
    root = Page.get_first_root_node()
    if root is None:
        code = get_supported_language_variant(settings.LANGUAGE_CODE)
        locale = Locale.objects.get_or_create(language_code=code)[0]
        root = Page.add_root(instance=Page(title="Root", slug="root", locale=locale))
    return root


@pytest.fixture
def live_article(transactional_db):
    from wagtail.models import Site
    from wagtail_demo.models import ArticlePage, HomePage

    home = wagtail_tree().add_child(instance=HomePage(title="Home", slug="imagegen-home"))
    Site.objects.update_or_create(
        is_default_site=True, defaults={"hostname": "localhost", "root_page": home}
    )
    article = home.add_child(instance=ArticlePage(title="A lighthouse at dawn", summary="waves"))
    article.save_revision().publish()
    return article


@pytest.fixture
def wagtail_editor(django_user_model):
    """A superuser: generating, choosing and publishing need no group of Wagtail's here."""
    return django_user_model.objects.create_superuser("editor", "editor@example.com", "pw")


def test_generate_in_a_streamfield_block_publish_and_see_the_rendition(
    page, live_server, live_article, wagtail_editor
):
    wagtail_login(page, live_server, wagtail_editor)
    page.goto(f"{live_server.url}/cms/pages/{live_article.pk}/edit/")

    # Add an image block to the body.
    page.locator("#panel-child-content-body-section button[title='Insert a block']").first.click()
    page.get_by_role("option", name="Image").click()
    # A new chooser block opens its chooser at once; open it if this Wagtail does not.
    try:
        page.locator(".modal-body #tab-search").wait_for(timeout=3000)
    except PlaywrightTimeout:
        page.locator("#body-0-value-chooser [data-chooser-action-choose]").first.click()

    # The chooser's Generate tab.
    modal = page.locator(".modal-body")
    modal.get_by_role("tab", name="Generate").click()
    modal.get_by_label("Prompt").fill("a red kite over green hills")
    screenshot(page, "wagtail-chooser-generate")
    modal.get_by_role("button", name="Generate", exact=True).click()
    candidate = modal.get_by_role("button", name=re.compile("^Use this image"))
    candidate.first.wait_for()
    screenshot(page, "wagtail-chooser-candidates")
    # Wagtail's "system" theme follows the browser: the tab uses its colour variables.
    page.emulate_media(color_scheme="dark")
    screenshot(page, "wagtail-chooser-dark")
    page.emulate_media(color_scheme="light")
    candidate.first.click()
    page.locator(".modal").wait_for(state="hidden")

    block_chooser = page.locator("#body-0-value-chooser [data-chooser-image]")
    assert "/images/" in (block_chooser.get_attribute("src") or "")
    assert not page.locator("#id_hero_image").input_value()  # only the block got it

    # Publish (the footer's action menu) and look at the live page.
    publish = page.locator("button[name='action-publish']")
    page.locator("footer [data-w-dropdown-target='toggle']").first.click()
    with page.expect_navigation():
        publish.click()

    page.goto(f"{live_server.url}{live_article.url}")
    image = page.locator("figure.block-image img")
    image.wait_for()
    src = image.get_attribute("src") or ""
    assert re.search(r"/images/[^/]+\.width-800\.", src), src
    assert page.evaluate("(img) => img.naturalWidth > 0", image.element_handle())


def test_the_panel_generates_and_sets_the_hero_image(
    page, live_server, live_article, wagtail_editor
):
    wagtail_login(page, live_server, wagtail_editor)
    page.goto(f"{live_server.url}/cms/pages/{live_article.pk}/edit/")
    panel = page.locator(".imagegen-wagtail--panel")
    panel.get_by_role("button", name="Generate").click()
    candidate = panel.get_by_role("button", name=re.compile("^Use this image"))
    candidate.first.wait_for()
    candidate.first.click()
    page.get_by_text("The image is set on the field.").wait_for()
    assert page.locator("#id_hero_image").input_value()
    panel.scroll_into_view_if_needed()
    screenshot(page, "wagtail-panel")


def test_the_bulk_action_shows_the_estimate(page, live_server, live_article, wagtail_editor):
    wagtail_login(page, live_server, wagtail_editor)
    url = f"/cms/bulk/wagtailcore/page/imagegen_generate/?id={live_article.pk}&next=/cms/"
    page.goto(f"{live_server.url}{url}")
    page.get_by_text("Estimated total").wait_for()
    screenshot(page, "wagtail-bulk-confirm")
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("^Generate")).click()
    live_article.refresh_from_db()
    assert live_article.get_latest_revision_as_object().hero_image is not None
