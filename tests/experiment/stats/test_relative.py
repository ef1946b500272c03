"""Relative-lift intervals: log-ratio and Fieller against closed forms, and their coverage."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import scipy.stats

from experiment.stats import cuped_ttest, ratio_ttest, sequential_interval, welch_ttest
from experiment.sums import JointSums, MeanSums
from tests.fixtures.benchmarks import load_benchmark


def _arms(rng, n_c, n_t, mean_c, mean_t):
    a = rng.gamma(2.0, mean_c / 2.0, n_c)
    b = rng.gamma(2.0, mean_t / 2.0, n_t)
    return a, b


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_log_interval_equals_log_ratio_closed_form(alternative):
    rng = np.random.default_rng(11)
    for n_c, n_t, m_c, m_t in [(40, 55, 3.0, 3.6), (500, 480, 10.0, 9.0), (12, 9, 1.0, 2.5)]:
        a, b = _arms(rng, n_c, n_t, m_c, m_t)
        res = welch_ttest(
            MeanSums.from_values(a),
            MeanSums.from_values(b),
            alternative=alternative,
            relative_interval="log",
        )
        va, vb = a.var(ddof=1), b.var(ddof=1)
        # The log-ratio delta method for independent means, written out.
        se_log = np.sqrt(vb / (n_t * b.mean() ** 2) + va / (n_c * a.mean() ** 2))
        df = (va / n_c + vb / n_t) ** 2 / (
            (va / n_c) ** 2 / (n_c - 1) + (vb / n_t) ** 2 / (n_t - 1)
        )
        q = scipy.stats.t.ppf(0.975 if alternative == "two-sided" else 0.95, df)
        ratio = b.mean() / a.mean()
        low = ratio * np.exp(-q * se_log) - 1 if alternative != "less" else -1.0
        high = ratio * np.exp(q * se_log) - 1 if alternative != "greater" else np.inf
        assert res.ci_low[0] == pytest.approx(low, rel=1e-9)
        assert res.ci_high[0] == pytest.approx(high, rel=1e-9)


def test_fieller_interval_equals_quadratic_roots_and_inverts_the_test():
    rng = np.random.default_rng(5)
    for _ in range(50):
        n_c, n_t = rng.integers(20, 400, 2)
        a, b = _arms(rng, n_c, n_t, 2.0, 2.0 * rng.uniform(0.7, 1.4))
        res = welch_ttest(MeanSums.from_values(a), MeanSums.from_values(b))
        va, vb = a.var(ddof=1) / n_c, b.var(ddof=1) / n_t
        df = (va + vb) ** 2 / (va**2 / (n_c - 1) + vb**2 / (n_t - 1))
        q2 = scipy.stats.t.ppf(0.975, df) ** 2
        # (m_t - ρ m_c)² = q² (v_t + ρ² v_c), solved by numpy for ρ.
        roots = np.sort(
            np.roots([a.mean() ** 2 - q2 * va, -2 * a.mean() * b.mean(), b.mean() ** 2 - q2 * vb])
        )
        low, high = max(roots[0] - 1, -1.0), roots[1] - 1
        assert (res.ci_low[0], res.ci_high[0]) == pytest.approx((low, high), rel=1e-9)
        p = scipy.stats.ttest_ind(b, a, equal_var=False).pvalue
        assert (res.ci_low[0] > 0 or res.ci_high[0] < 0) == (p < 0.05)


def _conversions(k: int, n: int = 100) -> MeanSums:
    return MeanSums.from_values([0.0] * (n - k) + [1.0] * k)


def test_fieller_unbounded_gives_nan_and_reason():
    control, treatment = _conversions(2), _conversions(2)  # 2 conversions: not clear of 0
    res = welch_ttest(control, treatment)
    assert np.isnan(res.ci_low[0])
    assert np.isnan(res.ci_high[0])
    assert res.reason.tolist() == ["unbounded_interval"]
    assert np.isfinite(res.p_value[0])  # the absolute test is untouched
    log = welch_ttest(control, treatment, relative_interval="log")
    assert log.reason.tolist() == [""]
    assert log.ci_low[0] > -1.0


def test_fieller_single_ray_keeps_its_lower_end():
    """2 vs 5 conversions in 100: the set is two rays, the lower one below -100%."""
    control, treatment = _conversions(2), _conversions(5)
    res = welch_ttest(control, treatment)
    a, b = np.r_[np.zeros(98), np.ones(2)], np.r_[np.zeros(95), np.ones(5)]
    va, vb = a.var(ddof=1) / 100, b.var(ddof=1) / 100
    df = (va + vb) ** 2 / (va**2 / 99 + vb**2 / 99)
    q2 = scipy.stats.t.ppf(0.975, df) ** 2
    lead = a.mean() ** 2 - q2 * va
    assert lead < 0  # the control mean is not clear of 0: no bounded interval
    roots = np.sort(np.roots([lead, -2 * a.mean() * b.mean(), b.mean() ** 2 - q2 * vb]))
    assert roots[0] < 0 < roots[1]  # (-inf, r0] is below a ratio of 0
    assert res.ci_low[0] == pytest.approx(roots[1] - 1, rel=1e-9)
    assert res.ci_high[0] == np.inf
    assert res.reason.tolist() == ["unbounded_interval"]
    less = welch_ttest(control, treatment, alternative="less")  # upper bound only: none
    assert np.isnan(less.ci_high[0])


def test_log_interval_nonpositive_cuped_ratio_gives_nan_and_reason():
    rng = np.random.default_rng(2)
    x_c, x_t = 10 + rng.normal(0, 0.3, 400), 20 + rng.normal(0, 0.3, 400)
    y_c = 1 + (x_c - 10) + rng.normal(0, 0.05, 400)
    y_t = 8.5 + (x_t - 20) + rng.normal(0, 0.05, 400)  # adjusted lift about -2.5 on 1.0
    control, treatment = JointSums.from_values(y_c, x_c), JointSums.from_values(y_t, x_t)
    res = cuped_ttest(control, treatment, relative_interval="log")
    assert res.lift_rel[0] < -1.0
    assert res.reason.tolist() == ["nonpositive_ratio"]
    assert np.isnan(res.ci_low[0])
    assert np.isfinite(res.p_value[0])
    delta = cuped_ttest(control, treatment, relative_interval="delta")
    assert delta.reason.tolist() == [""]


def _joint(y, x):
    """Joint sums of 200 cells, one per row, from numpy's own moments."""
    dy, dx = y - y.mean(axis=1, keepdims=True), x - x.mean(axis=1, keepdims=True)
    return JointSums(
        n=np.full(y.shape[0], float(y.shape[1])),
        mean_y=y.mean(axis=1),
        mean_x=x.mean(axis=1),
        m2_y=(dy**2).sum(axis=1),
        m2_x=(dx**2).sum(axis=1),
        c_xy=(dx * dy).sum(axis=1),
    )


