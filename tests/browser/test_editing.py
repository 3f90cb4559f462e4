"""Edit mode of the Generate widget, in a real browser: operations, mask painter, upload.

Everything runs on the offline placeholder provider, which does every operation. These tests
also save the screenshots the docs embed (``widget-edit``, ``widget-mask`` and
``widget-edit-dark``), and check the widget's rough edges: Enter never submits the change form,
errors sit next to their control, stale candidates go when a new run starts.
"""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

import imagegen
from imagegen.models import GeneratedImage, Generation, Status
from tests.browser.conftest import TIMEOUT_MS, VIEWPORT, login, make_user
from tests.browser.test_editor_flows import (
    EARLIER_PROMPT,
    element_screenshot,
    field_row,
    make_articles,
    open_change_form,
    save_and_continue,
    wait_for_images,
    watch,
    widget,
)
from tests.testapp.models import Article, Product

try:
    from playwright.sync_api import expect
except ImportError:  # the ``chromium`` fixture skips these tests (or fails them, if required)
    expect = None

PRODUCTS = "/admin/testapp/product/"
#: How long a run may take: the placeholder draws in this process, on a busy test machine.
RUN_TIMEOUT = 6 * TIMEOUT_MS


#: What Chromium logs for an answer of 400, which the tests of bad input provoke on purpose.
BAD_REQUEST = "the server responded with a status of 400 (Bad Request)"


@pytest.fixture
def bad_requests() -> bool:
    """Request this fixture in a test that sends bad input: the 400 answers are expected."""
    return True


@pytest.fixture
def page_errors(page, request):
    """Collect the page's JavaScript errors; the test fails at teardown unless there are none.

    Answers of 400 are errors too, except in tests that request ``bad_requests``.
    """
    errors: list[str] = []
    watch(page, errors)
    yield errors
    if "bad_requests" in request.fixturenames:
        errors = [error for error in errors if BAD_REQUEST not in error]
    assert errors == [], "JavaScript errors on the page:\n  " + "\n  ".join(errors)


