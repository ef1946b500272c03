"""cochran_q: statsmodels parity, skipping degenerate segments, and χ² calibration."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from statsmodels.stats.meta_analysis import combine_effects

from experiment.stats import HeterogeneityResult, cochran_q, welch_ttest
from experiment.stats.messages import TOO_FEW_SEGMENTS
from experiment.sums import MeanSums

Z = 3.29


def _mean_sums(n, mean, m2):
    f64 = np.float64
    return MeanSums(n=np.asarray(n, f64), mean=np.asarray(mean, f64), m2=np.asarray(m2, f64))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cochran_q_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    k = 3 + seed * 4
    se = rng.uniform(0.01, 0.1, k)
    estimates = rng.normal(0.05, 0.05, k)
    res = cochran_q(estimates, se)
    ref = combine_effects(estimates, se**2)
    assert isinstance(res, HeterogeneityResult)
    assert res.q == pytest.approx(ref.q, rel=1e-9)
    assert res.i2 == pytest.approx(max(0.0, ref.i2), rel=1e-9, abs=1e-12)
    assert res.df == ref.df_resid == k - 1
    assert res.p_value == pytest.approx(scipy.stats.chi2.sf(ref.q, k - 1), rel=1e-9)
    assert res.reason.tolist() == ""


def test_cochran_q_truncates_i2_at_zero_and_handles_identical_estimates():
    low = cochran_q([0.10, 0.11, 0.10], [0.05, 0.05, 0.05])
    assert low.q < low.df
    assert low.i2 == 0.0
    same = cochran_q([0.2, 0.2, 0.2], [0.1, 0.2, 0.3])
    assert same.q == pytest.approx(0.0, abs=1e-20)
    assert same.i2 == 0.0
    assert same.p_value == pytest.approx(1.0)


def test_cochran_q_skips_degenerate_segments():
    estimates = np.array([0.1, np.nan, 0.3, 0.2, 0.5, 0.4])
    se = np.array([0.05, 0.05, 0.05, np.nan, 0.0, 0.1])
    res = cochran_q(estimates, se)
    ref = cochran_q([0.1, 0.3, 0.4], [0.05, 0.05, 0.1])
    assert res.k == 3
    assert res.df == 2
    assert res.q == pytest.approx(ref.q, rel=1e-12)


def test_cochran_q_too_few_segments_gives_nan_with_reason():
    se = np.array([[0.05, 0.05, np.nan], [1.0, 1.0, 1.0]])
    res = cochran_q([[0.1, np.nan, 0.2], [0.1, 0.2, 0.3]], se)
    assert res.reason.tolist() == [TOO_FEW_SEGMENTS, ""]
    assert np.isnan(res.q[0])
    assert np.isnan(res.p_value[0])
    assert np.isnan(res.i2[0])
    assert np.isfinite(res.q[1])


def test_cochran_q_rows_are_independent_metrics():
    rng = np.random.default_rng(9)
    estimates, se = rng.normal(0, 1, (4, 6)), rng.uniform(0.5, 1.5, (4, 6))
    res = cochran_q(estimates, se)
    for row in range(4):
        one = cochran_q(estimates[row], se[row])
        assert res.q[row] == pytest.approx(float(one.q), rel=1e-12)
        assert res.i2[row] == pytest.approx(float(one.i2), rel=1e-12, abs=1e-15)


def test_cochran_q_does_not_depend_on_segment_order():
    rng = np.random.default_rng(10)
    estimates, se = rng.normal(0, 1, 12), rng.uniform(0.5, 1.5, 12)
    order = rng.permutation(12)
    assert cochran_q(estimates, se).q == pytest.approx(cochran_q(estimates[order], se[order]).q)


def test_cochran_q_on_lift_results():
    control = _mean_sums(n=[500, 800, 300], mean=[1.0, 1.0, 1.0], m2=[499.0, 799.0, 299.0])
    treatment = _mean_sums(n=[500, 800, 300], mean=[1.1, 1.0, 1.4], m2=[499.0, 799.0, 299.0])
    lift = welch_ttest(control, treatment)
    res = cochran_q(lift.lift_abs, lift.se_abs)
    assert res.p_value < 0.05
    assert res.i2 > 0.5


def test_cochran_q_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must have the same shape"):
        cochran_q([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="at least 1 dimension"):
        cochran_q(0.1, 0.1)


# ------------------------------------------------------------------ Monte-Carlo
def test_cochran_q_monte_carlo_is_chi2_under_homogeneity():
    rng = np.random.default_rng(1954)
    reps, k = 20_000, 8
    se = np.geomspace(0.02, 0.2, k)  # segments of very different sizes
    estimates = 0.05 + rng.normal(0.0, 1.0, (reps, k)) * se
    res = cochran_q(estimates, np.broadcast_to(se, (reps, k)))
    half = Z * np.sqrt(0.05 * 0.95 / reps)
    assert abs((res.p_value < 0.05).mean() - 0.05) <= half
    assert res.q.mean() == pytest.approx(k - 1, abs=Z * np.sqrt(2 * (k - 1) / reps))
    ks = scipy.stats.kstest(res.p_value, "uniform")
    assert ks.pvalue > 0.001


def test_cochran_q_monte_carlo_detects_real_heterogeneity():
    rng = np.random.default_rng(2002)
    reps, k = 5_000, 8
    se = np.full(k, 0.05)
    truth = np.linspace(0.0, 0.2, k)  # real spread, sd ≈ 0.065 > se
    res = cochran_q(truth + rng.normal(0.0, 1.0, (reps, k)) * se, np.broadcast_to(se, (reps, k)))
    # Under heterogeneity Q is noncentral χ² with λ = Σ (truth - mean)² / se².
    noncentrality = ((truth - truth.mean()) ** 2).sum() / se[0] ** 2
    power = scipy.stats.ncx2.sf(scipy.stats.chi2.isf(0.05, k - 1), k - 1, noncentrality)
    assert abs((res.p_value < 0.05).mean() - power) <= Z * np.sqrt(power * (1 - power) / reps)
    assert np.median(res.i2) > 0.5


def test_cochran_q_p_value_uses_chi2_with_k_minus_1_df(monkeypatch):
    import experiment.stats.heterogeneity as module

    calls = []

    def chi2_sf(q, df):
        calls.append((np.asarray(q).copy(), np.asarray(df).copy()))
        return scipy.stats.chi2.sf(q, df)

    monkeypatch.setattr(module, "chi2_sf", chi2_sf)
    cochran_q([0.1, 0.2, 0.4, np.nan], [0.1, 0.1, 0.1, 0.1])
    assert len(calls) == 1
    assert float(calls[0][1]) == 2.0
    assert float(calls[0][0]) == pytest.approx(4.6666666666666, rel=1e-9)
