"""The forest plot of lifts as an inline SVG string, written directly (no matplotlib).

One forest plot per metric is drawn on every report; written as SVG text it costs
about a millisecond, where matplotlib's import and per-figure layout cost more than a
second per report (README "Benchmarks"). Labels stay ``<text>`` (small, searchable,
crisp), every string from the data is XML-escaped here, and nothing is parsed as
math. Colours are the Okabe-Ito palette and every state also differs in marker
shape and line style, so the chart survives greyscale printing and colour blindness.

References:
    Okabe & Ito, "Color Universal Design" (2008), https://jfly.uni-koeln.de/color/
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ForestRow", "RowState", "forest_svg", "svg_text"]

# "better"/"worse": significant in the metric's better or worse direction (a fall is
# better for a lower-is-better metric), so colour follows the verdict, not the sign.
RowState = Literal["better", "worse", "neutral", "underpowered", "hidden"]


@dataclass(frozen=True, kw_only=True)
class ForestRow:
    """One row of a forest plot: a label, a relative lift and its interval."""

    label: str
    lift: float
    low: float
    high: float
    state: RowState
    annotation: str
    emphasised: bool = False
    # The empirical-Bayes shrunken lift and interval (nan: none, e.g. `all`).
    shrunk: float = math.nan
    shrunk_low: float = math.nan
    shrunk_high: float = math.nan


# (colour, marker, marker fill, dash pattern or "", line width) per state.
_STYLE: dict[str, tuple[str, str, str, str, float]] = {
    "better": ("#0072B2", "circle", "#0072B2", "", 2.2),
    "worse": ("#D55E00", "square", "#D55E00", "", 2.2),
    "neutral": ("#4d4d4d", "circle", "white", "", 1.4),
    "underpowered": ("#8c8c8c", "diamond", "white", "4.4,1.9", 1.2),
}
_SHRUNK = "#009E73"  # Okabe-Ito green
_GREY = "#555555"
_PT = 72.0  # points per inch: the layout below is in inches, the SVG in points
_ROW = 0.25 * _PT
_FONT = 'font-family="sans-serif"'
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def svg_text(text: str) -> str:
    """``text`` safe inside an SVG element or attribute: control characters out, escaped."""
    text = _CONTROL.sub("", text)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _line(xa: float, ya: float, xb: float, yb: float, style: str) -> str:
    return f'<line x1="{xa:.2f}" y1="{ya:.2f}" x2="{xb:.2f}" y2="{yb:.2f}" {style}/>'


def _ticks(lo: float, hi: float) -> tuple[list[float], int]:
    """Round tick values between ``lo`` and ``hi`` (4 to 10 of them), and the decimals of a %."""
    raw = (hi - lo) / 6 or 0.01
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    values = [k * step for k in range(first, math.floor(hi / step + 1e-9) + 1)]
    decimals = max(0, -math.floor(math.log10(step * 100) + 1e-9)) if step < 0.01 else 0
    return [0.0 if abs(v) < step * 1e-6 else v for v in values], decimals


def _marker_defs(prefix: str) -> str:
    """One marker shape per (shape, fill) in ``<defs>``, used by ``<use>`` in each row."""
    shapes = {
        "circle": '<circle r="{r}" ',
        "square": '<rect x="-{r}" y="-{r}" width="{d}" height="{d}" ',
        "diamond": '<path d="M0,-{d} L{d},0 L0,{d} L-{d},0 Z" ',
    }
    out = []
    for state, (colour, shape, fill, _, _) in _STYLE.items():
        for size in (2.75, 3.5):  # normal and emphasised rows
            r = f"{size:g}"
            d = f"{2 * size if shape == 'square' else size * 1.2:g}"
            head = shapes[shape].format(r=r, d=d)
            out.append(
                f'{head}id="{prefix}-m-{state}-{size:g}" fill="{fill}" stroke="{colour}" '
                'stroke-width="1.5"/>'
            )
    return f"<defs>{''.join(out)}</defs>"


def forest_svg(rows: list[ForestRow], *, id_prefix: str, confidence: str) -> str:
    """A forest plot: one line per row with its CI, zero marked, hidden rows labelled.

    Each row's interval is an SVG group with id ``{id_prefix}-row-{i}`` so tests and
    browsers can find it; hidden rows (suppressed or no data) draw only their note.
    The sizes follow the matplotlib figure this replaced: 9 inches wide, a quarter
    inch per row, the label and note columns sized from their longest text.
    """
    n = len(rows)
    legend = any(_finite(r.shrunk) for r in rows if r.state != "hidden")
    label_w = min(3.2, 0.3 + 0.075 * max((len(r.label) for r in rows), default=4)) * _PT
    note_w = min(3.2, 0.3 + 0.08 * max((len(r.annotation) for r in rows), default=4)) * _PT
    top = (0.3 if legend else 0.1) * _PT
    x0, x1 = label_w, 9.0 * _PT - note_w
    y0, y1 = top, top + n * _ROW
    spans = [max(v, -1.0) for r in rows for v in (r.low, r.high) if _finite(v)]
    lo, hi = min([0.0, *spans]), max([0.0, *spans])
    pad = 0.06 * (hi - lo or 1.0)
    limits = (lo - pad, hi + pad)

    def sx(v: float) -> float:
        return x0 + (x1 - x0) * (v - limits[0]) / (limits[1] - limits[0])

    def sy(i: float) -> float:
        return y0 + (i + 0.5) * _ROW

    height = y1 + 0.5 * _PT
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'viewBox="0 0 {9.0 * _PT:.1f} {height:.1f}" font-size="9" {_FONT}>',
        _marker_defs(id_prefix),
    ]
    out += [
        f'<rect x="{x0:.2f}" y="{sy(i) - _ROW / 2:.2f}" width="{x1 - x0:.2f}" '
        f'height="{_ROW:.2f}" fill="#ececec"/>'
        for i, r in enumerate(rows)
        if r.emphasised
    ]
    out += _axis(sx, (x0, x1, y0, y1), limits, confidence)
    for i, row in enumerate(rows):
        out += _row(row, i, scale=sx, y=sy(i), limits=limits, prefix=id_prefix)
        weight = ' font-weight="bold"' if row.emphasised else ""
        out.append(
            f'<text x="{x0 - 0.01 * (x1 - x0):.2f}" y="{sy(i):.2f}" text-anchor="end" '
            f'dominant-baseline="central"{weight}>{svg_text(row.label)}</text>'
        )
    if legend:
        out.append(_legend(x0, top))
    out.append("</svg>")
    return "".join(out)


def _axis(
    scale: Callable[[float], float],
    box: tuple[float, float, float, float],
    limits: tuple[float, float],
    confidence: str,
) -> list[str]:
    """Grid, zero line, spines, tick labels and the x label."""
    x0, x1, y0, y1 = box
    ticks, decimals = _ticks(*limits)
    out = []
    for v in ticks:
        x = scale(v)
        out.append(_line(x, y0, x, y1, 'stroke="#dddddd" stroke-width="0.6"'))
        out.append(_line(x, y1, x, y1 + 3.5, 'stroke="black" stroke-width="0.8"'))
        label = f"{v * 100:+.{decimals}f}%"
        out.append(f'<text x="{x:.2f}" y="{y1 + 12:.2f}" text-anchor="middle">{label}</text>')
    z = scale(0.0)
    out.append(
        _line(z, y0, z, y1, f'stroke="{_GREY}" stroke-width="0.9" stroke-dasharray="3.6,2.7"')
    )
    spine = f"M{x0:.2f},{y0:.2f} V{y1:.2f} H{x1:.2f}"
    out.append(f'<path d="{spine}" fill="none" stroke="black" stroke-width="0.8"/>')
    out.append(
        f'<text x="{(x0 + x1) / 2:.2f}" y="{y1 + 26:.2f}" text-anchor="middle">'
        f"relative lift vs control ({svg_text(confidence)} CI)</text>"
    )
    return out


def _row(
    row: ForestRow,
    i: int,
    *,
    scale: Callable[[float], float],
    y: float,
    limits: tuple[float, float],
    prefix: str,
) -> list[str]:
    """One row: its interval with the point marked (or its note), the shrunken lift, the note.

    The lower bound is cut at -100% (no metric here falls further; only the
    symmetric delta method reaches below it). An open or unbounded end (one-sided
    test, or an adjusted p-value of 1) runs to the edge of the axis and ends in an
    arrow; an undefined interval (``nan``) draws the point alone.
    """
    gid = f"{prefix}-row-{i}"
    if row.state == "hidden" or not _finite(row.lift):
        return [
            f'<g id="{gid}"></g><text x="{scale(0.0) + 2:.2f}" y="{y:.2f}" font-size="8" '
            f'fill="{_GREY}" dominant-baseline="central"> {svg_text(row.annotation)}</text>'
        ]
    colour, _, _, dash, width = _STYLE[row.state]
    width *= 1.6 if row.emphasised else 1.0
    low = max(row.low, -1.0) if not math.isnan(row.low) else row.low
    xs = [scale(min(max(v, limits[0]), limits[1])) for v in (low, row.lift, row.high)]
    if math.isnan(low) or math.isnan(row.high):
        xs = [scale(row.lift)] * 3
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    size = 3.5 if row.emphasised else 2.75
    out = [
        f'<g id="{gid}" stroke="{colour}"><line x1="{xs[0]:.2f}" y1="{y:.2f}" x2="{xs[2]:.2f}" '
        f'y2="{y:.2f}" stroke-width="{width:g}"{dashed}/>'
        f'<use xlink:href="#{prefix}-m-{row.state}-{size:g}" x="{xs[1]:.2f}" y="{y:.2f}"/>'
    ]
    for end, bound, sign in ((xs[0], low, -1), (xs[2], row.high, 1)):
        if math.isinf(bound):
            tip = end + 4 * sign
            out.append(
                f'<path d="M{tip:.2f},{y:.2f} L{end:.2f},{y - 3:.2f} L{end:.2f},{y + 3:.2f} Z" '
                f'fill="{colour}"/>'
            )
    out.append("</g>")
    if _finite(row.shrunk):
        out += _shrunk(row, scale, y + 0.28 * _ROW, limits, f"{prefix}-shrunk-{i}")
    x_note = scale(limits[1]) + 0.01 * (scale(limits[1]) - scale(limits[0]))
    out.append(
        f'<text x="{x_note:.2f}" y="{y:.2f}" font-size="8" dominant-baseline="central">'
        f"{svg_text(row.annotation)}</text>"
    )
    return out


def _shrunk(
    row: ForestRow, scale: Callable[[float], float], y: float, limits: tuple[float, float], gid: str
) -> list[str]:
    """The shrunken lift as an ``x`` marker, its interval a thin dotted line just below."""
    out = []
    if _finite(row.shrunk_low, row.shrunk_high):
        a, b = (
            scale(min(max(v, limits[0]), limits[1]))
            for v in (max(row.shrunk_low, -1.0), row.shrunk_high)
        )
        out.append(
            f'<g id="{gid}-ci"><line x1="{a:.2f}" y1="{y:.2f}" x2="{b:.2f}" y2="{y:.2f}" '
            f'stroke="{_SHRUNK}" stroke-width="0.9" stroke-dasharray="0.9,1.5"/></g>'
        )
    x = scale(row.shrunk) - 2.75
    out.append(
        f'<g id="{gid}" stroke="{_SHRUNK}" stroke-width="1.6"><path '
        f'd="M{x:.2f},{y - 2.75:.2f} l5.5,5.5 M{x:.2f},{y + 2.75:.2f} l5.5,-5.5"/></g>'
    )
    return out


def _legend(x0: float, top: float) -> str:
    """The key above the plot: measured (open circle) and shrunken (green x) lifts."""
    y = top / 2
    return (
        f'<g font-size="7.5"><line x1="{x0:.2f}" y1="{y:.2f}" x2="{x0 + 18:.2f}" y2="{y:.2f}" '
        f'stroke="#4d4d4d" stroke-width="1.4"/><circle cx="{x0 + 9:.2f}" cy="{y:.2f}" r="2.75" '
        f'fill="white" stroke="#4d4d4d" stroke-width="1.5"/><text x="{x0 + 22:.2f}" y="{y:.2f}" '
        f'dominant-baseline="central">measured</text><line x1="{x0 + 80:.2f}" y1="{y:.2f}" '
        f'x2="{x0 + 98:.2f}" y2="{y:.2f}" stroke="{_SHRUNK}" stroke-width="0.9" '
        f'stroke-dasharray="0.9,1.5"/><path d="M{x0 + 86.25:.2f},{y - 2.75:.2f} l5.5,5.5 '
        f'M{x0 + 86.25:.2f},{y + 2.75:.2f} l5.5,-5.5" stroke="{_SHRUNK}" stroke-width="1.6"/>'
        f'<text x="{x0 + 102:.2f}" y="{y:.2f}" dominant-baseline="central">'
        "shrunken (empirical Bayes)</text></g>"
    )
