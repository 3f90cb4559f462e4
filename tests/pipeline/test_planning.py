"""Planning owns ``Generation.params``: one typed value, written and read in one place."""

from __future__ import annotations

import pytest

import imagegen
from imagegen.models import Generation
from imagegen.pipeline.planning import Params, params_of
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db


def test_a_generated_row_reads_back_as_what_was_planned(locmem):
    article = Article.objects.create(title="Harbour at dawn")
    generation = imagegen.generate(target=article, provider="test", count=5, seed=7, attach=False)
    params = params_of(generation)
    assert params.subject == "Harbour at dawn"
    assert params.args == {"seed": 7}
    assert params.calls == (4, 1)  # the locmem model makes at most 4 per call
    assert params.attach is False
    assert [request.seed for request in params.requests(generation)] == [7, 11]
    assert Params.from_json(params.to_json()) == params


def test_an_older_row_without_some_keys_gets_the_defaults():
    row = Generation(provider="test", prompt="a lamp", count=2, params={"width": 640})
    params = params_of(row)
    assert (params.width, params.height, params.attach, params.fallbacks) == (640, 1024, False, ())
    (request,) = params.requests(row)
    assert (request.count, request.width, request.output_format) == (2, 640, "png")


def test_the_stored_value_is_plain_json(locmem):
    generation = imagegen.generate(prompt="a lamp", provider="test")
    generation.refresh_from_db()
    assert generation.params["calls"] == [1]
    assert generation.params["fallbacks"] == []
