import numpy as np
import pytest
from scipy.optimize import brentq
from statsmodels.stats.power import NormalIndPower

import experiment.stats
from experiment.stats import (
    cuped_variance_reduction,
    detectable_effect_size,
    mde_cell,
    mde_mean,
    power_normal,
)
from experiment.stats.power import __all__ as power_all

N_CONTROL = np.array([3, 20, 100, 1000, 5000, 40_000, 250_000, 1000])
N_TREATMENT = np.array([5, 20, 300, 1000, 15_000, 40_000, 250_000, 30])


def _reference_effect(n1, n2, alpha, power):
    """Tight root of statsmodels' own power function (its solve_power is looser than 1e-6)."""
    engine = NormalIndPower()

    def f(d):
        return engine.power(effect_size=d, nobs1=n1, alpha=alpha, ratio=n2 / n1) - power

    return brentq(f, 1e-9, 50, xtol=1e-15, rtol=1e-15)


@pytest.mark.parametrize(("alpha", "power"), [(0.05, 0.8), (0.01, 0.9), (0.1, 0.5)])
def test_detectable_effect_size_equals_statsmodels(alpha, power):
    ours = detectable_effect_size(N_CONTROL, N_TREATMENT, alpha=alpha, power=power)
    ref = [
        _reference_effect(a, b, alpha, power) for a, b in zip(N_CONTROL, N_TREATMENT, strict=True)
    ]
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-6)
    achieved = [
        NormalIndPower().power(effect_size=d, nobs1=a, alpha=alpha, ratio=b / a)
        for d, a, b in zip(ours, N_CONTROL, N_TREATMENT, strict=True)
    ]
    assert achieved == pytest.approx([power] * len(ours), abs=1e-9)


def test_power_normal_equals_statsmodels():
    d = np.array([0.01, 0.1, 0.5, 2.0])
    n1, n2 = np.array([10_000, 500, 50, 3]), np.array([10_000, 1500, 50, 4])
    ref = [
        NormalIndPower().power(e, a, 0.05, ratio=b / a) for e, a, b in zip(d, n1, n2, strict=True)
    ]
    assert power_normal(d, n1, n2, alpha=0.05) == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("reduction", [0.0, 0.36, 0.9])
def test_mde_cell_is_statsmodels_effect_times_adjusted_sd_over_baseline(reduction):
    mean = np.linspace(0.02, 40.0, len(N_CONTROL))
    var = np.linspace(0.5, 900.0, len(N_CONTROL))
    res = mde_cell(mean, var, N_CONTROL, N_TREATMENT, variance_reduction=reduction)
    ref = np.array(
        [_reference_effect(a, b, 0.05, 0.8) for a, b in zip(N_CONTROL, N_TREATMENT, strict=True)]
    )
    sd = np.sqrt(var * (1 - reduction))
    assert res.mde_abs == pytest.approx(ref * sd, rel=1e-9)
    assert res.mde_rel == pytest.approx(ref * sd / mean, rel=1e-9)
    assert (res.reason == "").all()


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_mde_cell_one_sided_equals_statsmodels_larger(alternative):
    n1, n2 = np.array([50, 800, 20_000]), np.array([70, 800, 5_000])
    res = mde_cell(3.0, 4.0, n1, n2, alpha=0.05, power=0.9, alternative=alternative)
    from scipy.stats import norm

    m = n1 * n2 / (n1 + n2)
    closed = (norm.ppf(0.95) + norm.ppf(0.9)) / np.sqrt(m)
    assert res.mde_abs == pytest.approx(closed * 2.0, rel=1e-12)
    achieved = [  # statsmodels' one-sided power at our effect is the requested power
        NormalIndPower().power(d, a, 0.05, ratio=b / a, alternative="larger")
        for d, a, b in zip(res.effect_size, n1, n2, strict=True)
    ]
    assert achieved == pytest.approx([0.9] * 3, abs=1e-9)
    two = mde_cell(3.0, 4.0, n1, n2, alpha=0.05, power=0.9)
    assert (res.mde_abs < two.mde_abs).all()


