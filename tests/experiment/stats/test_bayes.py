"""bayes_normal and bayes_beta_binomial: closed forms, posterior draws, symmetry, reasons."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from scipy import special
from scipy.special import betaln

from experiment.stats import (
    BayesResult,
    bayes_beta_binomial,
    bayes_normal,
    ratio_ttest,
    welch_ttest,
)
from experiment.stats.messages import TOO_FEW_UNITS, ZERO_BASELINE, ZERO_VARIANCE
from experiment.sums import JointSums, MeanSums

Z = 3.29
DRAWS = 400_000


def _means(n, mean, sd):
    n = np.asarray(n, dtype=float)
    return MeanSums(n=n, mean=mean, m2=(n - 1) * np.asarray(sd, dtype=float) ** 2)


def _rates(n, successes):
    n, s = np.asarray(n, dtype=float), np.asarray(successes, dtype=float)
    return MeanSums.from_power_sums(n, s, s)


# ------------------------------------------------------------------ normal posterior
@pytest.fixture(scope="module")
def lift():
    control = _means([1000, 500, 2000], [10.0, 4.0, 1.0], [5.0, 2.0, 1.0])
    treatment = _means([1000, 400, 2000], [10.3, 3.9, 1.0], [5.0, 3.0, 1.0])
    return welch_ttest(control, treatment)


def test_bayes_normal_matches_closed_form(lift):
    res = bayes_normal(lift)
    mu, sd = lift.lift_abs, lift.se_abs
    assert isinstance(res, BayesResult)
    assert res.chance_to_win == pytest.approx(scipy.stats.norm.sf(0, mu, sd), rel=1e-12)
    # E[max(0, -D)] via scipy's truncated normal, as gbstats get_risk computes it.
    p_neg = scipy.stats.norm.cdf(0, mu, sd)
    mean_neg = scipy.stats.truncnorm.mean(-np.inf, (0 - mu) / sd, loc=mu, scale=sd)
    mean_pos = scipy.stats.truncnorm.mean((0 - mu) / sd, np.inf, loc=mu, scale=sd)
    assert res.expected_loss == pytest.approx(-p_neg * mean_neg, rel=1e-9)
    assert res.expected_loss_control == pytest.approx((1 - p_neg) * mean_pos, rel=1e-9)


def test_bayes_normal_matches_posterior_draws(lift):
    rng = np.random.default_rng(17)
    res = bayes_normal(lift)
    draws = rng.normal(lift.lift_abs[:, None], lift.se_abs[:, None], (3, DRAWS))
    win = (draws > 0).mean(axis=1)
    loss = np.maximum(0.0, -draws)
    assert np.all(np.abs(res.chance_to_win - win) <= Z * np.sqrt(win * (1 - win) / DRAWS))
    tol = Z * loss.std(axis=1) / np.sqrt(DRAWS)
    assert np.all(np.abs(res.expected_loss - loss.mean(axis=1)) <= tol)


def test_bayes_normal_lower_is_better_matches_closed_form(lift):
    # A decrease wins: P(D < 0) and the loss of shipping E[max(0, D)], from scipy.
    res = bayes_normal(lift, higher_is_better=False)
    mu, sd = lift.lift_abs, lift.se_abs
    assert res.chance_to_win == pytest.approx(scipy.stats.norm.cdf(0, mu, sd), rel=1e-12)
    p_pos = scipy.stats.norm.sf(0, mu, sd)
    mean_pos = scipy.stats.truncnorm.mean((0 - mu) / sd, np.inf, loc=mu, scale=sd)
    mean_neg = scipy.stats.truncnorm.mean(-np.inf, (0 - mu) / sd, loc=mu, scale=sd)
    assert res.expected_loss == pytest.approx(p_pos * mean_pos, rel=1e-9)
    assert res.expected_loss_control == pytest.approx(-(1 - p_pos) * mean_neg, rel=1e-9)


def test_bayes_normal_lower_is_better_matches_posterior_draws(lift):
    rng = np.random.default_rng(29)
    res = bayes_normal(lift, higher_is_better=False)
    draws = rng.normal(lift.lift_abs[:, None], lift.se_abs[:, None], (3, DRAWS))
    win = (draws < 0).mean(axis=1)
    assert np.all(np.abs(res.chance_to_win - win) <= Z * np.sqrt(win * (1 - win) / DRAWS))
    for got, loss in ((res.expected_loss, draws), (res.expected_loss_control, -draws)):
        positive = np.maximum(0.0, loss)
        tol = Z * positive.std(axis=1) / np.sqrt(DRAWS)
        assert np.all(np.abs(got - positive.mean(axis=1)) <= tol)


def test_bayes_normal_swapping_arms_mirrors(lift):
    control = _means([1000, 500], [10.0, 4.0], [5.0, 2.0])
    treatment = _means([1000, 400], [10.3, 3.9], [5.0, 3.0])
    ab = bayes_normal(welch_ttest(control, treatment))
    ba = bayes_normal(welch_ttest(treatment, control))
    assert ba.chance_to_win == pytest.approx(1 - ab.chance_to_win, rel=1e-12)
    assert ba.expected_loss == pytest.approx(ab.expected_loss_control, rel=1e-12)
    assert ab.expected_loss_control - ab.expected_loss == pytest.approx(
        welch_ttest(control, treatment).lift_abs, rel=1e-9
    )


def test_bayes_normal_relative_uses_relative_lift(lift):
    rel = bayes_normal(lift, relative=True)
    assert rel.chance_to_win == pytest.approx(scipy.stats.norm.cdf(lift.lift_rel / lift.se_rel))
    assert rel.expected_loss_control - rel.expected_loss == pytest.approx(lift.lift_rel)
    mu, sd = lift.lift_rel, lift.se_rel
    expected = sd * scipy.stats.norm.pdf(mu / sd) - mu * scipy.stats.norm.sf(mu / sd)
    assert rel.expected_loss == pytest.approx(expected, rel=1e-9)


def test_bayes_normal_works_on_ratio_lifts():
    control = JointSums.from_values([0, 1, 0, 2, 1], [4, 5, 3, 8, 6])
    treatment = JointSums.from_values([1, 2, 0, 2, 1], [4, 6, 2, 7, 5])
    lift = ratio_ttest(control, treatment)
    res = bayes_normal(lift)
    assert res.chance_to_win[0] == pytest.approx(scipy.stats.norm.cdf(lift.lift_abs / lift.se_abs))


def test_bayes_normal_degenerate_cells_carry_reasons():
    control = _means([1, 10, 10], [3.0, 0.0, 2.0], [0.0, 1.0, 0.0])
    treatment = _means([5, 10, 10], [4.0, 1.0, 2.0], [1.0, 1.0, 0.0])
    lift = welch_ttest(control, treatment)
    res = bayes_normal(lift)
    assert res.reason.tolist() == [TOO_FEW_UNITS, ZERO_BASELINE, ZERO_VARIANCE]
    assert np.isnan(res.chance_to_win[[0, 2]]).all()
    assert np.isfinite(res.chance_to_win[1])  # absolute scale is fine at a zero baseline
    assert np.isnan(bayes_normal(lift, relative=True).chance_to_win[1])


def test_bayes_normal_rejects_non_lift():
    with pytest.raises(TypeError, match="must be an instance of LiftResult"):
        bayes_normal(object())  # type: ignore[arg-type]


# ------------------------------------------------------------------ Beta-Binomial
def _miller_chance(a_c, b_c, a_t, b_t):
    """Evan Miller's closed form of P(p_t > p_c) for integer a_t (a sum of a_t terms)."""
    i = np.arange(int(a_t))
    terms = betaln(a_c + i, b_c + b_t) - np.log(b_t + i) - betaln(1 + i, b_t) - betaln(a_c, b_c)
    return float(np.exp(terms).sum())


