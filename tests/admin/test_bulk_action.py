"""The "Generate images…" action: confirmation page, estimate, generating, budgets, errors."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.files.storage import default_storage

from imagegen.models import Generation, Status
from imagegen.providers import locmem as locmem_module
from imagegen.services import run_generation
from tests.admin.support import (
    CHANGELIST,
    act,
    confirm,
    form_data,
    input_tag,
    ledger_row,
    notices,
    options_of,
    selected_option,
    text_of,
    textarea,
)
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db


# The page ---------------------------------------------------------------------------------------


def test_the_changelist_offers_the_action_to_a_superuser(admin_client, articles):
    page = admin_client.get(CHANGELIST)

    assert page.status_code == 200
    assert '<option value="generate_images">Generate images…</option>' in page.content.decode()


def test_the_first_post_lists_each_object_with_its_prompt_and_the_estimate(
    admin_client, locmem, articles
):
    page = act(admin_client, [a.pk for a in articles])

    assert page.status_code == 200
    assert "admin/imagegen/generate_images.html" in [t.name for t in page.templates]
    text = text_of(page)
    assert "Generate images for 3 articles." in text
    assert (
        textarea(page, f"prompt_{articles[0].pk}") == "Lighthouse: a white tower on a rocky coast"
    )
    assert textarea(page, f"prompt_{articles[1].pk}") == "Harbour: fishing boats at dawn"
    assert textarea(page, f"prompt_{articles[2].pk}") == "Bakery"
    for article in articles:
        assert f"Prompt for {article.title}" in text
    assert selected_option(page, "preset") == "hero"
    assert options_of(page, "provider") == ["", "test", "paid", "default"]
    assert 'value="1"' in input_tag(page, "count")
    assert "Images per object:" in text
    # Each row shows the provider and model it would use, and its own estimate.
    assert text.count("test: locmem $0.04") == 3
    assert "Estimated total: $0.12" in text
    # Nothing was generated or written yet.
    assert Generation.objects.count() == 0 and locmem == []


def test_update_estimate_re_renders_with_the_changes_and_keeps_edited_prompts(
    admin_client, locmem, articles
):
    edited = {f"prompt_{articles[1].pk}": "A harbour at night, lanterns on the water"}

    page = confirm(admin_client, articles, "preview", provider="paid", count="2", **edited)

    assert page.status_code == 200
    text = text_of(page)
    assert "Estimated total: $0.24" in text  # 3 objects x 2 images x $0.04
    assert text.count("paid: locmem $0.08") == 3
    assert selected_option(page, "provider") == "paid"
    assert 'value="2"' in input_tag(page, "count")
    assert textarea(page, f"prompt_{articles[1].pk}") == "A harbour at night, lanterns on the water"
    assert (
        textarea(page, f"prompt_{articles[0].pk}") == "Lighthouse: a white tower on a rocky coast"
    )
    assert Generation.objects.count() == 0 and locmem == []


def test_the_page_posts_back_to_itself_through_update_estimate_and_generate(
    admin_client, locmem, articles
):
    """Submit the page's own form, as a browser would, through both buttons."""
    page = act(admin_client, [a.pk for a in articles])
    data = form_data(page, "imagegen-bulk-form")
    assert "index" not in data
    assert sorted(data[ACTION_CHECKBOX_NAME]) == sorted(str(a.pk) for a in articles)

    data.update(
        {
            "provider": "paid",
            "count": "2",
            f"prompt_{articles[2].pk}": "A bakery window full of bread",
        }
    )
    preview = admin_client.post(CHANGELIST, {**data, "imagegen_step": "preview"})

    assert preview.status_code == 200
    assert "Estimated total: $0.24" in text_of(preview)
    assert Generation.objects.count() == 0
    again = form_data(preview, "imagegen-bulk-form")
    assert again[f"prompt_{articles[2].pk}"] == "A bakery window full of bread"
    assert (again["provider"], again["count"]) == ("paid", "2")

    response = admin_client.post(CHANGELIST, {**again, "imagegen_step": "generate"})

    assert response.status_code == 302 and response["Location"] == CHANGELIST
    assert Generation.objects.filter(status=Status.SUCCEEDED).count() == 3
    bakery = Generation.objects.get(object_id=str(articles[2].pk))
    assert bakery.params["subject"] == "A bakery window full of bread" and bakery.count == 2


