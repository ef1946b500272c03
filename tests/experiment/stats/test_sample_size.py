"""Sample sizes for a target lift, against statsmodels' NormalIndPower.solve_power."""

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower

from experiment.stats import mde_cell, sample_size, sample_size_mean


@pytest.mark.parametrize(
    "case",
    [
        (0.03, 0.1, 0.05, 0.8, 1.0, 0.0),
        (0.2, -0.05, 0.01, 0.9, 2.0, 0.3),
        (0.5, 0.5, 0.1, 0.6, 0.5, 0.0),
    ],
)
def test_sample_size_proportion_matches_statsmodels(case):
    baseline, lift, alpha, power, ratio, reduction = case
    var = baseline * (1 - baseline)
    res = sample_size(
        [baseline], var, lift, alpha=alpha, power=power, ratio=ratio, variance_reduction=reduction
    )
    d = abs(lift) * baseline / np.sqrt(var * (1 - reduction))
    ref = NormalIndPower().solve_power(effect_size=d, alpha=alpha, power=power, ratio=ratio)
    assert res.effect_size[0] == pytest.approx(d, rel=1e-12)
    assert res.n_control[0] == pytest.approx(ref, rel=1e-8)
    assert res.n_treatment[0] == pytest.approx(ratio * ref, rel=1e-8)
    assert res.reason[0] == ""


@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
@pytest.mark.parametrize("reduction", [0.0, 0.5])
def test_mde_at_the_sample_size_is_the_target_lift(alternative, reduction):
    mean, var, lift = np.array([0.04, 12.0]), np.array([0.0384, 300.0]), 0.07
    kw = {"alpha": 0.05, "power": 0.85, "alternative": alternative, "variance_reduction": reduction}
    size = sample_size(mean, var, lift, ratio=1.5, **kw)
    mde = mde_cell(mean, var, size.n_control, size.n_treatment, **kw)
    assert mde.mde_rel == pytest.approx([lift, lift], rel=1e-9)
    if alternative == "greater":
        d = lift * mean / np.sqrt(var * (1 - reduction))
        ref = [
            NormalIndPower().solve_power(
                effect_size=e, alpha=0.05, power=0.85, ratio=1.5, alternative="larger"
            )
            for e in d
        ]
        assert size.n_control == pytest.approx(ref, rel=1e-8)


@pytest.mark.parametrize(("mean", "sd", "lift"), [(10.0, 20.0, 0.1), (-4.0, 1.5, 0.02)])
def test_sample_size_mean_matches_statsmodels(mean, sd, lift):
    res = sample_size_mean(mean, sd, lift, alpha=0.05, power=0.8, ratio=1.5)
    d = lift * abs(mean) / sd
    ref = NormalIndPower().solve_power(effect_size=d, alpha=0.05, power=0.8, ratio=1.5)
    assert res.n_control[0] == pytest.approx(ref, rel=1e-8)
    assert res.n_treatment[0] == pytest.approx(1.5 * ref, rel=1e-8)


def test_sample_size_degenerate_cells_are_nan_with_reason():
    res = sample_size([0.0, 5.0, 1.0], [1.0, 0.0, 1.0], 0.1)
    assert np.isnan(res.n_control[:2]).all()
    assert list(res.reason) == ["zero_baseline", "zero_variance", ""]


def test_sample_size_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"lift_rel == -2\.0, must be > -1"):
        sample_size_mean(1.0, 1.0, -2.0)
    with pytest.raises(ValueError, match=r"ratio == 0\.0, must be > 0"):
        sample_size(0.1, 0.09, 0.1, ratio=0.0)
    with pytest.raises(ValueError, match="alternative"):
        sample_size(0.1, 0.09, 0.1, alternative="both")  # type: ignore[arg-type]