CASES = [  # (n_c, s_c, n_t, s_t): balanced, unequal 10/90, zero conversions, tiny, huge
    (1_000, 30, 1_000, 45),
    (100, 3, 5_000, 40),
    (50, 0, 3_000, 2),
    (7, 4, 5, 1),
    (20_000, 100, 180_000, 1_000),
]


@pytest.mark.parametrize("case", CASES)
def test_bayes_beta_binomial_chance_matches_closed_form(case):
    n_c, s_c, n_t, s_t = case
    res = bayes_beta_binomial(_rates([n_c], [s_c]), _rates([n_t], [s_t]))
    expected = _miller_chance(1 + s_c, 1 + n_c - s_c, 1 + s_t, 1 + n_t - s_t)
    assert res.chance_to_win[0] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_bayes_beta_binomial_matches_posterior_draws():
    rng = np.random.default_rng(23)
    n_c, s_c, n_t, s_t = (np.array(v, dtype=float) for v in zip(*CASES, strict=True))
    res = bayes_beta_binomial(_rates(n_c, s_c), _rates(n_t, s_t))
    p_c = rng.beta(1 + s_c[:, None], 1 + n_c[:, None] - s_c[:, None], (len(CASES), DRAWS))
    p_t = rng.beta(1 + s_t[:, None], 1 + n_t[:, None] - s_t[:, None], (len(CASES), DRAWS))
    win = (p_t > p_c).mean(axis=1)
    assert np.all(np.abs(res.chance_to_win - win) <= Z * np.sqrt(win * (1 - win) / DRAWS) + 1e-12)
    for loss, mc in ((res.expected_loss, p_c - p_t), (res.expected_loss_control, p_t - p_c)):
        positive = np.maximum(0.0, mc)
        tol = Z * positive.std(axis=1) / np.sqrt(DRAWS)
        assert np.all(np.abs(loss - positive.mean(axis=1)) <= tol)