def test_the_page_keeps_the_changelist_filters(admin_client, locmem, articles):
    url = CHANGELIST + "?q=Harbour"
    page = act(admin_client, [a.pk for a in articles], url=url, select_across="1")
    assert "Generate images for 1 article." in text_of(page)

    data = form_data(page, "imagegen-bulk-form")
    response = admin_client.post(url, {**data, "imagegen_step": "generate"})

    assert response.status_code == 302 and response["Location"] == url
    assert list(Generation.objects.values_list("object_id", flat=True)) == [str(articles[1].pk)]


def test_update_estimate_with_an_invalid_count_says_so_and_generates_nothing(
    admin_client, locmem, articles
):
    page = confirm(admin_client, articles, "generate", count="9")

    assert page.status_code == 200
    assert "Ensure this value is less than or equal to 4." in text_of(page)
    assert Generation.objects.count() == 0 and locmem == []


# Generating with the immediate runner -----------------------------------------------------------


def test_generate_attaches_an_image_to_each_object_and_reports_the_cost(
    admin_client, locmem, articles
):
    edited_prompt = "A harbour at night with lanterns on the water"

    response = confirm(
        admin_client,
        articles,
        "generate",
        provider="paid",
        count="2",
        **{f"prompt_{articles[1].pk}": edited_prompt},
    )

    assert response.status_code == 302
    assert response["Location"] == CHANGELIST
    page = admin_client.get(response["Location"])
    assert notices(page) == [("success", "Generated images for 3 objects, costing $0.24.")]
    for article in articles:
        article.refresh_from_db()
        assert article.hero.name, article
        assert default_storage.exists(article.hero.name)
        [generation] = Generation.objects.for_object(article, "hero")
        assert generation.status == Status.SUCCEEDED
        assert generation.images.count() == 2
        assert generation.images.get(selected=True).file.name == article.hero.name
    rows = {int(g.object_id): g for g in Generation.objects.all()}
    assert rows[articles[1].pk].params["subject"] == edited_prompt
    assert rows[articles[1].pk].prompt.startswith(edited_prompt)
    assert rows[articles[0].pk].params["subject"] == "Lighthouse: a white tower on a rocky coast"
    assert rows[articles[2].pk].params["subject"] == "Bakery"
    # The edited prompt reached the provider; the others used the field's template.
    assert sorted(r.prompt.split(",")[0] for r in locmem_module.requests) == sorted(
        [edited_prompt, "Lighthouse: a white tower on a rocky coast", "Bakery"]
    )
    batches = {g.batch for g in Generation.objects.all()}
    assert len(batches) == 1 and None not in batches


def test_generating_records_the_editor_on_every_row(admin_client, admin_user, locmem, articles):
    confirm(admin_client, articles, "generate", provider="paid")

    assert set(Generation.objects.values_list("created_by", flat=True)) == {admin_user.pk}


def test_the_budget_stops_the_run_before_anything_over_it_is_dispatched(
    admin_client, locmem, articles, settings
):
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"SITE_MONTHLY": "0.08"}}

    response = confirm(admin_client, articles, "generate", provider="paid")

    page = admin_client.get(response["Location"])
    levels = dict(notices(page))
    assert levels["success"] == "Generated images for 2 objects, costing $0.08."
    assert levels["error"].startswith("Stopped: This would cost $0.04")
    assert "over the $0.08 monthly budget" in levels["error"]
    assert Generation.objects.count() == 2 and len(locmem) == 2
    assert sum(g.cost for g in Generation.objects.all()) <= Decimal("0.08")
    with_image = [a for a in Article.objects.all() if a.hero]
    assert len(with_image) == 2
    [without] = Article.objects.exclude(pk__in=[a.pk for a in with_image])
    assert not Generation.objects.filter(object_id=str(without.pk)).exists()