@pytest.mark.parametrize("method", ["log", "fieller"])
def test_ratio_and_cuped_intervals_never_below_minus_100(method):
    rng = np.random.default_rng(9)
    y_c = rng.poisson(0.3, (200, 60)).astype(float)
    y_t = rng.poisson(0.1, (200, 60)).astype(float)
    x_c, x_t = rng.poisson(3.0, (200, 60)) + 1.0, rng.poisson(3.0, (200, 60)) + 1.0
    control, treatment = _joint(y_c, x_c), _joint(y_t, x_t)
    for res in (
        ratio_ttest(control, treatment, relative_interval=method),
        cuped_ttest(control, treatment, relative_interval=method),
    ):
        low = res.ci_low[np.isfinite(res.ci_low)]
        assert low.size > 100
        assert (low >= -1.0).all()
    delta = ratio_ttest(control, treatment, relative_interval="delta")
    assert (delta.ci_low < -1.0).any()  # the failure the others fix


def test_sequential_log_interval_is_symmetric_on_the_log_scale():
    rng = np.random.default_rng(4)
    a, b = _arms(rng, 800, 900, 5.0, 5.5)
    lift = welch_ttest(MeanSums.from_values(a), MeanSums.from_values(b), relative_interval="log")
    seq = sequential_interval(lift, 1700)
    k = 1 + lift.lift_rel[0]
    half_abs = seq.seq_ci_abs_high[0] - lift.lift_abs[0]
    factor = half_abs / lift.se_abs[0]
    half_log = factor * lift.se_rel[0] / k
    assert seq.seq_ci_low[0] == pytest.approx(k * np.exp(-half_log) - 1, rel=1e-9)
    assert seq.seq_ci_high[0] == pytest.approx(k * np.exp(half_log) - 1, rel=1e-9)


