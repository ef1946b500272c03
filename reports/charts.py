"""Report charts as inline SVG strings: the forest plot of lifts and cumulative lift over time.

Charts are drawn by matplotlib's SVG backend with text kept as ``<text>`` (small,
searchable, crisp) and math parsing off, so a segment name is always drawn as
typed. matplotlib escapes every string it writes into the SVG; the caller still
embeds the result as trusted markup, so nothing else may be concatenated into it.
Colours are the Okabe-Ito palette and every state also differs in marker shape
and line style, so the charts survive greyscale printing and colour blindness.

References:
    Okabe & Ito, "Color Universal Design" (2008), https://jfly.uni-koeln.de/color/
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ForestRow", "RowState", "Series", "forest_svg", "timeline_svg"]

# "better"/"worse": significant in the metric's better or worse direction (a fall is
# better for a lower-is-better metric), so colour follows the verdict, not the sign.
RowState = Literal["better", "worse", "neutral", "underpowered", "hidden"]

# Okabe-Ito blue / vermillion plus greys; shapes and line styles differ as well.
_STYLE: dict[str, dict[str, object]] = {
    "better": {"color": "#0072B2", "marker": "o", "mfc": "#0072B2", "ls": "-", "lw": 2.2},
    "worse": {"color": "#D55E00", "marker": "s", "mfc": "#D55E00", "ls": "-", "lw": 2.2},
    "neutral": {"color": "#4d4d4d", "marker": "o", "mfc": "white", "ls": "-", "lw": 1.4},
    "underpowered": {"color": "#8c8c8c", "marker": "D", "mfc": "white", "ls": "--", "lw": 1.2},
}
_LINESTYLES = ["-", "--", ":", "-."]
_COLOURS = ["#000000", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00"]
_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "seglift",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


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


@dataclass(frozen=True, kw_only=True)
class Series:
    """One line of the cumulative-lift chart, dates as ISO strings."""

    label: str
    dates: tuple[str, ...]
    lift: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _to_svg(fig: Figure) -> str:
    buf = io.StringIO()
    # A tight box holds every label, legend and annotation: nothing drawn is cut off.
    fig.savefig(
        buf,
        format="svg",
        bbox_inches="tight",
        pad_inches=0.04,
        metadata={"Date": None, "Creator": None},
    )
    text = buf.getvalue()
    start = text.index("<svg")
    svg = text[start:]
    # Let CSS size the chart: drop the fixed point size, keep the viewBox.
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", svg, count=1)


def _percent_axis(ax: Axes) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v * 100:+.0f}%"))


def forest_svg(rows: list[ForestRow], *, id_prefix: str, confidence: str) -> str:
    """A forest plot: one line per row with its CI, zero marked, hidden rows labelled.

    Each row's interval is an SVG group with id ``{id_prefix}-row-{i}`` so tests and
    browsers can find it; hidden rows (suppressed or no data) draw only their note.
    """
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.transforms import blended_transform_factory

    n = len(rows)
    width, height = 9.0, 0.75 + 0.25 * n
    label_in = min(3.2, 0.3 + 0.075 * max((len(r.label) for r in rows), default=4))
    note_in = min(3.2, 0.3 + 0.08 * max((len(r.annotation) for r in rows), default=4))
    with rc_context(_RC):  # type: ignore[arg-type]
        fig = Figure(figsize=(width, height))
        fig.subplots_adjust(
            left=label_in / width, right=1 - note_in / width, top=1 - 0.1 / height,
            bottom=0.55 / height,
        )  # fmt: skip
        ax = fig.add_subplot()
        spans = [max(v, -1.0) for r in rows for v in (r.low, r.high) if _finite(v)]
        lo, hi = min([0.0, *spans]), max([0.0, *spans])
        pad = 0.06 * (hi - lo or 1.0)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(n - 0.5, -0.5)
        ax.axvline(0.0, color="#555555", lw=0.9, ls=(0, (4, 3)))
        right = blended_transform_factory(ax.transAxes, ax.transData)
        for i, row in enumerate(rows):
            if row.emphasised:
                ax.axhspan(i - 0.5, i + 0.5, color="#ececec", zorder=0, lw=0)
            if row.state == "hidden" or not _finite(row.lift):
                ax.text(0.0, i, f" {row.annotation}", va="center", fontsize=8, color="#555555")
                ax.plot([], [], gid=f"{id_prefix}-row-{i}")
                continue
            _draw_interval(ax, row, i, limits=(lo - pad, hi + pad), gid=f"{id_prefix}-row-{i}")
            _draw_shrunk(ax, row, i, limits=(lo - pad, hi + pad), gid=f"{id_prefix}-shrunk-{i}")
            ax.text(1.01, i, row.annotation, transform=right, va="center", fontsize=8)
        ax.set_yticks([])
        for i, row in enumerate(rows):  # labels as plain text: far cheaper than 50 ticks
            weight = "bold" if row.emphasised else "normal"
            ax.text(-0.01, i, row.label, transform=right, ha="right", va="center", weight=weight)
        _percent_axis(ax)
        ax.set_xlabel(f"relative lift vs control ({confidence} CI)")
        if any(_finite(r.shrunk) for r in rows if r.state != "hidden"):
            _shrunk_legend(ax)
        ax.grid(axis="x", color="#dddddd", lw=0.6)
        ax.set_axisbelow(True)
        return _to_svg(fig)


def _draw_interval(
    ax: Axes, row: ForestRow, i: int, *, limits: tuple[float, float], gid: str
) -> None:
    """One row's interval with its point marked, as the reader may take it.

    The lower bound is cut at -100% (no metric here falls further; only the
    symmetric delta method reaches below it). An open or unbounded end (one-sided
    test, or an adjusted p-value of 1) runs to the edge of the axis and ends in an
    arrow; an undefined interval (``nan``) draws the point alone.
    """
    style = _STYLE[row.state]
    width = float(style["lw"]) * (1.6 if row.emphasised else 1.0)  # type: ignore[arg-type]
    low = max(row.low, -1.0) if not math.isnan(row.low) else row.low
    xs = [min(max(v, limits[0]), limits[1]) for v in (low, row.lift, row.high)]
    if math.isnan(low) or math.isnan(row.high):
        xs = [row.lift, row.lift, row.lift]
    ax.plot(  # one artist per row: the interval with the point marked in the middle
        xs,
        [i, i, i],
        color=style["color"],
        ls=style["ls"],
        lw=width,
        marker=style["marker"],
        markevery=[1],
        ms=7 if row.emphasised else 5.5,
        mfc=style["mfc"],
        mew=1.5,
        gid=gid,
        solid_capstyle="butt",
    )
    for end, bound, marker in ((xs[0], low, "<"), (xs[2], row.high, ">")):
        if math.isinf(bound):
            ax.plot([end], [i], marker=marker, color=style["color"], ms=5)


_SHRUNK = {"color": "#009E73", "marker": "x", "ms": 5.5, "mew": 1.6}  # Okabe-Ito green


def _draw_shrunk(
    ax: Axes, row: ForestRow, i: int, *, limits: tuple[float, float], gid: str
) -> None:
    """The shrunken lift as a second marker, its interval a thin line just below the raw one."""
    if not _finite(row.shrunk):
        return
    y = i + 0.28
    if _finite(row.shrunk_low, row.shrunk_high):
        xs = [
            min(max(v, limits[0]), limits[1]) for v in (max(row.shrunk_low, -1.0), row.shrunk_high)
        ]
        ax.plot(xs, [y, y], color=_SHRUNK["color"], lw=0.9, ls=":", gid=f"{gid}-ci")
    ax.plot([row.shrunk], [y], ls="none", gid=gid, mfc="none", **_SHRUNK)  # type: ignore[arg-type]


def _shrunk_legend(ax: Axes) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color="#4d4d4d", marker="o", mfc="white", lw=1.4, label="measured"),
        Line2D([], [], color=_SHRUNK["color"], marker="x", ls=":", lw=0.9,  # type: ignore[arg-type]
               label="shrunken (empirical Bayes)"),
    ]  # fmt: skip
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0),
              frameon=False, fontsize=7.5, ncols=2, borderaxespad=0.2)  # fmt: skip


def _window_days(window: tuple[str, str]) -> tuple[Any, Any] | None:
    """The first and last day of a window of ISO timestamps (an end at 00:00 is exclusive)."""
    import numpy as np

    start, end = window
    if not start or not end:
        return None
    first = np.datetime64(start[:10], "D")
    last = np.datetime64(end[:10], "D")
    if end[10:19] in ("", "T00:00:00", " 00:00:00") and last > first:
        last = last - np.timedelta64(1, "D")  # a midnight end is the start of the next day
    return first, last


def timeline_svg(
    series: list[Series], *, confidence: str, window: tuple[str, str] = ("", "")
) -> str:
    """Cumulative relative lift over time; the first series gets its interval as a labelled band.

    The x axis spans the analysis ``window`` (ISO start and end), not only the days
    with data, so a metric that matures late shows where its estimates begin.
    """
    import numpy as np
    from matplotlib import rc_context
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, DayLocator, date2num
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    with rc_context(_RC):  # type: ignore[arg-type]
        fig = Figure(figsize=(8.6, 3.0))
        ax = fig.add_subplot()
        ax.axhline(0.0, color="#555555", lw=0.9, ls=(0, (4, 3)))
        for k, s in enumerate(series):
            days = np.array([d[:10] for d in s.dates], dtype="datetime64[D]")
            colour = _COLOURS[k % len(_COLOURS)]
            if k == 0:
                band = f"{s.label}: {confidence} always-valid interval"
                ax.fill_between(days, s.low, s.high, color="#bbbbbb", alpha=0.45, lw=0, label=band)
            ax.plot(
                days,
                s.lift,
                color=colour,
                ls=_LINESTYLES[k % len(_LINESTYLES)],
                lw=2.2 if k == 0 else 1.4,
                marker="o" if len(days) == 1 else None,  # a single day still shows
                label=s.label,
            )
        dated = [np.datetime64(d[:10], "D") for s in series for d in s.dates]
        span = _window_days(window) or ((min(dated), max(dated)) if dated else None)
        if span is not None:  # whole days: half a day of margin either side
            half = np.timedelta64(12, "h")
            lo, hi = date2num([span[0] - half, span[1] + half])  # type: ignore[no-untyped-call]
            ax.set_xlim(float(lo), float(hi))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v * 100:+.0f}%"))
        ax.set_ylabel("cumulative relative lift")
        ax.set_xlabel("end of day (UTC)")
        ax.grid(axis="y", color="#dddddd", lw=0.6)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
        short = span is not None and span[1] - span[0] <= np.timedelta64(10, "D")
        locator = DayLocator() if short else AutoDateLocator()  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        return _to_svg(fig)
