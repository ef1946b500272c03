"""Shared inference for two-arm lifts: the result type, tails and critical values.

``welch_ttest`` and ``ratio_ttest`` differ only in how they get each arm's estimate
and the variance of that estimate; everything after that (Welch degrees of freedom,
p-values, absolute and relative confidence intervals, reason codes) lives here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from experiment.stats._dist import t_isf, t_sf
from experiment.stats._relative import RELATIVE_INTERVALS, RelativeInterval, relative_bounds
from experiment.stats.messages import OK, REASONS, ZERO_BASELINE, ZERO_TREATMENT

__all__ = [
    "ALTERNATIVES",
    "DIRECTION",
    "RELATIVE_INTERVALS",
    "Alternative",
    "BoolArray",
    "FloatArray",
    "LiftResult",
    "RelativeInterval",
    "StrArray",
    "bounds",
    "critical_value",
    "lift_result",
    "p_value",
    "welch_dof",
]

FloatArray = NDArray[np.float64]
StrArray = NDArray[np.str_]
BoolArray = NDArray[np.bool_]

Alternative = Literal["two-sided", "greater", "less"]
ALTERNATIVES: tuple[Alternative, ...] = ("two-sided", "greater", "less")

# Which side of a confidence interval is bounded: +1 lower bound only ("greater"),
# -1 upper bound only ("less"), 0 both.
DIRECTION: dict[Alternative, int] = {"two-sided": 0, "greater": 1, "less": -1}

# One string dtype for every ``reason`` array, wide enough for the longest code, so
# results from different calls concatenate without truncation.
_REASON_DTYPE = np.dtype(f"<U{max(len(code) for code in REASONS)}")


@dataclass(frozen=True, eq=False)
class LiftResult:
    """Lift of treatment over control, one element per cell.

    Attributes:
        mean_control: Control estimate (a mean, or a ratio of means for ratio metrics).
        mean_treatment: Treatment estimate.
        lift_abs: ``mean_treatment - mean_control``.
        lift_rel: ``lift_abs / mean_control``.
        se_abs: Standard error of ``lift_abs``.
        se_rel: Delta-method standard error of ``lift_rel``.
        ci_abs_low: Lower confidence bound of ``lift_abs`` (``-inf`` for ``"less"``).
        ci_abs_high: Upper confidence bound of ``lift_abs`` (``inf`` for ``"greater"``).
        ci_low: Lower confidence bound of ``lift_rel``, by ``relative_interval``.
        ci_high: Upper confidence bound of ``lift_rel``.
        p_value: p-value of the test of the absolute difference.
        dof: Degrees of freedom of the test (Welch-Satterthwaite; ``inf`` for z-tests).
        reason: ``""``, or a code from ``experiment.stats.messages`` saying why some
            fields are ``nan``.
        var_base: Variance of the relative lift's denominator (the control estimate).
        cov_base: Covariance of the numerator ``mean_control·(1 + lift_rel)`` with it
            (0 for independent arms; CUPED's adjusted difference shares the control
            arm). With ``se_rel`` these give Fieller's interval at any critical value.
        relative_interval: How ``ci_low``/``ci_high`` were built: ``"log"``,
            ``"delta"`` or ``"fieller"`` (``experiment.stats._relative``).
    """

    mean_control: FloatArray
    mean_treatment: FloatArray
    lift_abs: FloatArray
    lift_rel: FloatArray
    se_abs: FloatArray
    se_rel: FloatArray
    ci_abs_low: FloatArray
    ci_abs_high: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray
    dof: FloatArray
    reason: StrArray
    var_base: FloatArray
    cov_base: FloatArray
    relative_interval: RelativeInterval


def welch_dof(var_c: FloatArray, var_t: FloatArray, n_c: FloatArray, n_t: FloatArray) -> FloatArray:
    """Welch-Satterthwaite degrees of freedom, per cell.

    Args:
        var_c: Variance of the control estimate (``s² / n`` for a mean).
        var_t: Variance of the treatment estimate.
        n_c: Units in the control arm.
        n_t: Units in the treatment arm.

    Returns:
        ``(v_c + v_t)² / (v_c² / (n_c - 1) + v_t² / (n_t - 1))``; ``nan`` where undefined.

    References:
        https://en.wikipedia.org/wiki/Welch%E2%80%93Satterthwaite_equation

    Examples:
        >>> welch_dof(np.array([0.1]), np.array([0.1]), np.array([11.0]), np.array([11.0]))
        array([20.])
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(
            (var_c + var_t) ** 2 / (var_c**2 / (n_c - 1.0) + var_t**2 / (n_t - 1.0)),
            dtype=np.float64,
        )


def p_value(statistic: FloatArray, dof: FloatArray, alternative: Alternative) -> FloatArray:
    """p-value of a t statistic (a z statistic when ``dof`` is ``inf``), from tail functions.

    Args:
        statistic: Test statistic per cell.
        dof: Degrees of freedom per cell.
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.

    Returns:
        The p-value per cell; ``nan`` where the statistic or ``dof`` is ``nan``.

    References:
        https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.t.html

    Examples:
        >>> p_value(np.array([1.959963984540054]), np.array([np.inf]), "two-sided").round(6)
        array([0.05])
    """
    if alternative == "greater":
        tail = t_sf(statistic, dof)
    elif alternative == "less":
        tail = t_sf(-statistic, dof)
    else:  # two-sided
        tail = 2.0 * t_sf(np.abs(statistic), dof)
    return np.asarray(tail, dtype=np.float64)


