"""The balance test against scipy's Welch t-test on raw arrays, and its Holm family."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiment.stats import adjust_pvalues, balance_flags, balance_test
from experiment.sums import MeanSums


def _cells(samples: list[np.ndarray]) -> MeanSums:
    parts = [MeanSums.from_values(s) for s in samples]
    return MeanSums(
        n=np.array([p.n[0] for p in parts]),
        mean=np.array([p.mean[0] for p in parts]),
        m2=np.array([p.m2[0] for p in parts]),
    )


def test_p_value_and_statistic_match_scipy_welch_on_raw_arrays():
    rng = np.random.default_rng(3)
    control = [rng.lognormal(3, 1, 400), rng.poisson(2.0, 57).astype(float), rng.normal(5, 2, 9)]
    treatment = [
        rng.lognormal(3.1, 1, 650),
        rng.poisson(2.6, 31).astype(float),
        rng.normal(0, 9, 4),
    ]
    res = balance_test(_cells(control), _cells(treatment))
    for k, (c, t) in enumerate(zip(control, treatment, strict=True)):
        ref = stats.ttest_ind(t, c, equal_var=False)
        assert res.statistic[k] == pytest.approx(ref.statistic, rel=1e-10)
        assert res.p_value[k] == pytest.approx(ref.pvalue, rel=1e-8)
        pooled = np.sqrt((c.var(ddof=1) + t.var(ddof=1)) / 2)
        assert res.smd[k] == pytest.approx((t.mean() - c.mean()) / pooled, rel=1e-10)


def test_large_offset_covariate_keeps_its_precision():
    # A timestamp-like covariate: mean 1.7e9, spread 10; raw power sums would cancel.
    rng = np.random.default_rng(5)
    c, t = 1.7e9 + rng.normal(0, 10, 1000), 1.7e9 + rng.normal(1, 10, 1000)
    res = balance_test(MeanSums.from_values(c), MeanSums.from_values(t))
    assert res.p_value[0] == pytest.approx(stats.ttest_ind(t, c, equal_var=False).pvalue, rel=1e-6)


def test_degenerate_cells_get_nan_not_a_number():
    one = MeanSums.from_values([3.0])
    flat = MeanSums.from_values([2.0, 2.0, 2.0])
    some = MeanSums.from_values([1.0, 2.0, 4.0])
    empty = MeanSums.from_values([])
    for c, t in ((one, some), (flat, flat), (empty, some)):
        res = balance_test(c, t)
        assert np.isnan(res.p_value[0])
        assert np.isnan(res.statistic[0])


def test_flag_is_holm_over_the_whole_family_at_the_threshold():
    rng = np.random.default_rng(8)
    p = rng.uniform(size=(4, 7)) ** 3
    p[1, 2] = 2e-6
    p[0, 0] = np.nan
    res = balance_flags(p, threshold=0.001)
    expected = adjust_pvalues(p.ravel(), method="holm").reshape(p.shape)
    np.testing.assert_allclose(res.p_adjusted, expected)
    m = int(np.isfinite(p).sum())
    # any flag <=> the smallest p below threshold / m (Bonferroni's first step)
    assert res.flag.any() == (np.nanmin(p) < 0.001 / m)
    assert res.flag[1, 2]
    assert not res.flag[0, 0]


def test_bad_threshold_is_a_caller_mistake():
    with pytest.raises(ValueError, match="threshold"):
        balance_flags([0.1], threshold=1.5)
