"""The report's Lifecycle section: migration heatmaps, retention curves, projected value.

Small inline SVGs written by hand (no matplotlib: a few rectangles and polylines
per chart); every text from the results is escaped with :func:`html.escape`
before it enters the SVG, and the whole section reads ``results.lifecycle`` only.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

from reports.format import fmt_num, fmt_p, fmt_pct

if TYPE_CHECKING:
    from experiment.results import AnalysisResults
    from experiment.results.lifecycle import Lifecycle, MigrationRow, SurvivalCurveRow

__all__ = ["lifecycle_context"]

_STAGES = ("new", "active", "vip", "at_risk", "dormant")  # display order: healthy to lapsed
_CELL_W, _CELL_H, _LEFT, _TOP = 92, 34, 70, 34
_BLUE, _ORANGE, _GREY = "#2b6cb0", "#dd6b20", "#718096"
_CURVE_W, _CURVE_H, _PAD = 300, 150, 34
_ARM_COLOURS = ("#4a5568", "#2b6cb0", "#38a169", "#d53f8c", "#805ad5")


def _t(text: object) -> str:
    return html.escape(str(text), quote=True)


def _pp(value: float) -> str:
    return f"{value * 100:+.1f} pp" if math.isfinite(value) else "–"


def _cell(row: MigrationRow, x: int, y: int, scale: float) -> str:
    """One heatmap cell: colour by effect (blue up, orange down), text control → treatment."""
    strength = min(abs(row.effect) / scale, 1.0) if scale > 0 and math.isfinite(row.effect) else 0
    colour = _BLUE if row.effect > 0 else _ORANGE
    border = ' stroke="#1a202c" stroke-width="2"' if row.significant else ' stroke="#e2e8f0"'
    title = (
        f"{row.segment} → {row.to} ({row.arm}): {fmt_pct(row.share_control, signed=False)} → "
        f"{fmt_pct(row.share_treatment, signed=False)}, {_pp(row.effect)} "
        f"[{_pp(row.ci_low)}, {_pp(row.ci_high)}], p adj. {fmt_p(row.p_adjusted)}"
    )
    return (
        f'<g><title>{_t(title)}</title><rect x="{x}" y="{y}" width="{_CELL_W - 2}" '
        f'height="{_CELL_H - 2}" fill="{colour}" fill-opacity="{0.08 + 0.6 * strength:.2f}"'
        f"{border}/>"
        f'<text x="{x + _CELL_W / 2 - 1}" y="{y + 14}" text-anchor="middle" font-size="10">'
        f"{_t(fmt_pct(row.share_control, 0, signed=False))} → "
        f"{_t(fmt_pct(row.share_treatment, 0, signed=False))}</text>"
        f'<text x="{x + _CELL_W / 2 - 1}" y="{y + 27}" text-anchor="middle" font-size="10"'
        f' font-weight="{"bold" if row.significant else "normal"}">{_t(_pp(row.effect))}</text></g>'
    )


def _heatmap(rows: list[MigrationRow], order: tuple[str, ...] = _STAGES) -> str:
    """Starting stage (rows) × stage at the day (columns) for one arm and day."""
    stages = [s for s in order if any(s in (r.segment, r.to) for r in rows)]
    starts = [s for s in stages if any(r.segment == s for r in rows)]
    width = _LEFT + _CELL_W * len(stages) + 4
    height = _TOP + _CELL_H * len(starts) + 4
    scale = max((abs(r.effect) for r in rows if math.isfinite(r.effect)), default=0.0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'style="width:{width}px;height:{height}px;max-width:100%" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="sans-serif">'
    ]
    parts += [
        f'<text x="{_LEFT + _CELL_W * j + _CELL_W / 2}" y="{_TOP - 8}" text-anchor="middle" '
        f'font-size="11">→ {_t(s)}</text>'
        for j, s in enumerate(stages)
    ]
    for i, start in enumerate(starts):
        y = _TOP + _CELL_H * i
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + _CELL_H / 2 + 4}" text-anchor="end" '
            f'font-size="11">{_t(start)}</text>'
        )
        for r in rows:
            if r.segment == start and r.to in stages:
                parts.append(_cell(r, _LEFT + _CELL_W * stages.index(r.to), y, scale))
    parts.append("</svg>")
    return "".join(parts)


def _curve_svg(curves: list[SurvivalCurveRow], window: int) -> str:
    """Survival curves of every arm of one (curve, segment), with the control's band."""
    w, h, pad = _CURVE_W, _CURVE_H, _PAD
    values = [v for c in curves for v in c.ci_low if math.isfinite(v)]
    low = min(values, default=0.0)
    low = max(0.0, math.floor(low * 10) / 10)

    def xy(t: int, s: float) -> str:
        x = pad + (w - pad - 8) * t / max(window, 1)
        y = 8 + (h - pad - 8) * (1 - (s - low) / max(1 - low, 1e-9))
        return f"{x:.1f},{y:.1f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'style="width:{w}px;height:{h}px;max-width:100%" '
        f'viewBox="0 0 {w} {h}" role="img" font-family="sans-serif" font-size="10">',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - 8}" y2="{h - pad}" stroke="{_GREY}"/>',
        f'<line x1="{pad}" y1="8" x2="{pad}" y2="{h - pad}" stroke="{_GREY}"/>',
        f'<text x="{pad - 4}" y="12" text-anchor="end">{_t(fmt_pct(1.0, 0, signed=False))}</text>',
        f'<text x="{pad - 4}" y="{h - pad}" text-anchor="end">'
        f"{_t(fmt_pct(low, 0, signed=False))}</text>",
        f'<text x="{pad}" y="{h - pad + 14}">day 0</text>',
        f'<text x="{w - 8}" y="{h - pad + 14}" text-anchor="end">day {window}</text>',
    ]
    for k, c in enumerate(curves):
        colour = _ARM_COLOURS[k % len(_ARM_COLOURS)]
        points = [(t, s) for t, s in enumerate(c.survival) if math.isfinite(s)]
        if k == 0:  # the control arm's pointwise band
            band = [xy(t, c.ci_high[t]) for t, _ in points]
            band += [xy(t, c.ci_low[t]) for t, _ in reversed(points)]
            parts.append(
                f'<polygon points="{" ".join(band)}" fill="{colour}" fill-opacity="0.12"/>'
            )
        line = " ".join(xy(t, s) for t, s in points)
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.8">'
            f"<title>{_t(c.arm)}</title></polyline>"
        )
        parts.append(
            f'<text x="{w - 8}" y="{18 + 12 * k}" text-anchor="end" '
            f'fill="{colour}">{_t(c.arm)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _curves(block: Lifecycle, control: str) -> list[dict[str, Any]]:
    from markupsafe import Markup

    groups: dict[tuple[str, str], list[SurvivalCurveRow]] = {}
    for c in block.curves:
        groups.setdefault((c.curve, c.segment), []).append(c)
    what = {"retained": "still active (not lapsed)", "no_purchase": "no purchase yet"}
    out = []
    for (curve, segment), rows in groups.items():
        rows.sort(key=lambda c: c.arm != control)
        svg = _curve_svg(rows, block.window_days)
        out.append(
            {"title": f"{segment}: {what.get(curve, curve)}", "svg": Markup(svg)}  # noqa: S704
        )
    return out


def _tests(block: Lifecycle) -> list[dict[str, str]]:
    return [
        {
            "curve": r.curve,
            "segment": r.segment,
            "arm": r.arm,
            "day": str(r.day),
            "control": fmt_pct(r.survival_control, signed=False),
            "treatment": fmt_pct(r.survival_treatment, signed=False),
            "effect": f"{_pp(r.effect)} [{_pp(r.ci_low)}, {_pp(r.ci_high)}]",
            "p_adjusted": fmt_p(r.p_adjusted),
            "significant": "yes" if r.significant else "",
        }
        for r in block.survival
    ]


def _values(block: Lifecycle) -> list[dict[str, str]]:
    return [
        {
            "segment": r.segment,
            "arm": r.arm,
            "horizon": f"{r.horizon} d" + (" (observed)" if r.horizon <= block.window_days else ""),
            "control": fmt_num(r.value_control),
            "treatment": fmt_num(r.value_treatment),
            "effect": f"{fmt_num(r.effect)} [{fmt_num(r.ci_low)}, {fmt_num(r.ci_high)}]",
            "decay": f"{fmt_num(r.decay_control)} / {fmt_num(r.decay_treatment)}",
        }
        for r in block.value
    ]


def _segment_heatmaps(block: Lifecycle, end: int) -> list[dict[str, Any]]:
    """Member / not member at the start × at the day, per rule segment and arm."""
    from markupsafe import Markup

    from experiment.results.lifecycle import MEMBERSHIP, MigrationRow

    out = []
    frozen = {m.segment: m for m in block.migration_segments}
    for name in dict.fromkeys(r.segment for r in block.segment_migration):
        for arm in sorted({r.arm for r in block.segment_migration if r.segment == name}):
            rows = [
                MigrationRow(
                    **{k: v for k, v in vars(r).items() if k not in ("segment", "start")},
                    segment=r.start,
                )
                for r in block.segment_migration
                if r.segment == name and r.arm == arm and r.day == end
            ]
            info = frozen.get(name)
            out.append(
                {
                    "segment": name,
                    "arm": arm,
                    "recomputed": ", ".join(info.recomputed) if info else "",
                    "frozen": ", ".join(info.frozen) if info else "",
                    "svg": Markup(_heatmap(rows, MEMBERSHIP)),  # noqa: S704 - escaped by _t
                }
            )
    return out


def lifecycle_context(results: AnalysisResults) -> dict[str, Any] | None:
    """What the template's Lifecycle section shows; None without a ``lifecycle`` block."""
    from markupsafe import Markup

    block = results.lifecycle
    if block is None:
        return None
    end = block.days[-1] if block.days else block.window_days
    arms = sorted({r.arm for r in block.migration})
    heatmaps = [
        {
            "arm": arm,
            "svg": Markup(  # noqa: S704 - built here, every text escaped by _t
                _heatmap([r for r in block.migration if r.day == end and r.arm == arm])
            ),
        }
        for arm in arms
    ]
    return {
        "day": end,
        "heatmaps": heatmaps,
        "migration_family": block.migration_family,
        "segment_heatmaps": _segment_heatmaps(block, end),
        "segment_migration_family": block.segment_migration_family,
        "survival_family": block.survival_family,
        "correction": block.correction,
        "curves": _curves(block, results.control),
        "tests": _tests(block),
        "value_rows": _values(block),
        "value_model": block.value_model,
        "window": block.window_days,
    }
