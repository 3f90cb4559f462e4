"""Google's Gemini image models and the shut-down Imagen 4 models: capabilities, prices, lifecycle.

Each entry names Google's page its id, price and dates were read on (:attr:`ModelInfo.sources`):
the Gemini API changelog and deprecations page for the line-up and its dates, provider-apis.md §4
for the Imagen shutdown and ``:predict`` wire format. Google's price page was not among the
stored pages, so the Gemini token rates are third-party copies of it, marked unverified; billing
always uses the response's ``usageMetadata``, so such numbers only feed ``estimate()`` (and
``IMAGEGEN["PRICES"]`` can override any of them).
"""

from __future__ import annotations

import datetime
import io
import math
from dataclasses import replace
from decimal import Decimal

from imagegen.catalog.entries import Capabilities, ModelInfo, OperationSupport, Source, sources
from imagegen.pricing import PerImage, PerToken

#: The day the sources below were last read.
CHECKED = datetime.date(2026, 12, 5)
#: The reference's research date: facts carried over from provider-apis.md were read then.
REFERENCE_CHECKED = datetime.date(2026, 11, 16)
#: The Gemini API changelog (release notes): releases, deprecations and shutdowns.
CHANGELOG = "https://ai.google.dev/gemini-api/docs/changelog"
#: The Gemini API deprecations page: announced shutdown dates.
DEPRECATIONS = "https://ai.google.dev/gemini-api/docs/deprecations"
#: The Gemini API price page.
PRICING = "https://ai.google.dev/gemini-api/docs/pricing"
#: Google's Imagen migration page (shutdown "as early as August 17, 2026").
IMAGEN_MIGRATION = "https://firebase.google.com/docs/ai-logic/imagen-models-migration"
#: The Gemini API Imagen page ("shut down").
IMAGEN_PAGE = "https://ai.google.dev/gemini-api/docs/imagen"
#: Google's model page of one Gemini model.
MODEL_PAGE = "https://ai.google.dev/gemini-api/docs/models/{}"
#: The Gemini Batch API guide: "priced at 50% of the standard interactive API cost for the
#: equivalent model", with a section on generating images in batch with Nano Banana.
BATCH_GUIDE = "https://ai.google.dev/gemini-api/docs/batch-api"
#: The share of the synchronous price a Batch Mode request costs (imagegen.providers.google_batch).
BATCH_FACTOR = Decimal("0.5")


_BATCH_SOURCE = Source(
    url=BATCH_GUIDE,
    checked=CHECKED,
    note="50% of the standard price; the guide's image example uses gemini-3-pro-image-preview.",
)
#: The Gemini API image-generation guide: editing with text and images, and how many input
#: images each model takes.
IMAGE_GUIDE = "https://ai.google.dev/gemini-api/docs/image-generation"

#: Input images (the source and its references) one generateContent call takes, by model. The
#: Gemini 3 image models take up to 14 reference images (IMAGE_GUIDE; Google's pages and the
#: Firebase guide read through third-party copies [UNVERIFIED]); gemini-2.5-flash-image "works
#: best with up to 3 images as input"; nano-banana-2.1 is taken to keep 3.1 Flash's 14, and 3.1
#: Flash Lite, whose page gives no number, the 2.5 model's 3 [UNCERTAIN].
MAX_INPUT_IMAGES: dict[str, int] = {
    "gemini-nano-banana-2.1": 14,
    "gemini-3.1-flash-image": 14,
    "gemini-3.1-flash-image-preview": 14,
    "gemini-3-pro-image": 14,
    "gemini-3-pro-image-preview": 14,
    "gemini-3.1-flash-lite-image": 3,
    "gemini-2.5-flash-image": 3,
}
#: What generateContent does with a source image: every operation is an instruction
#: (GoogleProvider.INSTRUCTIONS) over the inline images; Gemini takes no mask and returns no
#: alpha channel, so inpaint, erase and remove_background are not offered.
EDIT_OPERATIONS = ("edit", "replace_background", "search_replace", "search_recolor", "restyle")


def edit_operations(model_id: str) -> dict[str, OperationSupport]:
    """Return the operations table of a Gemini image model: its references are its input
    images less the source."""
    support = OperationSupport(max_references=MAX_INPUT_IMAGES[model_id] - 1)
    return dict.fromkeys(EDIT_OPERATIONS, support)


def gemini_3_image_tokens(content: bytes) -> int:
    """Return the estimated input tokens of one image sent to a Gemini 3 model: 1120.

    Gemini 3 bills an image at its media resolution, 1120 tokens at the default high setting
    [UNCERTAIN: third-party reading of Google's media_resolution table]; the bill always uses
    the answer's ``usageMetadata``.
    """
    return 1120


