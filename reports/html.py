"""The self-contained HTML lift report, rendered by Jinja2 with autoescaping.

The template receives only formatted strings and plotting coordinates computed
here; every piece of user text (segment names, rules, metric names) goes through
Jinja2's HTML escaping. Nothing is loaded from the network when the report opens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from experiment.files import write_text_atomic
from experiment.results import AnalysisResults, ResultRow
from reports.format import fmt_count, fmt_num, fmt_p, fmt_pct, fmt_pct_interval
from reports.verdict import verdict

__all__ = ["render_html", "write_html"]

_PLOT_WIDTH = 160.0
_PAD = 8.0


@dataclass(frozen=True)
class _Bar:
    """Pixel coordinates of one row's CI bar in the forest column."""

    zero: float
    low: float
    high: float
    point: float


@dataclass(frozen=True)
class _Row:
    segment: str
    arm: str
    users: str
    mean_control: str
    mean_treatment: str
    lift_abs: str
    lift_rel: str
    ci: str
    p_value: str
    p_adjusted: str
    verdict: str
    reason: str
    is_all: bool
    bar: _Bar | None


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def _bars(rows: list[ResultRow]) -> list[_Bar | None]:
    """Place every row's relative-lift CI on one shared axis that includes zero."""
    spans = [(r.ci_low, r.ci_high, r.lift_rel) for r in rows]
    finite = [s for s in spans if _finite(*s)]
    lo = min([0.0, *(s[0] for s in finite)])
    hi = max([0.0, *(s[1] for s in finite)])
    scale = (_PLOT_WIDTH - 2 * _PAD) / (hi - lo) if hi > lo else 1.0

    def x(v: float) -> float:
        return round(_PAD + (v - lo) * scale, 2)

    return [_Bar(x(0.0), x(s[0]), x(s[1]), x(s[2])) if _finite(*s) else None for s in spans]


def _rows(rows: list[ResultRow], *, kind: str) -> list[_Row]:
    digits = 4 if kind in ("proportion", "ratio") else 3
    return [
        _Row(
            segment=r.segment,
            arm=r.arm,
            users=f"{fmt_count(r.n_control)} / {fmt_count(r.n_treatment)}",
            mean_control=fmt_num(r.mean_control, digits),
            mean_treatment=fmt_num(r.mean_treatment, digits),
            lift_abs=fmt_num(r.lift_abs, 3),
            lift_rel=fmt_pct(r.lift_rel),
            ci=fmt_pct_interval(r.ci_low, r.ci_high),
            p_value=fmt_p(r.p_value),
            p_adjusted=fmt_p(r.p_adjusted),
            verdict=verdict(r),
            reason=r.reason,
            is_all=r.segment == "all",
            bar=bar,
        )
        for r, bar in zip(rows, _bars(rows), strict=True)
    ]


def render_html(results: AnalysisResults) -> str:
    """The report as one HTML string."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    metrics: dict[str, list[ResultRow]] = {}
    for row in results.results:
        metrics.setdefault(row.metric, []).append(row)
    sections = [
        {"name": name, "kind": rows[0].metric_kind, "rows": _rows(rows, kind=rows[0].metric_kind)}
        for name, rows in metrics.items()
    ]
    srm = results.srm
    return env.get_template("report.html").render(
        r=results,
        sections=sections,
        plot_width=_PLOT_WIDTH,
        multi_arm=len({row.arm for row in results.results}) > 1,
        confidence=f"{results.confidence_level:.0%}",
        srm_p=fmt_p(srm.p_value),
        srm_observed=", ".join(f"{a}: {fmt_count(n)}" for a, n in srm.observed.items()),
        srm_expected=", ".join(f"{a}: {fmt_pct(w, signed=False)}" for a, w in srm.expected.items()),
        segments=[(s, fmt_count(s.users)) for s in results.segments],
    )


def write_html(results: AnalysisResults, path: Path) -> Path:
    """Render and write report.html atomically; return its path."""
    write_text_atomic(path, render_html(results))
    return path
