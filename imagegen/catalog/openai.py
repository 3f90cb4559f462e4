"""GPT-image models of OpenAI's Images API: capabilities, token prices, lifecycle."""

from __future__ import annotations

import datetime
import io
import math
from dataclasses import replace
from decimal import Decimal

from imagegen.catalog.entries import Capabilities, ModelInfo, OperationSupport, Source, sources
from imagegen.pricing import PerToken

#: The day the sources below were last read.
CHECKED = datetime.date(2026, 12, 5)
#: The reference's research date: facts carried over from provider-apis.md were read then.
REFERENCE_CHECKED = datetime.date(2026, 11, 16)
#: OpenAI's deprecations page: shutdown dates, notice dates and replacements. It also says GET
#: /v1/models carries each model's optional ``shutdown_date`` (YYYY-MM-DD, or null).
DEPRECATIONS = "https://developers.openai.com/api/docs/deprecations"
#: OpenAI's Images API reference: the model list.
IMAGES_REFERENCE = "https://developers.openai.com/api/reference/resources/images/methods/generate"
#: OpenAI's Batch API FAQ: every model that has a Batch API runs at 50% of the synchronous price,
#: and an expired batch bills the work it finished.
BATCH_FAQ = "https://help.openai.com/en/articles/9197833-batch-api-faq"
#: What a batch costs of the synchronous price (the Batch API's 50% discount).
BATCH_FACTOR = Decimal("0.5")
#: OpenAI's model pages, where each model's token prices are listed.
MODEL_PAGE = "https://developers.openai.com/api/docs/models/{}"
#: OpenAI's Images edit reference: up to 16 ``image[]`` files, a PNG ``mask`` the size of the
#: first image (transparent where it changes), ``background`` (provider-apis.md §2.4).
EDITS_REFERENCE = "https://developers.openai.com/api/reference/resources/images/methods/edit"
#: OpenAI's image-generation guide: transparent backgrounds (png or webp) on the GPT image
#: models, and on gpt-image-2 as a preview since 2026-08-20 (openai/openai-python#3703).
IMAGE_GUIDE = "https://developers.openai.com/api/docs/guides/image-generation"

# --- OpenAI GPT-image models --------------------------------------------------------------------
# provider-apis.md §2.2 (lifecycle), §2.3 (sizes, n), §2.7 (token prices, output-token counts).
# All are billed by token from the response's usage; output_tokens only feed estimate().

_OPENAI_SIZES = ("1024x1024", "1024x1536", "1536x1024")


def _output_tokens(counts: dict[str, tuple[int, int, int]]) -> dict[str, int]:
    """Return a PerToken table from per-quality token counts for the three standard sizes.

    Sizes without a quality ("auto", the API default, or none) are estimated as high: the most
    "auto" can cost. A bare quality (free 2.x sizes) uses its 1536x1024 count.
    """
    table = dict(zip(_OPENAI_SIZES, counts["high"], strict=True))
    for quality, per_size in counts.items():
        table.update({f"{quality}:{s}": n for s, n in zip(_OPENAI_SIZES, per_size, strict=True)})
        table[quality] = per_size[2]
    return table


