"""Family-adjusted intervals agree with the adjusted p-values, exactly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from experiment.stats import adjusted_interval, welch_ttest
from experiment.sums import MeanSums


def _family(rng, size, n):
    """``size`` cells of gamma revenue; a third of them with a real lift."""
    n_c = rng.integers(n // 2, n, size).astype(float)
    n_t = rng.integers(n // 2, n, size).astype(float)
    base = rng.uniform(0.5, 5.0, size)
    lift = np.where(rng.random(size) < 1 / 3, rng.uniform(-0.3, 0.4, size), 0.0)
    sd = base * rng.uniform(0.5, 3.0, size)
    # Sample means and sums of squares as the sums would hold them.
    mean_c = base + rng.normal(0, 1, size) * sd / np.sqrt(n_c)
    mean_t = base * (1 + lift) + rng.normal(0, 1, size) * sd / np.sqrt(n_t)
    m2_c = sd**2 * rng.chisquare(n_c - 1)
    m2_t = sd**2 * rng.chisquare(n_t - 1)
    return MeanSums(n=n_c, mean=mean_c, m2=m2_c), MeanSums(n=n_t, mean=mean_t, m2=m2_t)


def _correct(p, method):
    """Textbook corrections, written out (statsmodels' ``multipletests`` runs gc per call)."""
    m = p.size
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    if method == "fdr_bh":
        return scipy.stats.false_discovery_control(p, method="bh")
    order = np.argsort(p)  # holm: step-down, running maximum of (m - k) p_(k)
    adjusted = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p[order]), 1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


def _excludes_zero(low, high):
    return (low > 0) | (high < 0)


@pytest.mark.parametrize("method", ["fieller", "log", "delta"])
@pytest.mark.parametrize("correction", ["holm", "fdr_bh", "bonferroni"])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_adjusted_interval_excludes_zero_iff_adjusted_test_rejects(method, correction, alternative):
    rng = np.random.default_rng(sum(map(ord, method + correction + alternative)))
    sizes = rng.integers(2, 40, 300)  # 300 families, all cells in one call
    control, treatment = _family(rng, int(sizes.sum()), 400)
    lift = welch_ttest(control, treatment, alternative=alternative, relative_interval=method)
    edges = np.cumsum(sizes)[:-1]
    p_adj = np.concatenate([_correct(p, correction) for p in np.split(lift.p_value, edges)])
    adj = adjusted_interval(lift, p_adj, alpha=0.05, alternative=alternative)
    rejects = p_adj < 0.05
    absolute = _excludes_zero(adj.ci_abs_adj_low, adj.ci_abs_adj_high)
    defined = ~np.isnan(adj.ci_adj_low)  # Fieller can be unbounded
    relative = _excludes_zero(adj.ci_adj_low, adj.ci_adj_high)
    assert int((absolute != rejects).sum()) == 0
    assert int((relative != rejects)[defined].sum()) == 0
    assert defined.sum() > 500  # Fieller's adjusted interval is unbounded where p adj. = 1
    assert 100 < rejects.sum() < sizes.sum() - 100  # the test sees both outcomes


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_adjusted_interval_without_correction_is_the_raw_interval(alternative):
    rng = np.random.default_rng(3)
    control, treatment = _family(rng, 300, 400)
    lift = welch_ttest(control, treatment, alternative=alternative)  # default: Fieller
    adj = adjusted_interval(lift, lift.p_value, alternative=alternative)
    # t.isf(p) for a one-sided p near 1 keeps only the digits 1 - p has: rtol 1e-5.
    np.testing.assert_allclose(adj.ci_abs_adj_low, lift.ci_abs_low, rtol=1e-5)
    np.testing.assert_allclose(adj.ci_abs_adj_high, lift.ci_abs_high, rtol=1e-5)
    np.testing.assert_allclose(adj.ci_adj_low, lift.ci_low, rtol=1e-5)
    np.testing.assert_allclose(adj.ci_adj_high, lift.ci_high, rtol=1e-5)


def test_adjusted_interval_widens_the_raw_one_under_holm():
    rng = np.random.default_rng(4)
    control, treatment = _family(rng, 30, 400)
    lift = welch_ttest(control, treatment)
    p_adj = _correct(lift.p_value, "holm")
    adj = adjusted_interval(lift, p_adj)
    ok = ~np.isnan(adj.ci_adj_low)
    assert (adj.ci_abs_adj_low <= lift.ci_abs_low + 1e-12).all()
    assert (adj.ci_abs_adj_high >= lift.ci_abs_high - 1e-12).all()
    assert (adj.ci_adj_low[ok] <= lift.ci_low[ok] + 1e-12).all()
    assert (adj.ci_adj_high[ok] >= lift.ci_high[ok] - 1e-12).all()


def test_adjusted_interval_p_one_is_unbounded_and_nan_stays_nan():
    a = np.array
    control = MeanSums(n=a([500.0, 500.0, 1.0]), mean=a([2.0, 2.0, 2.0]), m2=a([499.0, 499.0, 0]))
    treatment = MeanSums(n=a([500.0, 500.0, 5.0]), mean=a([2.1, 2.1, 2.0]), m2=a([499.0, 499, 4]))
    lift = welch_ttest(control, treatment, relative_interval="log")
    adj = adjusted_interval(lift, np.array([1.0, np.nan, np.nan]))
    assert adj.ci_abs_adj_low[0] == -np.inf
    assert adj.ci_abs_adj_high[0] == np.inf
    assert adj.ci_adj_low[0] == -1.0  # the log scale's floor
    assert np.isnan(adj.ci_abs_adj_low[1:]).all()
    assert np.isnan(adj.ci_adj_low[1:]).all()


def test_adjusted_interval_rejects_bad_input():
    lift = welch_ttest(MeanSums.from_values([1.0, 2.0, 3.0]), MeanSums.from_values([2.0, 3.0, 5.0]))
    with pytest.raises(TypeError, match="LiftResult"):
        adjusted_interval(object(), [0.1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one value per cell"):
        adjusted_interval(lift, [0.1, 0.2])
    with pytest.raises(ValueError, match="alpha"):
        adjusted_interval(lift, [0.1], alpha=1.5)