@pytest.fixture(scope="module")
def bench():
    yield load_benchmark("relative_ci")
    del sys.modules["relative_ci"]


def _coverage_ok(row, reps):
    """Coverage of the reported sets within 3.29 binomial standard errors of 95%."""
    return abs(row.coverage - 0.95) <= 3.29 * np.sqrt(0.95 * 0.05 / reps)


@pytest.mark.parametrize(
    ("pop_index", "n"), [(0, 300), (0, 1000), (1, 2000), (2, 1000), (4, 2000)], ids=str
)
def test_calibration_fast(bench, pop_index, n):
    reps = 1500
    rows = {
        r.method: r
        for r in bench.calibrate(bench.POPULATIONS[pop_index], n, reps, np.random.default_rng(7))
    }
    assert rows["fieller"].below_floor == 0.0
    assert rows["log"].below_floor == 0.0
    assert _coverage_ok(rows["fieller"], reps)  # rays and all
    if n >= 1000:  # log over-covers sparse conversion (97.8% at 300 per arm)
        assert rows["log"].undefined == 0.0
        assert _coverage_ok(rows["log"], reps)


def test_calibration_fast_delta_fails_where_sparse(bench):
    rows = {
        r.method: r
        for r in bench.calibrate(bench.POPULATIONS[0], 300, 1500, np.random.default_rng(8))
    }
    assert rows["delta"].below_floor > 0.5  # conversion 2% at 300 per arm: mostly below -100%
    assert rows["fieller"].below_floor == 0.0
    assert rows["log"].below_floor == 0.0


@pytest.mark.parametrize("n", [300, 500])
def test_calibration_fieller_over_covers_only_as_the_welch_test_over_accepts(bench, n):
    """Zero-inflated lognormal revenue (90% zeros, sigma 2): Fieller covers about 97.5%,
    and Welch's test of the true ratio (an A/A test: treatment against the control
    scaled by 1 + lift) accepts as often, draw for draw: the excess is the test's."""
    reps = 1500
    rows = bench.calibrate(bench.POPULATIONS[5], n, reps, np.random.default_rng(9))
    fieller = next(r for r in rows if r.method == "fieller")
    assert fieller.test_acceptance > 0.96
    assert abs(fieller.coverage - fieller.test_acceptance) <= 2 / reps


@pytest.mark.slow
def test_calibration_default_on_every_cell(bench):
    """The default is in the 94-96% band on every cell where Welch's test of the true
    ratio is (24 of 36); elsewhere it covers as often as that test accepts (above 96%:
    no interval that agrees with the test can be narrower)."""
    reps = 5000
    rng = np.random.default_rng(2026)
    for pop in bench.POPULATIONS:
        for n in bench.SIZES:
            row = next(r for r in bench.calibrate(pop, n, reps, rng) if r.method == "fieller")
            assert row.below_floor == 0.0
            # Where defined, the default covers at least as well as the Welch test itself.
            assert row.defined_coverage >= 0.94, (pop.name, n)
            if row.test_acceptance <= 0.96:
                assert 0.94 <= row.coverage <= 0.96, (pop.name, n)
            else:  # no bound counts as covering: up to 1% more (3 buyers per arm)
                assert 0 <= row.coverage - row.test_acceptance <= 0.01, (pop.name, n)
