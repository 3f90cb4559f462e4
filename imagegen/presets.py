"""Presets: named recipes (prompt parts, aspect ratio, format, providers) for a kind of image.

Built in: ``hero`` (16:9), ``editorial`` (3:2) and ``product`` (1:1 on a clean studio
background). ``IMAGEGEN["PRESETS"]`` adds presets or overrides fields of the built-in ones.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from django.utils.translation import gettext_lazy as _

from imagegen.catalog import parse_ratio
from imagegen.conf import imagegen_settings, register_cache
from imagegen.exceptions import ImagegenConfigurationError

#: Prompt parts, in the order they are joined.
PROMPT_PARTS = ("style", "details", "lighting", "quality")


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A named recipe for one kind of image."""

    name: str
    label: str = ""
    aspect_ratio: str = "1:1"
    #: Length in pixels of the longer side of the requested image.
    long_side: int = 1536
    style: str = ""
    details: str = ""
    lighting: str = ""
    quality: str = ""
    negative_prompt: str = ""
    output_format: str = "png"
    #: Provider aliases to try in order; empty means ``DEFAULT_PROVIDER``.
    providers: tuple[str, ...] = ()
    #: Provider quality tier passed through to providers that have one.
    provider_quality: str | None = None
    #: Provider aliases per operation, used instead of ``providers`` for it, as pairs:
    #: ``IMAGEGEN["PRESETS"]`` takes a dict such as ``{"upscale": ["stability", "default"]}``.
    operation_providers: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def providers_for(self, operation: str) -> tuple[str, ...]:
        """Return the aliases to try for ``operation``: its own list, else ``providers``."""
        return dict(self.operation_providers).get(operation, self.providers)

    @property
    def size(self) -> tuple[int, int]:
        """Return (width, height) for the aspect ratio, rounded to multiples of 16."""
        w, h = parse_ratio(self.aspect_ratio)
        if w >= h:
            width, height = self.long_side, self.long_side * h / w
        else:
            width, height = self.long_side * w / h, self.long_side
        return int(round(width / 16) * 16), int(round(height / 16) * 16)

    def parts(self) -> dict[str, str]:
        """Return the non-subject prompt parts in order."""
        return {part: getattr(self, part) for part in PROMPT_PARTS}


BUILTIN: dict[str, Preset] = {
    "hero": Preset(
        name="hero",
        label=str(_("Hero (16:9)")),
        aspect_ratio="16:9",
        long_side=1536,
        style="cinematic wide editorial photograph",
        details="strong focal point, generous negative space for a headline",
        lighting="soft natural light",
        quality="high detail, sharp focus",
        negative_prompt="text, watermark, logo, blurry, distorted",
    ),
    "editorial": Preset(
        name="editorial",
        label=str(_("Editorial (3:2)")),
        aspect_ratio="3:2",
        long_side=1536,
        style="documentary editorial photograph",
        details="natural composition, authentic setting",
        lighting="available light",
        quality="high detail",
        negative_prompt="text, watermark, logo, distorted",
    ),
    "product": Preset(
        name="product",
        label=str(_("Product (1:1)")),
        aspect_ratio="1:1",
        long_side=1024,
        style="professional product photograph",
        details="centered product on a clean seamless white studio background",
        lighting="soft even studio lighting, gentle shadow",
        quality="high detail, sharp focus",
        negative_prompt="text, watermark, clutter, props, hands",
    ),
}

_FIELDS = {f.name for f in fields(Preset)} - {"name"}


def build_preset(name: str, data: Mapping[str, Any], base: Preset | None = None) -> Preset:
    """Return ``base`` (or a blank preset) with the fields in ``data`` replaced."""
    unknown = set(data) - _FIELDS
    if unknown:
        raise ImagegenConfigurationError(
            f'IMAGEGEN["PRESETS"][{name!r}] has unknown keys: {", ".join(sorted(unknown))}. '
            f"Allowed: {', '.join(sorted(_FIELDS))}."
        )
    values = dict(data)
    if "providers" in values:
        values["providers"] = tuple(values["providers"])
    if "operation_providers" in values:
        values["operation_providers"] = tuple(
            (operation, tuple(aliases))
            for operation, aliases in dict(values["operation_providers"]).items()
        )
    preset = replace(base or Preset(name=name, label=name.title()), name=name, **values)
    parse_ratio(preset.aspect_ratio)
    return preset


@functools.cache
def all_presets() -> dict[str, Preset]:
    """Return the built-in presets merged with ``IMAGEGEN["PRESETS"]``."""
    presets = dict(BUILTIN)
    for name, data in (imagegen_settings.PRESETS or {}).items():
        presets[name] = build_preset(name, data or {}, presets.get(name))
    return presets


register_cache(all_presets.cache_clear)


def get_preset(name: str | None) -> Preset | None:
    """Return the preset called ``name``; None for None; raise ValueError for unknown names."""
    if name is None:
        return None
    presets = all_presets()
    if name not in presets:
        raise ValueError(f"Unknown preset {name!r}; known presets: {', '.join(sorted(presets))}.")
    return presets[name]
