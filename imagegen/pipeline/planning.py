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

from django.core.exceptions import ImproperlyConfigured
from django.db import models

from imagegen.conf import imagegen_settings
from imagegen.exceptions import ImagegenError, UnsupportedRequest
from imagegen.fields import GeneratedImageField, resolve_field
from imagegen.images import clean_input
from imagegen.models import GeneratedImage
from imagegen.pipeline.inputs import (
    NEEDS_SEARCH,
    PROMPT_OPTIONAL,
    Inputs,
    current_image,
    outpaint_padding,
    resolve,
    sha256,
)
from imagegen.presets import Preset, get_preset
from imagegen.prompts import build_prompt, clean
from imagegen.providers import get_provider, providers
from imagegen.providers.base import BaseProvider
from imagegen.storage import get_storage
from imagegen.types import OPERATIONS, ImageRequest

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
    "scale",
    "padding",
    "search",
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
    #: One of :data:`imagegen.types.OPERATIONS`; ``generate`` is text to image.
    operation: str = "generate"
    #: SHA-256 of the source and mask as sent (cleaned PNG bytes); ``""`` when there is none.
    source_sha256: str = ""
    mask_sha256: str = ""
    #: Storage names of the cleaned reference images, in order (in a plan, before they are
    #: stored, their SHA-256).
    references: tuple[str, ...] = ()
    #: Padding (left, top, right, bottom) an outpaint adds around the source.
    padding: tuple[int, int, int, int] | None = None
    #: What a ``search_replace`` or ``search_recolor`` looks for.
    search: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the value stored in ``Generation.params``."""
        data = asdict(self)
        data["calls"], data["fallbacks"] = list(self.calls), list(self.fallbacks)
        data["references"] = list(self.references)
        data["padding"] = None if self.padding is None else list(self.padding)
        # Text-to-image rows keep the keys they always had (and their request hashes): the
        # operation's keys are written only when they say something.
        for name, empty in _OPERATION_DEFAULTS.items():
            if data[name] == empty:
                data.pop(name)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Params:
        """Return the value stored in ``data``; keys it lacks (older rows) take the defaults."""
        data = data or {}
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        for name in ("calls", "fallbacks", "references"):
            known[name] = tuple(known.get(name) or ())
        if known.get("padding") is not None:
            known["padding"] = tuple(known["padding"])
        for name in ("args", "extra"):
            known[name] = dict(known.get(name) or {})
        return cls(**known)

    def requests(self, generation: Any) -> list[ImageRequest]:
        """Return the adapted provider calls of ``generation``, whose params these are."""
        calls = self.calls or (generation.count,)
        images, mask = self.input_images(generation)
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
                operation=self.operation,
                source_images=images,
                mask=mask,
                search=self.search,
                padding=self.padding,
                extra=self.extra,
            )
            for index, count in enumerate(calls)
        ]

    def input_images(self, generation: Any) -> tuple[tuple[bytes, ...], bytes | None]:
        """Return the cleaned source and reference images of ``generation``, and its mask."""
        if self.operation == "generate" and not self.references:
            return (), None
        storage = get_storage()
        images = []
        source = generation.source_image.file if generation.source_image_id else None
        source = source or generation.source_file
        if source:
            images.append(_cleaned(source, "source image"))
        for index, name in enumerate(self.references, start=1):
            with storage.open(name, "rb") as file:
                images.append(clean_input(file.read(), f"reference image {index}").content)
        mask = (
            _cleaned(generation.mask_file, "mask", grayscale=True) if generation.mask_file else None
        )
        return tuple(images), mask


def _cleaned(file: Any, name: str, *, grayscale: bool = False) -> bytes:
    file.open("rb")
    try:
        return clean_input(file.read(), name, grayscale=grayscale).content
    finally:
        file.close()


def inputs_of(generation: Any) -> dict[str, Any]:
    """Return the ``operation``, ``source``, ``mask`` and ``reference`` arguments of a row.

    A fallback provider's row is planned with them, so that it gets the same images.
    """
    params = params_of(generation)
    if params.operation == "generate" and not params.references:
        return {}
    images, mask = params.input_images(generation)
    has_source = bool(generation.source_image_id or generation.source_file)
    if generation.source_image_id:
        source: Any = generation.source_image
    else:
        source = images[0] if has_source else None
    return {
        "operation": params.operation,
        "source": source,
        "mask": mask,
        "reference": list(images[1:] if has_source else images) or None,
    }


#: The keys of an operation in ``Generation.params``, and their values when there is none.
_OPERATION_DEFAULTS: dict[str, Any] = {
    "operation": "generate",
    "source_sha256": "",
    "mask_sha256": "",
    "references": [],
    "padding": None,
    "search": "",
}


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
    #: The cleaned source, mask and reference images, stored when the row is recorded.
    inputs: Inputs = field(default_factory=Inputs)

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


def _choose_alias(
    explicit: str | None, field_alias: str | None, preset: Preset | None, operation: str
) -> tuple:
    """Return the alias to call and the preset's aliases to fall back through after it."""
    listed = preset.providers_for(operation) if preset else ()
    configured = [a for a in listed if a in providers]
    chosen = explicit or field_alias
    if chosen:
        # A chosen alias from the preset's list still falls back through the ones after it.
        rest = configured[configured.index(chosen) + 1 :] if chosen in configured else []
        return chosen, tuple(rest)
    if configured:
        return configured[0], tuple(configured[1:])
    return imagegen_settings.DEFAULT_PROVIDER, ()


