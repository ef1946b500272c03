"""Report charts as inline SVG strings: the forest plot of lifts and cumulative lift over time.

The forest plot, on every report, is written directly as SVG (:mod:`reports.forest`:
no matplotlib import, about a millisecond a chart). The cumulative-lift chart of a
sequential experiment is drawn by matplotlib's SVG backend with text kept as ``<text>`` (small,
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
from typing import TYPE_CHECKING, Any

from reports.forest import ForestRow, RowState, forest_svg

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ForestRow", "RowState", "Series", "forest_svg", "timeline_svg"]

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
