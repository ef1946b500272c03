"""The minimum detectable effect (MDE) of a cell and its inverse, the sample size.

One formula serves ``exp analyze`` (results.json ``mde_rel``), ``exp power`` and
``exp segments validate``: the MDE of the two-sample normal (z) test of the
absolute difference of means, with the control arm's per-user variance ``σ²`` in
both arms, shrunk by CUPED's variance reduction ``R``, divided by the baseline::

    mde_rel = d* · σ · √(1 − R) / |μ₀|,   d* solves  power = P(reject | δ = d*·σ_eff)

    two-sided:  power = Φ(d·√m − z) + Φ(−d·√m − z),   z = Φ⁻¹(1 − alpha/2)
    one-sided:  power = Φ(d·√m − z),                   z = Φ⁻¹(1 − alpha)
    m = n_c·n_t / (n_c + n_t)

(both rejection tails counted, exactly as statsmodels' ``NormalIndPower``; the
one-sided root is the closed form ``(z_{1-alpha} + z_power)/√m``). The sample size
for a target lift is the root of the same equation, so the MDE at that size is
the target lift.

Why this formula:

* It is the test the analysis runs. Welch's t on a mean or proportion, the delta
  method on a ratio (its linearised per-user variance) and CUPED (variance times
  ``1 − ρ²``) all test an absolute difference whose standard error is
  ``σ·√(1/n_c + 1/n_t)`` under equal arm variances; at the sizes where an MDE is
  useful the t and z quantiles agree, and the z form has no degrees of freedom
  that would tie the planning number to the observed spread of a treatment arm
  that does not exist yet.
* Proportions use the same variance, ``p(1−p)`` (or the sample variance of the
  0/1 values, ``p(1−p)·n/(n−1)``, when it comes from sums). The variance under
  the alternative, ``p₁(1−p₁)``, is deliberately not used: it exists only for
  proportions (a mean's or a ratio's treatment variance has no model), it would
  make the MDE of an increase differ from that of a decrease, and its effect is
  small where planning matters: for a rare rate the treatment-arm variance grows
  like ``1 + L`` for a relative lift ``L``, so the MDE is understated by about
  ``L/4`` of itself (2.5% of the MDE at a 10% lift). Cohen's arcsine ``h`` (used
  before) builds that in for proportions only, and cannot take a CUPED reduction.
* CUPED replaces ``y`` by ``y − θ(x − x̄)``; with the optimal ``θ`` the per-user
  variance becomes ``σ²(1 − ρ²)``, ``ρ`` the correlation of metric and covariate.

References:
    Chow, Shao & Wang (2008), Sample Size Calculations in Clinical Research, 2nd ed.,
    §3.2 (two-sample parallel design, equal variances): https://doi.org/10.1201/9781584889830
    Kohavi, Tang & Xu (2020), Trustworthy Online Controlled Experiments, ch. 17
    (``n ≈ 16σ²/δ²``, the variance from the baseline): https://doi.org/10.1017/9781108653985
    Deng, Xu, Kohavi & Walker (WSDM 2013), "Improving the Sensitivity of Online
    Controlled Experiments by Utilizing Pre-Experiment Data" (variance × ``1 − ρ²``):
    https://doi.org/10.1145/2433396.2433413
    statsmodels ``NormalIndPower``:
    https://www.statsmodels.org/stable/generated/statsmodels.stats.power.NormalIndPower.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from experiment.stats._checks import check_choice, check_scalar
from experiment.stats._dist import norm_cdf, norm_isf, norm_pdf, norm_sf
from experiment.stats._lift import ALTERNATIVES
from experiment.stats._roots import brentq
from experiment.stats.messages import OK, TOO_FEW_UNITS, ZERO_BASELINE, ZERO_VARIANCE

if TYPE_CHECKING:
    from experiment.stats._lift import Alternative

__all__ = [
    "MdeResult",
    "SampleSizeResult",
    "cuped_variance_reduction",
    "detectable_effect_size",
    "mde_cell",
    "mde_mean",
    "power_normal",
    "sample_size",
    "sample_size_mean",
]

_NEWTON_STEPS = 50


@dataclass(frozen=True)
class MdeResult:
    """Minimum detectable effects, one element per cell.

    Attributes:
        effect_size: The standardised effect ``d* = δ / σ_eff`` (``σ_eff`` after CUPED).
        mde_abs: The smallest detectable difference on the metric's scale.
        mde_rel: ``mde_abs`` relative to the baseline, ``mde_abs / |μ₀|``.
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