def gemini_2_image_tokens(content: bytes) -> int:
    """Return the estimated input tokens of one image sent to gemini-2.5-flash-image.

    258 tokens for an image of at most 384 px a side, else 258 per 768 px tile [UNCERTAIN:
    Google's token-counting page, read through third-party copies].
    """
    from PIL import Image  # only for edit estimates: the catalog stays light to import

    try:
        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001 - an unreadable image is estimated as one tile
        return 258
    if width <= 384 and height <= 384:
        return 258
    return 258 * math.ceil(width / 768) * math.ceil(height / 768)


def _unpriced(note: str, checked: datetime.date = CHECKED) -> Source:
    """Return the price source of a Gemini model whose rates Google's price page did not confirm."""
    return Source(url=PRICING, checked=checked, verified=False, note=note)


#: Image sizes (``imageConfig.imageSize`` / Imagen's ``sampleImageSize``) every model accepts;
#: an empty tuple means the field is never sent and the API default (1K) applies.
IMAGE_SIZES: dict[str, tuple[str, ...]] = {
    # §4.6: imageSize is 1K, 2K or 4K (default 1K). gemini-2.5-flash-image predates the field
    # and makes 1K images only (1290 tokens each) [UNCERTAIN: third-party].
    "gemini-3.1-flash-image": ("1K", "2K", "4K"),
    "gemini-3.1-flash-image-preview": ("1K", "2K", "4K"),
    "gemini-3-pro-image": ("1K", "2K", "4K"),
    "gemini-3-pro-image-preview": ("1K", "2K", "4K"),
    # Google's changelog (2026-10-06): 1K, 2K and 4K.
    "gemini-nano-banana-2.1": ("1K", "2K", "4K"),
    # Google's model page: "Supported image_size values: 1024px (1K). (2K and 4K are not
    # supported)".
    "gemini-3.1-flash-lite-image": ("1K",),
    "gemini-2.5-flash-image": (),
    # §4.3: sampleImageSize is 1K or 2K, 2K on Standard and Ultra only [UNCERTAIN].
    "imagen-4.0-fast-generate-001": ("1K",),
    "imagen-4.0-generate-001": ("1K", "2K"),
    "imagen-4.0-ultra-generate-001": ("1K", "2K"),
}

# --- Gemini image models ("Nano Banana"), generateContent ---------------------------------------
# §4.6: aspectRatio is one of these eight (4:5, 5:4 and the extreme 1:4 to 8:1 ratios some
# models take are not in the reference, so they are not offered). One image per call
# (ecosystem-reliability.md §1: "n images = n calls"); no seed or negative prompt in §4.6;
# edits send the source images as inline_data parts; no output format can be asked for
# ("outputMimeType ... not supported in the Gemini API"), so png is what is recorded and the
# stored type is read from the returned bytes.
_GEMINI_CAPS = Capabilities(
    aspect_ratios=("1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9"),
    max_count=1,
    seed=False,
    negative_prompt=False,
    edit=True,
    mask=False,
    output_formats=("png",),
)


def _gemini(model_id: str, label: str, price: PerToken, **kwargs) -> ModelInfo:
    caps = kwargs.pop("capabilities", _GEMINI_CAPS)
    caps = replace(caps, operations=edit_operations(model_id))
    tokens = gemini_2_image_tokens if model_id.startswith("gemini-2") else gemini_3_image_tokens
    price = replace(price, input_image_tokens=tokens)
    # Batch Mode runs every Gemini image model at half price (BATCH_GUIDE); which ids it takes
    # is on each model page, which was not checked id by id.
    kwargs.setdefault("batch_factor", BATCH_FACTOR)
    kwargs["sources"] = {"batch_factor": _BATCH_SOURCE, **kwargs.get("sources", {})}
    return ModelInfo(
        provider="google", id=model_id, label=label, capabilities=caps, price=price, **kwargs
    )


def _tokens(
    text_in: str, text_out: str, image_out: str, per_size: dict[str, int], default: int
) -> PerToken:
    # Image input is billed at the input rate, like text [UNCERTAIN: third-party price pages].
    return PerToken(
        text_input=Decimal(text_in),
        image_input=Decimal(text_in),
        text_output=Decimal(text_out),
        image_output=Decimal(image_out),
        output_tokens=per_size,
        default_output_tokens=default,
    )


