"""Budget caps: reserved before recording, settled to what was charged, and announced once."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core import mail

import imagegen
from imagegen import services
from imagegen.checks import check_settings
from imagegen.exceptions import BudgetExceeded, InvalidResponse, ProviderUnavailable
from imagegen.models import BudgetUse, Generation, Status
from imagegen.pipeline import budgets
from imagegen.providers.locmem import LocmemProvider
from tests.testapp.models import Product

pytestmark = pytest.mark.django_db


def configure(settings, **budget) -> None:
    imagegen_settings = dict(settings.IMAGEGEN)
    providers = dict(imagegen_settings["PROVIDERS"])
    # Estimated at $0.04 an image (PRICES), billed $0.01 an image.
    providers["cheap"] = {
        "BACKEND": "imagegen.providers.locmem.LocmemProvider",
        "OPTIONS": {"cost": "0.01"},
    }
    settings.IMAGEGEN = {**imagegen_settings, "PROVIDERS": providers, "BUDGETS": budget}


def use(cap: str) -> BudgetUse:
    return BudgetUse.objects.get(cap=cap)


def test_a_daily_provider_cap_holds_that_provider_only(settings, locmem):
    configure(
        settings,
        CAPS=[{"SCOPE": "provider", "KEY": "paid", "PERIOD": "day", "LIMIT": "0.08"}],
    )
    imagegen.generate(prompt="a", provider="paid", count=2)
    with pytest.raises(BudgetExceeded, match=r"the paid provider's spend today .* daily budget"):
        imagegen.generate(prompt="b", provider="paid")
    assert imagegen.generate(prompt="c", provider="test").status == Status.SUCCEEDED
    assert use("provider:paid:day").period_start == budgets.today()


def test_a_group_cap_counts_every_member(settings, locmem, django_user_model):
    editors = Group.objects.create(name="Editors")
    alice = django_user_model.objects.create(username="alice")
    bob = django_user_model.objects.create(username="bob")
    outsider = django_user_model.objects.create(username="carol")
    editors.user_set.add(alice, bob)
    configure(settings, CAPS=[{"SCOPE": "group", "KEY": "Editors", "LIMIT": "0.08"}])
    imagegen.generate(prompt="a", provider="paid", user=alice)
    imagegen.generate(prompt="b", provider="paid", user=bob)
    with pytest.raises(BudgetExceeded, match="the Editors group's spend this month"):
        imagegen.generate(prompt="c", provider="paid", user=alice)
    imagegen.generate(prompt="d", provider="paid", user=outsider)
    assert use("group:Editors:month").spent == Decimal("0.08")


def test_a_preset_cap_and_a_lower_cap_on_the_same_total(settings, locmem):
    configure(
        settings,
        CAPS=[
            {"SCOPE": "preset", "LIMIT": "1.00"},
            {"SCOPE": "preset", "KEY": "product", "LIMIT": "0.04"},
        ],
    )
    imagegen.generate(target=Product.objects.create(name="Lamp"), provider="paid")
    with pytest.raises(BudgetExceeded, match=r"the product preset's .* over the \$0.04"):
        imagegen.generate(target=Product.objects.create(name="Vase"), provider="paid")
    # Both caps name one running total: the estimate was reserved on it once.
    assert use("preset:product:month").spent == Decimal("0.04")


def test_a_reservation_is_settled_to_what_the_provider_charged(settings, locmem):
    configure(settings, SITE_MONTHLY="1.00")
    generation = imagegen.generate(prompt="a", provider="cheap", count=3)
    assert generation.estimated_cost == Decimal("0.12")
    assert generation.cost == Decimal("0.03")
    site = use("site::month")
    assert (site.reserved, site.spent, site.unconfirmed) == (0, Decimal("0.03"), 0)
    generation.refresh_from_db()
    assert generation.reservation == {}


def test_a_queued_request_holds_its_estimate_until_it_runs(settings, locmem):
    configure(settings, SITE_MONTHLY="0.10")
    settings.IMAGEGEN = {**settings.IMAGEGEN, "TASK_RUNNER": "tests.admin.support.RecordingRunner"}
    first = imagegen.generate(prompt="a", provider="paid", count=2)
    assert use("site::month").reserved == Decimal("0.08")
    with pytest.raises(BudgetExceeded):
        imagegen.generate(prompt="b", provider="paid")
    assert Decimal(first.reservation["amount"]) == Decimal("0.08")
    assert services.cancel(first) is True  # never ran: the estimate goes back
    assert use("site::month").reserved == 0
    assert imagegen.generate(prompt="c", provider="paid").status == Status.QUEUED


def test_a_failure_without_a_charge_releases_the_reservation(settings, locmem):
    configure(settings, SITE_MONTHLY="0.04")
    LocmemProvider.script(ProviderUnavailable("down", code="connection_failed"))
    failed = imagegen.generate(prompt="a", provider="paid")
    assert failed.status == Status.FAILED and failed.cost is None
    site = use("site::month")
    assert (site.reserved, site.spent, site.unconfirmed) == (0, 0, 0)
    assert imagegen.generate(prompt="b", provider="paid").status == Status.SUCCEEDED


def test_a_timeout_records_the_estimate_as_an_unconfirmed_charge(settings, locmem):
    configure(settings, SITE_MONTHLY="1.00")
    LocmemProvider.script(ProviderUnavailable("no answer", code="timeout"))
    failed = imagegen.generate(prompt="a", provider="paid")
    assert (failed.status, failed.error_code) == (Status.FAILED, "timeout")
    assert failed.cost is None and failed.unconfirmed_cost == Decimal("0.04")
    assert any("unconfirmed charge" in warning for warning in failed.warnings)
    assert use("site::month").unconfirmed == Decimal("0.04")


def test_a_charge_made_before_the_answer_was_refused_is_kept(settings, locmem):
    configure(settings, SITE_MONTHLY="1.00")
    refused = InvalidResponse("bad base64", code="bad_base64").charged(Decimal("0.03"))
    unpriced = InvalidResponse("too large", code="response_too_large").charged()
    LocmemProvider.script(refused, unpriced)
    first = imagegen.generate(prompt="a", provider="paid")
    second = imagegen.generate(prompt="b", provider="paid")
    assert (first.status, first.cost, first.unconfirmed_cost) == ("failed", Decimal("0.03"), 0)
    assert (second.cost, second.unconfirmed_cost) == (Decimal(0), Decimal("0.04"))
    site = use("site::month")
    assert (site.spent, site.unconfirmed, site.reserved) == (Decimal("0.03"), Decimal("0.04"), 0)


def test_the_threshold_is_announced_once_per_cap_and_period(
    settings, locmem, django_capture_on_commit_callbacks
):
    configure(settings, SITE_MONTHLY="0.20", WARN=50, ALERT_EMAILS=["ops@example.com"])
    seen = []

    def receiver(sender, cap, use, used, limit, **kwargs):
        seen.append((use.cap, used, limit))

    budgets.budget_threshold_crossed.connect(receiver)
    try:
        for _ in range(4):  # $0.04, $0.08, then $0.12 is over half of $0.20, then $0.16
            with django_capture_on_commit_callbacks(execute=True):
                imagegen.generate(prompt="a", provider="paid")
    finally:
        budgets.budget_threshold_crossed.disconnect(receiver)
    assert seen == [("site::month", Decimal("0.12"), Decimal("0.20"))]
    (message,) = mail.outbox
    assert message.to == ["ops@example.com"] and "60%" in message.subject
    assert [item.use.cap for item in budgets.current_uses(over_threshold=True)] == ["site::month"]


def test_spend_before_a_cap_existed_counts_from_the_ledger(settings, locmem):
    imagegen.generate(prompt="a", provider="paid", count=2)  # no caps yet: $0.08 spent
    configure(settings, SITE_MONTHLY="0.10")
    with pytest.raises(BudgetExceeded, match=r"to \$0.12"):
        imagegen.generate(prompt="b", provider="paid")
    assert imagegen.generate(prompt="c", provider="default").status == Status.SUCCEEDED
    assert not BudgetUse.objects.exists()  # the refused request left nothing behind


def test_a_new_period_starts_a_new_running_total(settings, locmem, monkeypatch):
    configure(settings, CAPS=[{"SCOPE": "site", "PERIOD": "day", "LIMIT": "0.04"}])
    imagegen.generate(prompt="a", provider="paid")
    with pytest.raises(BudgetExceeded):
        imagegen.generate(prompt="b", provider="paid")
    tomorrow = budgets.today() + datetime.timedelta(days=1)
    monkeypatch.setattr(budgets, "today", lambda: tomorrow)
    assert imagegen.generate(prompt="c", provider="paid").status == Status.SUCCEEDED
    assert BudgetUse.objects.filter(cap="site::day").count() == 2


def test_a_batch_that_fits_is_reserved_at_once(settings, locmem, django_assert_max_num_queries):
    configure(settings, SITE_MONTHLY="10.00", USER_MONTHLY="10.00")
    products = [Product.objects.create(name=f"P{n}") for n in range(20)]
    settings.IMAGEGEN = {**settings.IMAGEGEN, "TASK_RUNNER": "tests.admin.support.RecordingRunner"}
    services.generate_many(products[:2], provider="paid")  # the running totals exist now
    with django_assert_max_num_queries(12):
        result = services.generate_many(products[2:], provider="paid")
    assert len(result.generations) == 18
    assert use("site::month").reserved == Decimal("0.80")


def test_a_batch_over_a_cap_records_the_part_that_fits(settings, locmem):
    configure(settings, SITE_MONTHLY="0.10")
    settings.IMAGEGEN = {**settings.IMAGEGEN, "TASK_RUNNER": "tests.admin.support.RecordingRunner"}
    products = [Product.objects.create(name=f"P{n}") for n in range(5)]
    result = services.generate_many(products, provider="paid")
    assert len(result.generations) == 2
    assert isinstance(result.stopped, BudgetExceeded)
    assert Generation.objects.count() == 2
    assert use("site::month").reserved == Decimal("0.08")


@pytest.mark.parametrize(
    ("budget", "problem"),
    [
        ({"CAPS": [{"SCOPE": "planet", "LIMIT": "1"}]}, "SCOPE"),
        ({"CAPS": [{"SCOPE": "site", "LIMIT": "-1"}]}, "LIMIT"),
        ({"CAPS": [{"SCOPE": "site", "LIMIT": "1", "WARN": 120}]}, "WARN"),
        ({"CAPS": [{"SCOPE": "site", "KEY": "x", "LIMIT": "1"}]}, "KEY"),
        ({"CAPS": [{"SCOPE": "user", "PERIOD": "week", "LIMIT": "1"}]}, "PERIOD"),
        ({"ALERT_EMAILS": "ops@example.com"}, "ALERT_EMAILS"),
    ],
)
def test_bad_caps_fail_the_system_check(settings, budget, problem):
    settings.IMAGEGEN = {"BUDGETS": budget}
    (error,) = [m for m in check_settings() if m.id == "imagegen.E009"]
    assert problem in error.msg and error.hint
