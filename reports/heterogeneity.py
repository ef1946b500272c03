"""The report's heterogeneity section: Cochran's Q and each segment against the rest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reports.format import fmt_num, fmt_p, fmt_pct

if TYPE_CHECKING:
    from experiment.results import AnalysisResults

__all__ = ["heterogeneity_context"]


def _lift(value: float, scale: str) -> str:
    return fmt_pct(value) if scale == "relative" else fmt_num(value, 4)


def heterogeneity_context(results: AnalysisResults) -> dict[str, Any]:
    """The template's values: Q per metric, arm and scale; every segment-vs-rest test.

    ``q``: the older relative block and, from ``heterogeneity_tests``, both scales'
    Q (exclusive sets). ``tests``: one row per (metric, arm, scale, segment), the
    arm always named. Text is escaped by the template.
    """
    entries = results.heterogeneity_tests
    q = [
        {
            "metric": h.metric,
            "arm": h.arm,
            "scale": h.scale,
            "q": fmt_num(h.q),
            "p": fmt_p(h.q_p_value),
            "i2": fmt_pct(h.i2, signed=False),
        }
        for h in entries
        if h.q_segments
    ]
    if not entries:  # an older file: its relative block only
        q = [
            {
                "metric": h.metric,
                "arm": h.arm,
                "scale": h.scale,
                "q": fmt_num(h.q),
                "p": fmt_p(h.p_value),
                "i2": fmt_pct(h.i2, signed=False),
            }
            for h in results.heterogeneity
        ]
    tests = [
        {
            "metric": h.metric,
            "arm": h.arm,
            "scale": h.scale,
            "segment": t.segment,
            "lift_segment": _lift(t.lift_segment, h.scale),
            "lift_rest": _lift(t.lift_rest, h.scale),
            "difference": _lift(t.difference, h.scale),
            "p": fmt_p(t.p_value),
            "p_adjusted": fmt_p(t.p_adjusted),
            "significant": t.significant,
            "family": f"{h.family} ({h.family_size} tests, {h.correction})",
        }
        for h in entries
        for t in h.tests
    ]
    return {"q": q, "tests": tests, "any": bool(q or tests)}
