"""Always-valid inference: asymptotic confidence sequences and p-values that allow peeking."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from experiment.stats._checks import check_scalar
from experiment.stats._lift import FloatArray, LiftResult, StrArray
from experiment.stats._relative import relative_bounds
from experiment.stats.messages import OK, TOO_FEW_UNITS

__all__ = ["SequentialResult", "sequential_interval", "sequential_rho"]


@dataclass(frozen=True, eq=False)
class SequentialResult:
    """Always-valid intervals and p-values per cell, valid at every look at once.

    Attributes:
        seq_ci_low: Lower bound of the confidence sequence for ``lift_rel``.
        seq_ci_high: Upper bound of the confidence sequence for ``lift_rel``.
        seq_ci_abs_low: Lower bound of the confidence sequence for ``lift_abs``.
        seq_ci_abs_high: Upper bound of the confidence sequence for ``lift_abs``.
        seq_p_value: Always-valid p-value of the absolute difference: below ``alpha``
            exactly when the absolute confidence sequence excludes 0.
        rho: Mixing parameter of the confidence sequence (one value for all cells).
        reason: ``""``, or the code saying why the cell's fields are ``nan`` (the
            lift's own reason, or ``"too_few_units"`` when ``n_total < 1``).
    """

    seq_ci_low: FloatArray
    seq_ci_high: FloatArray
    seq_ci_abs_low: FloatArray
    seq_ci_abs_high: FloatArray
    seq_p_value: FloatArray
    rho: float
    reason: StrArray


def sequential_rho(alpha: float, tuning: float) -> float:
    """Mixing parameter ``ρ`` that makes the confidence sequence tightest at ``n = tuning``.

    ``ρ = sqrt((-2 ln alpha + ln(1 - 2 ln alpha)) / N*)`` (Waudby-Smith et al., eq. 161, as
    gbstats ``SequentialTwoSidedTTest``).

    Args:
        alpha: Significance level, in (0, 1).
        tuning: The total sample size ``N*`` at which a decision is expected.

    Returns:
        ``ρ``.

    Raises:
        TypeError: An argument is not a number.
        ValueError: ``alpha`` is not in (0, 1) or ``tuning`` is not positive.

    References:
        Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2023), "Time-uniform central
        limit theory and asymptotic confidence sequences", eq. 161,
        https://arxiv.org/abs/2103.06476
        gbstats ``frequentist/tests.py`` (``SequentialTwoSidedTTest``):
        https://github.com/growthbook/growthbook/blob/main/packages/stats/gbstats/frequentist/tests.py

    Examples:
        >>> round(sequential_rho(0.05, 5000), 6)
        0.03984
    """
    alpha = check_scalar(alpha, "alpha", gt=0, lt=1)
    tuning = check_scalar(tuning, "tuning", gt=0, lt=np.inf)
    log_alpha = np.log(alpha)
    return float(np.sqrt((-2.0 * log_alpha + np.log(1.0 - 2.0 * log_alpha)) / tuning))


def sequential_interval(
    lift: LiftResult,
    n_total: ArrayLike,
    *,
    alpha: float = 0.05,
    tuning: float = 5000.0,
) -> SequentialResult:
    """Two-sided always-valid confidence sequences and p-values from a fixed-horizon lift.

    The estimate and its standard error at the current look (from ``welch_ttest``,
    ``ratio_ttest`` or ``cuped_ttest``) are turned into the asymptotic confidence
    sequence of Waudby-Smith et al. (eq. 9), with the per-unit variance
    ``s² = se² · N`` and ``N`` the units in both arms:

        ``half-width = se · sqrt(2 (N ρ² + 1) ln(sqrt(N ρ² + 1) / alpha) / (N ρ²))``.

    The probability that **any** look's interval misses the true lift is at most
    ``alpha`` (asymptotically), so the experiment can be checked daily and stopped as
    soon as the interval excludes 0. The price is width: about 1.5 to 1.7 times the
    fixed-horizon interval near ``N = N*``. ``seq_p_value`` is the reciprocal of the
    same mixture martingale, ``min(1, sqrt(N ρ² + 1) · exp(-ρ² N z² / (2 (N ρ² + 1))))``
    with ``z = lift_abs / se_abs`` (eq. 155, as gbstats), so it is below ``alpha`` exactly
    when the absolute sequence excludes 0; ``ρ`` stays fixed by the configured ``alpha``.
    The sequences are two-sided whatever alternative the lift was computed with
    (only its estimates and standard errors are used), and normal, not t, based. The
    relative sequence uses the lift's own ``relative_interval`` construction with the
    sequence's half-width factor in place of the critical value (log-ratio by default:
    never below -100%).

    Args:
        lift: The lift at the current look, one element per cell.
        n_total: Units in both arms together per cell (``n_control + n_treatment``),
            broadcastable to the lift's shape.
        alpha: Significance level of the sequence, in (0, 1).
        tuning: ``N*``, the total sample size at which the sequence is tightest
            (GrowthBook's default 5000).

    Returns:
        The sequential bounds and p-value per cell; cells whose lift has a reason
        keep it and get ``nan``.

    Raises:
        TypeError: ``lift`` is not a ``LiftResult`` or an option is not a number.
        ValueError: ``alpha`` is not in (0, 1), ``tuning`` is not positive, or
            ``n_total`` does not broadcast to the lift's shape.

    References:
        Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2023), eq. 9 and 155,
        https://arxiv.org/abs/2103.06476
        Howard, Ramdas, McAuliffe & Sekhon (2021), "Time-uniform, nonparametric,
        nonasymptotic confidence sequences", https://arxiv.org/abs/1810.08240
        gbstats ``SequentialTwoSidedTTest`` (the same formulas):
        https://github.com/growthbook/growthbook/blob/main/packages/stats/gbstats/frequentist/tests.py
        GrowthBook docs: https://docs.growthbook.io/statistics/sequential

    Examples:
        >>> from experiment.stats import welch_ttest
        >>> from experiment.sums import MeanSums
        >>> control = MeanSums(n=[2500], mean=[10.0], m2=[2499 * 4.0])
        >>> treatment = MeanSums(n=[2500], mean=[10.2], m2=[2499 * 4.0])
        >>> lift = welch_ttest(control, treatment)
        >>> lift.p_value.round(4), lift.ci_abs_low.round(4)
        (array([0.0004]), array([0.0891]))
        >>> seq = sequential_interval(lift, 5000)
        >>> seq.seq_p_value.round(4), seq.seq_ci_abs_low.round(4)
        (array([0.0116]), array([0.0283]))
    """
    if not isinstance(lift, LiftResult):
        raise TypeError("lift must be an instance of LiftResult.")
    rho = sequential_rho(alpha, tuning)
    try:
        n = np.broadcast_to(np.asarray(n_total, dtype=np.float64), lift.lift_abs.shape)
    except ValueError:
        raise ValueError(
            "n_total holds one count per cell of `lift`, so it must broadcast to shape "
            f"{lift.lift_abs.shape}; got {np.shape(n_total)}."
        ) from None

    valid = n >= 1
    reason = np.where((lift.reason == OK) & ~valid, TOO_FEW_UNITS, lift.reason)
    # Cells without inference already have nan standard errors, so nan propagates.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tr2p1 = n * rho**2 + 1.0
        # Width in units of the standard error; eq. 9 with s² = se² N.
        factor = np.where(
            valid, np.sqrt(2.0 * tr2p1 * np.log(np.sqrt(tr2p1) / alpha) / (n * rho**2)), np.nan
        )
        half_abs = factor * lift.se_abs
        seq_low, seq_high, rel_reason = relative_bounds(
            lift.lift_rel,
            lift.se_rel,
            factor,
            np.zeros_like(factor),
            base=lift.mean_control,
            var_base=lift.var_base,
            cov_base=lift.cov_base,
            method=lift.relative_interval,
        )
        z2 = (lift.lift_abs / lift.se_abs) ** 2
        log_p = 0.5 * np.log(tr2p1) - rho**2 * n * z2 / (2.0 * tr2p1)
        p_value = np.where(valid, np.exp(np.minimum(log_p, 0.0)), np.nan)
    return SequentialResult(
        seq_ci_low=seq_low,
        seq_ci_high=seq_high,
        seq_ci_abs_low=lift.lift_abs - half_abs,
        seq_ci_abs_high=lift.lift_abs + half_abs,
        seq_p_value=p_value,
        rho=rho,
        reason=np.where((reason == OK) & (rel_reason != OK), rel_reason, reason).astype(
            lift.reason.dtype
        ),
    )
