import numpy as np
import pytest
from scipy.optimize import brentq
from statsmodels.stats.power import NormalIndPower

import experiment.stats
from experiment.stats import (
    detectable_effect_size,
    mde_mean,
    mde_proportion,
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


def test_mde_proportion_equals_statsmodels_cohens_h():
    from statsmodels.stats.proportion import proportion_effectsize

    base = np.array([0.005, 0.03, 0.2, 0.5, 0.9, 0.03, 0.03, 0.4])
    res = mde_proportion(base, N_CONTROL, N_TREATMENT, alpha=0.05, power=0.8)
    ok = np.isfinite(res.mde_abs)
    assert ok[1:].all()
    p1 = base + res.mde_abs
    # Cohen's h of (p1, p0) per statsmodels equals our effect size, and that h has the power
    h = np.array([proportion_effectsize(a, b) for a, b in zip(p1[ok], base[ok], strict=True)])
    assert h == pytest.approx(res.effect_size[ok], abs=1e-9)
    ref = [
        _reference_effect(a, b, 0.05, 0.8)
        for a, b in zip(N_CONTROL[ok], N_TREATMENT[ok], strict=True)
    ]
    assert h == pytest.approx(ref, abs=1e-6)
    assert res.mde_rel[ok] == pytest.approx(res.mde_abs[ok] / base[ok])
    assert (res.reason[ok] == "").all()


def test_mde_proportion_unreachable_and_degenerate_cells():
    res = mde_proportion([0.95, 0.0, 0.1], [3, 1000, 0], [3, 1000, 100])
    assert np.isnan(res.mde_abs[0])
    assert res.reason[0] == "too_few_units"
    assert res.reason[1] == "zero_baseline"
    assert np.isfinite(res.mde_abs[1])
    assert np.isnan(res.mde_rel[1])
    assert res.reason[2] == "too_few_units"
    assert np.isnan(res.mde_abs[2])


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
        mde_proportion(0.1, 100, 100, **kwargs)


def test_power_names_are_exported():
    assert set(power_all) <= set(experiment.stats.__all__)