# §4.6 says only "pricing is token-based (image output tokens)" and gives the one worked example
# below; the other rates are third-party copies of Google's price page, which was not found among
# the stored pages [UNVERIFIED]. Text output covers thinking tokens. Token counts per image are
# keyed by image size (the provider puts the size it sends into ImageRequest.quality), the 1K
# count being the default.
_FLASH_31 = _tokens("0.50", "3.00", "60.00", {"1K": 1120, "2K": 1680, "4K": 2520}, 1120)
_PRO_3 = _tokens("2.00", "12.00", "120.00", {"1K": 1120, "2K": 1120, "4K": 2000}, 1120)
_GA_2026_05 = datetime.date(2026, 5, 28)
# Google's changelog, 2026-05-28: the GA ids released; the two preview ids deprecated, to shut down
# on 2026-06-25.
_PREVIEW_SHUTDOWN = datetime.date(2026, 6, 25)
_THIRD_PARTY_RATES = (
    "Google's price page was not found among the stored pages; the rates are third-party "
    "copies of it (ngrok's AI Gateway changelog)."
)
MODELS: tuple[ModelInfo, ...] = (
    _gemini(
        "gemini-nano-banana-2.1",
        "Nano Banana 2.1",
        # $1.50 in, $7.50 text out, $30 image out per 1M: 1120 tokens at 1K ($0.0336) and 3780
        # at 4K ($0.1134) per third-party pages; 2K is interpolated. Text out was $3.00 here,
        # an assumption; two third-party pages say $7.50.
        _tokens("1.50", "7.50", "30.00", {"1K": 1120, "2K": 1680, "4K": 3780}, 1120),
        # Google's changelog, 2026-10-06: GA, with the 1:4, 4:1, 1:8 and 8:1 aspect ratios.
        capabilities=replace(
            _GEMINI_CAPS, aspect_ratios=(*_GEMINI_CAPS.aspect_ratios, "1:4", "4:1", "1:8", "8:1")
        ),
        released=datetime.date(2026, 10, 6),
        sources=sources(
            CHECKED, id=CHANGELOG, released=CHANGELOG, price=_unpriced(_THIRD_PARTY_RATES)
        ),
    ),
    _gemini(
        "gemini-3.1-flash-lite-image",
        "Gemini 3.1 Flash Lite Image (Nano Banana 2 Lite)",
        # $0.25 in, $1.50 text out, $30 image out per 1M (third-party); 1K only.
        _tokens("0.25", "1.50", "30.00", {"1K": 1120}, 1120),
        # Google's model page lists 1:1, 3:2, 2:3, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9 and 21:9.
        capabilities=replace(
            _GEMINI_CAPS,
            aspect_ratios=("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"),
        ),
        released=datetime.date(2026, 6, 30),
        sources={
            "id": Source(url=MODEL_PAGE.format("gemini-3.1-flash-lite-image"), checked=CHECKED),
            "released": Source(
                url=MODEL_PAGE.format("gemini-3.1-flash-lite-image"),
                checked=CHECKED,
                verified=False,
                note="Google's model page says 'Latest update June 2026'; the day (June 30) is "
                "from a third-party reading of the changelog.",
            ),
            "price": _unpriced(_THIRD_PARTY_RATES),
        },
    ),
    _gemini(
        "gemini-3.1-flash-image",
        "Gemini 3.1 Flash Image (Nano Banana 2)",
        # $0.50 in, $3 text out, $60 image out per 1M; 1120 / 1680 / 2520 tokens at 1K/2K/4K.
        _FLASH_31,
        released=_GA_2026_05,
        # Google's changelog, 2026-10-06: deprecated, no shutdown date announced yet; migrate to
        # gemini-nano-banana-2.1. (A third-party page says 2026-10-29; Google's pages do not.)
        deprecated=datetime.date(2026, 10, 6),
        successor="gemini-nano-banana-2.1",
        sources=sources(
            CHECKED,
            id=CHANGELOG,
            released=CHANGELOG,
            deprecated=CHANGELOG,
            price=_unpriced(_THIRD_PARTY_RATES, REFERENCE_CHECKED),
        ),
    ),
    _gemini(
        "gemini-3-pro-image",
        "Gemini 3 Pro Image (Nano Banana Pro)",
        # $2 in, $12 text out, $120 image out per 1M; 1120 tokens at 1K and 2K, 2000 at 4K.
        _PRO_3,
        released=_GA_2026_05,
        sources=sources(
            CHECKED,
            id=CHANGELOG,
            released=CHANGELOG,
            price=_unpriced(_THIRD_PARTY_RATES, REFERENCE_CHECKED),
        ),
    ),
    _gemini(
        "gemini-3.1-flash-image-preview",
        "Gemini 3.1 Flash Image preview",
        _FLASH_31,
        deprecated=_GA_2026_05,
        shutdown=_PREVIEW_SHUTDOWN,
        successor="gemini-nano-banana-2.1",
        notes="Preview id; its GA id gemini-3.1-flash-image is deprecated in turn.",
        sources=sources(
            CHECKED,
            id=DEPRECATIONS,
            deprecated=CHANGELOG,
            shutdown=CHANGELOG,
            price=_unpriced("Priced like gemini-3.1-flash-image.", REFERENCE_CHECKED),
        ),
    ),
    _gemini(
        "gemini-3-pro-image-preview",
        "Gemini 3 Pro Image preview",
        _PRO_3,
        deprecated=_GA_2026_05,
        shutdown=_PREVIEW_SHUTDOWN,
        successor="gemini-3-pro-image",
        sources=sources(
            CHECKED,
            id=DEPRECATIONS,
            deprecated=CHANGELOG,
            shutdown=CHANGELOG,
            price=_unpriced("Priced like gemini-3-pro-image.", REFERENCE_CHECKED),
        ),
    ),
    _gemini(
        "gemini-2.5-flash-image",
        "Gemini 2.5 Flash Image (Nano Banana)",
        # §4.6: "about $0.039/image (1290 tokens x $30/1M)"; $0.30 in, $2.50 text out.
        _tokens("0.30", "2.50", "30.00", {}, 1290),
        released=datetime.date(2025, 10, 2),
        # Google's deprecations page: released October 2, 2025, shut down October 2, 2026 (the
        # catalog said 2027-03-15, from an unsourced note). No replacement is named there.
        shutdown=datetime.date(2026, 10, 2),
        successor="gemini-nano-banana-2.1",
        notes=(
            "Google's changelog of 2026-09-18 keeps 2.5 models served to projects that used them; "
            "imagegen_providers --live shows whether this one still is."
        ),
        sources=sources(
            CHECKED,
            id=DEPRECATIONS,
            released=DEPRECATIONS,
            shutdown=Source(
                url=DEPRECATIONS,
                checked=CHECKED,
                note="Shutdown October 2, 2026 on Google's deprecations page.",
            ),
            price=_unpriced(
                "The reference's worked example (1290 tokens x $30/1M).", REFERENCE_CHECKED
            ),
        ),
    ),
)