def _critical(alpha: float, alternative: Alternative) -> tuple[float, bool]:
    """The critical z and whether the test has two tails."""
    alternative = check_choice(alternative, "alternative", ALTERNATIVES)
    two = alternative == "two-sided"
    return float(norm_isf(alpha / 2 if two else alpha)), two


def power_normal(
    effect_size: ArrayLike,
    n_control: ArrayLike,
    n_treatment: ArrayLike,
    *,
    alpha: float,
    alternative: Alternative = "two-sided",
) -> NDArray[np.float64]:
    """Power of a two-sample z test for a standardised effect (two-sided: both tails).

    A one-sided test (``"greater"`` or ``"less"``) counts the tail in the effect's
    direction; ``effect_size`` is then its magnitude.

    Examples:
        >>> round(float(power_normal(0.2, 393, 393, alpha=0.05)), 2)
        0.8
    """
    alpha = check_scalar(alpha, "alpha", gt=0, lt=1)
    crit, two = _critical(alpha, alternative)
    shift = np.asarray(effect_size, dtype=np.float64) * np.sqrt(
        _effective_n(n_control, n_treatment)
    )
    if not two:
        return np.asarray(norm_sf(crit - np.abs(shift)))
    return np.asarray(norm_sf(crit - shift) + norm_cdf(-crit - shift))


def detectable_effect_size(
    n_control: ArrayLike,
    n_treatment: ArrayLike,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
) -> NDArray[np.float64]:
    """The standardised effect a two-sample z test detects with probability ``power``.

    One-sided: the closed form ``(z_{1-alpha} + z_power) / √m``. Two-sided: starts
    from ``(z_{1-alpha/2} + z_power) / √m`` and refines with Newton steps on the
    two-tail power equation (the second tail matters only for tiny samples).
    Cells with an empty arm give ``nan``.
    """
    alpha = check_scalar(alpha, "alpha", gt=0, lt=1)
    power = check_scalar(power, "power", gt=alpha / 2, lt=1)
    crit, two = _critical(alpha, alternative)
    root = np.sqrt(_effective_n(n_control, n_treatment))
    d = (crit + norm_isf(1 - power)) / root
    for _ in range(_NEWTON_STEPS if two else 0):
        f = norm_sf(crit - d * root) + norm_cdf(-crit - d * root) - power
        slope = root * (norm_pdf(crit - d * root) - norm_pdf(-crit - d * root))
        step = np.where(slope > 0, f / np.where(slope > 0, slope, 1.0), 0.0)
        d = d - step
        if np.all(~np.isfinite(step) | (np.abs(step) <= 1e-15 * np.maximum(np.abs(d), 1.0))):
            break
    return np.asarray(d, dtype=np.float64)


def _effective_sd(variance: ArrayLike, variance_reduction: ArrayLike) -> NDArray[np.float64]:
    """``σ·√(1 − R)``; a ``nan`` reduction (no or a constant covariate) counts as 0."""
    var = np.asarray(variance, dtype=np.float64)
    red = np.clip(np.nan_to_num(np.asarray(variance_reduction, dtype=np.float64)), 0.0, 1.0)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.sqrt(np.where(var >= 0, var, np.nan) * (1.0 - red)))