def test_bayes_beta_binomial_swapping_arms_mirrors():
    n_c, s_c, n_t, s_t = (np.array(v, dtype=float) for v in zip(*CASES, strict=True))
    ab = bayes_beta_binomial(_rates(n_c, s_c), _rates(n_t, s_t))
    ba = bayes_beta_binomial(_rates(n_t, s_t), _rates(n_c, s_c))
    assert ba.chance_to_win == pytest.approx(1 - ab.chance_to_win, rel=1e-9, abs=1e-12)
    assert ba.expected_loss == pytest.approx(ab.expected_loss_control, rel=1e-9, abs=1e-15)


def test_bayes_beta_binomial_agrees_with_normal_approximation_at_scale():
    control, treatment = _rates([500_000], [15_000]), _rates([500_000], [15_250])
    beta = bayes_beta_binomial(control, treatment)
    normal = bayes_normal(welch_ttest(control, treatment))
    assert beta.chance_to_win[0] == pytest.approx(normal.chance_to_win[0], abs=2e-3)
    assert beta.expected_loss[0] == pytest.approx(normal.expected_loss[0], rel=0.02)


def test_bayes_beta_binomial_prior_and_empty_arms():
    control, treatment = _rates([0, 10, 10], [0, 2, 2]), _rates([10, 10, 10], [3, 2, 2])
    res = bayes_beta_binomial(control, treatment)
    assert res.reason.tolist() == [TOO_FEW_UNITS, "", ""]
    assert np.isnan(res.chance_to_win[0])
    assert np.isnan(res.expected_loss_control[0])
    assert res.chance_to_win[1] == pytest.approx(0.5, abs=1e-12)  # identical posteriors
    strong = bayes_beta_binomial(control, treatment, prior_successes=50, prior_failures=50)
    assert strong.chance_to_win[1] == pytest.approx(0.5, abs=1e-12)
    assert strong.expected_loss[1] < res.expected_loss[1]  # tighter posteriors, less at stake


def test_bayes_beta_binomial_keeps_cell_shape():
    control = _rates([[100, 200], [300, 400]], [[5, 10], [15, 20]])
    treatment = _rates([[100, 200], [300, 400]], [[6, 12], [14, 25]])
    res = bayes_beta_binomial(control, treatment)
    flat = bayes_beta_binomial(
        _rates([100, 200, 300, 400], [5, 10, 15, 20]), _rates([100, 200, 300, 400], [6, 12, 14, 25])
    )
    assert res.chance_to_win.shape == (2, 2)
    assert res.chance_to_win.ravel() == pytest.approx(flat.chance_to_win, rel=1e-12)


