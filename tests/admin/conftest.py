"""Fixtures of the admin tests: articles to act on and a queued runner that records jobs."""

from __future__ import annotations

import pytest

from tests.admin.support import RUNNER_PATH, RecordingRunner
from tests.testapp.models import Article


@pytest.fixture
def articles(db):
    """Three articles; their prompts come from the field's template (title: summary)."""
    return [
        Article.objects.create(title="Lighthouse", summary="a white tower on a rocky coast"),
        Article.objects.create(title="Harbour", summary="fishing boats at dawn"),
        Article.objects.create(title="Bakery"),
    ]


@pytest.fixture
def queued(locmem, settings):
    """The locmem providers behind a queued runner whose dispatched jobs are only recorded."""
    settings.IMAGEGEN = {**settings.IMAGEGEN, "TASK_RUNNER": RUNNER_PATH}
    RecordingRunner.jobs = []
    yield RecordingRunner.jobs
    RecordingRunner.jobs = []
