"""Price rules: how a model is billed, turned into Decimal dollars for an estimate or a bill.

Each rule answers two questions: what a request *will* cost (:meth:`estimate`, before any call)
and what it *did* cost (:meth:`actual`, from the usage the provider reported). Providers bill per
image, per megapixel, per token or per credit; one rule class each.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from imagegen.types import ImageRequest

MILLION = Decimal(1_000_000)
#: Costs are stored with six decimal places (micro-dollars).
QUANT = Decimal("0.000001")


def money(value: Decimal | int | str | float) -> Decimal:
    """Return ``value`` as a Decimal rounded to micro-dollars."""
    return Decimal(str(value)).quantize(QUANT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, kw_only=True)
class PriceRule:
    """Base price rule: free."""

    kind = "free"

    def estimate(self, request: ImageRequest) -> Decimal:
        """Return the expected cost of ``request``."""
        return money(0)

    def actual(self, request: ImageRequest, usage: Mapping[str, Any], images: int) -> Decimal:
        """Return the cost of a finished call from the provider's usage report."""
        return self.estimate(request)

    def describe(self) -> str:
        """Return a short human-readable price, for ``imagegen_providers`` and the docs."""
        return "free"


@dataclass(frozen=True, kw_only=True)
class PerImage(PriceRule):
    """A flat price per image, optionally varying by quality and size ("high:1024x1536")."""

    kind = "per_image"
    price: Decimal
    #: Overrides keyed "quality:WxH", "quality" or "WxH".
    table: Mapping[str, Decimal] = field(default_factory=dict)

    def unit_price(self, request: ImageRequest) -> Decimal:
        size = f"{request.width}x{request.height}"
        for key in (f"{request.quality}:{size}", str(request.quality), size):
            if key in self.table:
                return Decimal(self.table[key])
        return Decimal(self.price)

    def estimate(self, request: ImageRequest) -> Decimal:
        return money(self.unit_price(request) * request.count)

    def actual(self, request: ImageRequest, usage: Mapping[str, Any], images: int) -> Decimal:
        return money(self.unit_price(request) * images)

    def describe(self) -> str:
        return f"${Decimal(self.price):f} per image"


@dataclass(frozen=True, kw_only=True)
class PerMegapixel(PriceRule):
    """A price per output megapixel, rounded up to whole megapixels when ``round_up`` is set."""

    kind = "per_megapixel"
    price: Decimal
    round_up: bool = True

    def _megapixels(self, request: ImageRequest) -> Decimal:
        mp = request.megapixels
        if self.round_up:
            mp = mp.to_integral_value(rounding="ROUND_CEILING")
        return max(mp, Decimal(1))

    def estimate(self, request: ImageRequest) -> Decimal:
        return money(Decimal(self.price) * self._megapixels(request) * request.count)

    def actual(self, request: ImageRequest, usage: Mapping[str, Any], images: int) -> Decimal:
        return money(Decimal(self.price) * self._megapixels(request) * images)

    def describe(self) -> str:
        return f"${Decimal(self.price):f} per megapixel"


