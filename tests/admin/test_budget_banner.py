"""The admin's budget banner: shown on imagegen's pages while a cap is past its warn threshold."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

import imagegen
from imagegen.models import BudgetUse

pytestmark = pytest.mark.django_db

LEDGER = reverse("admin:imagegen_generation_changelist")


def configure(settings, limit: str = "0.10") -> None:
    settings.IMAGEGEN = {**settings.IMAGEGEN, "BUDGETS": {"SITE_MONTHLY": limit, "WARN": 50}}


def test_the_ledger_warns_while_a_cap_is_past_its_threshold(admin_client, locmem, settings):
    configure(settings)
    imagegen.generate(prompt="a", provider="paid")  # $0.04 of $0.10: under half
    assert "imagegen-budget-banner" not in admin_client.get(LEDGER).content.decode()

    imagegen.generate(prompt="b", provider="paid")  # $0.08: past half
    page = admin_client.get(LEDGER).content.decode()
    assert "imagegen-budget-banner" in page
    assert "Budget site, month has used 80% of its limit: $0.08 of $0.10" in page


def test_the_change_form_and_the_dashboard_show_it_too(admin_client, locmem, settings, articles):
    configure(settings)
    imagegen.generate(prompt="a", provider="paid", count=2)
    change = reverse("admin:testapp_article_change", args=[articles[0].pk])
    dashboard = reverse("admin:imagegen_generation_spend")
    for url in (change, dashboard):
        assert "imagegen-budget-banner" in admin_client.get(url).content.decode(), url


def test_a_raised_limit_ends_the_warning(admin_client, locmem, settings):
    configure(settings)
    imagegen.generate(prompt="a", provider="paid", count=2)
    configure(settings, limit="1.00")  # the same running total, now at 8%
    assert "imagegen-budget-banner" not in admin_client.get(LEDGER).content.decode()
    assert BudgetUse.objects.get().spent == Decimal("0.08")
