"""ratio_ttest: delta-method variance against raw data, the bootstrap, and clustered A/A."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from experiment.stats import ratio_ttest, welch_ttest
from experiment.stats.messages import TOO_FEW_UNITS, ZERO_BASELINE, ZERO_DENOMINATOR, ZERO_VARIANCE
from experiment.sums import JointSums, MeanSums

ALTERNATIVES = ["two-sided", "greater", "less"]


def _approx(expected: object) -> object:
    """Reference-engine tolerance: equal up to floating-point noise."""
    return pytest.approx(expected, rel=1e-9, abs=1e-12)


Z = 3.29
_FIELDS = ("n", "mean_y", "mean_x", "m2_y", "m2_x", "c_xy")


def _users(rng: np.random.Generator, shape: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Clicks and impressions per user: impressions 1 + NegBin (mean 8), CTR ~ Beta(0.5, 12).

    Each user's impressions share one CTR, so impressions are clustered (REALISM.md B5).
    """
    impressions = 1 + rng.negative_binomial(2, 2 / 9, size=shape)
    ctr = rng.beta(0.5, 12.0, size=shape)
    return rng.binomial(impressions, ctr).astype(np.float64), impressions.astype(np.float64)


def _stack(cells: list[JointSums]) -> JointSums:
    """Many single-cell sums as one multi-cell JointSums."""
    return JointSums(*(np.concatenate([getattr(c, f) for c in cells]) for f in _FIELDS))


def _joint(y: np.ndarray, x: np.ndarray) -> JointSums:
    """JointSums of the last axis: one cell per row."""
    my, mx = y.mean(axis=-1), x.mean(axis=-1)
    dy, dx = y - my[..., None], x - mx[..., None]
    return JointSums(
        n=np.full(my.shape, float(y.shape[-1])),
        mean_y=np.atleast_1d(my),
        mean_x=np.atleast_1d(mx),
        m2_y=np.atleast_1d((dy**2).sum(axis=-1)),
        m2_x=np.atleast_1d((dx**2).sum(axis=-1)),
        c_xy=np.atleast_1d((dx * dy).sum(axis=-1)),
    )


@pytest.fixture(scope="module")
def ctr_arms() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(2018)
    return _users(rng, 4_000), _users(rng, 4_000)


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_ratio_ttest_with_unit_denominator_equals_welch(alternative):
    rng = np.random.default_rng(3)
    a, b = rng.exponential(2.0, 50), rng.exponential(2.5, 70)
    ratio = ratio_ttest(
        JointSums.from_values(a, np.ones_like(a)),
        JointSums.from_values(b, np.ones_like(b)),
        alternative=alternative,
    )
    welch = welch_ttest(MeanSums.from_values(a), MeanSums.from_values(b), alternative=alternative)
    for field in (
        "mean_control",
        "lift_abs",
        "se_abs",
        "se_rel",
        "ci_abs_low",
        "ci_abs_high",
        "ci_low",
        "ci_high",
        "p_value",
        "dof",
    ):
        assert getattr(ratio, field) == _approx(getattr(welch, field)), field


@pytest.mark.parametrize("alternative", ALTERNATIVES)
def test_ratio_ttest_matches_welch_on_linearised_values(ctr_arms, alternative):
    (yc, xc), (yt, xt) = ctr_arms
    res = ratio_ttest(_joint(yc, xc), _joint(yt, xt), alternative=alternative)
    rc, rt = yc.sum() / xc.sum(), yt.sum() / xt.sum()
    # Deng et al.: Var(R) is the variance of the mean of (y - R x) / x̄.
    lin_c, lin_t = (yc - rc * xc) / xc.mean(), (yt - rt * xt) / xt.mean()
    ref = scipy.stats.ttest_ind_from_stats(
        mean1=rt, std1=lin_t.std(ddof=1), nobs1=yt.size,
        mean2=rc, std2=lin_c.std(ddof=1), nobs2=yc.size,
        equal_var=False, alternative=alternative,
    )  # fmt: skip
    assert res.mean_control[0] == _approx(rc)
    assert res.mean_treatment[0] == _approx(rt)
    se = np.hypot(lin_c.std(ddof=1) / np.sqrt(yc.size), lin_t.std(ddof=1) / np.sqrt(yt.size))
    assert res.se_abs[0] == pytest.approx(se, rel=1e-9)
    assert res.p_value[0] == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-12)


def test_ratio_ttest_deng_formula_from_raw_moments(ctr_arms):
    (yc, xc), _ = ctr_arms
    n, my, mx = yc.size, yc.mean(), xc.mean()
    cov = np.cov(yc, xc)
    deng = (cov[0, 0] / mx**2 - 2 * my * cov[0, 1] / mx**3 + my**2 * cov[1, 1] / mx**4) / n
    res = ratio_ttest(_joint(yc, xc), _joint(yc, xc))
    assert res.se_abs[0] == pytest.approx(np.sqrt(2 * deng), rel=1e-9)


