"""welch_ttest against scipy and statsmodels, degenerate cells, wiring and properties."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from experiment.stats import _lift, welch_ttest
from experiment.stats.messages import TOO_FEW_UNITS, ZERO_BASELINE, ZERO_TREATMENT, ZERO_VARIANCE
from experiment.sums import MeanSums

ALTERNATIVES = ["two-sided", "greater", "less"]
_SM_ALTERNATIVE = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


def _approx(expected: object) -> object:
    """Reference-engine tolerance: equal up to floating-point noise."""
    return pytest.approx(expected, rel=1e-9, abs=1e-12)


def _arr(*values: float) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _stack(cells: list[MeanSums]) -> MeanSums:
    """Many single-cell sums as one multi-cell MeanSums."""
    return MeanSums(
        n=np.concatenate([c.n for c in cells]),
        mean=np.concatenate([c.mean for c in cells]),
        m2=np.concatenate([c.m2 for c in cells]),
    )


@pytest.fixture(scope="module")
def samples() -> list[tuple[np.ndarray, np.ndarray]]:
    """(control, treatment) raw values for three cells: unequal n, sd and effect."""
    rng = np.random.default_rng(42)
    return [
        (rng.normal(10.0, 2.0, 40), rng.normal(10.8, 3.5, 25)),
        (rng.lognormal(0.0, 1.0, 300), rng.lognormal(0.1, 1.0, 280)),
        (rng.normal(-3.0, 1.0, 8), rng.normal(-3.2, 0.2, 5)),
    ]


@pytest.mark.parametrize("alternative", ALTERNATIVES)
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_welch_ttest_matches_scipy_and_statsmodels(samples, alternative, alpha):
    control = _stack([MeanSums.from_values(a) for a, _ in samples])
    treatment = _stack([MeanSums.from_values(b) for _, b in samples])
    res = welch_ttest(control, treatment, alpha=alpha, alternative=alternative)

    for i, (a, b) in enumerate(samples):
        ref = scipy.stats.ttest_ind_from_stats(
            mean1=b.mean(), std1=b.std(ddof=1), nobs1=b.size,
            mean2=a.mean(), std2=a.std(ddof=1), nobs2=a.size,
            equal_var=False, alternative=alternative,
        )  # fmt: skip
        raw = scipy.stats.ttest_ind(b, a, equal_var=False, alternative=alternative)
        ci = raw.confidence_interval(confidence_level=1 - alpha)
        sm = CompareMeans(DescrStatsW(b), DescrStatsW(a))
        sm_ci = sm.tconfint_diff(
            alpha=alpha, alternative=_SM_ALTERNATIVE[alternative], usevar="unequal"
        )
        _, sm_p, sm_dof = sm.ttest_ind(alternative=_SM_ALTERNATIVE[alternative], usevar="unequal")

        assert res.p_value[i] == _approx(ref.pvalue)
        assert res.p_value[i] == _approx(sm_p)
        assert res.dof[i] == _approx(raw.df)
        assert res.dof[i] == _approx(sm_dof)
        assert res.lift_abs[i] == _approx(b.mean() - a.mean())
        assert (res.ci_abs_low[i], res.ci_abs_high[i]) == _approx(tuple(ci))
        assert (res.ci_abs_low[i], res.ci_abs_high[i]) == _approx(tuple(sm_ci))
    assert res.reason.tolist() == ["", "", ""]


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_welch_ttest_proportions_match_welch_on_binary_arrays(alternative):
    rng = np.random.default_rng(7)
    a = (rng.random(5_000) < 0.03).astype(np.float64)
    b = (rng.random(4_000) < 0.036).astype(np.float64)
    res = welch_ttest(MeanSums.from_values(a), MeanSums.from_values(b), alternative=alternative)
    ref = scipy.stats.ttest_ind(b, a, equal_var=False, alternative=alternative)
    assert res.p_value[0] == _approx(ref.pvalue)
    assert (res.ci_abs_low[0], res.ci_abs_high[0]) == _approx(tuple(ref.confidence_interval()))


def _gbstats_variance_of_ratios(mean_m, var_m, mean_d, var_d, cov_m_d):
    """Delta-method variance of M / D, written as gbstats ``variance_of_ratios``."""
    return (
        var_m / mean_d**2
        + var_d * mean_m**2 / mean_d**4
        - 2 * cov_m_d * mean_m / mean_d**3
    )  # fmt: skip


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_welch_ttest_relative_ci_matches_delta_method(samples, alternative):
    control = _stack([MeanSums.from_values(a) for a, _ in samples])
    treatment = _stack([MeanSums.from_values(b) for _, b in samples])
    alpha = 0.05
    res = welch_ttest(
        control, treatment, alpha=alpha, alternative=alternative, relative_interval="delta"
    )
    for i, (a, b) in enumerate(samples):
        va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        se = np.sqrt(_gbstats_variance_of_ratios(b.mean(), vb, a.mean(), va, 0.0))
        df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
        q = scipy.stats.t.ppf(1 - (alpha / 2 if alternative == "two-sided" else alpha), df)
        rel = b.mean() / a.mean() - 1
        low, high = rel - q * se, rel + q * se
        # a negative baseline flips the sign of the relative lift, so the bounded side too
        bounded_below = {
            "two-sided": None,
            "greater": bool(a.mean() > 0),
            "less": bool(a.mean() < 0),
        }
        if bounded_below[alternative] is True:
            high = np.inf
        elif bounded_below[alternative] is False:
            low = -np.inf
        assert res.lift_rel[i] == _approx(rel)
        assert res.se_rel[i] == _approx(se)
        assert (res.ci_low[i], res.ci_high[i]) == _approx((low, high))


def test_welch_ttest_negative_baseline_one_sided_ci_is_bounded_above():
    control = MeanSums(n=_arr(50), mean=_arr(-2.0), m2=_arr(49.0))
    treatment = MeanSums(n=_arr(50), mean=_arr(-1.5), m2=_arr(49.0))
    res = welch_ttest(control, treatment, alternative="greater", relative_interval="delta")
    assert res.lift_abs[0] > 0 > res.lift_rel[0]
    assert res.ci_abs_high[0] == np.inf
    assert res.ci_low[0] == -np.inf
    assert np.isfinite(res.ci_high[0])


def test_welch_ttest_too_few_units_gives_nan_and_reason():
    control = MeanSums(n=_arr(1, 0, 30), mean=_arr(2.0, np.nan, 2.0), m2=_arr(0.0, 0.0, 29.0))
    treatment = MeanSums(n=_arr(30, 30, 1), mean=_arr(3.0, 3.0, 3.0), m2=_arr(29.0, 29.0, 0.0))
    res = welch_ttest(control, treatment)
    assert res.reason.tolist() == [TOO_FEW_UNITS] * 3
    for field in (
        "se_abs",
        "se_rel",
        "ci_abs_low",
        "ci_abs_high",
        "ci_low",
        "ci_high",
        "p_value",
        "dof",
    ):
        assert np.isnan(getattr(res, field)).all(), field
    assert res.lift_abs[[0, 2]].tolist() == [1.0, 1.0]  # point estimates are real numbers
    assert np.isnan(res.lift_abs[1])


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_welch_ttest_zero_variance_in_both_arms_gives_nan(alternative):
    control = _stack([MeanSums.from_values([0.1] * 3), MeanSums.from_values([0.0] * 10)])
    treatment = _stack([MeanSums.from_values([0.3] * 7), MeanSums.from_values([0.0] * 12)])
    res = welch_ttest(control, treatment, alternative=alternative)
    assert res.reason.tolist() == [ZERO_VARIANCE, ZERO_VARIANCE]
    assert np.isnan(res.p_value).all()
    assert np.isnan(res.ci_abs_low).all()
    assert np.isnan(res.ci_abs_high).all()  # not a half-infinite interval
    assert res.lift_abs[0] == pytest.approx(0.2)


def test_welch_ttest_zero_variance_in_one_arm_is_fine():
    res = welch_ttest(MeanSums.from_values([1.0, 1.0, 1.0]), MeanSums.from_values([1.0, 2.0, 4.0]))
    b = np.array([1.0, 2.0, 4.0])
    ref = scipy.stats.ttest_ind_from_stats(b.mean(), b.std(ddof=1), 3, 1.0, 0.0, 3, equal_var=False)
    assert res.reason.tolist() == [""]
    assert res.p_value[0] == _approx(ref.pvalue)
    assert res.dof[0] == pytest.approx(2.0)


def test_welch_ttest_zero_baseline_keeps_absolute_test():
    control, treatment = (
        MeanSums.from_values([-1.0, 1.0, -2.0, 2.0]),
        MeanSums.from_values([0.0, 2.0, 3.0, 1.0]),
    )
    res = welch_ttest(control, treatment)
    assert res.reason.tolist() == [ZERO_BASELINE]
    assert np.isfinite([res.p_value, res.ci_abs_low, res.ci_abs_high, res.se_abs]).all()
    assert np.isnan([res.lift_rel, res.se_rel, res.ci_low, res.ci_high]).all()


def test_welch_ttest_all_zero_treatment_has_no_relative_interval():
    # 0 of 40 treated users converted: lift_rel is -100%, but the delta method's
    # [-100%, -100%] would claim certainty; the absolute test still runs.
    control = MeanSums.from_values([1.0] * 3 + [0.0] * 37)
    treatment = MeanSums.from_values([0.0] * 40)
    res = welch_ttest(control, treatment)
    assert res.reason.tolist() == [ZERO_TREATMENT]
    assert res.lift_rel.tolist() == [-1.0]
    assert np.isnan([res.se_rel, res.ci_low, res.ci_high]).all()
    ref = scipy.stats.ttest_ind([1.0] * 3 + [0.0] * 37, [0.0] * 40, equal_var=False)
    np.testing.assert_allclose(res.p_value, ref.pvalue, rtol=1e-9)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 1.5, -0.1, float("nan")])
def test_welch_ttest_bad_alpha_raises(alpha):
    arm = MeanSums.from_values([1.0, 2.0])
    with pytest.raises(ValueError, match="must be > 0 and < 1"):
        welch_ttest(arm, arm, alpha=alpha)


@pytest.mark.parametrize("alpha", ["0.05", True, None])
def test_welch_ttest_alpha_of_wrong_type_raises(alpha):
    arm = MeanSums.from_values([1.0, 2.0])
    with pytest.raises(TypeError, match="alpha must be an instance of float"):
        welch_ttest(arm, arm, alpha=alpha)


def test_welch_ttest_bad_alternative_raises():
    arm = MeanSums.from_values([1.0, 2.0])
    with pytest.raises(ValueError, match="must be one of 'two-sided', 'greater', 'less'"):
        welch_ttest(arm, arm, alternative="two_sided")  # type: ignore[arg-type]


def test_welch_ttest_mismatched_arms_raise():
    one, two = MeanSums.from_values([1.0, 2.0]), _stack([MeanSums.from_values([1.0, 2.0])] * 2)
    with pytest.raises(ValueError, match="must have the same shape"):
        welch_ttest(one, two)
    with pytest.raises(TypeError, match="treatment must be an instance of MeanSums"):
        welch_ttest(one, [1.0, 2.0])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("alternative", "tail"), [("two-sided", 0.025), ("greater", 0.05), ("less", 0.05)]
)
def test_welch_ttest_wiring_uses_t_tails(samples, alternative, tail):
    a, b = samples[0]
    with (
        mock.patch.object(_lift, "t_isf", wraps=scipy.stats.t.isf) as isf,
        mock.patch.object(_lift, "t_sf", wraps=scipy.stats.t.sf) as sf,
    ):
        res = welch_ttest(MeanSums.from_values(a), MeanSums.from_values(b), alternative=alternative)
    (q, df), _ = isf.call_args
    assert q == pytest.approx(tail)
    assert df == pytest.approx(res.dof)
    (stat, df), _ = sf.call_args
    sign = {"two-sided": np.sign(stat), "greater": 1.0, "less": -1.0}[alternative]
    assert stat * sign == pytest.approx(res.lift_abs / res.se_abs)
    assert df == pytest.approx(res.dof)


@settings(max_examples=50, deadline=None, database=None)
@given(seed=st.integers(0, 2**32 - 1), perm_seed=st.integers(0, 2**32 - 1))
def test_welch_ttest_cells_do_not_depend_on_their_order(seed, perm_seed):
    rng = np.random.default_rng(seed)
    k = 6
    n_c, n_t = rng.integers(0, 20, k).astype(float), rng.integers(0, 20, k).astype(float)
    control = MeanSums(n=n_c, mean=rng.normal(size=k), m2=rng.exponential(size=k) * n_c)
    treatment = MeanSums(n=n_t, mean=rng.normal(size=k), m2=rng.exponential(size=k) * n_t)
    perm = np.random.default_rng(perm_seed).permutation(k)
    full = welch_ttest(control, treatment)
    permuted = welch_ttest(
        MeanSums(n=control.n[perm], mean=control.mean[perm], m2=control.m2[perm]),
        MeanSums(n=treatment.n[perm], mean=treatment.mean[perm], m2=treatment.m2[perm]),
    )
    np.testing.assert_array_equal(permuted.p_value, full.p_value[perm])
    np.testing.assert_array_equal(permuted.ci_low, full.ci_low[perm])
    np.testing.assert_array_equal(permuted.reason, full.reason[perm])
