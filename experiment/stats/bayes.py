"""Bayesian read-outs: chance to beat control and expected loss, per cell."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy import special

from experiment.stats._beta import incbeta, logit_quantile
from experiment.stats._checks import check_arms, check_scalar
from experiment.stats._lift import BoolArray, FloatArray, LiftResult, StrArray
from experiment.stats.messages import OK, TOO_FEW_UNITS
from experiment.sums import MeanSums

__all__ = ["BayesResult", "bayes_beta_binomial", "bayes_normal"]

# Probabilists' Gauss-Hermite rule: E[g(Z)] for Z ~ N(0, 1) as a weighted sum. The
# integrands below are smooth in z, so 32 nodes agree with closed forms to ~1e-11.
_NODES, _WEIGHTS = hermegauss(32)
_WEIGHTS = _WEIGHTS / np.sqrt(2.0 * np.pi)


@dataclass(frozen=True, eq=False)
class BayesResult:
    """Posterior read-outs of treatment against control, one element per cell.

    Losses are positive numbers in the units of the compared quantity (the metric's
    units, or relative lift for ``bayes_normal(..., relative=True)``), as GrowthBook's
    "risk": the expected amount given up by a decision, averaged over the posterior.

    Attributes:
        chance_to_win: Posterior probability that treatment beats control,
            ``P(D > 0)`` with ``D = treatment - control``.
        expected_loss: Expected loss of shipping treatment, ``E[max(0, -D)]``
            (GrowthBook's ``risk_trt``).
        expected_loss_control: Expected loss of keeping control, ``E[max(0, D)]``
            (GrowthBook's ``risk_ctrl``); ``expected_loss_control - expected_loss``
            is the posterior mean of ``D``.
        reason: ``""``, or the code saying why the cell's fields are ``nan``.
    """

    chance_to_win: FloatArray
    expected_loss: FloatArray
    expected_loss_control: FloatArray
    reason: StrArray


def bayes_normal(
    lift: LiftResult, *, relative: bool = False, higher_is_better: bool = True
) -> BayesResult:
    """Chance to win and expected loss from a normal posterior of the lift.

    Under a flat prior and the normal approximation the tests already use, the
    posterior of the lift is ``D ~ N(Δ, se²)`` with ``Δ`` and ``se`` from the lift
    (``welch_ttest`` for means and proportions, ``ratio_ttest`` for ratios,
    ``cuped_ttest`` for adjusted means). Then, with ``z = Δ / se``:

    - ``chance_to_win = Φ(z)``,
    - ``expected_loss = E[max(0, -D)] = se φ(z) - Δ Φ(-z)``,
    - ``expected_loss_control = E[max(0, D)] = se φ(z) + Δ Φ(z)``.

    Args:
        lift: The lift per cell.
        relative: Use the relative lift and its delta-method standard error
            (GrowthBook's default), so losses are shares of the control mean; else
            the absolute difference, in metric units.
        higher_is_better: The metric's direction. ``False`` reads the posterior of
            ``-D`` (a decrease wins): ``chance_to_win = P(D < 0) = Φ(-z)`` and the
            two losses swap, ``expected_loss = E[max(0, D)]``.

    Returns:
        The read-outs per cell; cells whose lift has no standard error keep the lift's
        reason and get ``nan``.

    Raises:
        TypeError: ``lift`` is not a ``LiftResult``.

    References:
        GrowthBook's Bayesian engine, ``get_risk`` in gbstats ``bayesian/tests.py``:
        https://github.com/growthbook/growthbook/blob/main/packages/stats/gbstats/bayesian/tests.py
        Mean of the positive part of a normal variable:
        https://en.wikipedia.org/wiki/Rectified_Gaussian_distribution

    Examples:
        >>> from experiment.stats import welch_ttest
        >>> from experiment.sums import MeanSums
        >>> control = MeanSums(n=[1000], mean=[10.0], m2=[999 * 25.0])
        >>> treatment = MeanSums(n=[1000], mean=[10.3], m2=[999 * 25.0])
        >>> res = bayes_normal(welch_ttest(control, treatment))
        >>> res.chance_to_win.round(4), res.expected_loss.round(4)
        (array([0.9101]), array([0.0093]))
    """
    if not isinstance(lift, LiftResult):
        raise TypeError("lift must be an instance of LiftResult.")
    estimate, se = (lift.lift_rel, lift.se_rel) if relative else (lift.lift_abs, lift.se_abs)
    if not higher_is_better:  # the same formulas on -D
        estimate = -estimate
    with np.errstate(divide="ignore", invalid="ignore"):
        z = estimate / se
    cdf, pdf = special.ndtr(z), np.exp(-0.5 * z**2) / np.sqrt(2.0 * np.pi)
    loss_treatment = se * pdf - estimate * special.ndtr(-z)
    loss_control = se * pdf + estimate * cdf
    return BayesResult(
        chance_to_win=np.asarray(cdf, dtype=np.float64),
        expected_loss=np.asarray(loss_treatment, dtype=np.float64),
        expected_loss_control=np.asarray(loss_control, dtype=np.float64),
        reason=lift.reason.copy(),
    )


def bayes_beta_binomial(
    control: MeanSums,
    treatment: MeanSums,
    *,
    prior_successes: float = 1.0,
    prior_failures: float = 1.0,
) -> BayesResult:
    """Chance to win and expected loss for conversion rates with Beta-Binomial posteriors.

    Each arm's rate has the posterior ``Beta(a + s, b + n - s)`` with ``s = n · mean``
    conversions among ``n`` users and the prior ``Beta(a, b)`` (uniform by default).
    The two one-dimensional integrals

    - ``P(p_t > p_c) = E[F_c(p_t)]`` and
    - ``E[max(0, p_c - p_t)] = E[m_c Ī(a_c + 1, b_c; p_t) - p_t Ī(a_c, b_c; p_t)]``

    (``Ī`` the upper regularized incomplete beta function, ``m_c`` the control
    posterior mean; or the mirrored forms over ``p_c``) are taken over the **narrower**
    posterior by Gauss-Hermite quadrature in its normal-score scale, which keeps the
    integrand smooth for any split and any sample size; no sampling is involved. The
    nodes' Beta quantiles come from Halley and Newton steps on the incomplete beta
    function in the logit scale (``experiment.stats._beta.logit_quantile``), to 1e-12
    relative: cheaper than ``scipy.special.betaincinv`` (a few incomplete beta
    calls per node), and more accurate at large counts.

    Args:
        control: Sums of the 0/1 metric in the control arm, one element per cell.
        treatment: Sums of the treatment arm, same shape as ``control``.
        prior_successes: ``a`` of the Beta prior, > 0.
        prior_failures: ``b`` of the Beta prior, > 0.

    Returns:
        The read-outs per cell, losses in rate units (probability points). Cells with
        an empty arm get ``nan`` and ``"too_few_units"``.

    Raises:
        TypeError: An arm is not ``MeanSums`` or a prior parameter is not a number.
        ValueError: The arms differ in shape, a mean is outside [0, 1], or a prior
            parameter is not positive.

    References:
        Beta-Binomial conjugacy: https://en.wikipedia.org/wiki/Beta_distribution#Bayesian_inference
        Closed forms for the same quantities (used as a check in the tests): Evan
        Miller, "Formulas for Bayesian A/B Testing",
        https://www.evanmiller.org/bayesian-ab-testing.html
        Gauss-Hermite quadrature: https://en.wikipedia.org/wiki/Gauss%E2%80%93Hermite_quadrature
        Inverting the incomplete beta function by Halley's method (in ``x`` rather
        than its logit): Numerical Recipes, 3rd ed., chapter 6, ``invbetai``,
        https://numerical.recipes/book.html

    Examples:
        >>> from experiment.sums import MeanSums
        >>> control = MeanSums.from_power_sums(n=[1000], sum_y=[30], sum_y2=[30])
        >>> treatment = MeanSums.from_power_sums(n=[1000], sum_y=[45], sum_y2=[45])
        >>> res = bayes_beta_binomial(control, treatment)
        >>> res.chance_to_win.round(4), res.expected_loss.round(6)
        (array([0.9606]), array([0.000137]))
    """
    control, treatment = check_arms(control, treatment, MeanSums)
    a0 = check_scalar(prior_successes, "prior_successes", gt=0, lt=np.inf)
    b0 = check_scalar(prior_failures, "prior_failures", gt=0, lt=np.inf)
    for name, arm in (("control", control), ("treatment", treatment)):
        if np.any((arm.n > 0) & ~((arm.mean >= 0) & (arm.mean <= 1))):
            raise ValueError(f"{name} must hold means of 0/1 values, in [0, 1].")

    ok = ((control.n >= 1) & (treatment.n >= 1)).ravel()
    a_c, b_c = _posterior(control, a0, b0, ok)
    a_t, b_t = _posterior(treatment, a0, b0, ok)
    m_c, m_t = a_c / (a_c + b_c), a_t / (a_t + b_t)
    narrow_t = (_beta_var(a_t, b_t) <= _beta_var(a_c, b_c))[:, None]

    # Each cell integrates over its narrower posterior; only that branch is evaluated
    # (row masks, not np.where, which would compute both and double the cost).
    nt = narrow_t.ravel()
    nc = ~nt
    y = np.empty((nt.size, _NODES.size))  # logits of the nodes' rates
    win = np.empty_like(y)
    loss = np.empty_like(y)
    ac, bc, at, bt = (v[:, None] for v in (a_c, b_c, a_t, b_t))
    y[nt] = logit_quantile(at[nt], bt[nt], _NODES)
    y[nc] = logit_quantile(ac[nc], bc[nc], _NODES)
    yt, yc = y[nt], y[nc]
    xt, xc = special.expit(yt), special.expit(yc)
    # One incomplete beta function per node: the other arm's CDF gives the chance to
    # win, and I(a + 1, b; x) = I(a, b; x) - x^a (1 - x)^b / (a B(a, b)) the loss.
    upper = incbeta(bc[nt], ac[nt], -yt)  # Ī(a, b; x) = I(b, a; 1 - x)
    win[nt] = 1.0 - upper
    loss[nt] = (m_c[nt, None] - xt) * upper + m_c[nt, None] * _step(ac[nt], bc[nt], yt)
    lower = incbeta(at[nc], bt[nc], yc)
    win[nc] = 1.0 - lower
    loss[nc] = (xc - m_t[nc, None]) * lower + m_t[nc, None] * _step(at[nc], bt[nc], yc)
    expected_loss = np.maximum(loss @ _WEIGHTS, 0.0)
    shape = control.n.shape
    return BayesResult(
        chance_to_win=np.where(ok, np.clip(win @ _WEIGHTS, 0.0, 1.0), np.nan).reshape(shape),
        expected_loss=np.where(ok, expected_loss, np.nan).reshape(shape),
        expected_loss_control=np.where(
            ok, np.maximum(expected_loss + (m_t - m_c), 0.0), np.nan
        ).reshape(shape),
        reason=np.where(ok, OK, TOO_FEW_UNITS).reshape(shape),
    )


def _posterior(
    sums: MeanSums, a0: float, b0: float, ok: BoolArray
) -> tuple[FloatArray, FloatArray]:
    """Posterior Beta parameters, flattened; the prior where not ``ok`` (ignored later)."""
    n = np.where(ok, sums.n.ravel(), 0.0)
    successes = np.where(ok, (sums.mean * sums.n).ravel(), 0.0)
    return a0 + successes, b0 + n - successes


def _beta_var(a: FloatArray, b: FloatArray) -> FloatArray:
    return np.asarray(a * b / ((a + b) ** 2 * (a + b + 1.0)), dtype=np.float64)


def _step(a: FloatArray, b: FloatArray, y: FloatArray) -> FloatArray:
    """``x^a (1 - x)^b / (a B(a, b))`` at ``x = expit(y)``: ``I(a, b; x) - I(a + 1, b; x)``.

    Computed in logs, with ``log x = -log(1 + e^-y)`` and ``log(1 - x) = -log(1 + e^y)``.

    References:
        DLMF 8.17.20: https://dlmf.nist.gov/8.17.E20
    """
    log = -a * np.logaddexp(0.0, -y) - b * np.logaddexp(0.0, y) - np.log(a) - special.betaln(a, b)
    return np.asarray(np.exp(log), dtype=np.float64)
