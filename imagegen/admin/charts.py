"""Charts for the spend dashboard, drawn on the server as accessible SVG.

No JavaScript and no chart library: each chart is an ``<svg role="img">`` with a ``<title>``
and a ``<desc>`` that say what it shows, a ``<title>`` on every bar (a tooltip, and what a
screen reader reads), and the page shows the same numbers as a table under it. Colours are CSS
classes (``imagegen-series-N``, in ``admin.css``) and text uses the admin's CSS variables, so the
charts follow the admin's light and dark themes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

#: How many colours the stylesheet defines; more series reuse them.
PALETTE = 8
_ids = itertools.count(1)

Formatter = Callable[[Decimal], str]


@dataclass(frozen=True)
class Series:
    """One named series of values, one per category (or per row of a bar chart)."""

    name: str
    values: Sequence[Decimal]
    #: The colour class index; None picks the series' position.
    colour: int | None = None
    #: Drawn hatched: for amounts that are not certain (unconfirmed charges, reservations).
    hatched: bool = False


def _svg_open(width: int, height: int, title: str, desc: str) -> list[str]:
    n = next(_ids)
    return [
        f'<svg class="imagegen-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'aria-labelledby="imagegen-chart-{n}-title" aria-describedby="imagegen-chart-{n}-desc">',
        f'<title id="imagegen-chart-{n}-title">{escape(title)}</title>',
        f'<desc id="imagegen-chart-{n}-desc">{escape(desc)}</desc>',
        "<defs>"
        + "".join(
            f'<pattern id="imagegen-hatch-{n}-{c}" patternUnits="userSpaceOnUse" width="6" '
            'height="6" patternTransform="rotate(45)"><rect width="6" height="6" '
            f'class="imagegen-hatch-bg"/><line x1="0" y1="0" x2="0" y2="6" '
            f'class="imagegen-hatch-line imagegen-stroke-{c}"/></pattern>'
            for c in range(PALETTE)
        )
        + "</defs>",
    ], n


def _nice_max(value: float) -> float:
    """Return a round number at least ``value``, for the top of an axis."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _fill(series: Series, index: int, chart: int) -> str:
    colour = series.colour if series.colour is not None else index
    if series.hatched:
        # Inline style: the series' CSS class would win over a fill attribute.
        c = colour % PALETTE
        return (
            f'class="imagegen-hatched imagegen-stroke-{c}" '
            f'style="fill: url(#imagegen-hatch-{chart}-{c})"'
        )
    return f'class="imagegen-series-{colour % PALETTE}"'


def _legend(series: Sequence[Series], chart: int, x: float, y: float, width: float) -> list[str]:
    parts, cx, cy = [], x, y
    for index, item in enumerate(series):
        label_width = 18 + 7 * min(len(item.name), 30)
        if cx + label_width > x + width and cx > x:
            cx, cy = x, cy + 18
        parts.append(
            f'<rect x="{cx:.1f}" y="{cy - 10:.1f}" width="12" height="12" rx="2" '
            f"{_fill(item, index, chart)}/>"
            f'<text x="{cx + 16:.1f}" y="{cy:.1f}" class="imagegen-chart-text">'
            f"{escape(item.name[:30])}</text>"
        )
        cx += label_width + 14
    return parts


def stacked_columns(
    *,
    title: str,
    desc: str,
    categories: Sequence[str],
    series: Sequence[Series],
    fmt: Formatter,
) -> SafeString:
    """Return a chart of one column per category, each stacked from the series' values."""
    width, plot_h, left, top = 760, 220, 70, 12
    legend_rows = 1 + sum(7 * min(len(s.name), 30) + 32 for s in series) // (width - left)
    height = top + plot_h + 34 + 18 * legend_rows + 8
    parts, chart = _svg_open(width, height, title, desc)
    totals = [sum((s.values[i] for s in series), Decimal(0)) for i in range(len(categories))]
    top_value = _nice_max(float(max(totals, default=0)))
    plot_w = width - left - 10
    # Gridlines and the axis' amounts.
    for step in range(5):
        value = top_value * step / 4
        y = top + plot_h - plot_h * step / 4
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'class="imagegen-chart-grid"/><text x="{left - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end" class="imagegen-chart-text">{escape(fmt(Decimal(str(value))))}'
            "</text>"
        )
    count = max(len(categories), 1)
    slot = plot_w / count
    bar = max(slot * 0.7, 1)
    every = max(1, math.ceil(count / 12))  # at most about 12 labels under the axis
    for i, category in enumerate(categories):
        x = left + slot * i + (slot - bar) / 2
        y = top + plot_h
        for index, item in enumerate(series):
            value = item.values[i]
            if not value:
                continue
            h = plot_h * float(value) / top_value
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f"{_fill(item, index, chart)}><title>{escape(category)}, {escape(item.name)}: "
                f"{escape(fmt(value))}</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle" '
                f'class="imagegen-chart-text">{escape(category)}</text>'
            )
    parts.extend(_legend(series, chart, left, top + plot_h + 40, plot_w))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every text above is escaped)


def bars(
    *,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Formatter,
    stacked: bool = True,
    limits: Sequence[Decimal | None] | None = None,
) -> SafeString:
    """Return a chart of one horizontal bar per label: the series stacked, or side by side.

    ``limits`` (one per label, or None) draws a mark at each bar's limit, such as a budget cap.
    """
    width, left, right, top = 760, 200, 90, 8
    per_series = 1 if stacked else len(series)
    row_h = 10 + 14 * per_series
    legend_y = top + row_h * len(labels) + 18
    height = legend_y + 14
    parts, chart = _svg_open(width, height, title, desc)
    plot_w = width - left - right
    totals = [
        sum((s.values[i] for s in series), Decimal(0))
        if stacked
        else max((s.values[i] for s in series), default=Decimal(0))
        for i in range(len(labels))
    ]
    biggest = max([float(t) for t in totals] + [float(x) for x in (limits or []) if x] + [0])
    scale = plot_w / (biggest or 1)
    for i, label in enumerate(labels):
        y = top + row_h * i
        parts.append(
            f'<text x="{left - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end" '
            f'class="imagegen-chart-text">{escape(label[:30])}</text>'
        )
        x = float(left)
        for index, item in enumerate(series):
            value = item.values[i]
            bar_y = y + 5 + (0 if stacked else 14 * index)
            w = float(value) * scale
            if value:
                parts.append(
                    f'<rect x="{x:.1f}" y="{bar_y:.1f}" width="{max(w, 1):.1f}" height="12" '
                    f"{_fill(item, index, chart)}><title>{escape(label)}, {escape(item.name)}: "
                    f"{escape(fmt(value))}</title></rect>"
                )
            if stacked:
                x += w
            else:
                parts.append(
                    f'<text x="{left + w + 4:.1f}" y="{bar_y + 10:.1f}" '
                    f'class="imagegen-chart-text">{escape(fmt(value))}</text>'
                )
        if stacked:
            parts.append(
                f'<text x="{x + 4:.1f}" y="{y + row_h / 2 + 4:.1f}" '
                f'class="imagegen-chart-text">{escape(fmt(totals[i]))}</text>'
            )
        limit = limits[i] if limits else None
        if limit:
            lx = left + float(limit) * scale
            parts.append(
                f'<line x1="{lx:.1f}" x2="{lx:.1f}" y1="{y + 1:.1f}" y2="{y + row_h - 1:.1f}" '
                f'class="imagegen-chart-limit"><title>{escape(label)}: '
                f"{escape(fmt(limit))}</title></line>"
            )
    parts.extend(_legend(series, chart, left, legend_y, plot_w))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every text above is escaped)