def photo_bytes(size: tuple[int, int] = (640, 640)) -> bytes:
    """A product photo: a blue bottle on a grey table, as a JPEG."""
    image = Image.new("RGB", size, (128, 128, 128))
    width, height = size
    for x in range(width * 2 // 5, width * 3 // 5):
        for y in range(height // 4, height * 4 // 5):
            image.putpixel((x, y), (30, 60, 200))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def choose_operation(box, label: str) -> None:
    box.get_by_label("What to do").select_option(label=label)


def mask_canvas(box):
    return box.locator("canvas[data-imagegen-mask]")


def painted_fraction(box) -> float:
    """Return the share of the mask canvas's pixels that are painted."""
    return mask_canvas(box).evaluate(
        """canvas => {
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
                .data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { painted += 1; } }
            return painted / (canvas.width * canvas.height);
        }"""
    )


def paint_stroke(page, box) -> None:
    """Drag the brush across the middle of the image with the mouse."""
    canvas = mask_canvas(box)
    canvas.scroll_into_view_if_needed()
    area = canvas.bounding_box()
    assert area is not None
    y = area["y"] + area["height"] / 2
    page.mouse.move(area["x"] + area["width"] * 0.3, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(area["x"] + area["width"] * (0.3 + 0.04 * step), y + step)
    page.mouse.up()


def newest_generation(obj, field: str) -> Generation:
    return Generation.objects.for_object(obj, field).order_by("-pk").first()


# Upload a photo: a product shot on a studio background --------------------------------------------


def test_upload_a_photo_and_replace_its_background(page, live_server, page_errors):
    admin = make_user("admin", superuser=True)
    bottle = Product.objects.create(name="Blue bottle")
    login(page, live_server, admin)
    page.goto(f"{PRODUCTS}{bottle.pk}/change/")
    box = widget(page)
    expect(box).to_be_visible()

    choose_operation(box, "Replace the background")
    source = box.get_by_label("Source image")
    # The field is empty: the only source is a photo of one's own.
    expect(source.locator("option")).to_have_text(["Upload a photo"])
    box.get_by_label("Photo to edit").set_input_files(
        {"name": "bottle.jpg", "mimeType": "image/jpeg", "buffer": photo_bytes()}
    )
    preview = box.locator("img[data-imagegen-preview]")
    expect(preview).to_be_visible()
    expect(box.get_by_label("Reference image")).to_be_visible()
    box.get_by_label("Prompt").fill("a white studio background with a soft shadow")
    expect(box.locator("[data-imagegen-estimate]")).to_have_text("Estimated cost: $0.00")
    wait_for_images(page)
    element_screenshot(page.locator(".form-row.field-photo"), "widget-edit")

    box.get_by_role("button", name="Generate", exact=True).click()
    expect(box.get_by_role("status")).to_have_text(
        "Done: pick a candidate, then save. Cost: $0.00", timeout=RUN_TIMEOUT
    )
    generation = newest_generation(bottle, "photo")
    assert generation.operation == "replace_background"
    assert generation.status == Status.SUCCEEDED
    assert generation.source_file, "the uploaded photo is kept with the row"
    assert generation.source_image is None
    image = generation.images.get()
    assert (image.width, image.height) == (640, 640)

    box.get_by_role("radio", name="Candidate 1", exact=True).check()
    save_and_continue(page)
    bottle.refresh_from_db()
    assert bottle.photo.name == image.file.name


def test_a_file_that_is_no_image_gets_a_clear_message(page, live_server, page_errors, bad_requests):
    bottle = Product.objects.create(name="Blue bottle")
    login(page, live_server, make_user("admin", superuser=True))
    page.goto(f"{PRODUCTS}{bottle.pk}/change/")
    box = widget(page)
    choose_operation(box, "Remove the background")
    box.get_by_label("Photo to edit").set_input_files(
        {"name": "notes.png", "mimeType": "image/png", "buffer": b"these are not pixels"}
    )
    upload_error = box.locator('[data-imagegen-error="upload"]')
    expect(upload_error).to_have_text(
        "The photo could not be used: choose a PNG, JPEG or WebP image."
    )
    box.get_by_role("button", name="Generate", exact=True).click()
    expect(upload_error).to_have_text(
        "The photo could not be used: choose a PNG, JPEG or WebP image."
    )
    expect(box.get_by_label("Photo to edit")).to_have_attribute("aria-invalid", "true")
    assert not Generation.objects.exists()


# Paint a mask, inpaint, pick, save ----------------------------------------------------------------


def test_paint_a_mask_on_a_candidate_inpaint_pick_and_save(page, live_server, page_errors):
    admin = make_user("admin", superuser=True)
    article = make_articles(1)[0]
    login(page, live_server, admin)
    open_change_form(page, article)
    box = widget(page)

    box.get_by_role("button", name="Generate", exact=True).click()
    expect(box.get_by_role("radio", name="Candidate 1", exact=True)).to_be_visible(
        timeout=RUN_TIMEOUT
    )
    first = newest_generation(article, "hero").images.get()

    box.get_by_role("button", name="Edit this image (Candidate 1)").click()
    expect(box.get_by_label("What to do")).to_have_value("edit")
    expect(box.get_by_label("Source image")).to_have_value(str(first.pk))
    choose_operation(box, "Paint an area and replace it")
    canvas = mask_canvas(box)
    expect(canvas).to_be_visible()
    assert canvas.evaluate("c => [c.width, c.height]") == [first.width, first.height]
    box.get_by_label("Brush size").fill("60")
    paint_stroke(page, box)
    assert painted_fraction(box) > 0.01
    box.get_by_label("Prompt").fill("a red sailing boat")
    wait_for_images(page)
    element_screenshot(box.locator("fieldset.imagegen-generate"), "widget-mask")

    # Undo takes the stroke away and says so; paint again.
    box.get_by_role("button", name="Undo").click()
    expect(box.locator("[data-imagegen-mask-status]")).to_have_text(
        "Undid the last change to the mask."
    )
    assert painted_fraction(box) == 0
    paint_stroke(page, box)

    box.get_by_role("button", name="Generate", exact=True).click()
    # The last run's candidates went as soon as this one started; these are the new ones.
    expect(box.get_by_role("status")).to_have_text(
        "Done: pick a candidate, then save. Cost: $0.00", timeout=RUN_TIMEOUT
    )
    inpainted = newest_generation(article, "hero")
    assert inpainted.operation == "inpaint"
    assert inpainted.source_image_id == first.pk
    assert inpainted.mask_file
    with inpainted.mask_file.open("rb") as file, Image.open(file) as mask:
        assert mask.size == (first.width, first.height)
        assert mask.convert("L").getextrema() == (0, 255)  # black, and white where painted
    result = inpainted.images.get()
    box.get_by_role("radio", name="Candidate 1", exact=True).check()
    expect(box.locator("[data-imagegen-pick]")).to_have_value(str(result.pk))

    save_and_continue(page)
    article.refresh_from_db()
    assert article.hero.name == result.file.name
    assert GeneratedImage.objects.get(pk=result.pk).parent_id == first.pk


# Outpaint to the preset ---------------------------------------------------------------------------


def test_extend_a_square_image_to_sixteen_by_nine(page, live_server, page_errors):
    admin = make_user("admin", superuser=True)
    article = make_articles(1)[0]
    square = imagegen.generate(
        target=article, field="hero", user=admin, prompt=EARLIER_PROMPT, preset="product"
    ).images.get()
    assert square.width == square.height
    login(page, live_server, admin)
    open_change_form(page, article)
    box = widget(page)

    choose_operation(box, "Extend to the preset's shape")
    expect(box.get_by_label("Source image")).to_have_value("current")
    expect(box.get_by_label("Preset")).to_have_value("hero")
    # Nothing to paint or find for an extension.
    expect(box.locator('[data-imagegen-part="mask"]')).to_be_hidden()
    expect(box.get_by_label("What to find")).to_be_hidden()
    box.get_by_label("Prompt").fill("")
    box.get_by_role("button", name="Generate", exact=True).click()
    expect(box.get_by_role("status")).to_have_text(
        "Done: pick a candidate, then save. Cost: $0.00", timeout=RUN_TIMEOUT
    )
    generation = newest_generation(article, "hero")
    assert generation.operation == "outpaint"
    wide = generation.images.get()
    assert abs(wide.width / wide.height - 16 / 9) < 0.01, (wide.width, wide.height)
    assert wide.height == square.height
    box.get_by_role("radio", name="Candidate 1", exact=True).check()
    save_and_continue(page)
    article.refresh_from_db()
    assert article.hero.name == wide.file.name
    assert GeneratedImage.objects.get(pk=wide.pk).parent_id == square.pk


# The keyboard rectangle tool ----------------------------------------------------------------------


def test_the_rectangle_tool_works_from_the_keyboard(page, live_server, page_errors):
    admin = make_user("admin", superuser=True)
    article = make_articles(1)[0]
    current = imagegen.generate(
        target=article, field="hero", user=admin, prompt=EARLIER_PROMPT
    ).images.get()
    login(page, live_server, admin)
    open_change_form(page, article)
    box = widget(page)

    operation = box.get_by_label("What to do")
    operation.focus()
    operation.select_option(label="Erase an area")
    box.get_by_role("radio", name="Rectangle").focus()
    page.keyboard.press("Space")
    expect(box.get_by_role("radio", name="Rectangle")).to_be_checked()
    canvas = mask_canvas(box)
    expect(canvas).to_be_visible()
    page.keyboard.press("Tab")  # to the brush size
    for _ in range(10):
        if canvas.evaluate("c => c === document.activeElement"):
            break
        page.keyboard.press("Shift+Tab")
    expect(canvas).to_be_focused()

    status = box.locator("[data-imagegen-mask-status]")
    width, height = current.width, current.height
    step = round(min(width, height) / 20)
    # Focusing the image starts a selection in the middle; the arrows move and resize it.
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    left, top = round(width / 4) - step, round(height / 4)
    sel_w, sel_h = round(width / 2) + step, round(height / 2) + step
    expect(status).to_have_text(
        f"Selection: {sel_w} by {sel_h} pixels, {left} from the left and {top} from the top. "
        "Press Enter to add it to the mask."
    )
    expect(status).to_have_attribute("aria-live", "polite")
    url = page.url
    page.keyboard.press("Enter")
    expect(status).to_have_text("Added the selection to the mask.")
    assert page.url == url  # Enter set the rectangle; it did not submit the change form
    fraction = painted_fraction(box)
    assert abs(fraction - sel_w * sel_h / (width * height)) < 0.01, fraction

    box.get_by_role("button", name="Generate", exact=True).click()
    expect(box.get_by_role("status")).to_have_text(
        "Done: pick a candidate, then save. Cost: $0.00", timeout=RUN_TIMEOUT
    )
    generation = newest_generation(article, "hero")
    assert generation.operation == "erase"
    assert generation.source_image_id == current.pk
    with generation.mask_file.open("rb") as file, Image.open(file) as mask:
        mask = mask.convert("L")
        assert mask.size == (width, height)
        assert mask.getpixel((left + 2, top + 2)) == 255
        assert mask.getpixel((left + sel_w + 2, top + sel_h + 2)) == 0
        assert mask.getpixel((left - 2, top - 2)) == 0


# Access -------------------------------------------------------------------------------------------


def test_a_user_without_the_generate_permission_sees_no_edit_mode(page, live_server, page_errors):
    article = make_articles(1)[0]
    imagegen.generate(target=article, field="hero", prompt=EARLIER_PROMPT)
    perms = ["testapp.view_article", "testapp.change_article"]
    login(page, live_server, make_user("editor", perms=perms))
    page.goto(f"/admin/testapp/article/{article.pk}/change/")
    expect(page.locator('input[type="file"][name="hero"]')).to_be_attached()
    expect(page.get_by_label("What to do")).to_have_count(0)
    expect(page.locator("canvas")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("Edit this image"))).to_have_count(0)


# Rough edges --------------------------------------------------------------------------------------


def test_enter_in_the_box_never_submits_the_change_form(page, live_server, page_errors):
    article = make_articles(1)[0]
    login(page, live_server, make_user("admin", superuser=True))
    open_change_form(page, article)
    box = widget(page)
    url = page.url
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    for label in ("Images", "Preset", "Provider", "What to do"):
        box.get_by_label(label).focus()
        page.keyboard.press("Enter")
    choose_operation(box, "Replace something")
    box.get_by_label("What to find").fill("the tower")
    box.get_by_label("What to find").press("Enter")
    page.wait_for_timeout(500)
    assert navigations == [] and page.url == url
    assert Article.objects.get(pk=article.pk).title == article.title


def test_an_invalid_count_shows_its_message_next_to_the_count(
    page, live_server, page_errors, bad_requests
):
    article = make_articles(1)[0]
    login(page, live_server, make_user("admin", superuser=True))
    open_change_form(page, article)
    box = widget(page)
    count = box.get_by_label("Images")
    expect(count).to_have_attribute("min", "1")
    expect(count).to_have_attribute("max", "4")

    count.fill("9")
    error = box.locator('[data-imagegen-error="count"]')
    expect(error).to_have_text("Choose 1 to 4 images.")
    expect(count).to_have_attribute("aria-invalid", "true")
    describedby = count.get_attribute("aria-describedby") or ""
    assert error.get_attribute("id") in describedby.split()
    box.get_by_role("button", name="Generate", exact=True).click()
    status = box.get_by_role("status")
    expect(status).to_have_text("Check the marked field: Choose 1 to 4 images.")
    expect(status).not_to_contain_text("count:")
    expect(status).not_to_contain_text("Something went wrong")
    assert not Generation.objects.exists()

    count.fill("2")
    expect(error).to_be_hidden()
    expect(count).not_to_have_attribute("aria-invalid", "true")


def test_a_new_run_clears_the_last_runs_candidates(page, live_server, page_errors, bad_requests):
    article = make_articles(1)[0]
    login(page, live_server, make_user("admin", superuser=True))
    open_change_form(page, article)
    box = widget(page)
    box.get_by_label("Images").fill("2")
    box.get_by_role("button", name="Generate", exact=True).click()
    second = box.get_by_role("radio", name="Candidate 2", exact=True)
    expect(second).to_be_visible(timeout=RUN_TIMEOUT)
    second.check()
    first_run = newest_generation(article, "hero")
    picked = first_run.images.order_by("pk")[1]
    expect(box.locator("[data-imagegen-pick]")).to_have_value(str(picked.pk))

    # The second run fails before anything is made: the old candidates are gone all the same,
    # and so is the pick among them.
    box.get_by_label("Images").fill("1")
    choose_operation(box, "Replace something")
    box.get_by_role("button", name="Generate", exact=True).click()
    expect(box.locator('[data-imagegen-error="search"]')).to_have_text(
        "Say what to find in the image."
    )
    expect(box.locator("[data-imagegen-candidates]")).to_be_hidden()
    expect(box.get_by_role("radio", name="Candidate 2", exact=True)).to_have_count(0)
    expect(box.locator("[data-imagegen-pick]")).to_have_value("")


# Dark mode ----------------------------------------------------------------------------------------


def test_edit_mode_in_the_dark_theme(chromium, live_server, external_requests):
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
        choose_operation(box, "Erase an area")
        expect(mask_canvas(box)).to_be_visible()
        paint_stroke(page, box)
        title = box.locator(".imagegen-mask-title")
        color = title.evaluate("e => getComputedStyle(e).color")
        body = page.evaluate("() => getComputedStyle(document.body).color")
        assert color == body, (color, body)
        wait_for_images(page)
        element_screenshot(field_row(page), "widget-edit-dark")
    finally:
        context.close()
    assert errors == [], "JavaScript errors on the page:\n  " + "\n  ".join(errors)