def test_a_spent_budget_dispatches_nothing(admin_client, locmem, articles, settings):
    ledger_row(articles[0], cost="1.00")
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"SITE_MONTHLY": "1.00"}}

    response = confirm(admin_client, articles, "generate", provider="paid")

    page = admin_client.get(response["Location"])
    [(level, text)] = notices(page)
    assert level == "error" and text.startswith("Stopped: This would cost $0.04")
    assert Generation.objects.count() == 1 and locmem == []


def test_an_object_without_a_prompt_shows_its_error_instead_of_crashing(
    admin_client, locmem, articles
):
    blank = Article.objects.create(title="")
    chosen = [*articles, blank]

    page = act(admin_client, [a.pk for a in chosen])

    assert page.status_code == 200
    text = text_of(page)
    assert text.count("A prompt is required.") == 1
    assert "Estimated total: $0.12" in text  # the three others

    response = confirm(admin_client, chosen, "generate", provider="paid")

    assert response.status_code == 302
    page = admin_client.get(response["Location"])
    assert ("success", "Generated images for 3 objects, costing $0.12.") in notices(page)
    assert any(
        level == "error" and "A prompt is required." in text for level, text in notices(page)
    )
    assert not Generation.objects.filter(object_id=str(blank.pk)).exists()


def test_an_edited_prompt_gives_a_blank_object_its_prompt(admin_client, locmem):
    blank = Article.objects.create(title="")

    response = confirm(
        admin_client,
        [blank],
        "generate",
        provider="paid",
        **{f"prompt_{blank.pk}": "An empty desk"},
    )

    assert response.status_code == 302
    blank.refresh_from_db()
    assert blank.hero
    assert Generation.objects.get().params["subject"] == "An empty desk"


# Generating with a queued runner ----------------------------------------------------------------