def test_ratio_ttest_delta_se_matches_bootstrap(ctr_arms):
    (yc, xc), (yt, xt) = ctr_arms
    res = ratio_ttest(_joint(yc, xc), _joint(yt, xt))
    rng = np.random.default_rng(7)
    boot = []
    for y, x in ((yc, xc), (yt, xt)):
        chunks = []
        for _ in range(4):  # 4 x 500 = 2000 resamples over users, in memory-friendly chunks
            idx = rng.integers(0, y.size, size=(500, y.size))
            chunks.append(y[idx].sum(axis=1) / x[idx].sum(axis=1))
        boot.append(np.concatenate(chunks))
    diff = boot[1] - boot[0]
    assert res.se_abs[0] == pytest.approx(diff.std(ddof=1), rel=0.05)
    assert res.se_rel[0] == pytest.approx((boot[1] / boot[0] - 1).std(ddof=1), rel=0.05)
    boot_half_width = np.diff(np.quantile(diff, [0.025, 0.975]))[0] / 2
    assert (res.ci_abs_high[0] - res.ci_abs_low[0]) / 2 == pytest.approx(boot_half_width, rel=0.1)


@pytest.mark.slow
def test_ratio_ttest_aa_false_positive_rate_in_band_where_naive_binomial_fails():
    reps, users = 2_000, 2_000
    rng = np.random.default_rng(20180819)
    (yc, xc), (yt, xt) = _users(rng, (reps, users)), _users(rng, (reps, users))
    res = ratio_ttest(_joint(yc, xc), _joint(yt, xt))

    # Naive: pooled two-proportion z-test treating every impression as independent.
    clicks_c, impr_c, clicks_t, impr_t = yc.sum(1), xc.sum(1), yt.sum(1), xt.sum(1)
    pooled = (clicks_c + clicks_t) / (impr_c + impr_t)
    z = (clicks_t / impr_t - clicks_c / impr_c) / np.sqrt(
        pooled * (1 - pooled) * (1 / impr_c + 1 / impr_t)
    )
    naive_p = 2 * scipy.stats.norm.sf(np.abs(z))

    half = Z * np.sqrt(0.05 * 0.95 / reps)
    delta_fpr = (res.p_value < 0.05).mean()
    assert 0.05 - half <= delta_fpr <= 0.05 + half
    tail_half = Z * np.sqrt(0.025 * 0.975 / reps)
    for tail in (res.lift_abs > 0, res.lift_abs < 0):
        assert abs(((res.p_value < 0.05) & tail).mean() - 0.025) <= tail_half
    assert (naive_p < 0.05).mean() > 0.10  # why the delta method is needed


def test_ratio_ttest_zero_denominator_gives_nan_ratio():
    control = JointSums.from_values([0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    treatment = JointSums.from_values([1.0, 0.0, 2.0], [3.0, 2.0, 5.0])
    res = ratio_ttest(control, treatment)
    assert res.reason.tolist() == [ZERO_DENOMINATOR]
    assert np.isnan(
        [res.mean_control, res.lift_abs, res.lift_rel, res.p_value, res.ci_low, res.ci_abs_high]
    ).all()


def test_ratio_ttest_too_few_units_gives_nan():
    control = JointSums.from_values([1.0], [3.0]) + JointSums.from_values([], [])
    treatment = JointSums.from_values([1.0, 0.0, 2.0], [3.0, 2.0, 5.0])
    res = ratio_ttest(control, treatment)
    assert res.reason.tolist() == [TOO_FEW_UNITS]
    assert res.mean_control.tolist() == pytest.approx([1 / 3])
    assert np.isnan([res.se_abs, res.p_value, res.dof, res.ci_abs_low, res.ci_high]).all()


def test_ratio_ttest_zero_variance_when_every_user_has_the_same_ratio():
    x = np.array([3.0, 7.0, 11.0, 2.0])
    control = JointSums.from_values(0.1 * x, x)  # y = R x exactly: linearised values are 0
    treatment = JointSums.from_values(0.3 * x[:3], x[:3])
    no_clicks = JointSums.from_values(np.zeros(4), x)
    res = ratio_ttest(_stack([control, no_clicks]), _stack([treatment, no_clicks]))
    assert res.reason.tolist() == [ZERO_VARIANCE, ZERO_VARIANCE]
    assert res.lift_abs[0] == pytest.approx(0.2)
    assert np.isnan(res.p_value).all()
    assert np.isnan(res.ci_abs_low).all()


def test_ratio_ttest_zero_control_ratio_gives_zero_baseline(ctr_arms):
    _, (yt, xt) = ctr_arms
    res = ratio_ttest(JointSums.from_values(np.zeros(100), xt[:100]), _joint(yt, xt))
    assert res.reason.tolist() == [ZERO_BASELINE]
    assert np.isfinite([res.p_value, res.ci_abs_low, res.ci_abs_high]).all()
    assert np.isnan([res.lift_rel, res.se_rel, res.ci_low, res.ci_high]).all()


def test_ratio_ttest_bad_arguments_raise():
    arm = JointSums.from_values([1.0, 2.0], [2.0, 3.0])
    with pytest.raises(ValueError, match="must be > 0 and < 1"):
        ratio_ttest(arm, arm, alpha=1.5)
    with pytest.raises(ValueError, match="must be one of"):
        ratio_ttest(arm, arm, alternative="both")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="control must be an instance of JointSums"):
        ratio_ttest(MeanSums.from_values([1.0, 2.0]), arm)  # type: ignore[arg-type]
