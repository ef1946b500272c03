"""CUPED: the lift of a mean adjusted by a pre-period covariate, with a pooled slope."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from experiment.stats._checks import check_arms, check_choice, check_scalar
from experiment.stats._lift import (
    ALTERNATIVES,
    DIRECTION,
    RELATIVE_INTERVALS,
    Alternative,
    BoolArray,
    FloatArray,
    LiftResult,
    RelativeInterval,
    StrArray,
    critical_value,
    lift_result,
    welch_dof,
)
from experiment.stats._relative import relative_bounds
from experiment.stats.messages import (
    NONPOSITIVE_RATIO,
    OK,
    TOO_FEW_UNITS,
    UNBOUNDED_INTERVAL,
    ZERO_BASELINE,
    ZERO_VARIANCE,
)
from experiment.sums import JointSums

__all__ = ["CupedResult", "cuped_ttest"]

# A covariate whose pooled centred sum of squares is this small relative to its mean
# is constant up to rounding: it can explain nothing, so its slope is set to 0.
_FLAT_X = 16.0 * np.finfo(np.float64).eps
# The adjusted sum of squares is a difference of terms of size m2_y + θ² m2_x; below
# this share of them it is cancellation noise, not variance (as in ``ratio.py``).
_NOISE = 64.0 * np.finfo(np.float64).eps
# Codes about the relative interval of the adjusted means, recomputed on the raw baseline.
_RELATIVE_CODES = (ZERO_BASELINE, NONPOSITIVE_RATIO, UNBOUNDED_INTERVAL)


@dataclass(frozen=True, eq=False)
class CupedResult(LiftResult):
    """Covariate-adjusted lift per cell: every ``LiftResult`` field plus the adjustment.

    ``mean_control`` and ``mean_treatment`` are the **unadjusted** means (what the
    arms measured); ``lift_abs`` is the **adjusted** difference, so in general
    ``lift_abs != mean_treatment - mean_control``. ``lift_rel`` divides the adjusted
    difference by the unadjusted control mean. ``p_value``, the intervals and ``dof``
    are those of the adjusted test.

    Attributes:
        mean_control_adj: Adjusted control mean ``ȳ_c - θ (x̄_c - x̄)``.
        mean_treatment_adj: Adjusted treatment mean ``ȳ_t - θ (x̄_t - x̄)``.
        theta: Pooled slope ``θ``, the same in both arms (0 for a constant covariate).
        variance_reduction: Share of the variance of the difference removed by the
            adjustment, ``1 - Var_adj / Var_unadj`` (``cuped_variance_reduction`` in
            the results contract; about ``ρ²``; can dip slightly below 0 in a cell
            whose covariate is useless and whose arms differ in size).
    """

    mean_control_adj: FloatArray
    mean_treatment_adj: FloatArray
    theta: FloatArray
    variance_reduction: FloatArray


def cuped_ttest(
    control: JointSums,
    treatment: JointSums,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_interval: RelativeInterval = "fieller",
) -> CupedResult:
    """Welch test of the CUPED-adjusted difference of means, for every cell at once.

    Per user, ``y`` is the metric and ``x`` a pre-period covariate (usually the same
    metric over a lookback window before exposure). The slope is pooled over the arms
    from within-arm co-moments, ``θ = (c_xy,c + c_xy,t) / (m2_x,c + m2_x,t)``, which is
    exactly the coefficient of ``x`` in the OLS fit ``y ~ 1 + treatment + x``. Each arm's
    mean is adjusted to the pooled covariate mean ``x̄``,
    ``ȳ_adj = ȳ - θ (x̄_arm - x̄)``, so ``lift_abs = Δȳ - θ Δx̄`` equals the OLS treatment
    coefficient. Each arm's adjusted variance is ``s_y² - 2θ s_xy + θ² s_x²`` and the
    difference is tested Welch-style on those variances (the randomness of ``θ̂`` is
    ignored: a relative error of order ``1/n``; the standard error then agrees with
    the heteroskedasticity-robust HC2 OLS standard error to that order).

    The relative lift ``lift_abs / ȳ_c`` (unadjusted baseline, as GrowthBook) gets the
    delta-method variance ``v_t,adj / ȳ_c² + [k² s_y,c² - 2θk s_xy,c + θ² s_x,c²] /
    (n_c ȳ_c²)`` with ``k = 1 + lift_rel``, which accounts for the control mean sitting
    in both the numerator and the denominator.

    The covariate must be measured before exposure, or the adjustment can remove part
    of the effect. Users with no pre-period (new users) must get ``x = 0`` upstream,
    ideally with an indicator so the engine can adjust them separately; with this
    single covariate, a cell made only of new users has a constant ``x``, so ``θ = 0``
    and the result is the plain Welch test (no crash, no gain), while a mixed cell
    stays unbiased and just gains less.

    Degenerate cells do not raise: fewer than 2 units in an arm (``"too_few_units"``),
    zero adjusted variance in both arms (``"zero_variance"``), or a zero unadjusted
    control mean (``"zero_baseline"``, relative fields only).

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
        The adjusted lift per cell with ``theta`` and ``variance_reduction``.

    Raises:
        TypeError: An arm is not ``JointSums`` or ``alpha`` is not a number.
        ValueError: The arms differ in shape, ``alpha`` is not in (0, 1), or
            ``alternative`` is unknown.

    References:
        Deng, Xu, Kohavi & Walker (WSDM 2013), "Improving the Sensitivity of Online
        Controlled Experiments by Utilizing Pre-Experiment Data",
        https://exp-platform.com/Documents/2013-02-CUPED-ImprovingSensitivityOfControlledExperiments.pdf
        GrowthBook's CUPED (pooled θ, relative lift on the unadjusted baseline):
        https://docs.growthbook.io/statistics/cuped
        HC2 robust variance: https://en.wikipedia.org/wiki/Heteroskedasticity-consistent_standard_errors

    Examples:
        >>> from experiment.sums import JointSums
        >>> control = JointSums.from_values([3.0, 5.0, 4.0, 7.0, 5.0], [2.0, 4.0, 3.0, 5.0, 5.0])
        >>> treatment = JointSums.from_values([5.0, 6.0, 9.0, 7.0, 6.0], [3.0, 4.0, 6.0, 5.0, 4.0])
        >>> res = cuped_ttest(control, treatment)
        >>> res.mean_control, res.mean_treatment, res.lift_abs.round(4)
        (array([4.8]), array([6.6]), array([1.12]))
        >>> res.theta.round(4), res.variance_reduction.round(4), res.p_value.round(4)
        (array([1.1333]), array([0.8563]), array([0.0223]))
    """
    control, treatment = check_arms(control, treatment, JointSums)
    alpha = check_scalar(alpha, "alpha", gt=0, lt=1)
    alternative = check_choice(alternative, "alternative", ALTERNATIVES)
    relative_interval = check_choice(relative_interval, "relative_interval", RELATIVE_INTERVALS)

    theta = _theta(control, treatment)
    with np.errstate(invalid="ignore"):
        n = control.n + treatment.n
        x_pooled = (control.n * control.mean_x + treatment.n * treatment.mean_x) / n
    adj_c = control.mean_y - theta * (control.mean_x - x_pooled)
    adj_t = treatment.mean_y - theta * (treatment.mean_x - x_pooled)
    var_c, flat_c = _adjusted_var(control, theta)
    var_t, flat_t = _adjusted_var(treatment, theta)
    too_few = (control.n < 2) | (treatment.n < 2)
    reason = np.select([too_few, flat_c & flat_t], [TOO_FEW_UNITS, ZERO_VARIANCE], OK)

    res = lift_result(
        adj_c,
        adj_t,
        var_c,
        var_t,
        welch_dof(var_c, var_t, control.n, treatment.n),
        alpha=alpha,
        alternative=alternative,
        relative_interval=relative_interval,
        reason=reason,
    )
    inferable = reason == OK
    rel = _relative(
        res,
        control,
        theta,
        var_t,
        inferable=inferable,
        alpha=alpha,
        alternative=alternative,
        method=relative_interval,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        var_unadj = control.y.var / control.n + treatment.y.var / treatment.n
        reduction = np.where(inferable, 1.0 - (var_c + var_t) / var_unadj, np.nan)
    return CupedResult(
        **_lift_fields(res, rel, control, treatment, inferable=inferable),
        mean_control_adj=adj_c,
        mean_treatment_adj=adj_t,
        theta=theta,
        variance_reduction=reduction,
    )


def _lift_fields(
    res: LiftResult,
    rel: _Relative,
    control: JointSums,
    treatment: JointSums,
    *,
    inferable: BoolArray,
) -> dict[str, Any]:
    """The ``LiftResult`` fields: the adjusted test's, with raw means and the relative part."""
    zero_base = inferable & (control.mean_y == 0)
    # The adjusted means' relative codes are replaced by those of the unadjusted baseline.
    fixed_reason = np.where(np.isin(res.reason, _RELATIVE_CODES), OK, res.reason)
    fixed_reason = np.where(inferable & (rel.reason != OK), rel.reason, fixed_reason)
    base_fields = {field.name: getattr(res, field.name) for field in fields(LiftResult)}
    return base_fields | {
        "mean_control": control.mean_y,
        "mean_treatment": treatment.mean_y,
        "lift_rel": rel.lift_rel,
        "se_rel": rel.se_rel,
        "ci_low": rel.ci_low,
        "ci_high": rel.ci_high,
        "var_base": rel.var_base,
        "cov_base": rel.cov_base,
        "reason": np.where(zero_base, ZERO_BASELINE, fixed_reason).astype(res.reason.dtype),
    }