# §2.7: community counts, consistent with the official per-image prices of gpt-image-1 and 1.5.
_GPT_IMAGE_1_TOKENS = _output_tokens(
    {"low": (272, 408, 400), "medium": (1056, 1584, 1568), "high": (4160, 6240, 6208)}
)
# §2.7 says mini's official prices do not fit those counts; these are the official per-image
# prices divided by its $8/1M output rate (0.005/0.011/0.036 and 0.006/0.015/0.052).
_GPT_IMAGE_1_MINI_TOKENS = _output_tokens(
    {"low": (625, 750, 750), "medium": (1375, 1875, 1875), "high": (4500, 6500, 6500)}
)
# §2.7 [UNCERTAIN]: 196/1756/7024 at 1024x1024 is community reverse-engineering; the 3:2 sizes
# are scaled by pixel count (x1.5), an assumption of ours. Billing always uses usage.
_GPT_IMAGE_2_COUNTS = {
    "low": (196, 294, 294),
    "medium": (1756, 2634, 2634),
    "high": (7024, 10536, 10536),
}
_GPT_IMAGE_2_TOKENS = _output_tokens(_GPT_IMAGE_2_COUNTS)
# §2.3: 2.5 and 2.6 add "xhigh" and "max"; no token counts are published, so they are
# estimated as high (an underestimate, flagged in the reference as unknown).
_GPT_IMAGE_25_TOKENS = _output_tokens(
    {
        **_GPT_IMAGE_2_COUNTS,
        "xhigh": _GPT_IMAGE_2_COUNTS["high"],
        "max": _GPT_IMAGE_2_COUNTS["high"],
    }
)

# §2.3: no seed, no negative prompt, n up to 10, png/jpeg/webp, edits with a mask.
_GPT_IMAGE_1_CAPS = Capabilities(
    sizes=((1024, 1024), (1536, 1024), (1024, 1536)),
    max_count=10,
    seed=False,
    negative_prompt=False,
    edit=True,
    mask=True,
    output_formats=("png", "jpeg", "webp"),
)
# §2.3: gpt-image-2 and later take any WxH with sides divisible by 16, 1:3 to 3:1, at most
# 3840x2160 (above 2560x1440 is "experimental"); the 655,360 to 8,294,400 pixel range is from a
# community calculator [UNCERTAIN]. 2.6's gif and svg outputs (third-party docs) are left out.
_GPT_IMAGE_2_CAPS = replace(
    _GPT_IMAGE_1_CAPS,
    sizes=None,
    min_side=256,
    max_side=3840,
    size_multiple=16,
    min_pixels=655_360,
    max_pixels=8_294_400,
    max_aspect=3.0,
)


#: The models that take only the three fixed sizes: the gpt-image-1 family and ChatGPT's.
_SIZED = ("gpt-image-1", "chatgpt-image")

# --- Operations: what /images/edits does with each (EDITS_REFERENCE, IMAGE_GUIDE) -------------
#: §2.4: up to 16 images per edit: the source and at most 15 references.
MAX_REFERENCES = 15
_WITH_REFERENCES = OperationSupport(max_references=MAX_REFERENCES)
#: Every GPT image model edits; the instruction-style operations are edits with a rewritten
#: prompt (OpenAIProvider.INSTRUCTIONS). Only inpaint needs the mask; only edit may carry one.
EDIT_OPERATIONS: dict[str, OperationSupport] = {
    "edit": OperationSupport(mask="optional", max_references=MAX_REFERENCES),
    "inpaint": OperationSupport(mask="required", max_references=MAX_REFERENCES),
    "replace_background": _WITH_REFERENCES,
    "search_replace": _WITH_REFERENCES,
    "search_recolor": OperationSupport(),
    "restyle": _WITH_REFERENCES,
}
#: remove_background is an edit with ``background="transparent"``: the gpt-image-1 family and
#: gpt-image-2 (preview) take it. gpt-image-2.5 answered "Transparent background is not
#: supported for this model" (a public report of 2026-09-15), and 2.6 is not documented to, so
#: neither is offered it.
_TRANSPARENT = ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5", "gpt-image-2")
#: The operations of a model that makes transparent backgrounds.
TRANSPARENT_OPERATIONS = {**EDIT_OPERATIONS, "remove_background": OperationSupport()}


def input_image_tokens(content: bytes) -> int:
    """Return the estimated image input tokens of one source image: 85 + 170 per 512 px tile.

    OpenAI counts GPT image inputs like its vision models [UNCERTAIN: the formula is the
    vision guide's, not restated for the Images API]: fit within 2048 x 2048, scale the short
    side down to 768, then 170 tokens per 512 px tile plus 85. ``input_fidelity="high"`` adds
    tokens this does not estimate; the bill always uses the answer's ``usage``.
    """
    from PIL import Image  # only for edit estimates: the catalog stays light to import

    try:
        with Image.open(io.BytesIO(content)) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001 - an unreadable image is estimated as one tile
        return 85 + 170
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    return 85 + 170 * math.ceil(width / 512) * math.ceil(height / 512)


