"""Terminal views: the lift table printed by ``exp analyze`` and ``exp demo``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from experiment.results import AnalysisResults
from experiment.results.decision import RULE, decisions, is_suppressed
from experiment.results.refinement import Refinement
from experiment.results.verdict import verdict
from reports.columns import Column, fit_table
from reports.format import (
    fmt_count,
    fmt_num,
    fmt_p,
    fmt_pct,
    fmt_pct_interval,
    plain_text,
    terminal_text,
)
from reports.methods import (
    ADJUSTED_LEGEND,
    cuped_notes,
    family_lines,
    has_adjusted,
    is_cuped,
    shown_interval,
    shown_means,
)
from reports.outlook import outlooks
from reports.refinement import proposal_views

if TYPE_CHECKING:
    from rich.table import Table

__all__ = [
    "balance_line",
    "decision_table",
    "heterogeneity_lines",
    "lift_table",
    "pair_lines",
    "quality_lines",
    "refinement_table",
    "srm_line",
]

_STYLE = {"win": "bold blue", "loss": "bold red", "inconclusive": "dim", "no data": "dim"}
_DECISION_STYLE = {
    "ship": "bold blue",
    "don't ship": "bold red",
    "keep testing": "yellow",
    "below minimum size": "dim italic",
    "no data": "dim",
}
_MARK = {"ship": "✔ ", "don't ship": "✖ ", "keep testing": "… "}
# Beside a CUPED row's means: adjusted (what the lift compares), or raw (an older
# results file without the adjusted means, so they do not match the lift).
_MEANS_MARK = {"adjusted": "*", "raw": "†", "": ""}
_MEANS_LEGEND = {
    "adjusted": "* CUPED-adjusted means: their difference is the absolute lift; the relative "
    "lift divides it by the raw control mean (raw means in results.json)",
    "raw": "† raw means of a CUPED row: the lift is adjusted, these means are not",
}


def _lift_caption(results: AnalysisResults, *, adjusted: bool) -> str:
    """The lift table's legend: mean marks, CUPED notes, families, direction, adjusted CI."""
    marks = {shown_means(r)[2] for r in results.results if not is_suppressed(r)} - {""}
    lines = [_MEANS_LEGEND[m] for m in sorted(marks)] + cuped_notes(results)
    lines += family_lines(results)
    if not all(row.higher_is_better for row in results.results):  # verdicts follow direction
        lines.append("↓ lower is better: a significant fall is a win")
    return "\n".join(lines + [ADJUSTED_LEGEND] * adjusted)


def lift_table(results: AnalysisResults, *, width: int | None = None, wide: bool = False) -> Table:
    """One row per (segment, metric, arm) with the lift, its CI and the verdict.

    ``width``: the terminal's; the least important columns (user counts, then the
    means, then the adjusted p) are dropped until the table fits, names are never
    cut (:mod:`reports.columns`). The arm column shows only with several treatment
    arms. ``wide`` (or ``width=None``) keeps every column.
    """
    from rich.text import Text

    adjusted = has_adjusted(results.results)
    caption = _lift_caption(results, adjusted=adjusted)
    arms = wide or len({row.arm for row in results.results}) > 1
    ci = f"{results.confidence_level:.0%} CI" + (" adj." if adjusted else "")
    columns = [
        Column(name="metric", whole=True),
        Column(name="segment", whole=True),
        *([Column(name="arm", whole=True)] if arms else []),
        Column(name="users C/T", justify="right", drop=3),
        Column(name="control", justify="right", drop=2),
        Column(name="treatment", justify="right", drop=2),
        Column(name="lift", justify="right"),
        Column(name=ci, justify="right"),
        Column(name="p adj.", justify="right", drop=1),
        Column(name="verdict"),
    ]
    rows: list[list[Any]] = []
    previous = None
    for row in results.results:
        first = row.metric != previous
        previous = row.metric
        name = plain_text(row.metric) + ("" if row.higher_is_better else " ↓")
        segment = Text(plain_text(row.segment), style="bold" if row.segment == "all" else "")
        head = [Text(name + (" (CUPED)" if is_cuped(row) else "") if first else ""), segment]
        head += [Text(plain_text(row.arm))] if arms else []
        if is_suppressed(row):
            rows.append([*head, *[""] * 6, Text("below minimum size", style="dim italic")])
            continue
        v = verdict(row)
        mean_c, mean_t, mark = shown_means(row)
        sign = _MEANS_MARK[mark]
        rows.append([
            *head,
            f"{fmt_count(row.n_control)}/{fmt_count(row.n_treatment)}",
            fmt_num(mean_c, 4) + sign,
            fmt_num(mean_t, 4) + sign,
            fmt_pct(row.lift_rel),
            fmt_pct_interval(*shown_interval(row, adjusted=adjusted)),
            fmt_p(row.p_adjusted),
            Text(v, style=_STYLE[v]),
        ])  # fmt: skip
    return fit_table(
        columns,
        rows,
        width=None if wide else width,
        title=f"{terminal_text(results.experiment)}: lift vs {terminal_text(results.control)}",
        # user text (arm and metric names), never markup nor control characters
        caption=Text("\n".join(map(plain_text, caption.split("\n")))) if caption else None,
        caption_justify="left",
    )


