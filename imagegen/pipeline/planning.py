"""Turn ``generate()`` arguments into a costed plan, and own the schema of ``Generation.params``.

:func:`make_plan` resolves the arguments into a :class:`Plan`: the provider, the full prompt,
the calls adapted to the model and their estimate. What a row asks for beyond its columns is a
:class:`Params` value, written to ``Generation.params`` by :meth:`Params.to_json` and read back
by :func:`params_of`; no other module knows its keys.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.db import models

from imagegen import catalog
from imagegen.conf import imagegen_settings
from imagegen.exceptions import UnsupportedRequest
from imagegen.fields import GeneratedImageField, resolve_field
from imagegen.presets import Preset, get_preset
from imagegen.prompts import build_prompt, clean
from imagegen.providers import get_provider, providers
from imagegen.providers.base import BaseProvider
from imagegen.types import ImageRequest

#: Keyword arguments of ``generate()`` beyond the named ones.
PARAMS = {
    "negative_prompt",
    "width",
    "height",
    "seed",
    "model",
    "output_format",
    "quality",
    "extra",
    "attach",
}


@dataclass(frozen=True, kw_only=True)
class Params:
    """What a ledger row asks for beyond its columns: the schema of ``Generation.params``."""

    #: The subject the caller or the field's template gave, without the preset's parts.
    subject: str = ""
    #: The caller's own keyword arguments, so that a fallback provider gets the same request.
    args: dict[str, Any] = field(default_factory=dict)
    width: int = 1024
    height: int = 1024
    aspect_ratio: str | None = None
    #: The seed of the first image; later images (and later calls) take the following ones.
    seed: int | None = None
    output_format: str = "png"
    quality: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Images per provider call: a request the model cannot serve in one call is split.
    calls: tuple[int, ...] = ()
    #: Whether the first image is set on the target field when the row succeeds.
    attach: bool = False
    #: The provider aliases to fall back through, in order, after a provider failure.
    fallbacks: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Return the value stored in ``Generation.params``."""
        data = asdict(self)
        data["calls"], data["fallbacks"] = list(self.calls), list(self.fallbacks)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Params:
        """Return the value stored in ``data``; keys it lacks (older rows) take the defaults."""
        data = data or {}
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        for name in ("calls", "fallbacks"):
            known[name] = tuple(known.get(name) or ())
        for name in ("args", "extra"):
            known[name] = dict(known.get(name) or {})
        return cls(**known)

    def requests(self, generation: Any) -> list[ImageRequest]:
        """Return the adapted provider calls of ``generation``, whose params these are."""
        calls = self.calls or (generation.count,)
        return [
            ImageRequest(
                prompt=generation.prompt,
                negative_prompt=generation.negative_prompt,
                width=self.width,
                height=self.height,
                aspect_ratio=self.aspect_ratio,
                count=count,
                seed=None if self.seed is None else self.seed + sum(calls[:index]),
                model=generation.model or None,
                output_format=self.output_format,
                quality=self.quality,
                extra=self.extra,
            )
            for index, count in enumerate(calls)
        ]


def params_of(generation: Any) -> Params:
    """Return the :class:`Params` of a ``Generation`` row."""
    return Params.from_json(generation.params)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """Everything decided before a generation row is written."""

    provider: BaseProvider
    preset: Preset | None
    prompt: str
    negative_prompt: str
    calls: list[ImageRequest]
    warnings: list[str]
    estimated_cost: Decimal
    params: Params
    target: models.Model | None = None
    field_name: str = ""

    @property
    def count(self) -> int:
        return sum(call.count for call in self.calls)

    def request_hash(self) -> str:
        """Return a stable hash of what is asked, for spotting duplicate requests."""
        payload = {
            "provider": self.provider.alias,
            "prompt": self.prompt,
            "negative": self.negative_prompt,
            # What is asked, not what happens to the result: attach and fallbacks stay out.
            "params": {
                key: value
                for key, value in self.params.to_json().items()
                if key not in ("attach", "fallbacks")
            },
            "target": _target_key(self.target, self.field_name),
        }
        data = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(data).hexdigest()


def _target_key(target: models.Model | None, field: str) -> str:
    if target is None:
        return ""
    return f"{target._meta.label_lower}:{target.pk}:{field}"


def _choose_alias(explicit: str | None, field_alias: str | None, preset: Preset | None) -> tuple:
    """Return the alias to call and the preset's aliases to fall back through after it."""
    configured = [a for a in (preset.providers if preset else ()) if a in providers]
    chosen = explicit or field_alias
    if chosen:
        # A chosen alias from the preset's list still falls back through the ones after it.
        rest = configured[configured.index(chosen) + 1 :] if chosen in configured else []
        return chosen, tuple(rest)
    if configured:
        return configured[0], tuple(configured[1:])
    return imagegen_settings.DEFAULT_PROVIDER, ()


def make_plan(
    *,
    prompt: str | None = None,
    preset: str | None = None,
    provider: str | None = None,
    target: models.Model | None = None,
    field: str | None = None,
    count: int = 1,
    **params: Any,
) -> Plan:
    """Resolve the arguments of :func:`imagegen.generate` into a :class:`Plan`."""
    unknown = set(params) - PARAMS
    if unknown:
        raise TypeError(f"Unexpected generate() arguments: {', '.join(sorted(unknown))}.")
    attach = bool(params.get("attach", True))
    model_field = resolve_field(target, field, attach=attach) if target is not None else None
    is_generated = isinstance(model_field, GeneratedImageField)
    preset_obj = get_preset(preset or (model_field.preset if is_generated else None))
    subject = prompt
    if not subject and target is not None:
        subject = model_field.prompt_for(target) if is_generated else clean(str(target))
    if not subject or not clean(subject):
        raise UnsupportedRequest("A prompt is required.")
    if not 1 <= int(count) <= 16:
        raise UnsupportedRequest("count must be between 1 and 16.")
    alias, fallbacks = _choose_alias(
        provider, model_field.provider if is_generated else None, preset_obj
    )
    backend = get_provider(alias)
    width, height = preset_obj.size if preset_obj else (1024, 1024)
    request = ImageRequest(
        prompt=build_prompt(subject, preset_obj),
        negative_prompt=params.get(
            "negative_prompt", preset_obj.negative_prompt if preset_obj else ""
        ),
        width=int(params.get("width") or width),
        height=int(params.get("height") or height),
        aspect_ratio=preset_obj.aspect_ratio if preset_obj else None,
        count=int(count),
        seed=params.get("seed"),
        model=params.get("model") or backend.model,
        output_format=params.get("output_format")
        or (preset_obj.output_format if preset_obj else "png"),
        quality=params.get("quality") or (preset_obj.provider_quality if preset_obj else None),
        extra=dict(params.get("extra") or {}),
    )
    calls, warnings = backend.prepare(request)
    info = backend.model_info(request.model)
    first = calls[0]
    return Plan(
        provider=backend,
        preset=preset_obj,
        prompt=request.prompt,
        negative_prompt=first.negative_prompt,
        calls=calls,
        warnings=warnings,
        estimated_cost=catalog.estimate_calls(calls, info),
        target=target,
        field_name=model_field.name if model_field else "",
        params=Params(
            subject=clean(subject),
            args={k: v for k, v in params.items() if k != "attach"},
            width=first.width,
            height=first.height,
            aspect_ratio=first.aspect_ratio,
            seed=first.seed,
            output_format=first.output_format,
            quality=first.quality,
            extra=dict(first.extra),
            calls=tuple(call.count for call in calls),
            attach=attach,
            fallbacks=fallbacks,
        ),
    )
