"""Welch's t-test on cell means: absolute and relative lift with confidence intervals."""

from __future__ import annotations

import numpy as np

from experiment.stats._checks import check_arms, check_choice, check_scalar
from experiment.stats._lift import (
    ALTERNATIVES,
    RELATIVE_INTERVALS,
    Alternative,
    BoolArray,
    FloatArray,
    LiftResult,
    RelativeInterval,
    StrArray,
    lift_result,
    welch_dof,
)
from experiment.stats.messages import OK, TOO_FEW_UNITS, ZERO_VARIANCE
from experiment.sums import MeanSums

__all__ = ["Alternative", "LiftResult", "RelativeInterval", "welch_ttest"]

# A centred sum of squares this small relative to the mean is rounding noise: a
# constant column averages to its value give or take a few ulps, not exactly.
_NOISE = 16.0 * np.finfo(np.float64).eps


def welch_ttest(
    control: MeanSums,
    treatment: MeanSums,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_interval: RelativeInterval = "fieller",
) -> LiftResult:
    """Welch's unequal-variance t-test of treatment against control, for every cell at once.

    Each arm contributes its mean and the variance of that mean, ``v = s² / n``
    (sample variance, ``ddof=1``). The absolute lift is tested with
    ``t = (μ_t - μ_c) / sqrt(v_c + v_t)`` on Welch-Satterthwaite degrees of freedom.
    Proportions are means of 0/1 values and take the same test. The relative lift
    ``(μ_t - μ_c) / μ_c`` gets a delta-method interval,
    ``Var ≈ v_t / μ_c² + μ_t² v_c / μ_c⁴``, with the same t critical value.
    One-sided alternatives give one-sided p-values and intervals (the open bound is
    ``±inf``).

    Degenerate cells do not raise: an arm with fewer than 2 units
    (``"too_few_units"``) or zero variance in both arms (``"zero_variance"``) gets
    ``nan`` standard errors, intervals, p-value and ``dof``; a zero control mean
    (``"zero_baseline"``) gets ``nan`` relative fields only.

    Args:
        control: Sums of the control arm, one element per cell.
        treatment: Sums of the treatment arm, same shape as ``control``.
        alpha: Significance level; intervals have confidence ``1 - alpha``.
        alternative: ``"two-sided"``, ``"greater"`` (treatment above control) or
            ``"less"``.
        relative_interval: How the relative interval is built: ``"fieller"``
            (default: inverts the test, cut at -100%, ``nan`` with
            ``"unbounded_interval"`` when the control mean is not significantly
            non-zero), ``"log"`` (log-ratio delta method, never below -100%) or
            ``"delta"`` (symmetric; can fall below -100%). Chosen by
            ``benchmarks/relative_ci.py``.

    Returns:
        The lift per cell.

    Raises:
        TypeError: An arm is not ``MeanSums`` or ``alpha`` is not a number.
        ValueError: The arms differ in shape, ``alpha`` is not in (0, 1), or
            ``alternative`` is unknown.

    References:
        Welch (1947) and the Welch-Satterthwaite equation:
        https://en.wikipedia.org/wiki/Welch%27s_t-test
        Relative lift by the delta method, as gbstats ``frequentist_variance``:
        https://github.com/growthbook/growthbook/blob/main/packages/stats/gbstats/utils.py

    Examples:
        >>> from experiment.sums import MeanSums
        >>> control = MeanSums(n=[1000, 1], mean=[10.0, 3.0], m2=[15984.0, 0.0])
        >>> treatment = MeanSums(n=[1000, 5], mean=[10.5, 4.0], m2=[15984.0, 4.0])
        >>> res = welch_ttest(control, treatment)
        >>> res.lift_abs, res.p_value.round(4)
        (array([0.5, 1. ]), array([0.0052,    nan]))
        >>> res.ci_low.round(4), res.ci_high.round(4)
        (array([0.0147,    nan]), array([0.0866,    nan]))
        >>> res.reason.tolist()
        ['', 'too_few_units']
    """
    control, treatment = check_arms(control, treatment, MeanSums)
    alpha = check_scalar(alpha, "alpha", gt=0, lt=1)
    alternative = check_choice(alternative, "alternative", ALTERNATIVES)
    relative_interval = check_choice(relative_interval, "relative_interval", RELATIVE_INTERVALS)

    var_c, var_t = _var_of_mean(control), _var_of_mean(treatment)
    return lift_result(
        control.mean,
        treatment.mean,
        var_c,
        var_t,
        welch_dof(var_c, var_t, control.n, treatment.n),
        alpha=alpha,
        alternative=alternative,
        relative_interval=relative_interval,
        reason=_reason(control, treatment),
    )


def _var_of_mean(sums: MeanSums) -> FloatArray:
    """Variance of the sample mean, ``s² / n``; ``nan`` where ``n < 2``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return sums.var / sums.n


def _flat(sums: MeanSums) -> BoolArray:
    """True where the arm is constant up to rounding noise."""
    return np.asarray(sums.m2 <= sums.n * (_NOISE * sums.mean) ** 2)


def _reason(control: MeanSums, treatment: MeanSums) -> StrArray:
    """Reason code per cell, the first that applies: too few units, then zero variance."""
    too_few = (control.n < 2) | (treatment.n < 2)
    flat = _flat(control) & _flat(treatment)
    return np.where(too_few, TOO_FEW_UNITS, np.where(flat, ZERO_VARIANCE, OK))
