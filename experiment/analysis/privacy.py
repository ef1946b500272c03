"""The privacy floor: segments under the segments file's ``min_size`` show no numbers."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from experiment.results import ResultRow, SegmentInfo, Srm

__all__ = ["hidden_segments", "suppress"]

_WITHHELD = (
    "mean_control", "mean_treatment", "lift_abs", "lift_rel", "ci_low", "ci_high",
    "ci_abs_low", "ci_abs_high", "p_value", "p_adjusted", "cuped_variance_reduction",
    "chance_to_win", "expected_loss", "seq_p_value", "seq_ci_low", "seq_ci_high", "mde_rel",
    "mean_control_adj", "mean_treatment_adj",
    "impact_users", "users_per_day", "impact_window", "impact_window_low", "impact_window_high",
    "impact_30d", "impact_30d_low", "impact_30d_high", "extra_users_needed", "extra_days_needed",
    "ci_adj_low", "ci_adj_high", "ci_abs_adj_low", "ci_abs_adj_high",
    "lift_abs_shrunk", "ci_abs_shrunk_low", "ci_abs_shrunk_high", "lift_rel_shrunk",
    "ci_shrunk_low", "ci_shrunk_high", "shrinkage",
)  # fmt: skip


def hidden_segments(segments: tuple[SegmentInfo, ...], floor: int) -> set[str]:
    """The segments under ``floor`` users; ``all`` (the first) is never hidden."""
    return {seg.name for seg in segments[1:] if seg.users < floor}


def suppress(
    rows: list[ResultRow], segments: tuple[SegmentInfo, ...], srm: Srm, hidden: set[str]
) -> tuple[list[ResultRow], tuple[SegmentInfo, ...], Srm]:
    """Withhold every number of segments under the privacy floor (``min_size`` users).

    Their rows keep segment, metric and arm, get ``suppressed=True`` and ``nan``
    numbers (``null`` in results.json); their sizes and per-segment SRM are dropped.
    ``family`` and ``family_size`` stay: they reveal nothing about the segment and
    say whether its withheld test counted in a family (``correction_suppressed:
    counted``) or in none (``excluded``: ``""`` and 0, set before the correction).
    """
    if not hidden:
        return rows, segments, srm
    nan: dict[str, Any] = {name: math.nan for name in _WITHHELD}
    rows = [
        replace(
            r,
            **nan,
            n_control=0,
            n_treatment=0,
            significant=False,
            guardrail_breached=False,
            suppressed=True,
        )
        if r.segment in hidden
        else r
        for r in rows
    ]
    segments = tuple(
        replace(s, users=0, suppressed=True) if s.name in hidden else s for s in segments
    )
    srm = replace(srm, segments=tuple(s for s in srm.segments if s.segment not in hidden))
    return rows, segments, srm