def _openai(model_id: str, label: str, price: PerToken, **kwargs) -> ModelInfo:
    caps = _GPT_IMAGE_1_CAPS if model_id.startswith(_SIZED) else _GPT_IMAGE_2_CAPS
    operations = TRANSPARENT_OPERATIONS if model_id in _TRANSPARENT else EDIT_OPERATIONS
    caps = replace(caps, operations=operations)
    price = replace(price, input_image_tokens=input_image_tokens)
    # /v1/images/generations and /v1/images/edits are Batch API endpoints (provider-apis.md
    # §2.1): every GPT-image model can run in a batch, at the FAQ's 50%.
    kwargs["sources"] = {
        **kwargs["sources"],
        "batch_factor": Source(url=BATCH_FAQ, checked=CHECKED),
    }
    return ModelInfo(
        provider="openai",
        id=model_id,
        label=label,
        capabilities=caps,
        price=price,
        batch_factor=BATCH_FACTOR,
        **kwargs,
    )


def _gpt_image_2_price(tokens: dict[str, int]) -> PerToken:
    # §2.7: $5 text in, $8 image in, $30 image out per 1M for the whole 2.x family.
    return PerToken(
        text_input=Decimal("5.00"),
        image_input=Decimal("8.00"),
        image_output=Decimal("30.00"),
        output_tokens=tokens,
        default_output_tokens=tokens["high"],
    )


#: The models whose token prices provider-apis.md §2.7 read on OpenAI's own model pages; the
#: others' came from third-party pages (LLM Reference, Vercel, Apidog, OpenRouter).
_PRICED_BY_OPENAI = (
    "gpt-image-1",
    "gpt-image-1-mini",
    "gpt-image-2.6-sunburst",
    "gpt-image-2.6-flare",
)


def _price_source(model_id: str) -> Source:
    if model_id in _PRICED_BY_OPENAI:
        return Source(url=MODEL_PAGE.format(model_id), checked=REFERENCE_CHECKED)
    return Source(
        url=MODEL_PAGE.format(model_id),
        checked=REFERENCE_CHECKED,
        verified=False,
        note="Token prices from third-party pages (provider-apis.md §2.7), not OpenAI's page.",
    )


def _sources(model_id: str, **dates: str | Source) -> dict[str, Source]:
    """Return the sources of a model: the Images reference for its id, its model page for its
    price (read for provider-apis.md §2.7), and ``dates``."""
    return {
        "id": Source(url=IMAGES_REFERENCE, checked=REFERENCE_CHECKED),
        "price": _price_source(model_id),
        **sources(CHECKED, **dates),
    }


