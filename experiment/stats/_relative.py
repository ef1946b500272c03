"""Confidence intervals for a relative lift: symmetric delta, log-ratio and Fieller.

The relative lift is ``r = N / D - 1`` with ``D`` the control estimate and
``N = D (1 + r)`` the treatment estimate (for CUPED, the control mean plus the
adjusted difference). Each construction needs only ``r``, its delta-method standard
error and, for Fieller, the variance of ``D`` and the covariance of ``N`` and ``D``.
This module imports nothing from the rest of the package so that ``_lift`` can use it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from experiment.stats.messages import NONPOSITIVE_RATIO, OK, UNBOUNDED_INTERVAL

__all__ = ["RELATIVE_INTERVALS", "RelativeInterval", "relative_bounds", "scale_statistic"]

FloatArray = NDArray[np.float64]
StrArray = NDArray[np.str_]

RelativeInterval = Literal["log", "delta", "fieller"]
RELATIVE_INTERVALS: tuple[RelativeInterval, ...] = ("log", "delta", "fieller")


def relative_bounds(
    lift_rel: FloatArray,
    se_rel: FloatArray,
    crit: FloatArray,
    side: FloatArray,
    *,
    base: FloatArray,
    var_base: FloatArray,
    cov_base: FloatArray,
    method: RelativeInterval,
) -> tuple[FloatArray, FloatArray, StrArray]:
    """Bounds of the relative lift and a reason code where the construction is undefined.

    * ``"delta"``: ``r ∓ crit·se``, symmetric; can fall below -100%.
    * ``"log"``: ``exp(log(1 + r) ∓ crit·se / (1 + r)) - 1``. The delta method on
      ``log(N / D)``; for independent means ``(se / (1 + r))² = v_t / m_t² + v_c / m_c²``
      exactly. Never below -100%; ``nan`` with ``"nonpositive_ratio"`` where
      ``1 + r <= 0`` (a CUPED adjustment can push it there).
    * ``"fieller"``: the set of ratios ``ρ`` with
      ``(N - ρ D)² <= crit² Var(N - ρ D)``, minus 1, cut at -100% (the true ratio of
      two non-negative means is >= 0, so the cut loses no coverage). It inverts the
      test of ``N = ρ D``, so at ``ρ = 1`` it excludes a lift of 0 exactly when the
      absolute test rejects. Bounded only when ``D`` is significantly non-zero
      (``D² > crit² Var(D)``); else the set is the whole line or two rays
      ``(-inf, ρ₁]`` and ``[ρ₂, inf)``, reason ``"unbounded_interval"``. When the lower ray
      lies entirely below -100% (``ρ₁ < 0``), the cut set is the single ray
      ``[ρ₂ - 1, inf)``: ``low`` is kept and ``high`` is ``inf`` (an honest "at
      least"); otherwise both bounds are ``nan``.

    Args:
        lift_rel: Relative lift per cell.
        se_rel: Its delta-method standard error.
        crit: Critical value per cell (normal or t quantile, or a sequential factor).
        side: ``+1`` lower bound only (upper ``inf``), ``-1`` upper bound only (lower
            bound open: ``-inf`` for ``"delta"``, the -100% floor otherwise), ``0`` both.
        base: The control estimate ``D``.
        var_base: ``Var(D)``.
        cov_base: ``Cov(N, D)``.
        method: The construction.

    Returns:
        ``(low, high, reason)``; ``reason`` is ``""`` where the bounds are defined or
        were already ``nan`` for another reason.

    References:
        Fieller (1954), "Some problems in interval estimation", JRSS B 16(2).
        Log-ratio (delta method on the log scale): Kohavi, Tang & Xu (2020),
        *Trustworthy Online Controlled Experiments*, ch. 18;
        https://en.wikipedia.org/wiki/Ratio_distribution
    """
    unknown = np.isnan(lift_rel) | np.isnan(se_rel) | np.isnan(crit)
    reason = np.full(lift_rel.shape, OK)
    ray = np.zeros(lift_rel.shape, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if method == "delta":
            low, high, floor = lift_rel - crit * se_rel, lift_rel + crit * se_rel, -np.inf
        elif method == "log":
            k = 1.0 + lift_rel
            half = crit * se_rel / k
            low, high, floor = k * np.exp(-half) - 1.0, k * np.exp(half) - 1.0, -1.0
            bad = ~unknown & ~(k > 0)
            low, high = np.where(bad, np.nan, low), np.where(bad, np.nan, high)
            reason = np.where(bad, NONPOSITIVE_RATIO, reason)
        else:  # fieller
            low, high, bad, ray = _fieller(lift_rel, se_rel, crit, (base, var_base, cov_base))
            # Every metric is non-negative per user, so the true ratio is >= 0: cutting
            # the confidence set at -100% loses no coverage.
            low, floor = np.where(ray, high, np.maximum(low, -1.0)), -1.0
            high = np.where(ray, np.inf, high)
            bad &= ~unknown
            reason = np.where(bad, UNBOUNDED_INTERVAL, reason)
    low = np.where(side < 0, floor, low)
    high = np.where(side > 0, np.inf, high)
    # A single Fieller ray keeps its finite lower end (not for an upper-bound-only test).
    undefined = unknown | ((reason != OK) & ~(ray & (side >= 0)))
    low, high = np.where(undefined, np.nan, low), np.where(undefined, np.nan, high)
    return np.asarray(low, np.float64), np.asarray(high, np.float64), reason


def _fieller(
    lift_rel: FloatArray,
    se_rel: FloatArray,
    crit: FloatArray,
    denominator: tuple[FloatArray, FloatArray, FloatArray],
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_], NDArray[np.bool_]]:
    """Roots ``ρ`` of ``(N - ρD)² = c² (v_N - 2ρ c_ND + ρ² v_D)`` minus 1; where unbounded.

    The last array marks the unbounded sets that are a single ray ``[hi, inf)`` above
    -100%.

    ``denominator`` is ``(D, Var(D), Cov(N, D))``.
    """
    base, var_base, cov_base = denominator
    k = 1.0 + lift_rel
    num = base * k
    var_num = _var_num(lift_rel, se_rel, base, var_base, cov_base)
    c2 = crit**2
    a = base**2 - c2 * var_base
    b = num * base - c2 * cov_base
    disc2 = b**2 - a * (num**2 - c2 * var_num)
    disc = np.sqrt(np.maximum(disc2, 0.0))
    unbounded = ~(a > 0)
    lo = np.minimum((b - disc) / a, (b + disc) / a) - 1.0
    hi = np.maximum((b - disc) / a, (b + disc) / a) - 1.0
    # a < 0 with two real roots: the set is (-inf, lo] and [hi, inf) (as lifts); its lower
    # ray lies below -100% when lo < -1, leaving the single ray [hi, inf) (informative
    # only when hi > -1: else the cut set is all of [-1, inf)).
    ray = (a < 0) & (disc2 > 0) & (lo < -1.0) & (hi > -1.0) & np.isfinite(hi)
    return lo, hi, np.asarray(unbounded), np.asarray(ray)


def _var_num(
    lift_rel: FloatArray,
    se_rel: FloatArray,
    base: FloatArray,
    var_base: FloatArray,
    cov_base: FloatArray,
) -> FloatArray:
    """``Var(N)`` from the delta identity ``se² D² = v_N - 2k c_ND + k² v_D``."""
    k = 1.0 + lift_rel
    return np.asarray(se_rel**2 * base**2 + 2.0 * k * cov_base - k**2 * var_base, np.float64)


def scale_statistic(
    lift_rel: FloatArray,
    se_rel: FloatArray,
    *,
    base: FloatArray,
    var_base: FloatArray,
    cov_base: FloatArray,
    method: RelativeInterval,
) -> FloatArray:
    """The estimate over its standard error on the interval's own scale.

    The interval at critical value ``c`` excludes a lift of 0 exactly when
    ``|statistic| > c``: ``r / se`` for ``"delta"``, ``log(1 + r)(1 + r) / se`` for
    ``"log"``, and ``(N - D) / sqrt(Var(N - D))`` (the absolute test's statistic) for
    ``"fieller"``.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "delta":
            return np.asarray(lift_rel / se_rel, np.float64)
        if method == "log":
            k = 1.0 + lift_rel
            return np.asarray(np.log(k) * k / se_rel, np.float64)
        var_diff = _var_num(lift_rel, se_rel, base, var_base, cov_base) - 2 * cov_base + var_base
        return np.asarray(base * lift_rel / np.sqrt(var_diff), np.float64)
