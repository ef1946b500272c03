"""Terminal views: the lift table printed by ``exp analyze`` and ``exp demo``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiment.results import AnalysisResults
from reports.format import fmt_count, fmt_num, fmt_p, fmt_pct, fmt_pct_interval
from reports.verdict import verdict

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["lift_table", "srm_line"]

_STYLE = {"win": "bold green", "loss": "bold red", "inconclusive": "dim", "no data": "dim"}


def lift_table(results: AnalysisResults) -> Table:
    """One row per (segment, metric, arm) with the lift, its CI and the verdict."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{results.experiment}: lift vs {results.control}", show_lines=False)
    for name, justify in [
        ("metric", "left"),
        ("segment", "left"),
        ("arm", "left"),
        ("users C/T", "right"),
        ("control", "right"),
        ("treatment", "right"),
        ("lift", "right"),
        (f"{results.confidence_level:.0%} CI", "right"),
        ("p adj.", "right"),
        ("verdict", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    previous = None
    for row in results.results:
        v = verdict(row)
        table.add_row(
            Text(row.metric if row.metric != previous else ""),
            Text(row.segment, style="bold" if row.segment == "all" else ""),
            Text(row.arm),
            f"{fmt_count(row.n_control)}/{fmt_count(row.n_treatment)}",
            fmt_num(row.mean_control, 4),
            fmt_num(row.mean_treatment, 4),
            fmt_pct(row.lift_rel),
            fmt_pct_interval(row.ci_low, row.ci_high),
            fmt_p(row.p_adjusted),
            Text(v, style=_STYLE[v]),
            end_section=False,
        )
        previous = row.metric
    return table


def srm_line(results: AnalysisResults) -> str:
    """A one-line sample-ratio verdict with rich markup."""
    srm = results.srm
    if srm.flag:
        return f"[bold red]SRM: sample ratio mismatch (p = {fmt_p(srm.p_value)})[/]"
    return f"[green]SRM check passed[/] (p = {fmt_p(srm.p_value)})"