def cuped_variance_reduction(
    m2_y: ArrayLike, m2_x: ArrayLike, c_xy: ArrayLike
) -> NDArray[np.float64]:
    """CUPED's share of per-user variance removed, ``ρ² = C_xy² / (M2_x·M2_y)``, per cell.

    From the centred sums of the metric ``y`` and its covariate ``x`` (``M2`` and
    ``C_xy`` as in :class:`experiment.sums.JointSums`). With the optimal slope
    ``θ = C_xy / M2_x`` the adjusted variance is ``σ²(1 − ρ²)``; a constant
    metric or covariate gives 0 (nothing to remove).

    References:
        Deng, Xu, Kohavi & Walker (WSDM 2013), "Improving the Sensitivity of Online
        Controlled Experiments by Utilizing Pre-Experiment Data", §3.3:
        https://doi.org/10.1145/2433396.2433413

    Examples:
        >>> float(cuped_variance_reduction(4.0, 1.0, 1.0)[()])
        0.25
    """
    my = np.asarray(m2_y, dtype=np.float64)
    mx = np.asarray(m2_x, dtype=np.float64)
    cxy = np.asarray(c_xy, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where((mx > 0) & (my > 0), cxy**2 / (mx * my), 0.0)
    return np.asarray(np.clip(np.nan_to_num(r2), 0.0, 1.0), dtype=np.float64)


def mde_cell(
    mean: ArrayLike,
    variance: ArrayLike,
    n_control: ArrayLike,
    n_treatment: ArrayLike,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
    variance_reduction: ArrayLike = 0.0,
) -> MdeResult:
    """The relative MDE of each cell: the one formula of analyze, power and validate.

    Args:
        mean: Baseline (control) mean per cell, ``μ₀``.
        variance: Per-user variance of the metric in the baseline, ``σ²`` (a
            proportion's ``p(1−p)``; a ratio's delta-method linearisation).
        n_control: Control users per cell.
        n_treatment: Treatment users per cell.
        alpha: Significance level of the test (two-sided: split over both tails).
        power: Probability of detecting the MDE.
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"`` (the metric's test).
        variance_reduction: CUPED's share of variance removed, ``R ≈ ρ²`` (0 without a
            covariate; ``nan`` counts as 0); the variance is multiplied by ``1 − R``.

    Returns:
        ``mde_abs = d*·σ·√(1−R)`` and ``mde_rel = mde_abs / |μ₀|`` per cell; ``nan``
        with a reason when an arm is empty (``too_few_units``), the variance is 0
        or unknown (``zero_variance``) or the baseline is 0 (``zero_baseline``).

    Examples:
        >>> r = mde_cell(0.03, 0.03 * 0.97, 10_000, 10_000)
        >>> round(float(r.mde_abs), 5), round(float(r.mde_rel), 3)
        (0.00676, 0.225)
        >>> half = mde_cell(0.03, 0.03 * 0.97, 10_000, 10_000, variance_reduction=0.75)
        >>> round(float(half.mde_rel / r.mde_rel), 12)
        0.5
    """
    d = detectable_effect_size(
        n_control, n_treatment, alpha=alpha, power=power, alternative=alternative
    )
    mu = np.asarray(mean, dtype=np.float64)
    # No spread in the baseline (everyone converted, or nobody differs): an MDE of 0
    # would claim any change is detectable; there is nothing to size it from.
    spread = np.asarray(variance, dtype=np.float64) > 0
    mde_abs = np.where(spread, d * _effective_sd(variance, variance_reduction), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        mde_rel = np.where(mu != 0, mde_abs / np.abs(mu), np.nan)
    nc = np.asarray(n_control, dtype=np.float64)
    nt = np.asarray(n_treatment, dtype=np.float64)
    reason = np.select(
        [~((nc > 0) & (nt > 0)), ~np.isfinite(mde_abs), mu == 0],
        [TOO_FEW_UNITS, ZERO_VARIANCE, ZERO_BASELINE],
        OK,
    ).astype(np.str_)
    return MdeResult(effect_size=d, mde_abs=mde_abs, mde_rel=mde_rel, reason=reason)


def mde_mean(
    mean: ArrayLike,
    sd: ArrayLike,
    n_control: ArrayLike,
    n_treatment: ArrayLike,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> MdeResult:
    """:func:`mde_cell` (two-sided, no CUPED) given the baseline standard deviation.

    Examples:
        >>> r = mde_mean(10.0, 20.0, 5_000, 5_000)
        >>> round(float(r.mde_abs), 4)
        1.1206
    """
    sigma = np.asarray(sd, dtype=np.float64)
    return mde_cell(mean, sigma**2, n_control, n_treatment, alpha=alpha, power=power)


@dataclass(frozen=True)
class SampleSizeResult:
    """Users needed per arm to detect a given lift, one element per cell.

    Attributes:
        effect_size: The standardised effect ``lift·|μ₀| / (σ·√(1−R))``.
        n_control: Control users needed (not rounded; round up to plan).
        n_treatment: Treatment users needed, ``ratio · n_control``.
        reason: A reason code where the size is ``nan`` (see ``messages``), else ``""``.
    """

    effect_size: NDArray[np.float64]
    n_control: NDArray[np.float64]
    n_treatment: NDArray[np.float64]
    reason: NDArray[np.str_]


def _required_shift(alpha: float, power: float, alternative: Alternative) -> float:
    """The ``d·√m`` at which the z test has the requested power."""
    crit, two = _critical(alpha, alternative)
    if not two:
        return float(crit + norm_isf(1 - power))

    def gap(shift: float) -> float:
        return float(norm_sf(crit - shift) + norm_cdf(-crit - shift) - power)

    return float(brentq(gap, 0.0, crit + norm_isf(1 - power) + 10.0, xtol=1e-14))


def sample_size(
    mean: ArrayLike,
    variance: ArrayLike,
    lift_rel: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    alternative: Alternative = "two-sided",
    variance_reduction: ArrayLike = 0.0,
    ratio: float = 1.0,
) -> SampleSizeResult:
    """Users per arm at which :func:`mde_cell` equals ``|lift_rel|`` (its inverse).

    Args:
        mean: Baseline (control) mean per cell.
        variance: Per-user baseline variance per cell (as :func:`mde_cell`).
        lift_rel: Relative lift to detect, e.g. ``0.05``.
        alpha: Significance level of the test.
        power: Probability of detecting the lift.
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.
        variance_reduction: CUPED's share of variance removed (``nan`` counts as 0).
        ratio: ``n_treatment / n_control``.

    Returns:
        Users needed per arm; ``nan`` with reason ``zero_baseline`` for a zero mean,
        ``zero_variance`` when the variance is 0 or unknown.

    Examples:
        >>> r = sample_size(10.0, 400.0, 0.1)
        >>> int(np.ceil(r.n_control[0]))
        6280
    """
    lift_rel = check_scalar(lift_rel, "lift_rel", gt=-1, lt=np.inf)
    alpha = check_scalar(alpha, "alpha", gt=0, lt=1)
    power = check_scalar(power, "power", gt=alpha / 2, lt=1)
    ratio = check_scalar(ratio, "ratio", gt=0, lt=np.inf)
    mu = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    sd = np.atleast_1d(_effective_sd(variance, variance_reduction))
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(sd > 0, abs(lift_rel) * np.abs(mu) / sd, np.nan)
        m = np.where(d > 0, (_required_shift(alpha, power, alternative) / d) ** 2, np.nan)
    n_control = m * (1.0 + ratio) / ratio  # m = n_c·n_t / (n_c + n_t), n_t = ratio·n_c
    reason = np.select([mu == 0, ~(sd > 0)], [ZERO_BASELINE, ZERO_VARIANCE], OK).astype(np.str_)
    return SampleSizeResult(d, n_control, ratio * n_control, reason)


def sample_size_mean(
    mean: ArrayLike,
    sd: ArrayLike,
    lift_rel: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
) -> SampleSizeResult:
    """:func:`sample_size` (two-sided, no CUPED) given the baseline standard deviation.

    Examples:
        >>> r = sample_size_mean(10.0, 20.0, 0.1)
        >>> int(np.ceil(r.n_control[0]))
        6280
    """
    sigma = np.atleast_1d(np.asarray(sd, dtype=np.float64))
    return sample_size(mean, sigma**2, lift_rel, alpha=alpha, power=power, ratio=ratio)
