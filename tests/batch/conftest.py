"""Fixtures of the batch tests."""

from __future__ import annotations

import pytest

from imagegen.testing.openai_batch import FakeOpenAIBatches
from tests.batch.support import configure


@pytest.fixture
def fake(settings) -> FakeOpenAIBatches:
    """OpenAI behind the stateful batch fake, as the default alias (see ``configure``)."""
    fake = FakeOpenAIBatches()
    configure(settings, fake)
    return fake
