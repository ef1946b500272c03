"""complement and interaction_test: raw-data parity, overlap validity and calibration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiment.stats import (
    InteractionResult,
    complement,
    interaction_test,
    welch_ttest,
)
from experiment.sums import JointSums, MeanSums


def test_complement_equals_the_rest_computed_from_raw_values():
    rng = np.random.default_rng(1)
    y = 1e6 + rng.normal(0.0, 3.0, 500)  # large offset: no cancellation allowed
    part = rng.random(500) < 0.3
    rest = complement(MeanSums.from_values(y), MeanSums.from_values(y[part]))
    assert rest.n[0] == (~part).sum()
    assert rest.mean[0] == pytest.approx(y[~part].mean(), rel=1e-12)
    assert rest.var[0] == pytest.approx(np.var(y[~part], ddof=1), rel=1e-6)


def test_complement_of_joint_sums_equals_raw_values():
    rng = np.random.default_rng(2)
    x = rng.poisson(5.0, 400).astype(float) + 1
    y = rng.binomial(x.astype(int), 0.1).astype(float)
    part = rng.random(400) < 0.5
    rest = complement(JointSums.from_values(y, x), JointSums.from_values(y[part], x[part]))
    ref = JointSums.from_values(y[~part], x[~part])
    for name in ("n", "mean_y", "mean_x", "m2_y", "m2_x", "c_xy"):
        assert getattr(rest, name)[0] == pytest.approx(getattr(ref, name)[0], rel=1e-9), name


def test_complement_of_everyone_is_empty_and_mixed_kinds_raise():
    whole = MeanSums.from_values([1.0, 2.0, 3.0])
    rest = complement(whole, whole)
    assert rest.n[0] == 0
    assert np.isnan(rest.mean[0])
    with pytest.raises(TypeError, match="must be sums of the same kind"):
        complement(whole, JointSums.from_values([1.0], [1.0]))


def test_interaction_test_matches_a_z_test_of_two_welch_lifts():
    rng = np.random.default_rng(3)
    c_s, t_s = rng.normal(1.0, 1.0, 300), rng.normal(1.3, 1.0, 280)
    c_r, t_r = rng.normal(1.0, 2.0, 900), rng.normal(1.0, 2.0, 950)
    seg = welch_ttest(MeanSums.from_values(c_s), MeanSums.from_values(t_s), alpha=0.05)
    rest = welch_ttest(MeanSums.from_values(c_r), MeanSums.from_values(t_r), alpha=0.05)
    res = interaction_test(seg, rest, scale="absolute")
    assert isinstance(res, InteractionResult)
    diff = (t_s.mean() - c_s.mean()) - (t_r.mean() - c_r.mean())
    var = sum(np.var(v, ddof=1) / v.size for v in (c_s, t_s, c_r, t_r))
    assert res.difference[0] == pytest.approx(diff, rel=1e-9)
    assert res.p_value[0] == pytest.approx(2 * stats.norm.sf(abs(diff) / np.sqrt(var)), rel=1e-9)
    rel = interaction_test(seg, rest, scale="relative")
    assert rel.difference[0] == pytest.approx(seg.lift_rel[0] - rest.lift_rel[0])
    with pytest.raises(ValueError, match="must be 'absolute'"):
        interaction_test(seg, rest, scale="log")  # type: ignore[arg-type]


def test_interaction_test_on_an_empty_rest_is_nan_with_reason():
    y = MeanSums.from_values([0.0, 1.0, 1.0])
    seg = welch_ttest(y, y, alpha=0.05)
    empty = complement(y, y)
    rest = welch_ttest(empty, empty, alpha=0.05)
    res = interaction_test(seg, rest, scale="absolute")
    assert np.isnan(res.p_value[0])
    assert res.reason[0] == "too_few_units"


def test_interaction_test_is_calibrated_for_an_overlapping_segment():
    """A/A over many replicates: segment vs (all minus segment) rejects 5% ± 3.29 sd."""
    rng = np.random.default_rng(4)
    reps, n = 2000, 800
    seg_mask = rng.random(n) < 0.4
    y = rng.binomial(1, 0.2, (reps, n)).astype(float)
    arm = rng.random((reps, n)) < 0.5

    def sums(mask):
        m = mask.astype(float)
        k = m.sum(axis=1)
        mean = (y * m).sum(axis=1) / k
        return MeanSums(n=k, mean=mean, m2=(((y - mean[:, None]) * m) ** 2).sum(axis=1))

    def test_of(mask_c, mask_t):
        return welch_ttest(sums(mask_c), sums(mask_t), alpha=0.05)

    whole_c, whole_t = sums(~arm), sums(arm)
    seg_c, seg_t = sums(~arm & seg_mask), sums(arm & seg_mask)
    seg = welch_ttest(seg_c, seg_t, alpha=0.05)
    rest = welch_ttest(complement(whole_c, seg_c), complement(whole_t, seg_t), alpha=0.05)
    direct = test_of(~arm & ~seg_mask, arm & ~seg_mask)
    assert rest.p_value == pytest.approx(direct.p_value, rel=1e-8)
    for scale in ("absolute", "relative"):
        rate = (interaction_test(seg, rest, scale=scale).p_value < 0.05).mean()
        tol = 3.29 * np.sqrt(0.05 * 0.95 / reps)
        assert abs(rate - 0.05) < tol, (scale, rate)


def test_complement_of_covariate_sums_equals_the_rest_computed_directly():
    from experiment.sums import CovariateSums

    rng = np.random.default_rng(4)
    y, x = rng.normal(size=60), rng.normal(size=(60, 3)) + 50.0
    whole = CovariateSums.from_values(y, x)
    rest = complement(whole, CovariateSums.from_values(y[:25], x[:25]))
    ref = CovariateSums.from_values(y[25:], x[25:])
    for name in ("n", "mean_y", "m2_y", "mean_x", "c_xx", "c_xy"):
        np.testing.assert_allclose(getattr(rest, name), getattr(ref, name), rtol=1e-9, atol=1e-9)
    empty = complement(whole, whole)
    assert empty.n.tolist() == [0.0]
    assert np.isnan(empty.mean_x).all()
    assert not empty.c_xx.any()