def heterogeneity_lines(results: AnalysisResults, *, limit: int = 8) -> list[str]:
    """The heterogeneity section with rich markup: what differs, or one summary line.

    Segment-vs-rest tests significant within their family (metric × arm × scale,
    ``heterogeneity_tests``) and Cochran's Q below alpha, strongest first, at most
    ``limit`` lines; with none, one line says how many tests ran.
    """
    entries = results.heterogeneity_tests
    if not entries:
        return []
    escape = terminal_text
    found = [(t.p_adjusted, h, t) for h in entries for t in h.tests if t.significant]
    lines = [
        f"  {escape(t.segment)} vs rest, {escape(h.metric)} ({escape(h.arm)}), {h.scale}: "
        f"lift {_lift(t.lift_segment, h.scale)} vs {_lift(t.lift_rest, h.scale)}, "
        f"p adj. = {fmt_p(t.p_adjusted)}"
        for _, h, t in sorted(found, key=lambda item: item[0])
    ]
    lines += [
        f"  Cochran's Q, {escape(h.metric)} ({escape(h.arm)}), {h.scale}: Q = {fmt_num(h.q)}, "
        f"p = {fmt_p(h.q_p_value)}, I² = {fmt_pct(h.i2, signed=False)}"
        for h in entries
        if h.q_p_value < results.alpha
    ]
    tests = sum(len(h.tests) for h in entries)
    how = f"{tests} segment-vs-rest tests, {entries[0].correction} per metric × arm × scale"
    if not lines:
        return [f"[green]heterogeneity: no segment's lift differs from the rest's[/] ({how})"]
    more = f" ({len(lines) - limit} more in results.json)" if len(lines) > limit else ""
    head = f"[bold]heterogeneity: lifts that differ between segments[/] ({how}){more}"
    return [head, *lines[:limit]]


def pair_lines(results: AnalysisResults, *, limit: int = 12) -> list[str]:
    """Treatment-vs-treatment rows with rich markup: ``all``, then segments that differ."""
    rows = [r for r in results.arm_comparisons if not is_suppressed(r)]
    shown = [r for r in rows if r.segment == "all"] + [
        r for r in rows if r.segment != "all" and r.significant
    ]
    if not rows:
        return []
    escape = terminal_text
    lines = [
        f"  {escape(r.arm)} vs {escape(r.baseline_arm)}, {escape(r.metric)}, {escape(r.segment)}: "
        f"{fmt_pct(r.lift_rel)} {fmt_pct_interval(r.ci_low, r.ci_high)}, p adj. = "
        f"{fmt_p(r.p_adjusted)} ({verdict(r)})"
        for r in shown[:limit]
    ]
    more = f"; {len(shown) - limit} more in results.json" if len(shown) > limit else ""
    return [f"[bold]arm against arm[/] (own families, pairs:…{more})", *lines]


def _lift(value: float, scale: str) -> str:
    return fmt_pct(value) if scale == "relative" else fmt_num(value, 4)


def srm_line(results: AnalysisResults) -> str:
    """A one-line sample-ratio verdict with rich markup."""
    srm = results.srm
    flagged = [s for s in srm.segments if s.flag]
    listed = ", ".join(f"{terminal_text(s.segment)} (p = {fmt_p(s.p_value)})" for s in flagged)
    where = f" in segment(s) {listed}" if flagged else ""
    if srm.flag:
        return f"[bold red]SRM: sample ratio mismatch (p = {fmt_p(srm.p_value)}){where}[/]"
    if flagged:
        return f"[bold red]SRM: sample ratio mismatch{where}[/] (overall p = {fmt_p(srm.p_value)})"
    return f"[green]SRM check passed[/] (p = {fmt_p(srm.p_value)})"


