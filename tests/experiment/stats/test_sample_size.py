"""Sample sizes for a target lift, against statsmodels' NormalIndPower.solve_power."""

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from experiment.stats import sample_size_mean, sample_size_proportion


@pytest.mark.parametrize(
    ("baseline", "lift", "alpha", "power", "ratio"),
    [(0.03, 0.1, 0.05, 0.8, 1.0), (0.2, -0.05, 0.01, 0.9, 2.0), (0.5, 0.5, 0.1, 0.6, 0.5)],
)
def test_sample_size_proportion_matches_statsmodels(baseline, lift, alpha, power, ratio):
    res = sample_size_proportion([baseline], lift, alpha=alpha, power=power, ratio=ratio)
    h = proportion_effectsize(baseline * (1 + lift), baseline)
    ref = NormalIndPower().solve_power(effect_size=h, alpha=alpha, power=power, ratio=ratio)
    assert res.effect_size[0] == pytest.approx(h, rel=1e-12)
    assert res.n_control[0] == pytest.approx(ref, rel=1e-8)
    assert res.n_treatment[0] == pytest.approx(ratio * ref, rel=1e-8)
    assert res.reason[0] == ""


@pytest.mark.parametrize(("mean", "sd", "lift"), [(10.0, 20.0, 0.1), (-4.0, 1.5, 0.02)])
def test_sample_size_mean_matches_statsmodels(mean, sd, lift):
    res = sample_size_mean(mean, sd, lift, alpha=0.05, power=0.8, ratio=1.5)
    d = lift * abs(mean) / sd
    ref = NormalIndPower().solve_power(effect_size=d, alpha=0.05, power=0.8, ratio=1.5)
    assert res.n_control[0] == pytest.approx(ref, rel=1e-8)
    assert res.n_treatment[0] == pytest.approx(1.5 * ref, rel=1e-8)


def test_sample_size_degenerate_cells_are_nan_with_reason():
    prop = sample_size_proportion([0.0, 0.9, 0.1], 0.5)
    assert np.isnan(prop.n_control[:2]).all()
    assert list(prop.reason) == ["zero_baseline", "too_few_units", ""]
    mean = sample_size_mean([0.0, 5.0], [1.0, 0.0], 0.1)
    assert np.isnan(mean.n_control).all()
    assert list(mean.reason) == ["zero_baseline", ""]


def test_sample_size_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"lift_rel == -2\.0, must be > -1"):
        sample_size_mean(1.0, 1.0, -2.0)
    with pytest.raises(ValueError, match=r"ratio == 0\.0, must be > 0"):
        sample_size_proportion(0.1, 0.1, ratio=0.0)