#: OpenAI's deprecations page, read today: notice date Jun 2, 2026, shutdown Dec 1, 2026, for
#: gpt-image-1-mini, gpt-image-1.5 (and gpt-image-1.5-2025-12-16) and chatgpt-image-latest,
#: replaced by gpt-image-2.6-sunburst or gpt-image-2.6-flare.
_NOTICE_2026_06 = datetime.date(2026, 6, 2)
_SHUTDOWN_2026_12 = datetime.date(2026, 12, 1)
_RETIRED_2026_12 = {
    "deprecated": _NOTICE_2026_06,
    "shutdown": _SHUTDOWN_2026_12,
    "successor": "gpt-image-2.6-sunburst",
}
_GPT_IMAGE_15_PRICE = PerToken(
    text_input=Decimal("5.00"),
    image_input=Decimal("8.00"),
    image_output=Decimal("32.00"),
    text_output=Decimal("10.00"),
    output_tokens=_GPT_IMAGE_1_TOKENS,
    default_output_tokens=_GPT_IMAGE_1_TOKENS["high"],
)
# The release dates come from the reference's model status table (§2.2), read from OpenAI's
# Images reference and model pages.
_RELEASED = Source(url=IMAGES_REFERENCE, checked=REFERENCE_CHECKED)
MODELS: tuple[ModelInfo, ...] = (
    _openai(
        "gpt-image-2",
        "GPT Image 2",
        _gpt_image_2_price(_GPT_IMAGE_2_TOKENS),
        released=datetime.date(2026, 4, 21),
        sources=_sources("gpt-image-2", released=_RELEASED),
    ),
    *(
        _openai(
            f"gpt-image-{version}-{variant}",
            f"GPT Image {version} {variant.title()}",
            _gpt_image_2_price(_GPT_IMAGE_25_TOKENS),
            released=released,
            sources=_sources(f"gpt-image-{version}-{variant}", released=_RELEASED),
        )
        for version, released in (
            ("2.6", datetime.date(2026, 11, 4)),
            ("2.5", datetime.date(2026, 9, 8)),
        )
        for variant in ("sunburst", "flare")
    ),
    _openai(
        "gpt-image-1.5",
        "GPT Image 1.5",
        _GPT_IMAGE_15_PRICE,
        **_RETIRED_2026_12,
        sources=_sources("gpt-image-1.5", deprecated=DEPRECATIONS, shutdown=DEPRECATIONS),
    ),
    _openai(
        "gpt-image-1.5-2025-12-16",
        "GPT Image 1.5 (2025-12-16 snapshot)",
        _GPT_IMAGE_15_PRICE,
        **_RETIRED_2026_12,
        notes="The dated snapshot gpt-image-1.5 pointed to; priced like it.",
        sources={
            **_sources("gpt-image-1.5", deprecated=DEPRECATIONS, shutdown=DEPRECATIONS),
            "id": Source(url=DEPRECATIONS, checked=CHECKED),
        },
    ),
    _openai(
        "chatgpt-image-latest",
        "ChatGPT Image (latest)",
        _GPT_IMAGE_15_PRICE,
        **_RETIRED_2026_12,
        notes="The image model ChatGPT used, as an API alias; priced like gpt-image-1.5.",
        sources={
            "id": Source(url=DEPRECATIONS, checked=CHECKED),
            "price": Source(
                url=MODEL_PAGE.format("chatgpt-image-latest"),
                checked=CHECKED,
                verified=False,
                note="No price read on OpenAI's pages; priced like gpt-image-1.5.",
            ),
            **sources(CHECKED, deprecated=DEPRECATIONS, shutdown=DEPRECATIONS),
        },
    ),
    _openai(
        "gpt-image-1-mini",
        "GPT Image 1 mini",
        PerToken(
            text_input=Decimal("2.00"),
            image_input=Decimal("2.50"),
            image_output=Decimal("8.00"),
            output_tokens=_GPT_IMAGE_1_MINI_TOKENS,
            default_output_tokens=_GPT_IMAGE_1_MINI_TOKENS["high"],
        ),
        **_RETIRED_2026_12,
        sources=_sources("gpt-image-1-mini", deprecated=DEPRECATIONS, shutdown=DEPRECATIONS),
    ),
    _openai(
        "gpt-image-1",
        "GPT Image 1",
        PerToken(
            text_input=Decimal("5.00"),
            image_input=Decimal("10.00"),
            image_output=Decimal("40.00"),
            output_tokens=_GPT_IMAGE_1_TOKENS,
            default_output_tokens=_GPT_IMAGE_1_TOKENS["high"],
        ),
        shutdown=datetime.date(2026, 10, 23),
        successor="gpt-image-2.5-sunburst",
        sources=_sources(
            "gpt-image-1",
            # Past shutdowns leave the page's upcoming table; the date is the reference's.
            shutdown=Source(url=DEPRECATIONS, checked=REFERENCE_CHECKED),
        ),
    ),
)
