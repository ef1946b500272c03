"""The self-contained HTML lift report, rendered by Jinja2 with autoescaping.

The template receives formatted strings and chart SVG computed here; every piece
of user text (segment names, rules, metric names) goes through Jinja2's HTML
escaping, and the charts escape theirs (:mod:`reports.forest` itself, matplotlib for the
timeline).
Nothing is loaded from the network when the report opens: its Content-Security-Policy
allows no fetch and one inline script (:mod:`reports.script`, which sorts and filters
the tables). Suppressed segments (below the privacy floor) are named but never shown
with their numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiment.files import write_text_atomic
from experiment.plan import KINDS, kind_plan
from experiment.results import AnalysisResults, ResultRow, SegmentInfo
from experiment.results.decision import RULE, decisions, is_suppressed
from experiment.results.refinement import Refinement
from experiment.results.verdict import verdict
from reports.charts import ForestRow, RowState, Series, forest_svg, timeline_svg
from reports.environment import environment
from reports.format import DASH, fmt_count, fmt_num, fmt_p, fmt_pct, fmt_pct_interval
from reports.heterogeneity import heterogeneity_context
from reports.lifecycle_html import lifecycle_context
from reports.methods import has_adjusted, is_cuped, metric_methods, shown_interval, shown_means
from reports.outlook import outlooks
from reports.pairs import pair_context
from reports.refinement import refinement_context
from reports.script import CSP, TABLES_JS

__all__ = ["render_html", "write_html"]

_MAX_TIMELINE_SERIES = 6
BELOW_FLOOR = "below minimum size"


@dataclass(frozen=True, kw_only=True)
class _Row:
    segment: str
    arm: str
    users: str
    mean_control: str
    mean_treatment: str
    raw_means: str
    means_mark: str
    lift_abs: str
    lift_rel: str
    ci: str
    p_value: str
    p_adjusted: str
    chance_to_win: str
    seq: str
    cuped: str
    verdict: str
    reason: str
    is_all: bool
    suppressed: bool
    underpowered: bool


def _definition(segment: SegmentInfo) -> tuple[str, str]:
    """What the segment is, as (rule text, words): a rule shows as code, the rest in words.

    Files written before ``definition`` existed have only ``where``; for their other
    segments nothing can be said but that (``all`` is still everyone assigned).
    """
    where, words = segment.where, segment.definition
    if where and words.startswith(where):
        words = words[len(where) :].lstrip("; ")
    if not where and not words and segment.name == "all":
        words = "everyone assigned to the experiment"
    return where, words


def _p_is(value: float) -> str:
    """``p = 0.042`` or ``p < 0.001``."""
    text = fmt_p(value)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"


def _day(stamp: str) -> str:
    """An ISO timestamp at midnight shown as its date."""
    return stamp[:10] if stamp[10:19] in ("T00:00:00", " 00:00:00") else stamp


_NUMBERS = (
    "users", "mean_control", "mean_treatment", "raw_means", "lift_abs", "lift_rel", "ci", "p_value",
    "p_adjusted", "chance_to_win", "seq", "cuped",
)  # fmt: skip


def _state(row: ResultRow) -> RowState:
    if is_suppressed(row) or not math.isfinite(row.lift_rel):
        return "hidden"
    if row.significant:  # coloured by the verdict: a fall wins when lower is better
        return "better" if verdict(row) == "win" else "worse"
    return "underpowered" if row.underpowered else "neutral"


def _label(row: ResultRow, *, multi_arm: bool) -> str:
    return f"{row.segment} · {row.arm}" if multi_arm else row.segment


def _forest(
    rows: list[ResultRow], *, index: int, multi_arm: bool, confidence: str, adjusted: bool
) -> str:
    items = []
    for r in rows:
        state = _state(r)
        if is_suppressed(r):
            note = BELOW_FLOOR
        elif state == "hidden":
            note = f"no estimate ({r.reason or 'no data'})"
        low, high = shown_interval(r, adjusted=adjusted)  # the family's: agrees with the verdict
        if state != "hidden" and math.isnan(low) and math.isnan(high):
            note = f"{fmt_pct(r.lift_rel)} (no finite interval: {r.reason or 'unbounded'})"
        elif state != "hidden":
            note = f"{fmt_pct(r.lift_rel)} {fmt_pct_interval(low, high)}"
        label = _label(r, multi_arm=multi_arm)
        items.append(
            ForestRow(
                label=label,
                lift=r.lift_rel,
                low=low,
                high=high,
                state=state,
                annotation=note,
                emphasised=r.segment == "all",
                shrunk=r.lift_rel_shrunk,
                shrunk_low=r.ci_shrunk_low,
                shrunk_high=r.ci_shrunk_high,
            )
        )
    return forest_svg(items, id_prefix=f"forest-{index}", confidence=confidence)


def _row(r: ResultRow, *, digits: int, adjusted: bool) -> _Row:
    if is_suppressed(r):  # privacy floor: keep the name, withhold every number
        blank = dict.fromkeys(_NUMBERS, DASH)
        return _Row(segment=r.segment, arm=r.arm, **blank, means_mark="", verdict=BELOW_FLOOR,
                    reason="", is_all=r.segment == "all", suppressed=True,
                    underpowered=False)  # fmt: skip
    seq = DASH
    mean_c, mean_t, mark = shown_means(r)  # a CUPED row shows the means its lift compares
    if math.isfinite(r.seq_p_value):
        seq = f"{fmt_p(r.seq_p_value)} {fmt_pct_interval(r.seq_ci_low, r.seq_ci_high)}"
    return _Row(
        segment=r.segment,
        arm=r.arm,
        users=f"{fmt_count(r.n_control)} / {fmt_count(r.n_treatment)}",
        mean_control=fmt_num(mean_c, digits),
        mean_treatment=fmt_num(mean_t, digits),
        raw_means=f"{fmt_num(r.mean_control, digits)} / {fmt_num(r.mean_treatment, digits)}",
        means_mark=mark,
        lift_abs=fmt_num(r.lift_abs, 3),
        lift_rel=fmt_pct(r.lift_rel),
        ci=fmt_pct_interval(*shown_interval(r, adjusted=adjusted)),
        p_value=fmt_p(r.p_value),
        p_adjusted=fmt_p(r.p_adjusted),
        chance_to_win=fmt_pct(r.chance_to_win, signed=False),
        seq=seq,
        cuped=fmt_pct(r.cuped_variance_reduction, signed=False),
        verdict=verdict(r),
        reason=r.reason,
        is_all=r.segment == "all",
        suppressed=False,
        # A significant lift was detected, so "could not detect the target" does not apply.
        underpowered=r.underpowered and not r.significant,
    )


def _present(rows: list[ResultRow], name: str) -> bool:
    return any(math.isfinite(getattr(r, name)) for r in rows if not is_suppressed(r))


def _sections(results: AnalysisResults, *, multi_arm: bool, confidence: str) -> list[Any]:
    metrics: dict[str, list[ResultRow]] = {}
    for row in results.results:
        metrics.setdefault(row.metric, []).append(row)
    sections = []
    adjusted = has_adjusted(results.results)  # the family-adjusted interval agrees with p adj.
    for index, (name, rows) in enumerate(metrics.items()):
        kind = rows[0].metric_kind
        digits = 4 if kind in KINDS and kind_plan(kind).rate_scale else 3
        shown = [r for r in rows if not is_suppressed(r)]
        marks = {shown_means(r)[2] for r in shown}
        sections.append(
            {
                "name": name,
                "kind": kind,
                "index": index,
                "n_rows": len(rows),
                "lower_is_better": not rows[0].higher_is_better,
                "forest": _forest(
                    rows, index=index, multi_arm=multi_arm, confidence=confidence, adjusted=adjusted
                ),
                "rows": [_row(r, digits=digits, adjusted=adjusted) for r in rows],
                "has_ctw": _present(rows, "chance_to_win"),
                "has_seq": _present(rows, "seq_p_value"),
                "has_cuped": _present(rows, "cuped_variance_reduction"),
                "is_cuped": any(is_cuped(r) for r in rows),
                "adjusted": "adjusted" in marks,
                "raw_marked": "raw" in marks,
                "ci_adjusted": adjusted,
            }
        )
    return sections


def _timelines(results: AnalysisResults, confidence: str) -> list[dict[str, str]]:
    """One cumulative-lift chart per metric over the whole window; ``first``: a late first day."""
    by_metric: dict[str, dict[tuple[str, str], list[Any]]] = {}
    for p in results.timeline:
        by_metric.setdefault(p.metric, {}).setdefault((p.segment, p.arm), []).append(p)
    charts = []
    for metric, groups in by_metric.items():
        keys = sorted(groups, key=lambda k: (k[0] != "all", k))[:_MAX_TIMELINE_SERIES]
        series = []
        for segment, arm in keys:
            pts = sorted(groups[(segment, arm)], key=lambda p: p.date)
            label = segment if len({a for _, a in keys}) == 1 else f"{segment} · {arm}"
            series.append(
                Series(
                    label=label,
                    dates=tuple(p.date for p in pts),
                    lift=tuple(p.lift_rel for p in pts),
                    low=tuple(p.ci_low for p in pts),
                    high=tuple(p.ci_high for p in pts),
                )
            )
        window = (results.window_start, results.window_end)
        first = min((d for one in series for d in one.dates), default="")[:10]
        start = _day(results.window_start)[:10]
        late = first if start and first > start else ""  # a metric that matures late
        svg = timeline_svg(series, confidence=confidence, window=window)
        charts.append({"metric": metric, "svg": svg, "first": late, "band": series[0].label})
    return charts


def _checks(results: AnalysisResults) -> tuple[list[str], list[str]]:
    """Data-quality checks that found something, one line each with its count.

    Returns (problems, notes): warnings and errors go into the red banner;
    ``info`` findings (expected in real data, e.g. events after the window) are notes.
    """
    problems: list[str] = []
    notes: list[str] = []
    for check in results.data_quality.checks:
        if check.count <= 0:
            continue
        severity = check.severity or "warning"
        action, message = check.action, check.message
        line = f"{check.name}: {fmt_count(int(check.count))}{' — ' + message if message else ''}"
        line += f" ({severity}{'; ' + action if action else ''})"
        (notes if severity == "info" else problems).append(line)
    return problems, notes


def _segment_srm(results: AnalysisResults) -> list[str]:
    lines = []
    for item in results.srm.segments:
        if item.flag:
            counts = ", ".join(f"{a}: {fmt_count(int(n))}" for a, n in item.observed.items())
            lines.append(f"{item.segment}: {_p_is(item.p_value)}; observed {counts}")
    return lines


def _balance(results: AnalysisResults) -> dict[str, Any]:
    """The balance check for the banner: flagged tests, one line each, or a passed note."""
    balance = results.balance
    lines = [
        f"{t.covariate} in {t.segment} ({t.arm} vs control): means {fmt_num(t.mean_control)} vs "
        f"{fmt_num(t.mean_treatment)}, SMD {fmt_num(t.smd)}, adjusted {_p_is(t.p_adjusted)}"
        for t in balance.worst
        if t.flag
    ]
    worst = balance.worst[0] if balance.worst else None
    note = (
        f"Covariate balance check passed ({len(balance.covariates)} pre-exposure covariates: "
        f"{', '.join(balance.covariates)}; {balance.tests} tests, Holm at {balance.threshold}"
        + (f"; smallest {_p_is(worst.p_value)}" if worst is not None else "")
        + ")."
        if balance.ran
        else "No pre-exposure covariate to check balance on."
    )
    return {"flag": balance.flag, "lines": lines, "note": note, "tests": balance.tests}


def _methods(results: AnalysisResults) -> dict[str, Any]:
    rows = [r for r in results.results if not is_suppressed(r)]
    return {
        "metrics": metric_methods(results),
        "bayes": _present(rows, "chance_to_win"),
        "sequential": _present(rows, "seq_p_value") or bool(results.timeline),
        "power": any(r.underpowered for r in rows) or _present(rows, "mde_rel"),
    }


def render_html(results: AnalysisResults, refinement: Refinement | None = None) -> str:
    """The report as one HTML string; with ``refinement``, a Refinements section too."""
    from markupsafe import Markup

    env = environment()
    confidence = f"{results.confidence_level:.0%}"
    multi_arm = len({row.arm for row in results.results}) > 1
    sections = _sections(results, multi_arm=multi_arm, confidence=confidence)
    for s in sections:  # reports.forest escaped every string it wrote
        s["forest"] = Markup(s["forest"])  # noqa: S704
    timelines = _timelines(results, confidence)
    for t in timelines:
        t["svg"] = Markup(t["svg"])  # noqa: S704
    srm = results.srm
    suppressed = {r.segment for r in results.results if is_suppressed(r)}
    suppressed |= {s.name for s in results.segments if s.suppressed}
    made = decisions(results)
    problems, notes = _checks(results)
    counts = {k: sum(d.kind == k for d in made) for k in ("ship", "don't ship", "keep testing")}
    return env.get_template("report.html").render(
        r=results,
        window=f"{_day(results.window_start) or '–'} → {_day(results.window_end) or '–'}",
        sections=sections,
        timelines=timelines,
        multi_arm=multi_arm,
        confidence=confidence,
        primary=results.results[0].metric if results.results else "",
        users=fmt_count(sum(srm.observed.values())),
        decisions=made,
        outlooks=outlooks(results, made),
        decision_counts=counts,
        rule=RULE,
        srm_p=_p_is(srm.p_value),
        srm_observed=", ".join(f"{a}: {fmt_count(n)}" for a, n in srm.observed.items()),
        srm_expected=", ".join(f"{a}: {fmt_pct(w, signed=False)}" for a, w in srm.expected.items()),
        srm_segments=_segment_srm(results),
        balance=_balance(results),
        problems=problems,
        quality_notes=notes,
        heterogeneity=heterogeneity_context(results),
        lifecycle=lifecycle_context(results),
        pairs=pair_context(results),
        segments=[
            (s, BELOW_FLOOR if s.name in suppressed else fmt_count(s.users), _definition(s))
            for s in results.segments
        ],
        floor="",  # results.json does not carry the floor: the template names it in words
        any_suppressed=bool(suppressed),
        methods=_methods(results),
        refinement=refinement_context(refinement) if refinement is not None else None,
        csp=CSP,
        script=Markup(TABLES_JS),  # noqa: S704 - our own constant, allowed by its hash in ``csp``
    )


def write_html(results: AnalysisResults, path: Path, refinement: Refinement | None = None) -> Path:
    """Render and write report.html atomically; return its path."""
    write_text_atomic(path, render_html(results, refinement))
    return path
