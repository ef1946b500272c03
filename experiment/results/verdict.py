"""The verdict on one result row, shared by every view so they never disagree."""

from __future__ import annotations

import math
from typing import Literal

from experiment.results.analysis import ResultRow

__all__ = ["Verdict", "verdict"]

Verdict = Literal["win", "loss", "inconclusive", "no data"]


def verdict(row: ResultRow) -> Verdict:
    """``win``/``loss`` when the adjusted test is significant, else ``inconclusive``.

    A win is a lift in the metric's better direction: up, or down for a metric
    with ``higher_is_better`` false.

    Examples:
        >>> from dataclasses import replace
        >>> row = ResultRow(
        ...     segment="all", metric="conversion", arm="treatment", n_control=10,
        ...     n_treatment=10, mean_control=0.1, mean_treatment=0.2, lift_abs=0.1,
        ...     lift_rel=1.0, ci_low=0.5, ci_high=1.5, ci_abs_low=0.05, ci_abs_high=0.15,
        ...     p_value=0.001, p_adjusted=0.002, significant=True, method="welch-t, holm")
        >>> verdict(row), verdict(replace(row, significant=False))
        ('win', 'inconclusive')
        >>> verdict(replace(row, higher_is_better=False))
        'loss'
    """
    if math.isnan(row.p_value):
        return "no data"
    if not row.significant:
        return "inconclusive"
    better = row.lift_abs > 0 if row.higher_is_better else row.lift_abs < 0
    return "win" if better else "loss"