@dataclass(frozen=True, kw_only=True)
class _Relative:
    """The relative lift on the unadjusted control mean and what its interval needs."""

    lift_rel: FloatArray
    se_rel: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    var_base: FloatArray
    cov_base: FloatArray
    reason: StrArray


def _relative(
    res: LiftResult,
    control: JointSums,
    theta: FloatArray,
    var_t: FloatArray,
    *,
    inferable: BoolArray,
    alpha: float,
    alternative: Alternative,
    method: RelativeInterval,
) -> _Relative:
    """The relative lift on the unadjusted control mean: ``lift_rel``, its SE and interval.

    With ``N = ȳ_t - θ (x̄_t - x̄_c) = ȳ_c + lift_abs`` and ``D = ȳ_c``,
    ``1 + lift_rel = N / D``; ``Var(D) = s_y,c² / n_c`` and ``Cov(N, D) = θ s_xy,c / n_c``
    (``θ`` held fixed), so the delta-method variance accounts for the control mean
    sitting in both the numerator and the denominator, and Fieller's interval has
    what it needs.
    """
    base = np.where(control.mean_y != 0, control.mean_y, np.nan)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lift_rel = res.lift_abs / base
        k = 1.0 + lift_rel
        var_ctrl_rel = (
            k**2 * control.y.var - 2.0 * theta * k * control.cov + theta**2 * control.x.var
        ) / control.n
        se_rel = np.where(inferable, np.sqrt((var_t + var_ctrl_rel) / base**2), np.nan)
        var_base = np.where(inferable, control.y.var / control.n, np.nan)
        cov_base = np.where(inferable, theta * control.cov / control.n, np.nan)
        crit = critical_value(alpha, res.dof, alternative)
        ci_low, ci_high, reason = relative_bounds(
            lift_rel,
            se_rel,
            crit,
            DIRECTION[alternative] * np.sign(base),
            base=base,
            var_base=var_base,
            cov_base=cov_base,
            method=method,
        )
    return _Relative(
        lift_rel=lift_rel,
        se_rel=se_rel,
        ci_low=ci_low,
        ci_high=ci_high,
        var_base=var_base,
        cov_base=cov_base,
        reason=reason,
    )


