"""Empirical-Bayes shrinkage of segment lifts, against closed forms, statsmodels and truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from experiment.stats import paule_mandel, shrink_lifts
from tests.fixtures.benchmarks import load_benchmark

Z95 = stats.norm.isf(0.025)


def test_paule_mandel_matches_statsmodels_iterated():
    from statsmodels.stats.meta_analysis import combine_effects

    rng = np.random.default_rng(3)
    for _ in range(5):
        y = rng.normal(0.0, 1.0, 15)
        v = rng.uniform(0.1, 1.5, 15)
        ref = combine_effects(y, v, method_re="iterated")
        assert paule_mandel(y, v) == pytest.approx(ref.tau2, rel=1e-6, abs=1e-12)


def test_paule_mandel_equal_variances_is_sample_variance_minus_noise():
    y = np.array([0.1, 0.4, -0.2, 0.35, 0.05, 0.6])
    assert paule_mandel(y, np.full(6, 0.01)) == pytest.approx(np.var(y, ddof=1) - 0.01)
    assert paule_mandel(y, np.full(6, 1.0)) == 0.0  # noise explains the spread
    assert math.isnan(paule_mandel([0.1], [0.01]))


def test_shrink_lifts_equal_variances_is_morris():
    y = np.array([0.1, 0.4, -0.2, 0.35, 0.05, 0.6])
    s2, k = 0.01, y.size
    tau2 = np.var(y, ddof=1) - s2
    ybar = y.mean()
    b = (k - 3) * s2 / ((y - ybar) ** 2).sum()  # Morris (1983) / James-Stein
    res = shrink_lifts(y, np.full(k, math.sqrt(s2)), alpha=0.05)
    assert res.tau2 == pytest.approx(tau2)
    assert res.prior_mean == pytest.approx(ybar)
    np.testing.assert_allclose(res.lift, ybar + (1 - b) * (y - ybar))
    np.testing.assert_allclose(res.shrinkage, b)
    # Morris (1983) eq. for equal variances: s²(1 - (k-1)/k B) + 2/(k-3) B² (y - ȳ)²
    var = s2 * (1 - (k - 1) / k * b) + 2 / (k - 3) * b**2 * (y - ybar) ** 2
    np.testing.assert_allclose(res.high - res.lift, Z95 * np.sqrt(var))
    np.testing.assert_allclose(res.lift - res.low, Z95 * np.sqrt(var))


def test_shrink_lifts_skips_unusable_and_needs_four_segments():
    y = np.array([0.1, np.nan, 0.3, 0.2, 0.6, 0.0])
    se = np.array([0.1, 0.1, 0.1, 0.0, 0.1, 0.1])
    res = shrink_lifts(y, se, alpha=0.05)
    assert res.k == 4
    assert np.isnan(res.lift[[1, 3]]).all()
    assert np.isfinite(res.lift[[0, 2, 4, 5]]).all()
    no_all = shrink_lifts([0.1] * 5, [0.1] * 5, alpha=0.05, overall=(np.nan, 0.1), shares=[0.2] * 5)
    assert np.isnan(no_all.lift).all()  # overlapping segments need all's estimate
    few = shrink_lifts([0.1, 0.2, 0.3], [0.1] * 3, alpha=0.05)
    assert np.isnan(few.lift).all()
    assert np.isnan(few.shrinkage).all()


def test_shrink_lifts_rejects_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        shrink_lifts([0.1, 0.2], [0.1], alpha=0.05)
    with pytest.raises(ValueError, match="`shares`"):
        shrink_lifts([0.1] * 4, [0.1] * 4, alpha=0.05, overall=(0.1, 0.05))


def test_overlapping_matches_gaussian_conditioning():
    """The overlapping posterior equals conditioning a joint normal, computed here directly."""
    rng = np.random.default_rng(5)
    k = 8
    y = rng.normal(0.01, 0.02, k)
    v = rng.uniform(2e-5, 8e-5, k)
    f = rng.uniform(0.1, 0.3, k)
    y_all, s_all = 0.008, 0.005  # s_all² > f_i s_i²: every weight in (0, 1), no clipping
    res = shrink_lifts(y, np.sqrt(v), alpha=0.05, overall=(y_all, s_all), shares=f)
    c = f * v
    d = v + s_all**2 - 2 * c
    tau2 = max(0.0, float(np.mean((y - y_all) ** 2 - d)))
    assert res.tau2 == pytest.approx(tau2)
    for i in range(k):
        # θ_i - y_all = δ_i - e_all, regressed on u_i = δ_i + e_i - e_all
        cov = np.array([[tau2 + s_all**2, tau2 + s_all**2 - c[i]], [0.0, tau2 + d[i]]])
        if tau2 == 0:  # then every segment is pulled to all's lift; the test must see a spread
            raise AssertionError("draw a spread larger than the noise")
        cov[1, 0] = cov[0, 1]
        mean = y_all + cov[0, 1] / cov[1, 1] * (y[i] - y_all)
        post = cov[0, 0] - cov[0, 1] ** 2 / cov[1, 1]
        b = 1 - cov[0, 1] / cov[1, 1]
        var = post + 2 / (k - 3) * b**2 * (y[i] - y_all) ** 2
        assert res.lift[i] == pytest.approx(mean)
        assert res.shrinkage[i] == pytest.approx(b)
        assert res.high[i] - res.lift[i] == pytest.approx(Z95 * math.sqrt(var))


def test_calibration_on_known_truths():
    """Fast run of benchmarks/shrinkage.py: MSE at least 25% lower, coverage 93-97%."""
    bench = load_benchmark("shrinkage")
    het = bench.disjoint(reps=300, seed=7, homogeneous=False, redraw=True)
    assert het.reduction >= 0.25
    assert 0.93 <= het.cover_shrunk <= 0.97
    hom = bench.disjoint(reps=300, seed=7, homogeneous=True)
    assert hom.spread_shrunk < 0.4 * hom.spread_raw  # pulled to the common lift
    assert hom.mean_shrinkage > 0.7  # at most (k - 3)/(k - 1) = 0.89 for 20 segments


@pytest.mark.slow  # 200 re-randomised experiments over 40,000 users (~10 s)
def test_overlapping_calibration_on_known_truths():
    """Shrinking toward `all` with the moment τ² still covers and still helps."""
    het = load_benchmark("shrinkage").overlapping(reps=200, seed=7)
    assert 0.93 <= het.cover_shrunk <= 0.97
    assert het.reduction > 0.10


def test_overlapping_shrinkage_never_passes_the_prior_mean():
    """A noisy segment whose error co-varies with all's beyond all's variance stops at all."""
    y = np.array([0.05, 0.01, -0.02, 0.03, 0.0])
    se = np.array([0.04, 0.01, 0.01, 0.01, 0.01])  # segment 0: c = 0.5 * 0.0016 > s_all²
    res = shrink_lifts(y, se, alpha=0.05, overall=(0.004, 0.005), shares=[0.5, 0.2, 0.2, 0.2, 0.2])
    u = y - 0.004
    d = se**2 + 0.005**2 - 2 * np.array([0.5, 0.2, 0.2, 0.2, 0.2]) * se**2
    tau2 = np.mean(u**2 - d)
    assert res.tau2 == pytest.approx(tau2)
    assert tau2 + 0.005**2 - 0.5 * 0.04**2 < 0  # its weight on its own estimate would be < 0
    assert res.shrinkage[0] == 1.0
    assert res.lift[0] == pytest.approx(0.004)
    assert ((res.shrinkage >= 0) & (res.shrinkage <= 1)).all()
    var = tau2 + 0.005**2 + 2 / (5 - 3) * u[0] ** 2
    assert res.high[0] - res.lift[0] == pytest.approx(Z95 * math.sqrt(var), rel=1e-9)
