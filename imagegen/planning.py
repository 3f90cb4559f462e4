"""Turn ``generate()`` arguments into a costed plan: provider, prompt, adapted calls, estimate."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import models

from imagegen import catalog
from imagegen.conf import imagegen_settings
from imagegen.exceptions import UnsupportedRequest
from imagegen.fields import GeneratedImageField, generated_fields
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
class Plan:
    """Everything decided before a generation row is written."""

    provider: BaseProvider
    preset: Preset | None
    prompt: str
    negative_prompt: str
    calls: list[ImageRequest]
    warnings: list[str]
    estimated_cost: Decimal
    target: models.Model | None = None
    field_name: str = ""
    attach: bool = True
    fallbacks: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(call.count for call in self.calls)

    def request_hash(self) -> str:
        """Return a stable hash of what is asked, for spotting duplicate requests."""
        payload = {
            "provider": self.provider.alias,
            "prompt": self.prompt,
            "negative": self.negative_prompt,
            "params": self.params,
            "target": _target_key(self.target, self.field_name),
        }
        data = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(data).hexdigest()


def _target_key(target: models.Model | None, field: str) -> str:
    if target is None:
        return ""
    return f"{target._meta.label_lower}:{target.pk}:{field}"


def resolve_field(target: models.Model, field: str | None) -> models.FileField:
    """Return the image field of ``target`` to fill; infer it when there is exactly one."""
    if target.pk is None:
        raise UnsupportedRequest("Save the object before generating images for it.")
    opts = target._meta
    if field is None:
        candidates = generated_fields(type(target))
        if len(candidates) != 1:
            raise UnsupportedRequest(
                f"{opts.label} has {len(candidates)} GeneratedImageFields; pass field=."
            )
        return candidates[0]
    try:
        model_field = opts.get_field(field)
    except Exception as err:
        raise UnsupportedRequest(f"{opts.label} has no field {field!r}.") from err
    if not isinstance(model_field, models.ImageField):
        raise UnsupportedRequest(f"{opts.label}.{field} is not an image field.")
    return model_field


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
    model_field = resolve_field(target, field) if target is not None else None
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
        attach=bool(params.get("attach", True)),
        fallbacks=fallbacks,
        params={
            "subject": clean(subject),
            # The caller's own arguments, so a fallback provider gets the same request.
            "args": {k: v for k, v in params.items() if k != "attach"},
            "width": first.width,
            "height": first.height,
            "aspect_ratio": first.aspect_ratio,
            "seed": first.seed,
            "output_format": first.output_format,
            "quality": first.quality,
            "extra": dict(first.extra),
            "calls": [call.count for call in calls],
        },
    )


def requests_from_row(generation: Any) -> list[ImageRequest]:
    """Rebuild the adapted provider calls stored on a Generation row."""
    p = generation.params
    return [
        ImageRequest(
            prompt=generation.prompt,
            negative_prompt=generation.negative_prompt,
            width=p["width"],
            height=p["height"],
            aspect_ratio=p.get("aspect_ratio"),
            count=count,
            seed=None if p.get("seed") is None else p["seed"] + sum(p["calls"][:index]),
            model=generation.model or None,
            output_format=p.get("output_format", "png"),
            quality=p.get("quality"),
            extra=p.get("extra") or {},
        )
        for index, count in enumerate(p.get("calls") or [generation.count])
    ]