# --- Imagen 4, :predict (shut down) -------------------------------------------------------------
# §4.1: every Imagen model shut down "as early as August 17, 2026" (the date ecosystem-reliability
# §1 gives as the shutdown); successors from the migration table. Kept for gateways and proxies
# that still serve the ids, and for legacy ledger rows. §4.3: 1-4 images per call
# (sampleCount, max [UNCERTAIN]), five aspect ratios, png or jpeg (outputOptions.mimeType);
# seed and negativePrompt are Vertex-only, so they are not offered. §4.5: flat price per image.
_IMAGEN_CAPS = Capabilities(
    aspect_ratios=("1:1", "3:4", "4:3", "9:16", "16:9"),
    max_count=4,
    seed=False,
    negative_prompt=False,
    output_formats=("png", "jpeg"),
)
_IMAGEN_SHUTDOWN = datetime.date(2026, 8, 17)

MODELS += tuple(
    ModelInfo(
        provider="google",
        id=model_id,
        label=label,
        capabilities=_IMAGEN_CAPS,
        price=PerImage(price=Decimal(price)),
        shutdown=_IMAGEN_SHUTDOWN,
        successor=successor,
        notes="Shut down on the Gemini API and Vertex AI; reachable only through proxies.",
        sources={
            "id": Source(url=IMAGEN_PAGE, checked=REFERENCE_CHECKED),
            "shutdown": Source(url=IMAGEN_MIGRATION, checked=REFERENCE_CHECKED),
            "price": Source(
                url=PRICING,
                checked=REFERENCE_CHECKED,
                verified=model_id == "imagen-4.0-fast-generate-001",
                note="Legacy price from provider-apis.md §4.5.",
            ),
        },
    )
    for model_id, label, price, successor in (
        # §4.5: Fast $0.02; Standard $0.04 [UNCERTAIN]; Ultra $0.06 [UNCERTAIN: or $0.08].
        ("imagen-4.0-fast-generate-001", "Imagen 4 Fast", "0.02", "gemini-nano-banana-2.1"),
        ("imagen-4.0-generate-001", "Imagen 4", "0.04", "gemini-nano-banana-2.1"),
        ("imagen-4.0-ultra-generate-001", "Imagen 4 Ultra", "0.06", "gemini-3-pro-image"),
    )
)