def can_do(backend: BaseProvider, inputs: Inputs, model: str | None = None) -> str:
    """Return why ``backend`` cannot do ``inputs``' operation with them, or ``""`` if it can."""
    name = backend.display_name or backend.alias
    operation = inputs.operation
    support = backend.model_info(model or backend.model).capabilities.support(operation)
    if operation not in backend.operations or support is None:
        return f"{name} cannot {operation.replace('_', ' ')} images"
    if inputs.mask is not None and support.mask == "none":
        return f"{name} takes no mask for {operation}"
    if inputs.mask is None and support.mask == "required":
        return f"{name} needs a mask for {operation}"
    if len(inputs.references) > support.max_references:
        return (
            f"{name} takes at most {support.max_references} reference images, "
            f"not {len(inputs.references)}"
        )
    source, limit = inputs.source, support.max_input_pixels
    if limit and source is not None and source.width * source.height > limit:
        return (
            f"the source image is {source.width}x{source.height} pixels, over {name}'s "
            f"{limit:,}-pixel limit"
        )
    return ""


def _able(inputs: Inputs) -> list[str]:
    """Return the configured aliases that can do ``inputs``' operation with them."""
    return [alias for alias in providers if _capable(alias, inputs)]


def _capable(alias: str, inputs: Inputs) -> bool:
    try:
        return not can_do(get_provider(alias), inputs)
    except (ImagegenError, ImproperlyConfigured):  # a provider that cannot be built cannot
        return False


@dataclass(frozen=True, kw_only=True)
class Offer:
    """What the configured providers, taken together, can do with one operation on a source."""

    operation: str
    #: "none", "optional" or "required": whether the operation takes a mask on some provider,
    #: and whether every provider that can do it needs one.
    mask: str = "none"
    #: The most reference images any of those providers takes with it.
    max_references: int = 0


def offers(aliases: tuple[str, ...] | None = None) -> tuple[Offer, ...]:
    """Return the operations on a source image that ``aliases`` (default: all configured) can do.

    They come in the order of :data:`imagegen.types.OPERATIONS`; ``generate`` is not one of
    them. A provider that cannot be built offers nothing.
    """
    supports: dict[str, list[Any]] = {}
    for alias in providers if aliases is None else aliases:
        try:
            backend = get_provider(alias)
            capabilities = backend.model_info(backend.model).capabilities
        except (ImagegenError, ImproperlyConfigured):
            continue
        for operation in backend.operations:
            support = capabilities.support(operation)
            if operation != "generate" and support is not None:
                supports.setdefault(operation, []).append(support)
    result = []
    for operation in OPERATIONS:
        found = supports.get(operation)
        if not found:
            continue
        masks = {support.mask for support in found}
        mask = masks.pop() if len(masks) == 1 else "optional"
        references = max(support.max_references for support in found)
        result.append(Offer(operation=operation, mask=mask, max_references=references))
    return tuple(result)


def _edit_target(
    source: Any, target: models.Model | None, field: str | None
) -> tuple[models.Model | None, str | None]:
    """Return the target and field of an edit: a generated source's own, unless given."""
    if target is not None or not isinstance(source, GeneratedImage):
        return target, field
    made_for = source.generation
    if not made_for.content_type_id or made_for.target is None:
        return None, field
    return made_for.target, field or made_for.field_name or None