def balance_line(results: AnalysisResults) -> str:
    """A one-line pre-exposure covariate balance verdict with rich markup (red when flagged)."""
    escape = terminal_text
    balance = results.balance
    if not balance.ran:
        return "[dim]balance check not run: no pre-exposure covariate (CUPED or rule column)[/]"
    tests = f"{balance.tests} tests, Holm at {fmt_num(balance.threshold)}"
    if not balance.flag:
        worst = balance.worst[0] if balance.worst else None
        low = f"; smallest p = {fmt_p(worst.p_value)}" if worst is not None else ""
        return (
            f"[green]balance check passed[/] ({len(balance.covariates)} covariates, {tests}{low})"
        )
    flagged = [t for t in balance.worst if t.flag][:3]
    listed = ", ".join(
        f"{escape(t.covariate)} in {escape(t.segment)} ({escape(t.arm)}: SMD {fmt_num(t.smd)}, "
        f"p adj. = {fmt_p(t.p_adjusted)})"
        for t in flagged
    )
    more = sum(t.flag for t in balance.worst) - len(flagged)
    extra = f" and {more} more" if more > 0 else ""
    return (
        f"[bold red]balance check FAILED: arms differ before exposure: {listed}{extra}[/] ({tests})"
    )


def quality_lines(results: AnalysisResults) -> list[str]:
    """Data-quality lines with rich markup: the warnings block first, then the notes.

    Warnings (checks that change the reading of the results) are yellow and
    come first, so they sit at the top of the output; checks that found
    something expected and handled follow in grey.
    """
    found = results.data_quality
    warnings = [f"[bold yellow]warning: {terminal_text(c.message)}[/]" for c in found.warnings]
    notes = [
        f"[dim]data quality: {terminal_text(c.message)}[/]"
        for c in found.checks
        if c.count > 0 and c not in found.warnings
    ]
    return warnings + notes


def decision_table(results: AnalysisResults, *, width: int | None = None) -> Table:
    """One row per (segment, arm): ship / don't ship / keep testing, why, and what next.

    The last column is :func:`reports.outlook.outlook`: the primary lift's impact,
    or the days an underpowered row still needs. Segment names are never cut; the
    other columns wrap to ``width`` (:mod:`reports.columns`).
    """
    from rich.text import Text

    primary = results.results[0].metric if results.results else ""
    multi_arm = len({row.arm for row in results.results}) > 1
    columns = [
        Column(name="segment", whole=True),
        *([Column(name="arm", whole=True)] if multi_arm else []),
        Column(name="decision"),
        Column(name="why"),
        Column(name="impact / time to decide"),
    ]
    rows: list[list[Any]] = []
    made = decisions(results)
    for d, ahead in zip(made, outlooks(results, made), strict=True):
        label = _MARK.get(d.kind, "") + d.kind + (" (underpowered)" if d.underpowered else "")
        cells = [Text(plain_text(d.segment), style="bold" if d.segment == "all" else "")]
        if multi_arm:
            cells.append(Text(plain_text(d.arm)))
        cells += [Text(label, style=_DECISION_STYLE[d.kind])]
        cells += [Text(plain_text(d.reason)), Text(plain_text(ahead))]
        rows.append(cells)
    return fit_table(
        columns,
        rows,
        width=width,
        title=f"decisions (primary metric: {terminal_text(primary)})",
        caption=RULE,
        caption_justify="left",
    )


def refinement_table(refinement: Refinement) -> Table:
    """One row per proposal: the cut, each side's held-out lift and CI, the test, the verdict."""
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=f"{terminal_text(refinement.experiment)}: refinements of "
        f"{terminal_text(refinement.metric)} ({terminal_text(refinement.arm)} vs "
        f"{terminal_text(refinement.control)}), measured on the held-out half",
        caption=f"p: interaction test (merges: equivalence test); p adj.: "
        f"{refinement.correction}-adjusted; proposed when below {fmt_num(refinement.alpha)}. "
        "MDE: a follow-up experiment on that side alone.",
        caption_justify="left",
    )
    for name, justify in [
        ("proposal", "left"),
        ("side", "left"),
        ("users", "right"),
        ("lift", "right"),
        (f"{1 - refinement.alpha:.0%} CI", "right"),
        ("MDE", "right"),
        ("p", "right"),
        ("p adj.", "right"),
        ("verdict", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for view in proposal_views(refinement):
        style = "bold blue" if view.significant else "dim"
        for i, side in enumerate(view.sides):
            first = i == 0
            table.add_row(
                Text(plain_text(view.cut) if first else "", overflow="fold"),
                Text(plain_text(side.label), overflow="fold"),
                side.users,
                side.lift_rel,
                side.ci,
                side.mde,
                view.test_p if first else "",
                view.p_adjusted if first else "",
                Text(view.verdict if first else "", style=style),
                end_section=not first,
            )
    return table