def test_mde_cell_degenerate_cells_have_reasons():
    res = mde_cell([0.0, 1.0, 1.0, 2.0], [1.0, np.nan, 1.0, 1.0], [100, 100, 0, 100], 100)
    assert list(res.reason) == ["zero_baseline", "zero_variance", "too_few_units", ""]
    assert np.isnan(res.mde_rel[:3]).all()
    assert np.isfinite(res.mde_rel[3])


def test_mde_cell_nan_reduction_counts_as_none():
    plain = mde_cell(1.0, 2.0, 500, 500)
    assert mde_cell(1.0, 2.0, 500, 500, variance_reduction=np.nan).mde_abs == plain.mde_abs


def test_cuped_variance_reduction_is_squared_correlation():
    rng = np.random.default_rng(3)
    x = rng.normal(size=500)
    y = 0.7 * x + rng.normal(size=500)
    dx, dy = x - x.mean(), y - y.mean()
    got = cuped_variance_reduction((dy**2).sum(), (dx**2).sum(), (dx * dy).sum())
    assert float(got) == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2, rel=1e-12)
    # the share of variance the optimal CUPED slope removes
    theta = (dx * dy).sum() / (dx**2).sum()
    assert 1 - np.var(y - theta * x) / np.var(y) == pytest.approx(float(got), rel=1e-9)
    assert list(cuped_variance_reduction([1.0, 0.0], [0.0, 1.0], [0.0, 0.0])) == [0.0, 0.0]


def test_power_at_the_proportion_mde_is_the_target_by_simulation():
    """Welch's test on 0/1 data rejects ~80% of the time when the true lift is the MDE.

    Independent of our formula: simulated binomial arms and scipy's Welch t.
    """
    from scipy.stats import ttest_ind_from_stats

    p0, n = 0.2, 3000
    mde = mde_cell(p0, p0 * (1 - p0), n, n, alpha=0.05, power=0.8)
    p1 = p0 + float(mde.mde_abs)
    rng = np.random.default_rng(11)
    reps = 6000
    k0, k1 = rng.binomial(n, p0, reps), rng.binomial(n, p1, reps)
    m0, m1 = k0 / n, k1 / n
    s0, s1 = np.sqrt(m0 * (1 - m0) * n / (n - 1)), np.sqrt(m1 * (1 - m1) * n / (n - 1))
    p = ttest_ind_from_stats(m1, s1, n, m0, s0, n, equal_var=False).pvalue
    assert np.mean(p < 0.05) == pytest.approx(0.8, abs=0.02)


def test_mde_mean_equals_statsmodels_times_sd():
    mean = np.full(len(N_CONTROL), 25.0)
    sd = np.linspace(5, 80, len(N_CONTROL))
    res = mde_mean(mean, sd, N_CONTROL, N_TREATMENT, alpha=0.05, power=0.8)
    ref = np.array(
        [_reference_effect(a, b, 0.05, 0.8) for a, b in zip(N_CONTROL, N_TREATMENT, strict=True)]
    )
    assert res.mde_abs == pytest.approx(ref * sd, rel=1e-9, abs=1e-6)
    assert res.mde_rel == pytest.approx(res.mde_abs / 25.0)


def test_mde_shrinks_like_one_over_root_n():
    res = mde_mean(1.0, 1.0, [10_000, 40_000], [10_000, 40_000])
    assert res.mde_abs[0] / res.mde_abs[1] == pytest.approx(2.0, rel=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "phrase"), [({"alpha": 1.2}, "alpha"), ({"power": 1.0}, "power")]
)
def test_mde_rejects_bad_alpha_or_power(kwargs, phrase):
    with pytest.raises(ValueError, match=phrase):
        mde_cell(0.1, 0.09, 100, 100, **kwargs)


def test_power_names_are_exported():
    assert set(power_all) <= set(experiment.stats.__all__)
