"""The ship / don't ship / keep testing decision per segment, shared by every view.

The rule (also printed in the report, :data:`RULE`): the experiment's first metric
is the primary metric and every other metric is a guardrail. Each metric has a
direction (``higher_is_better``, true unless the experiment file says otherwise);
"better" and "worse" below follow it. A segment's treatment arm is

* **don't ship** when any metric's lift is significantly worse (adjusted p) or
  any row's ``guardrail_breached`` is set (the metric's ``guardrail.max_drop``);
* **ship** when the primary metric's lift is significantly better and no
  guardrail is significantly worse, and the sample ratio is healthy;
* **keep testing** otherwise, labelled *underpowered* when the primary row is
  flagged as underpowered, and always when a sample ratio mismatch or a failed
  pre-exposure balance check (the arms differ on covariates fixed before
  assignment) makes the numbers untrustworthy: overall (``all``) or in the segment.

Suppressed segments (below the privacy floor) get no decision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from experiment.results.analysis import AnalysisResults, ResultRow

__all__ = ["RULE", "Decision", "DecisionKind", "decide", "decisions", "is_suppressed"]

DecisionKind = Literal["ship", "don't ship", "keep testing", "below minimum size", "no data"]

RULE = (
    "Primary metric = the experiment's first metric; the others are guardrails. Better = "
    "higher, or lower for a metric marked lower is better (higher_is_better: false). Ship: "
    "the primary metric's lift is significant and better, no guardrail is significantly "
    "worse and the sample ratio and the pre-exposure covariate balance are healthy. Don't "
    "ship: any metric is significantly worse or breaches its guardrail (gets significantly "
    "worse by more than its max_drop). Keep testing: anything else (marked underpowered "
    "when the experiment cannot detect its minimum effect). Significant = adjusted p below "
    "alpha."
)


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The decision for one (segment, arm) and the one-line reason for it."""

    segment: str
    arm: str
    kind: DecisionKind
    reason: str
    underpowered: bool = False


def is_suppressed(row: ResultRow) -> bool:
    """Whether the row is below the privacy floor (its numbers must not be shown)."""
    return row.suppressed


def _srm_flagged_segments(results: AnalysisResults) -> set[str]:
    return {item.segment for item in results.srm.segments if item.flag}


def _balance_flag(results: AnalysisResults, segment: str) -> bool:
    """A failed balance check overall (``all``) or in ``segment``, as for SRM."""
    flagged = results.balance.flagged_segments()
    return "all" in flagged or segment in flagged


def _direction(row: ResultRow) -> int:
    """``1`` significantly better, ``-1`` significantly worse (the metric's direction), else 0."""
    if not row.significant or math.isnan(row.lift_abs):
        return 0
    up = 1 if row.lift_abs > 0 else -1
    return up if row.higher_is_better else -up


def _named(row: ResultRow) -> str:
    """The metric's name, with its direction when lower is better."""
    return row.metric if row.higher_is_better else f"{row.metric} (lower is better)"


def _breached(row: ResultRow) -> bool:
    return row.guardrail_breached and not is_suppressed(row)


def decide(rows: list[ResultRow], *, srm_flag: bool = False) -> DecisionKind:
    """The decision for one (segment, arm) from its rows, primary metric first.

    Examples:
        >>> from dataclasses import replace
        >>> win = ResultRow(
        ...     segment="all", metric="conversion", arm="treatment", n_control=10,
        ...     n_treatment=10, mean_control=0.1, mean_treatment=0.2, lift_abs=0.1,
        ...     lift_rel=1.0, ci_low=0.5, ci_high=1.5, ci_abs_low=0.05, ci_abs_high=0.15,
        ...     p_value=0.001, p_adjusted=0.002, significant=True, method="welch-t, holm")
        >>> harm = replace(win, metric="revenue", lift_abs=-1.0, lift_rel=-0.1)
        >>> decide([win]), decide([win, harm]), decide([replace(win, significant=False)])
        ('ship', "don't ship", 'keep testing')
        >>> decide([win], srm_flag=True)
        'keep testing'
        >>> fewer = replace(win, metric="refunds", higher_is_better=False, lift_abs=-0.1)
        >>> decide([fewer]), decide([win, replace(fewer, lift_abs=0.1)])
        ('ship', "don't ship")
    """
    primary = rows[0]
    if is_suppressed(primary):
        return "below minimum size"
    if math.isnan(primary.p_value):
        return "no data"
    directions = [_direction(r) for r in rows if not is_suppressed(r)]
    if -1 in directions or any(_breached(r) for r in rows):
        return "don't ship"
    if directions[0] == 1 and not srm_flag:
        return "ship"
    return "keep testing"


def _reason(
    kind: DecisionKind, rows: list[ResultRow], *, srm_flag: bool, balance_flag: bool = False
) -> str:
    primary = rows[0]
    hurt = ", ".join(_named(r) for r in rows if _direction(r) == -1 and not is_suppressed(r))
    breached = ", ".join(_named(r) for r in rows if _breached(r))
    better = "positive" if primary.higher_is_better else "lower (lower is better)"
    if kind == "keep testing" and srm_flag:
        return "sample ratio mismatch: fix the assignment before deciding"
    if kind == "keep testing" and balance_flag:
        return "covariate imbalance before exposure: fix the randomisation or assignment join"
    if kind == "keep testing" and primary.underpowered:
        return f"{primary.metric} not significant and the test is underpowered"
    return {
        "below minimum size": "fewer users than the privacy floor; numbers withheld",
        "no data": primary.reason or "no test result for the primary metric",
        "don't ship": "; ".join(
            part
            for part in (
                f"significantly worse: {hurt}" if hurt else "",
                f"guardrail breached: {breached}" if breached else "",
            )
            if part
        ),
        "ship": f"{primary.metric} significantly {better}, no guardrail harmed",
        "keep testing": f"{primary.metric} not significant yet",
    }[kind]


def decisions(results: AnalysisResults) -> list[Decision]:
    """One decision per (segment, treatment arm), in the order rows first appear."""
    metrics: list[str] = []
    groups: dict[tuple[str, str], dict[str, ResultRow]] = {}
    for row in results.results:
        if row.metric not in metrics:
            metrics.append(row.metric)
        groups.setdefault((row.segment, row.arm), {})[row.metric] = row
    segment_srm = _srm_flagged_segments(results)
    out = []
    for (segment, arm), by_metric in groups.items():
        rows = [by_metric[m] for m in metrics if m in by_metric]
        if metrics[0] not in by_metric:
            out.append(
                Decision(segment=segment, arm=arm, kind="no data", reason=f"no {metrics[0]} result")
            )
            continue
        srm_flag = results.srm.flag or segment in segment_srm
        balance_flag = _balance_flag(results, segment)
        kind = decide(rows, srm_flag=srm_flag or balance_flag)
        reason = _reason(kind, rows, srm_flag=srm_flag, balance_flag=balance_flag)
        underpowered = kind == "keep testing" and rows[0].underpowered
        out.append(
            Decision(segment=segment, arm=arm, kind=kind, reason=reason, underpowered=underpowered)
        )
    return out