def make_plan(
    *,
    prompt: str | None = None,
    preset: str | None = None,
    provider: str | None = None,
    target: models.Model | None = None,
    field: str | None = None,
    count: int = 1,
    operation: str = "generate",
    source: Any = None,
    mask: Any = None,
    reference: Any = None,
    **params: Any,
) -> Plan:
    """Resolve the arguments of :func:`imagegen.generate` into a :class:`Plan`."""
    unknown = set(params) - PARAMS
    if unknown:
        raise TypeError(f"Unexpected generate() arguments: {', '.join(sorted(unknown))}.")
    if operation not in OPERATIONS:
        raise UnsupportedRequest(
            f"Unknown operation {operation!r}: choose one of {', '.join(OPERATIONS)}."
        )
    attach = bool(params.get("attach", True))
    target, field = _edit_target(source, target, field)
    model_field = resolve_field(target, field, attach=attach) if target is not None else None
    is_generated = isinstance(model_field, GeneratedImageField)
    if operation != "generate" and source is None and model_field is not None:
        source = current_image(target, model_field.name)
    inputs = resolve(operation, source=source, mask=mask, reference=reference)
    preset_obj = get_preset(preset or (model_field.preset if is_generated else None))
    subject = prompt
    if not subject and target is not None:
        subject = model_field.prompt_for(target) if is_generated else clean(str(target))
    if not subject and operation in PROMPT_OPTIONAL:
        subject = operation.replace("_", " ")
    if not subject or not clean(subject):
        raise UnsupportedRequest("A prompt is required.")
    search = clean(str(params.get("search") or ""))
    if operation in NEEDS_SEARCH and not search:
        raise UnsupportedRequest(
            f'{operation} needs search=: what to look for in the source ("the blue bottle").'
        )
    if search and operation not in NEEDS_SEARCH:
        raise UnsupportedRequest(f"search= is only for {' and '.join(sorted(NEEDS_SEARCH))}.")
    if not 1 <= int(count) <= 16:
        raise UnsupportedRequest("count must be between 1 and 16.")
    alias, fallbacks = _choose_alias(
        provider, model_field.provider if is_generated else None, preset_obj, operation
    )
    needs_inputs = operation != "generate" or bool(inputs.references)
    chosen = provider or (model_field.provider if is_generated else None)
    if needs_inputs and not chosen and not _capable(alias, inputs):
        # The preset's list: its first alias that can do the operation, if any.
        capable = [a for a in (alias, *fallbacks) if _capable(a, inputs)]
        if capable:
            alias, fallbacks = capable[0], tuple(capable[1:])
    backend = get_provider(alias)
    if needs_inputs:
        why = can_do(backend, inputs, params.get("model"))
        if why:
            able = _able(inputs)
            raise UnsupportedRequest(
                f"{why}. Configured providers that can: {', '.join(able) or 'none'}.",
                provider=alias,
            )
        fallbacks = tuple(a for a in fallbacks if _capable(a, inputs))
    width, height = preset_obj.size if preset_obj else (1024, 1024)
    padding = None
    if inputs.source is not None:
        width, height, padding = _output_size(inputs, preset_obj, params)
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
        operation=operation,
        source_images=inputs.images(),
        mask=inputs.mask_bytes,
        search=search,
        padding=padding,
        extra=dict(params.get("extra") or {}),
    )
    calls, warnings = backend.prepare(request)
    first = calls[0]
    return Plan(
        provider=backend,
        preset=preset_obj,
        prompt=request.prompt,
        negative_prompt=first.negative_prompt,
        calls=calls,
        warnings=warnings,
        # The provider's own estimate: one whose price depends on the operation (an edit
        # endpoint's, not the model's) says so there.
        estimated_cost=backend.estimate_cost(request),
        target=target,
        field_name=model_field.name if model_field else "",
        inputs=inputs,
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
            operation=operation,
            source_sha256=sha256(inputs.source),
            mask_sha256=sha256(inputs.mask),
            references=tuple(sha256(item) for item in inputs.references),
            padding=padding,
            search=search,
        ),
    )


def _output_size(
    inputs: Inputs, preset: Preset | None, params: dict[str, Any]
) -> tuple[int, int, tuple[int, int, int, int] | None]:
    """Return the output size of an operation on a source, and an outpaint's padding."""
    source = inputs.source
    assert source is not None
    width, height, padding = source.width, source.height, None
    if inputs.operation == "upscale":
        scale = params.get("scale") or 2
        try:
            scale = float(scale)
        except (TypeError, ValueError) as err:
            raise UnsupportedRequest(f"scale must be a number, not {scale!r}.") from err
        if not 1 < scale <= 8:
            raise UnsupportedRequest(f"scale must be above 1 and at most 8, not {scale}.")
        width, height = round(width * scale), round(height * scale)
    elif inputs.operation == "outpaint":
        padding = params.get("padding")
        if padding is None:
            if preset is None:
                raise UnsupportedRequest(
                    "outpaint needs padding=(left, top, right, bottom) or a preset to fit."
                )
            padding = outpaint_padding(width, height, preset.aspect_ratio)
        try:
            padding = tuple(int(side) for side in padding)
        except (TypeError, ValueError) as err:
            raise UnsupportedRequest("padding is four whole numbers.") from err
        if len(padding) != 4 or min(padding) < 0 or not any(padding):
            raise UnsupportedRequest(
                "padding is (left, top, right, bottom): four whole numbers, none negative, "
                "not all zero."
            )
        width, height = width + padding[0] + padding[2], height + padding[1] + padding[3]
    width = int(params.get("width") or width)
    height = int(params.get("height") or height)
    return width, height, padding
