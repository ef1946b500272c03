"""Treatment minus control of two independent normal-approximation estimates.

The Kaplan–Meier difference at a day and the projected-value difference are both
``effect = θ_t - θ_c`` with ``SE = sqrt(Var_c + Var_t)`` (independent arms), a
symmetric normal interval and a two-sided z test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from experiment.stats._dist import norm_isf, norm_sf

__all__ = ["NormalDifference", "normal_difference"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class NormalDifference:
    """Treatment minus control with its normal interval and two-sided p-value."""

    effect: FloatArray
    se: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray


def normal_difference(
    control: FloatArray,
    control_variance: FloatArray,
    treatment: FloatArray,
    treatment_variance: FloatArray,
    *,
    alpha: float,
) -> NormalDifference:
    """``θ_t - θ_c``, ``SE = sqrt(Var_c + Var_t)``; ``nan`` SE, interval and p where SE is 0."""
    effect = treatment - control
    se = np.sqrt(control_variance + treatment_variance)
    se = np.where(se > 0, se, np.nan)
    crit = float(norm_isf(alpha / 2))
    return NormalDifference(
        effect=effect,
        se=se,
        ci_low=effect - crit * se,
        ci_high=effect + crit * se,
        p_value=2 * norm_sf(np.abs(effect / se)),
    )
