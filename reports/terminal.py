"""Terminal views: the lift table printed by ``exp analyze`` and ``exp demo``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiment.results import AnalysisResults
from experiment.results.decision import RULE, decisions, is_suppressed
from experiment.results.refinement import Refinement
from experiment.results.verdict import verdict
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
    "lift_table",
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


def lift_table(results: AnalysisResults) -> Table:
    """One row per (segment, metric, arm) with the lift, its CI and the verdict."""
    from rich.table import Table
    from rich.text import Text

    adjusted = has_adjusted(results.results)
    caption = _lift_caption(results, adjusted=adjusted)
    table = Table(
        title=f"{terminal_text(results.experiment)}: lift vs {terminal_text(results.control)}",
        show_lines=False,
        # user text (arm and metric names), never markup nor control characters
        caption=Text("\n".join(map(plain_text, caption.split("\n")))) if caption else None,
        caption_justify="left",
    )
    for name, justify in [
        ("metric", "left"),
        ("segment", "left"),
        ("arm", "left"),
        ("users C/T", "right"),
        ("control", "right"),
        ("treatment", "right"),
        ("lift", "right"),
        (f"{results.confidence_level:.0%} CI" + (" adj." if adjusted else ""), "right"),
        ("p adj.", "right"),
        ("verdict", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    previous = None
    for row in results.results:
        if is_suppressed(row):
            table.add_row(
                Text(plain_text(row.metric) if row.metric != previous else ""),
                Text(plain_text(row.segment)),
                Text(plain_text(row.arm)),
                *[""] * 6,
                Text("below minimum size", style="dim italic"),
            )
            previous = row.metric
            continue
        v = verdict(row)
        mean_c, mean_t, mark = shown_means(row)
        sign = _MEANS_MARK[mark]
        tag = " (CUPED)" if is_cuped(row) else ""
        name = plain_text(row.metric) + ("" if row.higher_is_better else " ↓")
        table.add_row(
            Text(name + tag if row.metric != previous else ""),
            Text(plain_text(row.segment), style="bold" if row.segment == "all" else ""),
            Text(plain_text(row.arm)),
            f"{fmt_count(row.n_control)}/{fmt_count(row.n_treatment)}",
            fmt_num(mean_c, 4) + sign,
            fmt_num(mean_t, 4) + sign,
            fmt_pct(row.lift_rel),
            fmt_pct_interval(*shown_interval(row, adjusted=adjusted)),
            fmt_p(row.p_adjusted),
            Text(v, style=_STYLE[v]),
            end_section=False,
        )
        previous = row.metric
    return table


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


def decision_table(results: AnalysisResults) -> Table:
    """One row per (segment, arm): ship / don't ship / keep testing, why, and what next.

    The last column is :func:`reports.outlook.outlook`: the primary lift's impact,
    or the days an underpowered row still needs.
    """
    from rich.table import Table
    from rich.text import Text

    primary = results.results[0].metric if results.results else ""
    table = Table(
        title=f"decisions (primary metric: {terminal_text(primary)})",
        caption=RULE,
        caption_justify="left",
    )
    multi_arm = len({row.arm for row in results.results}) > 1
    table.add_column("segment")
    if multi_arm:
        table.add_column("arm")
    table.add_column("decision")
    table.add_column("why")
    table.add_column("impact / time to decide")
    made = decisions(results)
    for d, ahead in zip(made, outlooks(results, made), strict=True):
        label = _MARK.get(d.kind, "") + d.kind + (" (underpowered)" if d.underpowered else "")
        cells = [Text(plain_text(d.segment), style="bold" if d.segment == "all" else "")]
        if multi_arm:
            cells.append(Text(plain_text(d.arm)))
        cells += [Text(label, style=_DECISION_STYLE[d.kind])]
        cells += [Text(plain_text(d.reason)), Text(plain_text(ahead))]
        table.add_row(*cells)
    return table


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