@dataclass(frozen=True, kw_only=True)
class MegapixelTiers(PriceRule):
    """Dollars per billed megapixel of each output and source image, with optional price tiers.

    An image is billed as its pixels over ``megapixel``, rounded up to whole megapixels when
    ``round_up`` is set (else the exact fraction), at least ``minimum`` and, for a source image,
    at most ``max_input``. The first megapixel of each output may cost ``first``; a request with
    source images is an edit, whose output megapixels cost ``edit_price`` where one is set. An
    output's pixels are ``output_pixels(request)`` when the provider bills a size tier rather
    than the size asked, else width x height; a source image's are read from its header (1 if
    unreadable). :meth:`actual` prefers the billed totals of the usage (:meth:`usage`).
    """

    kind = "megapixel_tiers"
    #: Dollars per output megapixel (each one after the first, when ``first`` is set).
    price: Decimal
    #: Dollars for the first output megapixel of each image; None: ``price``.
    first: Decimal | None = None
    #: Dollars per output megapixel, first included, of an edit; None: priced as a generation.
    edit_price: Decimal | None = None
    #: Dollars per billed megapixel of each source image.
    input_price: Decimal = Decimal(0)
    #: Pixels in one billed megapixel.
    megapixel: int = 1024 * 1024
    #: Round each image up to whole megapixels; False bills the exact fraction.
    round_up: bool = True
    #: Fewest megapixels one image, output or source, is billed as.
    minimum: Decimal = Decimal(1)
    #: Most megapixels one source image is billed as; None: no limit.
    max_input: Decimal | None = None
    #: Pixels of one output image of a request; None: ``request.width * request.height``.
    output_pixels: Callable[[ImageRequest], int] | None = None
    #: The provider lists these prices as "from" (starting) prices; :meth:`describe` says so.
    from_prices: bool = False

    def billed(self, pixels: int, most: Decimal | None = None) -> Decimal:
        """Return the megapixels one image of ``pixels`` pixels is billed as."""
        mp = Decimal(pixels) / Decimal(self.megapixel)
        if self.round_up:
            mp = mp.to_integral_value(rounding=ROUND_CEILING)
        mp = max(mp, Decimal(self.minimum))
        return mp if most is None else min(mp, Decimal(most))

    def output_megapixels(self, request: ImageRequest) -> Decimal:
        """Return the megapixels one output image of ``request`` is billed as."""
        if self.output_pixels is not None:
            return self.billed(self.output_pixels(request))
        return self.billed(request.width * request.height)

    def input_megapixels(self, request: ImageRequest) -> Decimal:
        """Return the megapixels the source images of ``request`` are billed as, in all."""
        most = self.max_input
        return sum((self.billed(_pixels(c), most) for c in request.source_images), Decimal(0))

    def cost(
        self,
        output_mp: Decimal | int,
        images: int,
        input_mp: Decimal | int = 0,
        *,
        edit: bool = False,
    ) -> Decimal:
        """Return the cost of ``images`` same-sized outputs billed as ``output_mp`` megapixels in
        all, plus ``input_mp`` megapixels of source images; ``edit`` prices an edit."""
        further = Decimal(self.price)
        first = further if self.first is None else Decimal(self.first)
        if edit and self.edit_price is not None:
            first = further = Decimal(self.edit_price)
        output_mp = Decimal(output_mp)
        # The first megapixel of each image, or all of an image below one megapixel.
        first_mp = min(output_mp, Decimal(images))
        output = first * first_mp + further * (output_mp - first_mp)
        return money(output + Decimal(self.input_price) * Decimal(input_mp))

    def estimate(self, request: ImageRequest) -> Decimal:
        input_mp = self.input_megapixels(request) if self.input_price else Decimal(0)
        output_mp = self.output_megapixels(request) * request.count
        return self.cost(output_mp, request.count, input_mp, edit=bool(request.source_images))

    def actual(self, request: ImageRequest, usage: Mapping[str, Any], images: int) -> Decimal:
        output_mp, input_mp = usage.get("output_megapixels"), usage.get("input_megapixels")
        if output_mp is None:
            output_mp = self.output_megapixels(request) * images
        if input_mp is None:
            input_mp = self.input_megapixels(request) if self.input_price else Decimal(0)
        return self.cost(
            Decimal(str(output_mp)),
            images,
            Decimal(str(input_mp)),
            edit=bool(request.source_images),
        )

    def usage(self, request: ImageRequest, images: int) -> dict[str, int | float]:
        """Return the billed totals of a call that made ``images`` outputs, as :meth:`actual`
        reads them: ``output_megapixels`` and ``input_megapixels``, JSON numbers."""
        return {
            "output_megapixels": _number(self.output_megapixels(request) * images),
            "input_megapixels": _number(self.input_megapixels(request)),
        }

    def describe(self) -> str:
        start = "from " if self.from_prices else ""
        price = Decimal(self.price)
        first = price if self.first is None else Decimal(self.first)
        if first == price:
            text = f"{start}${price:f} per megapixel"
        else:
            text = f"{start}${first:f} for the first megapixel, ${price:f} for each further one"
        if self.edit_price is not None:
            text += f" (edits {start}${Decimal(self.edit_price):f})"
        if self.input_price:
            text += f", ${Decimal(self.input_price):f} per input megapixel"
        return text


def _pixels(content: bytes) -> int:
    """Return the pixel count of an encoded image from its header; 1 if it cannot be read."""
    # Pillow only for edit prices with source images: the catalog stays light to import.
    from PIL import Image

    try:
        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001 - an unreadable size is billed as the minimum
        return 1
    return width * height


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass(frozen=True, kw_only=True)
class PerCredit(PriceRule):
    """A number of provider credits per image, each worth ``credit_price`` dollars."""

    kind = "per_credit"
    credits: Decimal
    credit_price: Decimal = Decimal("0.01")

    def estimate(self, request: ImageRequest) -> Decimal:
        return money(Decimal(self.credits) * Decimal(self.credit_price) * request.count)

    def actual(self, request: ImageRequest, usage: Mapping[str, Any], images: int) -> Decimal:
        if "credits" in usage:
            return money(Decimal(str(usage["credits"])) * Decimal(self.credit_price))
        return money(Decimal(self.credits) * Decimal(self.credit_price) * images)

    def describe(self) -> str:
        return f"{Decimal(self.credits):f} credits (${Decimal(self.credit_price):f} each) per image"


