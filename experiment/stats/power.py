"""Minimum detectable effects of a two-sample test, vectorised over cells.

Both forms solve the power equation of a two-sided normal (z) test for the
standardised effect ``d``, exactly as statsmodels' ``NormalIndPower`` does
(both rejection tails are counted)::

    power = Φ(d·√m − z) + Φ(−d·√m − z),   m = n_c·n_t / (n_c + n_t),  z = Φ⁻¹(1 − alpha/2)

and then turn ``d`` into an effect on the metric's scale:

* proportions use Cohen's arcsine effect size ``h = 2·asin(√p₁) − 2·asin(√p₀)``, so
  the MDE is ``sin²(asin(√p₀) + h/2) − p₀`` (an increase);
* means use ``d = δ / σ`` with the baseline standard deviation, so the MDE is ``d·σ``.

References:
    Cohen (1988), Statistical Power Analysis, ch. 6 (arcsine ``h``):
    https://doi.org/10.4324/9780203771587
    statsmodels ``NormalIndPower`` and ``normal_power``:
    https://www.statsmodels.org/stable/generated/statsmodels.stats.power.NormalIndPower.html
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from experiment.stats._checks import check_scalar
from experiment.stats._dist import norm_cdf, norm_isf, norm_pdf, norm_sf
from experiment.stats.messages import OK, TOO_FEW_UNITS, ZERO_BASELINE

__all__ = [
    "MdeResult",
    "SampleSizeResult",
    "detectable_effect_size",
    "mde_mean",
    "mde_proportion",
    "power_normal",
    "sample_size_mean",
    "sample_size_proportion",
]

_NEWTON_STEPS = 50


@dataclass(frozen=True)
class MdeResult:
    """Minimum detectable effects, one element per cell.

    Attributes:
        effect_size: The standardised effect (Cohen's ``h`` or ``d``).
        mde_abs: The smallest detectable increase on the metric's scale.
        mde_rel: ``mde_abs`` relative to the baseline.
        reason: A reason code where the MDE is ``nan`` (see ``messages``), else ``""``.
    """

    effect_size: NDArray[np.float64]
    mde_abs: NDArray[np.float64]
    mde_rel: NDArray[np.float64]
    reason: NDArray[np.str_]


def _effective_n(n_control: ArrayLike, n_treatment: ArrayLike) -> NDArray[np.float64]:
    nc = np.asarray(n_control, dtype=np.float64)
    nt = np.asarray(n_treatment, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where((nc > 0) & (nt > 0), 1.0 / (1.0 / nc + 1.0 / nt), np.nan)
    return np.asarray(m, dtype=np.float64)


def power_normal(
    effect_size: ArrayLike, n_control: ArrayLike, n_treatment: ArrayLike, *, alpha: float
) -> NDArray[np.float64]:
    """Power of a two-sided two-sample z test for a standardised effect (both tails).

    Examples:
        >>> round(float(power_normal(0.2, 393, 393, alpha=0.05)), 2)
        0.8
    """
    alpha = check_scalar(alpha, "alpha", gt=0, lt=1)
    crit = norm_isf(alpha / 2)
    shift = np.asarray(effect_size, dtype=np.float64) * np.sqrt(
        _effective_n(n_control, n_treatment)
    )
    return np.asarray(norm_sf(crit - shift) + norm_cdf(-crit - shift))


def detectable_effect_size(
    n_control: ArrayLike, n_treatment: ArrayLike, *, alpha: float = 0.05, power: float = 0.8
) -> NDArray[np.float64]:
    """The standardised effect a two-sided z test detects with probability ``power``.

    Starts from the one-tail closed form ``(z_{1-alpha/2} + z_power) / √m`` and refines
    with Newton steps on the two-tail power equation (the second tail matters
    only for tiny samples). Cells with an empty arm give ``nan``.
    """
    alpha = check_scalar(alpha, "alpha", gt=0, lt=1)
    power = check_scalar(power, "power", gt=alpha / 2, lt=1)
    m = _effective_n(n_control, n_treatment)
    root = np.sqrt(m)
    crit = norm_isf(alpha / 2)
    d = (crit + norm_isf(1 - power)) / root
    for _ in range(_NEWTON_STEPS):
        f = norm_sf(crit - d * root) + norm_cdf(-crit - d * root) - power
        slope = root * (norm_pdf(crit - d * root) - norm_pdf(-crit - d * root))
        step = np.where(slope > 0, f / np.where(slope > 0, slope, 1.0), 0.0)
        d = d - step
        if np.all(~np.isfinite(step) | (np.abs(step) <= 1e-15 * np.maximum(np.abs(d), 1.0))):
            break
    return np.asarray(d, dtype=np.float64)


def _reasons(n_control: ArrayLike, n_treatment: ArrayLike) -> NDArray[np.str_]:
    nc = np.asarray(n_control, dtype=np.float64)
    nt = np.asarray(n_treatment, dtype=np.float64)
    return np.where((nc > 0) & (nt > 0), OK, TOO_FEW_UNITS).astype(np.str_)


def mde_proportion(
    baseline: ArrayLike,
    n_control: ArrayLike,
    n_treatment: ArrayLike,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> MdeResult:
    """Smallest detectable increase of a conversion rate (Cohen's ``h``, two-sided z test).

    Args:
        baseline: Control conversion rate(s), in [0, 1].
        n_control: Users per cell in control.
        n_treatment: Users per cell in treatment.
        alpha: Two-sided significance level.
        power: Probability of detecting the MDE.

    Returns:
        The MDE per cell; ``nan`` with a reason when an arm is empty, or when no rate
        up to 1 is detectable (reason ``too_few_units``).

    Examples:
        >>> r = mde_proportion(0.03, 10_000, 10_000)
        >>> round(float(r.mde_abs), 5), round(float(r.mde_rel), 3)
        (0.00713, 0.238)
    """
    h = detectable_effect_size(n_control, n_treatment, alpha=alpha, power=power)
    p0 = np.clip(np.asarray(baseline, dtype=np.float64), 0.0, 1.0)
    angle = np.arcsin(np.sqrt(p0)) + h / 2
    reachable = angle <= np.pi / 2
    p1 = np.where(reachable, np.sin(np.minimum(angle, np.pi / 2)) ** 2, np.nan)
    mde_abs = p1 - p0
    with np.errstate(divide="ignore", invalid="ignore"):
        mde_rel = np.where(p0 > 0, mde_abs / p0, np.nan)
    reason = _reasons(n_control, n_treatment)
    reason = np.where((reason == OK) & ~reachable, TOO_FEW_UNITS, reason)
    reason = np.where((reason == OK) & (p0 == 0), ZERO_BASELINE, reason).astype(np.str_)
    return MdeResult(effect_size=h, mde_abs=mde_abs, mde_rel=mde_rel, reason=reason)


def mde_mean(
    mean: ArrayLike,
    sd: ArrayLike,
    n_control: ArrayLike,
    n_treatment: ArrayLike,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> MdeResult:
    """Smallest detectable increase of a mean, given the baseline mean and standard deviation.

    The standardised effect is ``d = δ / σ`` (normal approximation, as
    statsmodels' ``NormalIndPower``), so ``mde_abs = d·σ``.

    Examples:
        >>> r = mde_mean(10.0, 20.0, 5_000, 5_000)
        >>> round(float(r.mde_abs), 4)
        1.1206
    """
    d = detectable_effect_size(n_control, n_treatment, alpha=alpha, power=power)
    mu = np.asarray(mean, dtype=np.float64)
    sigma = np.asarray(sd, dtype=np.float64)
    mde_abs = d * sigma
    with np.errstate(divide="ignore", invalid="ignore"):
        mde_rel = np.where(mu != 0, mde_abs / np.abs(mu), np.nan)
    reason = _reasons(n_control, n_treatment)
    reason = np.where((reason == OK) & (mu == 0), ZERO_BASELINE, reason).astype(np.str_)
    return MdeResult(effect_size=d, mde_abs=mde_abs, mde_rel=mde_rel, reason=reason)


@dataclass(frozen=True)
class SampleSizeResult:
    """Users needed per arm to detect a given lift, one element per cell.

    Attributes:
        effect_size: The standardised effect (Cohen's ``h`` or ``d``) of the lift.
        n_control: Control users needed (not rounded; round up to plan).
        n_treatment: Treatment users needed, ``ratio · n_control``.
        reason: A reason code where the size is ``nan`` (see ``messages``), else ``""``.
    """

    effect_size: NDArray[np.float64]
    n_control: NDArray[np.float64]
    n_treatment: NDArray[np.float64]
    reason: NDArray[np.str_]


def _required_shift(alpha: float, power: float) -> float:
    """The ``d·√m`` at which the two-tailed z test has the requested power."""
    from scipy.optimize import brentq

    crit = norm_isf(alpha / 2)

    def gap(shift: float) -> float:
        return float(norm_sf(crit - shift) + norm_cdf(-crit - shift) - power)

    return float(brentq(gap, 0.0, crit + norm_isf(1 - power) + 10.0, xtol=1e-14))


def _sample_size(
    d: NDArray[np.float64], *, alpha: float, power: float, ratio: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    alpha = check_scalar(alpha, "alpha", gt=0, lt=1)
    power = check_scalar(power, "power", gt=alpha / 2, lt=1)
    ratio = check_scalar(ratio, "ratio", gt=0, lt=np.inf)
    shift = _required_shift(alpha, power)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(np.abs(d) > 0, (shift / np.abs(d)) ** 2, np.nan)
    n_control = m * (1.0 + ratio) / ratio  # m = n_c·n_t / (n_c + n_t), n_t = ratio·n_c
    return n_control, ratio * n_control


def sample_size_proportion(
    baseline: ArrayLike,
    lift_rel: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> SampleSizeResult:
    """Users per arm for a two-sided z test to detect a relative lift of a conversion rate.

    The effect is Cohen's ``h`` between ``p₀`` and ``p₀·(1 + lift_rel)``; the size
    solves the two-tailed power equation exactly (as statsmodels'
    ``NormalIndPower.solve_power``).

    Args:
        baseline: Control conversion rate(s), in [0, 1].
        lift_rel: Relative lift to detect, e.g. ``0.05``.
        alpha: Two-sided significance level.
        power: Probability of detecting the lift.
        ratio: ``n_treatment / n_control``.

    Returns:
        Users needed per arm; ``nan`` with reason ``zero_baseline`` for a zero rate,
        ``too_few_units`` when the lifted rate would exceed 1.

    Examples:
        >>> r = sample_size_proportion(0.03, 0.1)
        >>> int(np.ceil(r.n_control[0]))
        53182
    """
    lift_rel = check_scalar(lift_rel, "lift_rel", gt=-1, lt=np.inf)
    p0 = np.atleast_1d(np.asarray(baseline, dtype=np.float64))
    p1 = p0 * (1.0 + lift_rel)
    reachable = (p1 >= 0) & (p1 <= 1)
    h = np.where(
        reachable,
        2 * np.arcsin(np.sqrt(np.clip(p1, 0, 1))) - 2 * np.arcsin(np.sqrt(np.clip(p0, 0, 1))),
        np.nan,
    )
    n_control, n_treatment = _sample_size(h, alpha=alpha, power=power, ratio=ratio)
    reason = np.where(p0 > 0, np.where(reachable, OK, TOO_FEW_UNITS), ZERO_BASELINE)
    return SampleSizeResult(h, n_control, n_treatment, reason.astype(np.str_))


def sample_size_mean(
    mean: ArrayLike,
    sd: ArrayLike,
    lift_rel: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> SampleSizeResult:
    """Users per arm for a two-sided z test to detect a relative lift of a mean.

    The standardised effect is ``d = lift_rel·|μ| / σ`` (normal approximation, as
    statsmodels' ``NormalIndPower``).

    Examples:
        >>> r = sample_size_mean(10.0, 20.0, 0.1)
        >>> int(np.ceil(r.n_control[0]))
        6280
    """
    lift_rel = check_scalar(lift_rel, "lift_rel", gt=-1, lt=np.inf)
    mu = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    sigma = np.atleast_1d(np.asarray(sd, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(sigma > 0, lift_rel * np.abs(mu) / sigma, np.nan)
    n_control, n_treatment = _sample_size(d, alpha=alpha, power=power, ratio=ratio)
    reason = np.where(mu != 0, OK, ZERO_BASELINE).astype(np.str_)
    return SampleSizeResult(d, n_control, n_treatment, reason)
