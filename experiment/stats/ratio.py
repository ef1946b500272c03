"""Ratio metrics (CTR, AOV) by the delta method: lift of ``Σy / Σx`` per cell."""

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
from experiment.stats.messages import OK, TOO_FEW_UNITS, ZERO_DENOMINATOR, ZERO_VARIANCE
from experiment.sums import JointSums

__all__ = ["ratio_ttest"]

# The linearised sum of squares is a difference of terms of size m2_y + R² m2_x; below
# this share of them it is cancellation noise, not variance.
_NOISE = 64.0 * np.finfo(np.float64).eps


def ratio_ttest(
    control: JointSums,
    treatment: JointSums,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_interval: RelativeInterval = "fieller",
) -> LiftResult:
    """Test the lift of a ratio metric ``mean_y / mean_x`` with delta-method variances.

    The randomisation unit (user) is coarser than the analysis unit (impression), so
    impressions are not independent and the binomial variance of ``Σclicks / Σimpr``
    is too small. Per user, ``y`` is the numerator (clicks) and ``x`` the denominator
    (impressions); each arm's estimate is ``R = ȳ / x̄`` with the delta-method variance

        ``Var(R) ≈ (1/n) [s_y² / x̄² - 2 ȳ s_xy / x̄³ + ȳ² s_x² / x̄⁴]``,

    i.e. the variance of the mean of the linearised values ``(y - R x) / x̄``. The
    difference of the arms is then tested **Welch-style**: a t-test on
    Welch-Satterthwaite degrees of freedom computed from these variances (``dof`` is
    finite; with thousands of users per arm it equals the z-test). With ``x ≡ 1`` the
    test is exactly ``welch_ttest`` on ``y``. The relative lift uses the same delta
    method as ``welch_ttest``.

    Degenerate cells do not raise: fewer than 2 units in an arm
    (``"too_few_units"``), ``mean_x == 0`` in an arm (``"zero_denominator"``, the
    ratio itself is ``nan``), zero linearised variance in both arms
    (``"zero_variance"``), or a zero control ratio (``"zero_baseline"``, relative
    fields only).

    Args:
        control: Joint sums of ``(y, x)`` per user in the control arm, one element per
            cell.
        treatment: Joint sums of the treatment arm, same shape as ``control``.
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
        The lift per cell; ``mean_control`` and ``mean_treatment`` are the ratios.

    Raises:
        TypeError: An arm is not ``JointSums`` or ``alpha`` is not a number.
        ValueError: The arms differ in shape, ``alpha`` is not in (0, 1), or
            ``alternative`` is unknown.

    References:
        Deng, Knoblich & Lu (KDD 2018), "Applying the Delta Method in Metric
        Analytics", https://arxiv.org/abs/1803.06336
        Welch-Satterthwaite equation:
        https://en.wikipedia.org/wiki/Welch%E2%80%93Satterthwaite_equation

    Examples:
        >>> from experiment.sums import JointSums
        >>> control = JointSums.from_values([0, 1, 0, 2, 1], [4, 5, 3, 8, 6])
        >>> treatment = JointSums.from_values([1, 2, 0, 2, 1], [4, 6, 2, 7, 5])
        >>> res = ratio_ttest(control, treatment)
        >>> res.mean_control.round(4), res.mean_treatment.round(4)
        (array([0.1538]), array([0.25]))
        >>> res.p_value.round(3), res.reason.tolist()
        (array([0.153]), [''])
    """
    control, treatment = check_arms(control, treatment, JointSums)
    alpha = check_scalar(alpha, "alpha", gt=0, lt=1)
    alternative = check_choice(alternative, "alternative", ALTERNATIVES)
    relative_interval = check_choice(relative_interval, "relative_interval", RELATIVE_INTERVALS)

    ratio_c, var_c, flat_c = _ratio_moments(control)
    ratio_t, var_t, flat_t = _ratio_moments(treatment)
    return lift_result(
        ratio_c,
        ratio_t,
        var_c,
        var_t,
        welch_dof(var_c, var_t, control.n, treatment.n),
        alpha=alpha,
        alternative=alternative,
        relative_interval=relative_interval,
        reason=_reason(control, treatment, flat_c & flat_t),
    )


def _ratio_moments(sums: JointSums) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Ratio ``ȳ / x̄``, its delta-method variance, and whether the arm is flat.

    ``Σ[(y - ȳ) - R (x - x̄)]² = m2_y - 2 R c_xy + R² m2_x`` is the centred sum of
    squares of the linearised values times ``x̄²``; dividing by ``(n - 1) n x̄²`` gives
    the variance of ``R`` in Deng et al.'s formula.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        denom = np.where(sums.mean_x != 0, sums.mean_x, np.nan)
        ratio = sums.mean_y / denom
        m2_lin = sums.m2_y - 2.0 * ratio * sums.c_xy + ratio**2 * sums.m2_x
        flat = m2_lin <= _NOISE * (sums.m2_y + ratio**2 * sums.m2_x)
        var = np.maximum(m2_lin, 0.0) / ((sums.n - 1.0) * sums.n * denom**2)
    return ratio, np.where(sums.n >= 2, var, np.nan), np.asarray(flat)


def _reason(control: JointSums, treatment: JointSums, flat: BoolArray) -> StrArray:
    """Reason code per cell, the first that applies."""
    too_few = (control.n < 2) | (treatment.n < 2)
    no_denom = (control.mean_x == 0) | (treatment.mean_x == 0)
    return np.select(
        [too_few, no_denom, flat], [TOO_FEW_UNITS, ZERO_DENOMINATOR, ZERO_VARIANCE], OK
    )