def _theta(control: JointSums, treatment: JointSums) -> FloatArray:
    """Pooled within-arm slope of ``y`` on ``x``; 0 where ``x`` is constant in both arms."""
    m2_x = control.m2_x + treatment.m2_x
    n = control.n + treatment.n
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.nan_to_num((control.n * control.mean_x + treatment.n * treatment.mean_x) / n)
        flat = m2_x <= n * (_FLAT_X * scale) ** 2
        theta = (control.c_xy + treatment.c_xy) / np.where(flat, 1.0, m2_x)
    return np.asarray(np.where(flat, 0.0, theta), dtype=np.float64)


def _adjusted_var(sums: JointSums, theta: FloatArray) -> tuple[FloatArray, BoolArray]:
    """Variance of the adjusted mean, ``(m2_y - 2θ c_xy + θ² m2_x) / ((n - 1) n)``, and flatness.

    The centred sum of squares of ``y - θ x`` is exact in these co-moments, so no raw
    power sum is ever differenced.
    """
    m2_adj = sums.m2_y - 2.0 * theta * sums.c_xy + theta**2 * sums.m2_x
    flat = m2_adj <= _NOISE * (sums.m2_y + theta**2 * sums.m2_x)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.maximum(m2_adj, 0.0) / ((sums.n - 1.0) * sums.n)
    return np.where(sums.n >= 2, var, np.nan), np.asarray(flat)