@dataclass(frozen=True, kw_only=True)
class PerToken(PriceRule):
    """Dollars per million tokens of text input, image input and image output.

    The estimate assumes ``output_tokens`` image tokens per image (keyed like :class:`PerImage`'s
    table, "quality:WxH", "quality" or "WxH", with ``default_output_tokens`` as the fallback) and
    ``prompt_tokens`` text tokens, plus ``input_image_tokens(content)`` image tokens for each
    source image of an edit where the model says how it counts them; the actual cost uses the
    provider's reported usage.
    """

    kind = "per_token"
    text_input: Decimal
    image_output: Decimal
    image_input: Decimal = Decimal(0)
    text_output: Decimal = Decimal(0)
    output_tokens: Mapping[str, int] = field(default_factory=dict)
    default_output_tokens: int = 1056
    prompt_tokens: int = 100
    #: Image input tokens of one source image, from its encoded bytes; None: not estimated.
    input_image_tokens: Callable[[bytes], int] | None = None

    def _output_tokens(self, request: ImageRequest) -> int:
        size = f"{request.width}x{request.height}"
        for key in (f"{request.quality}:{size}", str(request.quality), size):
            if key in self.output_tokens:
                return int(self.output_tokens[key])
        return self.default_output_tokens

    def estimate(self, request: ImageRequest) -> Decimal:
        per_call = Decimal(self.prompt_tokens) * Decimal(self.text_input)
        per_image = Decimal(self._output_tokens(request)) * Decimal(self.image_output)
        if self.input_image_tokens is not None and request.source_images:
            # Each call sends its source images once, whatever its count.
            sources = sum(self.input_image_tokens(c) for c in request.source_images)
            per_call += Decimal(sources) * Decimal(self.image_input)
        return money((per_call + per_image * request.count) / MILLION)

    def actual(self, request: ImageRequest, usage: Mapping[str, Any], images: int) -> Decimal:
        tokens = {
            "text_input": usage.get("text_input_tokens", 0),
            "image_input": usage.get("image_input_tokens", 0),
            "image_output": usage.get("image_output_tokens", 0),
            "text_output": usage.get("text_output_tokens", 0),
        }
        total = sum(Decimal(int(n)) * Decimal(getattr(self, k)) for k, n in tokens.items())
        return money(total / MILLION)

    def describe(self) -> str:
        return (
            f"${Decimal(self.text_input):f} / ${Decimal(self.image_output):f} per million "
            "text-input / image-output tokens"
        )


#: The rules ``IMAGEGEN["PRICES"]`` can name. :class:`MegapixelTiers` is for catalog entries only.
RULES: dict[str, type[PriceRule]] = {
    cls.kind: cls for cls in (PriceRule, PerImage, PerMegapixel, PerCredit, PerToken)
}


def price_from_dict(data: Mapping[str, Any]) -> PriceRule:
    """Build a rule from the ``IMAGEGEN["PRICES"]`` form: ``{"per_image": "0.04"}`` and friends.

    ``{"per_image": "0.04"}``, ``{"per_megapixel": "0.015"}``, ``{"per_credit": 3}`` (with an
    optional ``"credit_price"``), ``{"free": True}``, or ``{"kind": "per_token", ...}`` with the
    :class:`PerToken` fields.
    """
    data = dict(data)
    if "kind" in data:
        cls = RULES.get(data.pop("kind"))
        if cls is None:
            raise ValueError(f"Unknown price kind; expected one of {', '.join(RULES)}.")
        return cls(**{k: _decimal_or_raw(v) for k, v in data.items()})
    if data.get("free"):
        return PriceRule()
    if "per_image" in data:
        return PerImage(price=Decimal(str(data.pop("per_image"))), table=data.pop("table", {}))
    if "per_megapixel" in data:
        return PerMegapixel(price=Decimal(str(data["per_megapixel"])))
    if "per_credit" in data:
        return PerCredit(
            credits=Decimal(str(data["per_credit"])),
            credit_price=Decimal(str(data.get("credit_price", "0.01"))),
        )
    raise ValueError(
        "A price needs one of 'per_image', 'per_megapixel', 'per_credit', 'free' or 'kind'."
    )


def _decimal_or_raw(value: Any) -> Any:
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            return Decimal(str(value))
        except ArithmeticError:
            return value
    return value
