"""The decisions table's outlook: what the primary lift is worth, or how long to keep testing.

Reads results only (``impact_*``, ``extra_users_needed``, ``extra_days_needed``, results.json
``target_lift``; see README "results.json"); every number is formatted by
:mod:`reports.format`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from experiment.plan import KINDS, kind_plan
from reports.format import fmt_count, fmt_days, fmt_impact, fmt_pct

if TYPE_CHECKING:
    from experiment.results import AnalysisResults, ResultRow
    from experiment.results.decision import Decision

__all__ = ["impact_unit", "outlook", "outlooks"]


def impact_unit(row: ResultRow) -> str:
    """What the row's impact counts: converting users, a mean's total, a ratio's numerator."""
    plan = kind_plan(row.metric_kind) if row.metric_kind in KINDS else None
    if plan is not None and plan.binary:
        return f"users with {row.metric}"
    if plan is not None and plan.ratio:
        return f"{row.metric} numerator"
    return f"total {row.metric}"


def _impact(row: ResultRow) -> str:
    unit = impact_unit(row)
    if math.isfinite(row.impact_30d):
        return fmt_impact(
            row.impact_30d, row.impact_30d_low, row.impact_30d_high, f"{unit} per 30 days"
        )
    if math.isfinite(row.impact_window):
        return fmt_impact(
            row.impact_window, row.impact_window_low, row.impact_window_high, f"{unit} per window"
        )
    return ""


def _time(row: ResultRow, target_lift: float) -> str:
    target = (
        f"to detect {fmt_pct(target_lift, 0, signed=False)}"
        if math.isfinite(target_lift)
        else "to reach the target MDE"
    )
    users = fmt_count(int(row.extra_users_needed))
    if math.isfinite(row.extra_days_needed):
        return f"{fmt_days(row.extra_days_needed)} more days ({users} users) {target}"
    return f"{users} more users {target} (fixed base: everyone assigned at once)"


def outlook(decision: Decision, row: ResultRow | None, target_lift: float) -> str:
    """The outlook of one decision from its primary row (``""`` when there is none to show).

    An underpowered *keep testing* says how long; any other decision says what
    the lift is worth over 30 days of traffic (or the window, for a fixed base).
    """
    if row is None or row.suppressed:
        return ""
    if decision.kind == "keep testing" and math.isfinite(row.extra_users_needed):
        return _time(row, target_lift)
    return _impact(row)


def outlooks(results: AnalysisResults, made: list[Decision]) -> list[str]:
    """:func:`outlook` of each decision, in order."""
    primary = results.results[0].metric if results.results else ""
    rows = {(r.segment, r.arm): r for r in results.results if r.metric == primary}
    return [outlook(d, rows.get((d.segment, d.arm)), results.target_lift) for d in made]
