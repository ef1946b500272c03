"""The report's arm-against-arm rows (``arm_comparisons``): treatment vs treatment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from experiment.results.decision import is_suppressed
from experiment.results.verdict import verdict
from reports.format import fmt_num, fmt_p, fmt_pct, fmt_pct_interval

if TYPE_CHECKING:
    from experiment.results import AnalysisResults

__all__ = ["pair_context"]


def pair_context(results: AnalysisResults) -> list[dict[str, Any]]:
    """One dict per treatment-vs-treatment row (text escaped by the template).

    Rows under the privacy floor say so and show no number.
    """
    out = []
    for r in results.arm_comparisons:
        hidden = is_suppressed(r)
        out.append(
            {
                "metric": r.metric,
                "segment": r.segment,
                "arm": r.arm,
                "baseline": r.baseline_arm,
                "means": ""
                if hidden
                else f"{fmt_num(r.mean_control, 4)} → {fmt_num(r.mean_treatment, 4)}",
                "lift": "" if hidden else fmt_pct(r.lift_rel),
                "ci": "" if hidden else fmt_pct_interval(r.ci_low, r.ci_high),
                "p_adjusted": "" if hidden else fmt_p(r.p_adjusted),
                "verdict": "below minimum size" if hidden else verdict(r),
                "family": f"{r.family} ({r.family_size} tests)",
            }
        )
    return out
