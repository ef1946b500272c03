"""One result row: a (segment, metric, treatment arm) comparison, as results.json holds it.

The field names are the results.json contract (README "results.json"): fields may
be added at the end, none renamed or given another meaning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ResultRow"]


@dataclass(frozen=True, kw_only=True)
class ResultRow:
    """One (segment, metric, treatment arm) comparison against control."""

    segment: str
    metric: str
    arm: str
    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    lift_abs: float
    lift_rel: float
    ci_low: float
    ci_high: float
    ci_abs_low: float
    ci_abs_high: float
    p_value: float
    p_adjusted: float
    significant: bool
    method: str
    metric_kind: str = ""
    reason: str = ""
    # Optional method fields (DESIGN.md "Results contract"); NaN/False when the method did not run.
    cuped_variance_reduction: float = math.nan
    # CUPED metrics: the covariate-adjusted means whose difference is ``lift_abs``
    # (``mean_control``/``mean_treatment`` stay the raw means); NaN (null) otherwise.
    mean_control_adj: float = math.nan
    mean_treatment_adj: float = math.nan
    chance_to_win: float = math.nan
    expected_loss: float = math.nan
    seq_p_value: float = math.nan
    seq_ci_low: float = math.nan
    seq_ci_high: float = math.nan
    # The intervals adjusted for the row's multiple-testing family (implied critical
    # value, experiment.stats.adjusted_interval): they exclude 0 exactly when
    # p_adjusted < alpha; the raw ci_* fields stay unadjusted. NaN where undefined.
    ci_adj_low: float = math.nan
    ci_adj_high: float = math.nan
    ci_abs_adj_low: float = math.nan
    ci_abs_adj_high: float = math.nan
    underpowered: bool = False
    mde_rel: float = math.nan
    # The metric's guardrail: lift_rel significantly below -max_drop (one-sided, alpha);
    # above +max_drop for a lower-is-better metric.
    guardrail_breached: bool = False
    # The metric's direction (experiment file); older files without it read as true.
    higher_is_better: bool = True
    # Below the segments file's min_size (privacy floor): every number is withheld (null).
    suppressed: bool = False
    # Impact of rolling the arm out to the segment (README "results.json"): the metric's
    # total change over the window and per 30 days of traffic, with the lift's CI scaled.
    impact_users: float = math.nan
    users_per_day: float = math.nan
    impact_window: float = math.nan
    impact_window_low: float = math.nan
    impact_window_high: float = math.nan
    impact_30d: float = math.nan
    impact_30d_low: float = math.nan
    impact_30d_high: float = math.nan
    # Underpowered rows: extra users (both arms) and days to reach target_lift's MDE.
    extra_users_needed: float = math.nan
    extra_days_needed: float = math.nan
    # The multiple-testing family p_adjusted was corrected in (the experiment's
    # correction_scope) and how many tests it held; "" and 0 when the row was in no
    # family (a withheld row under correction_suppressed: excluded, or an older file).
    family: str = ""
    family_size: int = 0
    # Empirical-Bayes shrunken lift of a segment row (README "results.json"); null for
    # `all`, withheld rows, fewer than 4 usable segments and older files.
    lift_abs_shrunk: float = math.nan
    ci_abs_shrunk_low: float = math.nan
    ci_abs_shrunk_high: float = math.nan
    lift_rel_shrunk: float = math.nan
    ci_shrunk_low: float = math.nan
    ci_shrunk_high: float = math.nan
    shrinkage: float = math.nan

    # Rows of ``arm_comparisons`` (treatment vs treatment): the arm the ``*_control``
    # fields describe; "" in ``results``, whose baseline is always ``control``.
    baseline_arm: str = ""
