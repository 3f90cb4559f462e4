"""Rewrite the catalog's generated tables in docs/ (models, sources, estimates, the matrix).

Run from the repository root after changing the catalog:

    python scripts/render_catalog_docs.py

tests/test_catalog_docs.py fails while any generated block differs from the catalog.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    """Rewrite the generated blocks and print the pages that changed."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django  # the catalog reads IMAGEGEN settings, so Django is set up first

    django.setup()
    from imagegen.catalog import docs  # after django.setup(): the catalog reads settings

    for page in docs.update(ROOT / "docs"):
        sys.stdout.write(f"updated docs/{page}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
