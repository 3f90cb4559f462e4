"""AI image generation for Django: providers, a cost ledger, admin tools and template tags.

The public functions live in :mod:`imagegen.services` and are re-exported here lazily, so that
``import imagegen`` (which Django does while loading ``INSTALLED_APPS``) imports no models.
"""

from __future__ import annotations

from typing import Any

from imagegen.version import __version__

__all__ = ["__version__", "cost_for", "estimate", "generate", "spend_for"]

_LAZY = {"generate", "estimate", "cost_for", "spend_for"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # Imported on first use: Django imports this package while it loads INSTALLED_APPS,
        # before models can be imported, and ``import imagegen`` stays light.
        from imagegen import services

        return getattr(services, name)
    raise AttributeError(f"module 'imagegen' has no attribute {name!r}")
