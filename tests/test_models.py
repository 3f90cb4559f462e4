"""The ledger models: status machine, per-object queries and translations."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import translation

from imagegen.models import Generation, Status
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db


def test_transition_is_conditional():
    generation = Generation.objects.create(provider="default", prompt="x")
    stale = Generation.objects.get(pk=generation.pk)
    assert generation.transition(Status.RUNNING) is True
    # A second worker holding the old state loses the race and changes nothing.
    assert stale.transition(Status.RUNNING) is False
    assert Generation.objects.get(pk=generation.pk).status == Status.RUNNING


def test_transition_refuses_impossible_moves():
    generation = Generation.objects.create(provider="default", prompt="x", status=Status.SUCCEEDED)
    with pytest.raises(ValueError, match="succeeded generation cannot become running"):
        generation.transition(Status.RUNNING)


def test_for_object_and_total_cost():
    from django.contrib.contenttypes.models import ContentType

    article, other = Article.objects.create(title="a"), Article.objects.create(title="b")
    ct = ContentType.objects.get_for_model(Article)
    for cost in ("0.04", "0.02", None):
        Generation.objects.create(
            provider="p", prompt="x", content_type=ct, object_id=str(article.pk),
            field_name="hero", cost=None if cost is None else Decimal(cost),
        )  # fmt: skip
    Generation.objects.create(
        provider="p", prompt="x", content_type=ct, object_id=str(other.pk), cost=Decimal(1)
    )
    assert Generation.objects.for_object(article).count() == 3
    assert Generation.objects.for_object(article, "hero").total_cost() == Decimal("0.06")
    assert Generation.objects.none().total_cost() == Decimal("0")


def test_labels_are_translated():
    with translation.override("de"):
        assert str(Status.FAILED.label) == "Fehlgeschlagen"
        assert str(Generation._meta.verbose_name_plural) == "Generierungen"


def test_transition_is_fenced_by_the_attempt_number():
    """A worker whose job was taken over (the attempt moved on) cannot write its outcome."""
    generation = Generation.objects.create(provider="default", prompt="x", status=Status.RUNNING)
    Generation.objects.filter(pk=generation.pk).update(attempts=2)  # another worker took it
    assert generation.transition(Status.SUCCEEDED) is False
    assert Generation.objects.get(pk=generation.pk).status == Status.RUNNING


def test_spend_keeps_confirmed_and_unconfirmed_charges_apart():
    import imagegen

    article = Article.objects.create(title="a")
    from django.contrib.contenttypes.models import ContentType

    ct = ContentType.objects.get_for_model(Article)
    Generation.objects.create(
        provider="p", prompt="x", content_type=ct, object_id=str(article.pk), cost=Decimal("0.04")
    )
    Generation.objects.create(
        provider="p",
        prompt="x",
        content_type=ct,
        object_id=str(article.pk),
        unconfirmed_cost=Decimal("0.05"),
    )
    spend = imagegen.spend_for(article)
    assert (spend.confirmed, spend.unconfirmed, spend.total) == (
        Decimal("0.04"),
        Decimal("0.05"),
        Decimal("0.09"),
    )
    assert imagegen.cost_for(article) == Decimal("0.04")
