"""Shared set-up of the batch tests: OpenAI behind the stateful batch fake, with a budget."""

from __future__ import annotations

from typing import Any

from imagegen.testing import OPENAI, fake_provider_settings
from imagegen.testing.openai_batch import FakeOpenAIBatches
from tests.testapp.models import Product


def configure(settings, fake: FakeOpenAIBatches, **extra: Any) -> None:
    """Point the default alias "openai" at ``fake``; a site budget of $100 a month."""
    settings.IMAGEGEN = {
        "DEFAULT_PROVIDER": "openai",
        "PROVIDERS": {
            "openai": fake_provider_settings(OPENAI, fake),
            "placeholder": {"BACKEND": "imagegen.providers.placeholder.PlaceholderProvider"},
        },
        "DERIVATIVE_WIDTHS": [],
        "BUDGETS": {"SITE_MONTHLY": "100"},
        **extra,
    }


def products(count: int) -> list[Product]:
    return Product.objects.bulk_create(Product(name=f"Product {n}") for n in range(count))
