"""Confidence intervals that agree with multiplicity-adjusted p-values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from experiment.stats._checks import check_choice, check_scalar
from experiment.stats._dist import t_isf
from experiment.stats._lift import (
    ALTERNATIVES,
    DIRECTION,
    Alternative,
    BoolArray,
    FloatArray,
    LiftResult,
    bounds,
    critical_value,
)
from experiment.stats._relative import relative_bounds, scale_statistic

__all__ = ["AdjustedInterval", "adjusted_interval"]


@dataclass(frozen=True, kw_only=True, eq=False)
class AdjustedInterval:
    """Relative and absolute intervals widened to the adjusted p-value, per cell.

    Attributes:
        ci_adj_low: Lower bound of ``lift_rel``, adjusted for the family.
        ci_adj_high: Upper bound of ``lift_rel``, adjusted for the family.
        ci_abs_adj_low: Lower bound of ``lift_abs``, adjusted for the family.
        ci_abs_adj_high: Upper bound of ``lift_abs``, adjusted for the family.
    """

    ci_adj_low: FloatArray
    ci_adj_high: FloatArray
    ci_abs_adj_low: FloatArray
    ci_abs_adj_high: FloatArray


def adjusted_interval(
    lift: LiftResult,
    p_adjusted: ArrayLike,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> AdjustedInterval:
    """Intervals that exclude 0 exactly when the adjusted test rejects (``p_adjusted < alpha``).

    The "implied critical value" construction: on each interval's own scale, with
    ``z_s`` the estimate over its standard error on that scale and
    ``t_adj = t.isf(p_adjusted / 2, dof)`` (two-sided; ``t.isf(p_adjusted, dof)``
    one-sided) the test statistic whose raw p-value would equal ``p_adjusted``, the
    interval is rebuilt with ``crit_adj = crit · |z_s| / t_adj``. It excludes 0 iff
    ``|z_s| > crit_adj`` iff ``t_adj > crit`` iff ``p_adjusted < alpha``: exactly, on
    every scale and for any correction (Holm, Benjamini-Hochberg, none), because
    nothing but ``p_adjusted`` is read. On the absolute scale (and for Fieller's
    relative interval, which inverts the same test) ``z_s`` is the test's own
    statistic, so without correction the adjusted interval is the raw one; on the
    log or symmetric-delta scale ``z_s`` differs slightly from the test's statistic,
    so without correction the adjusted interval is the raw one rescaled by
    ``|z_s| / |t|``, the smallest change that makes it agree with the p-value.

    Why not Bonferroni intervals at ``alpha / m``: they agree with a Bonferroni
    test only. Holm rejects more than Bonferroni and Benjamini-Hochberg more still,
    so a Bonferroni interval can contain 0 for a row the correction declares
    significant (and simultaneous Holm or BH intervals do not exist in closed form).
    The implied critical value is the interval a reader can check against the
    verdict. A ``p_adjusted`` of 1 gives an unbounded interval (cut at -100% on the
    log and Fieller scales): the corrected test says nothing about the effect.

    Args:
        lift: The raw result per cell (any construction of the relative interval;
            the same one is used here).
        p_adjusted: Adjusted p-value per cell, however it was computed.
        alpha: Significance level of the intervals and of the test.
        alternative: The alternative the lift (and its p-value) used.

    Returns:
        The adjusted intervals per cell; ``nan`` where the raw interval is ``nan``.

    Raises:
        TypeError: ``lift`` is not a ``LiftResult`` or ``alpha`` is not a number.
        ValueError: ``alpha`` is not in (0, 1), ``alternative`` is unknown, or
            ``p_adjusted`` does not have the lift's shape.

    References:
        Confidence intervals consistent with multiple-testing adjustments (the
        "adjusted confidence interval" by the inverse of the adjusted p-value):
        Westfall, Tobias & Wolfinger (2011), *Multiple Comparisons and Multiple
        Tests Using SAS*, ch. 2; https://en.wikipedia.org/wiki/Holm%E2%80%93Bonferroni_method

    Examples:
        >>> from experiment.stats import welch_ttest
        >>> from experiment.sums import MeanSums
        >>> control = MeanSums(n=[2000], mean=[10.0], m2=[1999 * 16.0])
        >>> treatment = MeanSums(n=[2000], mean=[10.4], m2=[1999 * 16.0])
        >>> lift = welch_ttest(control, treatment)
        >>> lift.p_value.round(4), lift.ci_abs_low.round(4)
        (array([0.0016]), array([0.152]))
        >>> adj = adjusted_interval(lift, lift.p_value * 40)
        >>> bool(adj.ci_abs_adj_low[0] < 0), bool(adj.ci_adj_low[0] < 0)
        (True, True)
    """
    if not isinstance(lift, LiftResult):
        raise TypeError("lift must be an instance of LiftResult.")
    alpha = check_scalar(alpha, "alpha", gt=0, lt=1)
    alternative = check_choice(alternative, "alternative", ALTERNATIVES)
    p_adj = np.asarray(p_adjusted, dtype=np.float64)
    if p_adj.shape != lift.lift_abs.shape:
        raise ValueError(
            f"p_adjusted has shape {p_adj.shape}; it needs one value per cell of `lift`, "
            f"shape {lift.lift_abs.shape}."
        )
    direction = DIRECTION[alternative]
    crit = critical_value(alpha, lift.dof, alternative)
    tail = p_adj / 2.0 if alternative == "two-sided" else p_adj
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t_adj = np.asarray(t_isf(np.clip(tail, 0.0, 1.0), lift.dof), dtype=np.float64)
        z_abs = lift.lift_abs / lift.se_abs
        wrong_side = direction * z_abs < 0  # one-sided estimate against the alternative
        ci_abs_low, ci_abs_high = bounds(
            lift.lift_abs,
            lift.se_abs,
            _implied(crit, z_abs, t_adj, wrong_side),
            np.full_like(crit, direction),
        )
        z_rel = scale_statistic(
            lift.lift_rel,
            lift.se_rel,
            base=lift.mean_control,
            var_base=lift.var_base,
            cov_base=lift.cov_base,
            method=lift.relative_interval,
        )
        ci_low, ci_high, _ = relative_bounds(
            lift.lift_rel,
            lift.se_rel,
            _implied(crit, z_rel, t_adj, wrong_side),
            direction * np.sign(lift.mean_control),
            base=lift.mean_control,
            var_base=lift.var_base,
            cov_base=lift.cov_base,
            method=lift.relative_interval,
        )
    nan_rel = np.isnan(lift.ci_low) & np.isnan(lift.ci_high)
    return AdjustedInterval(
        ci_adj_low=np.where(nan_rel, np.nan, ci_low),
        ci_adj_high=np.where(nan_rel, np.nan, ci_high),
        ci_abs_adj_low=ci_abs_low,
        ci_abs_adj_high=ci_abs_high,
    )


def _implied(
    crit: FloatArray, z: FloatArray, t_adj: FloatArray, wrong_side: BoolArray
) -> FloatArray:
    """The implied critical value ``crit · |z| / t_adj``, with its edge cases.

    ``t_adj == inf`` (``p_adjusted`` underflowed to 0): the raw ``crit``. ``t_adj <= 0``
    on the tested side (two-sided ``p_adjusted = 1``, or a one-sided ``p_adjusted``
    pushed to 0.5 or more by the correction): ``inf``, since no finite interval
    agrees with a test that says nothing. A one-sided estimate on the wrong side
    keeps 0 inside its interval at any critical value, so it gets
    ``crit · |z| / |t_adj|`` (the raw ``crit`` without correction). ``nan`` stays ``nan``.
    """
    size = np.abs(t_adj)
    usable = (size > 0) & (size < np.inf)
    right = np.where(t_adj > 0, crit * np.abs(z) / t_adj, np.inf)
    wrong = np.where(usable, crit * np.abs(z) / size, crit)
    implied = np.where(wrong_side, wrong, right)
    implied = np.where(t_adj == np.inf, crit, implied)  # p_adjusted underflowed to 0
    return np.asarray(np.where(np.isnan(t_adj), np.nan, implied), dtype=np.float64)