def test_bayes_beta_binomial_rejects_bad_arguments():
    rates = _rates([10], [2])
    with pytest.raises(ValueError, match="means of 0/1 values"):
        bayes_beta_binomial(_means([10], [3.0], [1.0]), rates)
    with pytest.raises(ValueError, match=r"prior_failures == 0\.0"):
        bayes_beta_binomial(rates, rates, prior_failures=0.0)
    with pytest.raises(TypeError, match="must be an instance of MeanSums"):
        bayes_beta_binomial(rates, JointSums.from_values([1.0], [1.0]))  # type: ignore[arg-type]


# ------------------------------------------------------------------ larger counts
def _quad_chance(a_c, b_c, a_t, b_t):
    """P(p_t > p_c) = E[I(a_c, b_c; p_t)] by adaptive quadrature over the treatment posterior."""
    post = scipy.stats.beta(a_t, b_t)
    sd = math.sqrt(a_t * b_t / ((a_t + b_t) ** 2 * (a_t + b_t + 1)))
    points = np.clip(post.mean() + sd * np.arange(-8, 9), 0, 1)
    value, _ = scipy.integrate.quad(
        lambda x: special.betainc(a_c, b_c, x) * post.pdf(x),
        post.ppf(1e-17),
        post.isf(1e-17),
        points=points,
        epsabs=0,
        epsrel=1e-13,
        limit=500,
    )
    return value


LARGE_CASES = [  # beyond the closed form's precision (scipy's betaln rounds to ~1e-8 here)
    (100_000, 3_000, 100_000, 3_100),
    (1_000_000, 2_000, 1_000_000, 2_100),
    (2_000_000, 50_000, 1_000_000, 25_500),
    (50_000, 40, 60_000, 30),
]


@pytest.mark.parametrize("case", LARGE_CASES)
def test_bayes_beta_binomial_chance_matches_quadrature_at_scale(case):
    n_c, s_c, n_t, s_t = case
    res = bayes_beta_binomial(_rates([n_c], [s_c]), _rates([n_t], [s_t]))
    expected = _quad_chance(1 + s_c, 1 + n_c - s_c, 1 + s_t, 1 + n_t - s_t)
    assert res.chance_to_win[0] == pytest.approx(expected, rel=1e-10)
    assert 1 - res.chance_to_win[0] == pytest.approx(1 - expected, rel=1e-9)


def _log_beta_int(a, b):
    """log B(a, b) for a whole a: log((a - 1)!) - sum_k log(b + k), exactly summed."""
    return math.lgamma(a) - math.fsum(math.log(b + k) for k in range(int(a)))


def _exact_chance(a_c, b_c, a_t, b_t):
    """Evan Miller's sum for a whole a_t, with exact log-beta terms (scipy's betaln is not)."""
    return math.fsum(
        math.exp(
            _log_beta_int(a_c + i, b_c + b_t)
            - math.log(b_t + i)
            - _log_beta_int(1 + i, b_t)
            - _log_beta_int(a_c, b_c)
        )
        for i in range(int(a_t))
    )


RARE_CASES = [  # (n_c, s_c, n_t, s_t) at millions of users, few conversions or few failures
    (5_000_000, 10, 5_000_000, 15),
    (10_000_000, 1, 10_000_000, 3),
    (2_000_000, 60, 1_000_000, 40),
    (5_000_000, 4_999_990, 5_000_000, 4_999_985),
    (3_000_000, 0, 3_000_000, 0),
]


@pytest.mark.parametrize("case", RARE_CASES)
def test_bayes_beta_binomial_chance_matches_exact_sum_at_millions(case):
    n_c, s_c, n_t, s_t = case
    res = bayes_beta_binomial(_rates([n_c], [s_c]), _rates([n_t], [s_t]))
    a_c, b_c, a_t, b_t = 1 + s_c, 1 + n_c - s_c, 1 + s_t, 1 + n_t - s_t
    if a_t <= b_c:
        expected = _exact_chance(a_c, b_c, a_t, b_t)
    else:  # P(p_t > p_c) = P(1 - p_c > 1 - p_t): the sum over the few failures
        expected = _exact_chance(b_t, a_t, b_c, a_c)
    assert res.chance_to_win[0] == pytest.approx(expected, rel=1e-10)