def critical_value(alpha: float, dof: FloatArray, alternative: Alternative) -> FloatArray:
    """Critical value of the t distribution for a ``1 - alpha`` confidence interval.

    Args:
        alpha: Significance level.
        dof: Degrees of freedom per cell (``inf`` gives the normal quantile).
        alternative: Two-sided intervals put ``alpha / 2`` in each tail; one-sided
            intervals put all of ``alpha`` in one.

    Returns:
        The upper quantile per cell.

    References:
        https://docs.scipy.org/doc/scipy/reference/generated/scipy.stats.t.html

    Examples:
        >>> critical_value(0.05, np.array([np.inf]), "two-sided").round(4)
        array([1.96])
    """
    tail = alpha / 2.0 if alternative == "two-sided" else alpha
    return np.asarray(t_isf(tail, dof), dtype=np.float64)


def bounds(
    estimate: FloatArray, se: FloatArray, crit: FloatArray, direction: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Confidence bounds ``estimate ∓ crit·se``, with the open side at ``±inf``."""
    half = crit * se
    unknown = np.isnan(estimate) | np.isnan(half)
    low = np.where(direction < 0, -np.inf, estimate - half)
    high = np.where(direction > 0, np.inf, estimate + half)
    # An undefined estimate has no interval at all, not a half-infinite one.
    return np.where(unknown, np.nan, low), np.where(unknown, np.nan, high)


def lift_result(
    mean_c: FloatArray,
    mean_t: FloatArray,
    var_c: FloatArray,
    var_t: FloatArray,
    dof: FloatArray,
    *,
    alpha: float,
    alternative: Alternative,
    reason: StrArray,
    relative_interval: RelativeInterval = "fieller",
) -> LiftResult:
    """Finish a ``LiftResult`` from per-arm estimates and the variances of those estimates.

    The relative lift's standard error is the delta method for a ratio of independent
    estimates, ``Var(lift_rel) ≈ v_t / μ_c² + μ_t² v_c / μ_c⁴``; its interval, at the
    same critical value as the absolute one, is built by ``relative_interval``
    (Fieller by default, cut at -100%; see ``_relative``). When
    ``μ_c < 0`` the relative lift has the opposite sign of the absolute lift, so a
    one-sided relative interval is bounded on the other side.

    Args:
        mean_c: Control estimate per cell.
        mean_t: Treatment estimate per cell.
        var_c: Variance of the control estimate per cell.
        var_t: Variance of the treatment estimate per cell.
        dof: Degrees of freedom per cell.
        alpha: Significance level, already validated.
        alternative: Alternative hypothesis, already validated.
        reason: ``""`` where inference is possible, else the code that says why not;
            ``ZERO_BASELINE`` is added here where ``mean_c == 0``, and
            ``ZERO_TREATMENT`` where the treatment estimate is 0 with no variance: the
            delta method would give the interval [-100%, -100%], a certainty the data
            do not have, so the relative interval is ``nan`` there. The relative
            construction adds ``NONPOSITIVE_RATIO`` or ``UNBOUNDED_INTERVAL``.
        relative_interval: ``"log"``, ``"delta"`` or ``"fieller"``.

    Returns:
        The finished result. Cells with a reason keep their point estimates and get
        ``nan`` for every standard error, interval, p-value and ``dof``.

    References:
        gbstats ``frequentist_variance`` (relative branch) and ``variance_of_ratios``:
        https://github.com/growthbook/growthbook/blob/main/packages/stats/gbstats/utils.py
        Delta method: https://en.wikipedia.org/wiki/Delta_method

    Examples:
        >>> one = np.array([1.0])
        >>> res = lift_result(one, 1.1 * one, 0.01 * one, 0.01 * one, np.array([np.inf]),
        ...                   alpha=0.05, alternative="two-sided", reason=np.array([""]))
        >>> res.lift_rel.round(3), res.reason.tolist()
        (array([0.1]), [''])
    """
    direction = DIRECTION[alternative]
    inferable = reason == OK
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lift_abs = mean_t - mean_c
        se_abs = np.where(inferable, np.sqrt(var_c + var_t), np.nan)
        dof = np.where(inferable, dof, np.nan)
        crit = critical_value(alpha, dof, alternative)
        ci_abs_low, ci_abs_high = bounds(lift_abs, se_abs, crit, np.full_like(dof, direction))

        base = np.where(mean_c != 0, mean_c, np.nan)
        lift_rel = lift_abs / base
        no_spread = inferable & (mean_t == 0) & (var_t == 0) & (mean_c != 0)
        se_rel = np.sqrt(var_t / base**2 + mean_t**2 * var_c / base**4)
        se_rel = np.where(inferable & ~no_spread, se_rel, np.nan)
        var_base = np.where(inferable, var_c, np.nan)
        cov_base = np.zeros_like(var_base)
        ci_low, ci_high, rel_reason = relative_bounds(
            lift_rel,
            se_rel,
            crit,
            direction * np.sign(base),
            base=base,
            var_base=var_base,
            cov_base=cov_base,
            method=relative_interval,
        )
        pvalue = p_value(lift_abs / se_abs, dof, alternative)
    return LiftResult(
        mean_control=mean_c,
        mean_treatment=mean_t,
        lift_abs=lift_abs,
        lift_rel=lift_rel,
        se_abs=se_abs,
        se_rel=se_rel,
        ci_abs_low=ci_abs_low,
        ci_abs_high=ci_abs_high,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=pvalue,
        dof=dof,
        reason=np.select(
            [inferable & (mean_c == 0), no_spread, inferable & (rel_reason != OK)],
            [ZERO_BASELINE, ZERO_TREATMENT, rel_reason],
            reason,
        ).astype(_REASON_DTYPE),
        var_base=var_base,
        cov_base=cov_base,
        relative_interval=relative_interval,
    )
