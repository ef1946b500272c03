"""Regression adjustment with several covariates: CUPED's pooled slope, generalised to ``k``.

A metric adjusted by ``k`` pre-treatment covariates (numeric columns and one-hot
levels of categorical ones) gets, from the per-arm cross-moments alone
(:class:`experiment.sums.CovariateSums`), the pooled within-arm OLS slopes
``θ = (C_xx,c + C_xx,t)⁻¹ (c_xy,c + c_xy,t)`` and the adjusted difference
``Δȳ - θ·Δx̄``, which is exactly the treatment coefficient of the OLS fit
``y ~ 1 + treatment + x_1 + … + x_k`` on the two arms. Why the pooled slope and not
Lin's (2013) fully interacted fit: with one covariate it *is* today's CUPED
(:func:`~experiment.stats.cuped.cuped_ttest`), so one method spans 1 to ``k``
covariates; randomisation balances the covariates, so the pooled fit is
consistent whatever the slopes per arm, and with near-equal arms (our splits) the
two estimators agree to first order (Lin's gains come with unequal arms and slopes
that differ by arm).

The computation reduces to CUPED: the fitted combination ``z = θ·x`` is one
covariate whose pooled slope is exactly 1, so :func:`cuped_ttest` on the joint sums
of ``(y, z)`` gives the adjusted means, the Welch test on the adjusted per-arm
variances (the randomness of ``θ̂`` ignored, a relative error of order ``k/n``: the
standard error then agrees with the HC2 robust OLS standard error of the treatment
coefficient to that order), the relative lift and its interval, and the variance
reduction.

A ratio metric (``Σnumer / Σdenom`` per arm) is adjusted on its delta-method
linearisation (:func:`ratio_linearised`): per user ``ψ = R + (y - R·x) / x̄`` with the
arm's ratio ``R = ȳ / x̄``, whose arm mean is ``R`` and whose variance over ``n`` is
the delta-method ``Var(R)``. Its cross-moments with the covariates follow from those
of the numerator and the denominator (``c_ψw = (c_yw - R·c_xw) / x̄``: both parts
are adjusted, as the delta method requires), so :func:`regression_ttest` on ``ψ``
is the adjustment of the ratio; with no useful covariate it is
:func:`~experiment.stats.ratio.ratio_ttest`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from experiment.stats._checks import check_choice, check_scalar
from experiment.stats._lift import (
    ALTERNATIVES,
    RELATIVE_INTERVALS,
    Alternative,
    FloatArray,
    RelativeInterval,
)
from experiment.stats.cuped import CupedResult, cuped_ttest
from experiment.stats.messages import TOO_FEW_UNITS, ZERO_DENOMINATOR
from experiment.sums import CovariateSums, JointSums

__all__ = [
    "RegressionResult",
    "ratio_linearised",
    "ratio_regression_ttest",
    "regression_r2",
    "regression_ttest",
]

# Singular values of the standardised covariance below this share of the largest are
# dropped: collinear covariates (a one-hot level absent from a cell, duplicates) then
# share their slope instead of making the solve blow up.
_RCOND = 1e-10
# A linearised sum of squares below this share of its terms is cancellation noise.
_NOISE = 64.0 * np.finfo(np.float64).eps


@dataclass(frozen=True, eq=False)
class RegressionResult(CupedResult):
    """:class:`CupedResult` of the ``k``-covariate adjustment, with the slopes.

    ``theta`` (CUPED's slope on the fitted combination ``θ·x``) is 1, or 0 where the
    covariates explain nothing.

    Attributes:
        slopes: The pooled slopes ``θ``, shape ``cells + (k,)``.
    """

    slopes: FloatArray


def _solve(c_xx: FloatArray, c_xy: FloatArray) -> FloatArray:
    """``c_xx⁺ c_xy`` per cell, on the correlation scale (a constant covariate gets 0)."""
    c_xx, c_xy = np.nan_to_num(c_xx), np.nan_to_num(c_xy)
    diag = np.diagonal(c_xx, axis1=-2, axis2=-1)
    scale = np.sqrt(np.where(diag > 0, diag, 1.0))
    std = c_xx / (scale[..., :, None] * scale[..., None, :])
    beta = np.einsum("...ij,...j->...i", np.linalg.pinv(std, rcond=_RCOND), c_xy / scale)
    return np.asarray(np.where(diag > 0, beta / scale, 0.0), dtype=np.float64)


def regression_r2(sums: CovariateSums) -> FloatArray:
    """Per cell, the ``R²`` of ``y`` on the ``k`` covariates: ``c_xyᵀ C_xx⁺ c_xy / m2_y``.

    The share of per-user variance the adjustment removes (CUPED's ``ρ²`` for one
    covariate): the variance reduction the MDE uses. ``nan`` for an empty cell, 0 when
    ``y`` is constant.

    Examples:
        >>> import numpy as np
        >>> x = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 1.0]])
        >>> float(regression_r2(CovariateSums.from_values(x @ [2.0, 1.0], x))[0])
        1.0
    """
    beta = _solve(sums.c_xx, sums.c_xy)
    explained = np.einsum("...i,...i->...", beta, np.nan_to_num(sums.c_xy))
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(sums.m2_y > 0, explained / sums.m2_y, 0.0)
    return np.asarray(np.where(sums.n >= 2, np.clip(r2, 0.0, 1.0), np.nan), dtype=np.float64)


def regression_ttest(
    control: CovariateSums,
    treatment: CovariateSums,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_interval: RelativeInterval = "fieller",
) -> RegressionResult:
    """Welch test of the difference of means adjusted by ``k`` covariates, every cell at once.

    The pooled slopes ``θ`` solve the within-arm normal equations (a pseudo-inverse on
    the correlation scale, so collinear or constant covariates do no harm); every
    other number is :func:`~experiment.stats.cuped.cuped_ttest`'s on the combination
    ``z = θ·x`` (see the module docstring): ``lift_abs`` equals the OLS treatment
    coefficient of ``y ~ 1 + t + x``, its standard error the HC2 one to ``O(k/n)``.

    Args:
        control: Cross-moments of ``(y, x)`` in the control arm, one element per cell.
        treatment: The treatment arm's, same cells and covariates.
        alpha: Significance level; intervals have confidence ``1 - alpha``.
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.
        relative_interval: ``"fieller"``, ``"log"`` or ``"delta"`` (as ``cuped_ttest``).

    Returns:
        The adjusted lift per cell, with the slopes and the variance reduction.

    Raises:
        TypeError: An arm is not ``CovariateSums``.
        ValueError: The arms differ in shape or covariates, or an option is invalid.

    References:
        Deng, Xu, Kohavi & Walker (WSDM 2013), CUPED (the one-covariate case).
        Lin (2013), "Agnostic notes on regression adjustments to experimental data",
        https://doi.org/10.1214/12-AOAS583 (the interacted alternative).
        HC2: https://en.wikipedia.org/wiki/Heteroskedasticity-consistent_standard_errors

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> x = rng.normal(size=(200, 2))
        >>> y = x @ [1.0, -0.5] + rng.normal(size=200)
        >>> res = regression_ttest(
        ...     CovariateSums.from_values(y[:100], x[:100]),
        ...     CovariateSums.from_values(y[100:] + 0.3, x[100:]),
        ... )
        >>> bool(res.variance_reduction[0] > 0.4), res.slopes.shape
        (True, (1, 2))
    """
    for arm in (control, treatment):
        if not isinstance(arm, CovariateSums):
            raise TypeError(f"control and treatment must be instances of {CovariateSums}.")
    if control.mean_x.shape != treatment.mean_x.shape:
        raise ValueError("control and treatment must have the same cells and covariates.")
    alpha = check_scalar(alpha, "alpha", gt=0, lt=1)
    alternative = check_choice(alternative, "alternative", ALTERNATIVES)
    relative_interval = check_choice(relative_interval, "relative_interval", RELATIVE_INTERVALS)
    slopes = _solve(control.c_xx + treatment.c_xx, control.c_xy + treatment.c_xy)
    res = cuped_ttest(
        _combined(control, slopes),
        _combined(treatment, slopes),
        alpha=alpha,
        alternative=alternative,
        relative_interval=relative_interval,
    )
    return RegressionResult(
        **{f.name: getattr(res, f.name) for f in fields(CupedResult)}, slopes=slopes
    )


def _combined(sums: CovariateSums, slopes: FloatArray) -> JointSums:
    """Joint sums of ``(y, z = θ·x)``: ``z̄ = θ·x̄``, ``m2_z = θᵀ C_xx θ``, ``c_zy = θ·c_xy``."""
    empty = sums.n <= 0
    mean_z = np.where(
        empty, np.nan, np.einsum("...i,...i->...", slopes, np.nan_to_num(sums.mean_x))
    )
    m2_z = np.einsum("...i,...ij,...j->...", slopes, np.nan_to_num(sums.c_xx), slopes)
    c_zy = np.einsum("...i,...i->...", slopes, np.nan_to_num(sums.c_xy))
    return JointSums(
        n=sums.n, mean_y=sums.mean_y, mean_x=mean_z, m2_y=sums.m2_y, m2_x=m2_z, c_xy=c_zy
    )


def ratio_linearised(sums: CovariateSums) -> CovariateSums:
    """The sums of a ratio's linearisation ``ψ = R + (y - R·x) / x̄`` and its ``k`` covariates.

    ``sums`` holds the numerator as ``y`` and ``k + 1`` covariates: the ``k``
    adjusting ones, then the denominator ``x`` last (as the engine stores a ratio
    metric's :class:`CovariateSums`). Per cell, with ``R = ȳ / x̄``: ``ψ̄ = R``,
    ``m2_ψ = (m2_y - 2R c_xy + R² m2_x) / x̄²`` (the delta method's
    sum of squares, :func:`~experiment.stats.ratio.ratio_ttest`) and
    ``c_ψw = (c_yw - R c_xw) / x̄``. A zero denominator mean gives ``nan``.

    References:
        Deng, Knoblich & Lu (KDD 2018), "Applying the Delta Method in Metric
        Analytics", https://arxiv.org/abs/1803.06336 (linearisation; CUPED on it).

    Examples:
        >>> import numpy as np
        >>> y, x = np.array([1.0, 3.0, 2.0]), np.array([2.0, 4.0, 2.0])
        >>> w = np.array([0.0, 1.0, 1.0])
        >>> lin = ratio_linearised(CovariateSums.from_values(y, np.c_[w, x]))
        >>> psi = y.sum() / x.sum() + (y - y.sum() / x.sum() * x) / x.mean()
        >>> bool(np.allclose([lin.mean_y[0], lin.m2_y[0]], [psi.mean(), psi.var() * 3]))
        True
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        denom = sums.mean_x[..., -1]
        safe = np.where(denom != 0, denom, np.nan)
        ratio = sums.mean_y / safe
        c_xy = sums.c_xy[..., -1]
        m2_x = sums.c_xx[..., -1, -1]
        m2 = (sums.m2_y - 2.0 * ratio * c_xy + ratio**2 * m2_x) / safe**2
        # the variance of a sum of squares that cancels to rounding is 0, not negative
        m2 = np.where(np.abs(m2) <= _NOISE * (sums.m2_y + ratio**2 * m2_x) / safe**2, 0.0, m2)
        c_pw = (sums.c_xy[..., :-1] - ratio[..., None] * sums.c_xx[..., :-1, -1]) / safe[..., None]
    return CovariateSums(
        n=sums.n,
        mean_y=ratio,
        m2_y=np.maximum(m2, 0.0),
        mean_x=sums.mean_x[..., :-1],
        c_xx=sums.c_xx[..., :-1, :-1],
        c_xy=c_pw,
    )


def ratio_regression_ttest(
    control: CovariateSums,
    treatment: CovariateSums,
    *,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    relative_interval: RelativeInterval = "fieller",
) -> RegressionResult:
    """The lift of a ratio metric adjusted by ``k`` covariates, every cell at once.

    :func:`regression_ttest` on the arms' linearisations (:func:`ratio_linearised`):
    ``lift_abs = R_t - R_c - θ·Δw̄`` with ``θ`` the pooled within-arm slope of ``ψ`` on
    the covariates, i.e. the treatment coefficient of the OLS fit
    ``ψ ~ 1 + t + w``; the standard error is the Welch one of the adjusted ``ψ``
    (the HC2 one of that fit to ``O(k/n)``). ``mean_control``/``mean_treatment``
    are the ratios; ``lift_rel`` divides by the control ratio with the delta
    method's correlation of numerator and baseline (as CUPED's). A zero
    denominator in an arm gives ``nan`` with ``"zero_denominator"``.

    Args:
        control: Numerator ``y`` with the ``k`` covariates then the denominator (last).
        treatment: The treatment arm's, same cells and covariates.
        alpha: Significance level; intervals have confidence ``1 - alpha``.
        alternative: ``"two-sided"``, ``"greater"`` or ``"less"``.
        relative_interval: ``"fieller"``, ``"log"`` or ``"delta"``.

    Returns:
        The adjusted lift of the ratio per cell, with the slopes on ``ψ``.

    Raises:
        TypeError: An arm is not ``CovariateSums``.
        ValueError: The arms differ in shape or covariates, an arm has no
            denominator axis, or an option is invalid.

    References:
        Deng, Knoblich & Lu (KDD 2018), https://arxiv.org/abs/1803.06336, section on
        CUPED for ratio metrics (variance reduction on the linearised variable).
    """
    for arm in (control, treatment):
        if not isinstance(arm, CovariateSums):
            raise TypeError(f"control and treatment must be instances of {CovariateSums}.")
        if arm.mean_x.shape[-1] < 2:
            raise ValueError("A ratio's sums need k >= 1 covariates and the denominator last.")
    res = regression_ttest(
        ratio_linearised(control),
        ratio_linearised(treatment),
        alpha=alpha,
        alternative=alternative,
        relative_interval=relative_interval,
    )
    no_denom = (control.mean_x[..., -1] == 0) | (treatment.mean_x[..., -1] == 0)
    too_few = (control.n < 2) | (treatment.n < 2)
    reason = np.where(no_denom & ~too_few, ZERO_DENOMINATOR, res.reason)
    reason = np.where(too_few, TOO_FEW_UNITS, reason).astype(res.reason.dtype)
    return replace(res, reason=reason)