def test_a_queued_run_redirects_to_its_progress_page(
    admin_client, queued, articles, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = confirm(admin_client, articles, "generate", provider="paid")

    [batch] = set(Generation.objects.values_list("batch", flat=True))
    assert batch is not None
    progress_url = f"/admin/testapp/article/imagegen/batch/{batch}/"
    assert response.status_code == 302 and response["Location"] == progress_url
    assert sorted(pk for pk, _alias in queued) == sorted(
        Generation.objects.values_list("pk", flat=True)
    )
    assert {alias for _pk, alias in queued} == {"paid"}

    page = admin_client.get(progress_url)
    assert page.status_code == 200
    text = text_of(page)
    assert ("success", "Queued image generation for 3 objects.") in notices(page)
    assert "0 of 3 finished; cost so far $0.00." in text
    assert "All done." not in text
    for article in articles:
        assert f"/admin/testapp/article/{article.pk}/change/" in page.content.decode()

    status_url = progress_url + "status/"
    state = admin_client.post(status_url).json()
    assert state["total"] == 3 and state["done"] == 0 and state["finished"] is False
    assert state["counts"]["queued"] == 3
    assert len(state["rows"]) == 3

    for pk, _alias in queued:
        run_generation(pk)

    state = admin_client.post(status_url).json()
    assert state["finished"] is True
    assert state["counts"]["succeeded"] == 3 and state["done"] == 3
    assert state["cost"] == "$0.12"
    assert {row["status"] for row in state["rows"]} == {"succeeded"}
    page = admin_client.get(progress_url)
    assert "3 of 3 finished; cost so far $0.12. All done." in text_of(page)
    for article in articles:
        article.refresh_from_db()
        assert article.hero


def test_the_progress_page_of_another_model_shows_none_of_these_rows(
    admin_client, queued, articles
):
    confirm(admin_client, articles, "generate", provider="paid")
    [batch] = set(Generation.objects.values_list("batch", flat=True))

    state = admin_client.post(f"/admin/testapp/product/imagegen/batch/{batch}/status/").json()

    assert state["total"] == 0 and state["rows"] == [] and state["finished"] is False


def test_a_failed_generation_is_reported_as_a_warning(admin_client, locmem, articles):
    from imagegen.exceptions import ProviderError
    from imagegen.providers.locmem import LocmemProvider

    LocmemProvider.script(None, ProviderError("The provider fell over."))

    response = confirm(admin_client, articles, "generate", provider="paid")

    page = admin_client.get(response["Location"])
    assert notices(page) == [
        ("success", "Generated images for 2 objects, costing $0.08."),
        ("warning", "1 generation failed; the ledger has the reason."),
    ]
    assert Generation.objects.filter(status=Status.FAILED).count() == 1
    assert sum(1 for a in Article.objects.all() if a.hero) == 2


def test_an_editor_with_the_permissions_can_run_the_action(client, locmem, articles):
    from tests.admin.support import EDITOR_PERMS, make_user

    client.force_login(make_user("editor", *EDITOR_PERMS))

    page = client.get(CHANGELIST)
    assert '<option value="generate_images">' in page.content.decode()
    assert act(client, [a.pk for a in articles]).status_code == 200
    response = confirm(client, articles, "generate", provider="paid")

    assert response.status_code == 302
    assert Generation.objects.filter(status=Status.SUCCEEDED).count() == 3


def test_the_action_on_products_fills_their_generated_field(admin_client, locmem):
    from tests.testapp.models import Product

    teapot = Product.objects.create(name="Teapot")

    page = admin_client.post(
        "/admin/testapp/product/",
        {"action": "generate_images", "_selected_action": [str(teapot.pk)], "index": "0"},
    )

    assert page.status_code == 200
    assert selected_option(page, "preset") == "product"
    assert 'value="photo"' in input_tag(page, "field")
    assert textarea(page, f"prompt_{teapot.pk}") == "Teapot"

    response = admin_client.post(
        "/admin/testapp/product/",
        {
            "action": "generate_images",
            "_selected_action": [str(teapot.pk)],
            "index": "0",
            "imagegen_form": "1",
            "imagegen_prompts_for": "photo",
            "field": "photo",
            "preset": "product",
            "provider": "paid",
            "count": "1",
            f"prompt_{teapot.pk}": "Teapot",
            "imagegen_step": "generate",
        },
    )

    assert response.status_code == 302
    teapot.refresh_from_db()
    assert teapot.photo and not teapot.thumbnail
    assert Generation.objects.get().field_name == "photo"


def test_the_action_refuses_a_field_that_is_not_a_generated_image_field(admin_client, locmem):
    from tests.testapp.models import Product

    teapot = Product.objects.create(name="Teapot")

    page = admin_client.post(
        "/admin/testapp/product/",
        {
            "action": "generate_images",
            "_selected_action": [str(teapot.pk)],
            "index": "0",
            "imagegen_form": "1",
            "field": "thumbnail",
            "preset": "product",
            "provider": "paid",
            "count": "1",
            "imagegen_step": "generate",
        },
    )

    # The page comes back instead of generating. (The field is a hidden input here, and the
    # template shows no errors of hidden fields, so the editor is not told why.)
    assert page.status_code == 200
    assert "admin/imagegen/generate_images.html" in [t.name for t in page.templates]
    assert page.context["form"].errors["field"]
    assert Generation.objects.count() == 0 and locmem == []


def test_the_first_post_never_generates(admin_client, locmem, articles):
    page = act(admin_client, [a.pk for a in articles], imagegen_step="generate", provider="paid")

    assert page.status_code == 200
    assert "Estimated total: $0.12" in text_of(page)
    assert Generation.objects.count() == 0 and locmem == []


def test_a_large_selection_on_the_immediate_runner_is_warned_about(admin_client, locmem):
    from tests.testapp.models import Article

    Article.objects.bulk_create(Article(title=f"Story {i}") for i in range(25))
    pks = [str(pk) for pk in Article.objects.values_list("pk", flat=True)]

    big = act(admin_client, pks)
    small = act(admin_client, pks[:3])

    warning = "This site generates images while the page waits"
    assert warning in text_of(big) and "25 objects may take longer" in text_of(big)
    assert warning not in text_of(small)


def test_a_queued_runner_gets_no_in_request_warning(admin_client, queued):
    from tests.testapp.models import Article

    Article.objects.bulk_create(Article(title=f"Story {i}") for i in range(25))
    pks = [str(pk) for pk in Article.objects.values_list("pk", flat=True)]

    assert "generates images while the page waits" not in text_of(act(admin_client, pks))
