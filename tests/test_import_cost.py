"""Importing imagegen stays light: heavy modules load on first use, never at import.

Each import runs in a fresh interpreter, so modules other tests have loaded do not count.
``benchmarks/import_cost.py`` measures what the imports cost; these tests keep the heavy
modules that were moved out of the import path from coming back.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PROVIDERS = [
    "imagegen.providers.openai",
    "imagegen.providers.stability",
    "imagegen.providers.replicate",
    "imagegen.providers.google",
    "imagegen.providers.leonardo",
    "imagegen.providers.bfl",
    "imagegen.providers.placeholder",
    "imagegen.providers.locmem",
]


def loaded_after(*modules: str) -> set[str]:
    """Return the names in ``sys.modules`` of a fresh interpreter that imported ``modules``."""
    code = f"import sys, {', '.join(modules)}; print('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_the_package_alone_imports_no_models_and_no_checks() -> None:
    loaded = loaded_after("imagegen")
    assert "django.db.models" not in loaded
    assert "django.core.checks" not in loaded


@pytest.mark.parametrize("module", PROVIDERS)
def test_a_provider_module_imports_no_checks_models_or_drawing(module: str) -> None:
    loaded = loaded_after(module)
    # django.core.checks loads the database, cache, URL and translation machinery; only a
    # provider's check() needs it.
    assert "django.core.checks" not in loaded
    assert "django.db.models" not in loaded
    # Pillow's drawing and font modules (FreeType) load on the placeholder's first render.
    assert not {"PIL.ImageDraw", "PIL.ImageFont"} & loaded


def test_the_check_imports_on_first_use() -> None:
    code = (
        "import sys, django\n"
        "from django.conf import settings\n"
        "settings.configure()\n"
        "from imagegen.providers.openai import OpenAIProvider\n"
        "assert 'django.core.checks' not in sys.modules\n"
        "messages = OpenAIProvider(alias='x', api_key='').check()\n"
        "assert [m.id for m in messages] == ['imagegen.W003'], messages\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
