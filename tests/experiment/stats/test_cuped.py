"""cuped_ttest: OLS parity, the delta method, degenerate cells, and planted-ρ Monte-Carlo."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.stats
import statsmodels.api as sm

from experiment.stats import CupedResult, LiftResult, cuped_ttest, welch_ttest
from experiment.stats._lift import lift_result
from experiment.stats.messages import TOO_FEW_UNITS, ZERO_BASELINE, ZERO_VARIANCE
from experiment.sums import JointSums

Z = 3.29
_FIELDS = ("n", "mean_y", "mean_x", "m2_y", "m2_x", "c_xy")


def _stack(cells: list[JointSums]) -> JointSums:
    return JointSums(*(np.concatenate([getattr(c, f) for c in cells]) for f in _FIELDS))


def _arm(rng, n, mu, slope, sd_noise):
    x = rng.gamma(2.0, 3.0, n)
    return mu + slope * x + rng.normal(0.0, sd_noise, n), x


@pytest.fixture(scope="module")
def arms():
    rng = np.random.default_rng(2013)
    return _arm(rng, 400, 10.0, 0.8, 3.0), _arm(rng, 1_600, 10.6, 0.8, 5.0)


def _ols(arms, cov_type):
    (yc, xc), (yt, xt) = arms
    y, x = np.r_[yc, yt], np.r_[xc, xt]
    t = np.r_[np.zeros(yc.size), np.ones(yt.size)]
    design = np.column_stack([np.ones_like(y), t, x - x.mean()])
    return sm.OLS(y, design).fit(cov_type=cov_type)


def test_cuped_ttest_point_estimate_equals_ols(arms):
    (yc, xc), (yt, xt) = arms
    res = cuped_ttest(JointSums.from_values(yc, xc), JointSums.from_values(yt, xt))
    fit = _ols(arms, "nonrobust")
    assert res.lift_abs[0] == pytest.approx(fit.params[1], rel=1e-9, abs=1e-12)
    assert res.theta[0] == pytest.approx(fit.params[2], rel=1e-9)
    # The adjusted control mean is the OLS prediction for control at the pooled x̄.
    assert res.mean_control_adj[0] == pytest.approx(fit.params[0], rel=1e-9)


def test_cuped_ttest_se_matches_hc2_to_order_one_over_n(arms):
    # Welch on the adjusted values ignores the randomness of θ̂ and the small imbalance
    # of x̄ between arms; HC2 (not the homoskedastic OLS SE, which assumes equal
    # variances and is ~50% off here) agrees to O(1/n).
    (yc, xc), (yt, xt) = arms
    res = cuped_ttest(JointSums.from_values(yc, xc), JointSums.from_values(yt, xt))
    assert res.se_abs[0] == pytest.approx(_ols(arms, "HC2").bse[1], rel=5e-3)
    assert res.se_abs[0] != pytest.approx(_ols(arms, "nonrobust").bse[1], rel=0.05)


def test_cuped_ttest_adjusted_variance_equals_residual_variance(arms):
    (yc, xc), (yt, xt) = arms
    res = cuped_ttest(JointSums.from_values(yc, xc), JointSums.from_values(yt, xt))
    theta = res.theta[0]
    var_c = np.var(yc - theta * xc, ddof=1) / yc.size
    var_t = np.var(yt - theta * xt, ddof=1) / yt.size
    assert res.se_abs[0] == pytest.approx(np.sqrt(var_c + var_t), rel=1e-9)
    t_ref = scipy.stats.ttest_ind(yt - theta * xt, yc - theta * xc, equal_var=False)
    assert res.p_value[0] == pytest.approx(t_ref.pvalue, rel=1e-9)
    assert res.dof[0] == pytest.approx(t_ref.df, rel=1e-9)


def test_cuped_ttest_relative_se_equals_numerical_delta_method(arms):
    (yc, xc), (yt, xt) = arms
    res = cuped_ttest(
        JointSums.from_values(yc, xc), JointSums.from_values(yt, xt), relative_interval="delta"
    )
    theta = res.theta[0]

    def rel(v):  # v = (ȳ_c, x̄_c, ȳ_t, x̄_t), θ held fixed
        return (v[2] - v[0] - theta * (v[3] - v[1])) / v[0]

    point = np.array([yc.mean(), xc.mean(), yt.mean(), xt.mean()])
    grad = np.array(
        [(rel(point + h) - rel(point - h)) / (2e-6) for h in np.eye(4) * 1e-6], dtype=float
    )
    cov = np.zeros((4, 4))
    cov[:2, :2] = np.cov(yc, xc) / yc.size
    cov[2:, 2:] = np.cov(yt, xt) / yt.size
    assert res.lift_rel[0] == pytest.approx(rel(point), rel=1e-9)
    assert res.se_rel[0] == pytest.approx(np.sqrt(grad @ cov @ grad), rel=1e-6)
    crit = scipy.stats.t.isf(0.025, res.dof[0])
    assert res.ci_low[0] == pytest.approx(res.lift_rel[0] - crit * res.se_rel[0], rel=1e-9)
    assert res.mean_control[0] == pytest.approx(yc.mean(), rel=1e-12)
    assert res.mean_treatment[0] == pytest.approx(yt.mean(), rel=1e-12)


def test_cuped_ttest_is_a_lift_result_with_extra_fields(arms):
    (yc, xc), (yt, xt) = arms
    res = cuped_ttest(JointSums.from_values(yc, xc), JointSums.from_values(yt, xt))
    assert isinstance(res, CupedResult)
    assert isinstance(res, LiftResult)
    assert 0.3 < res.variance_reduction[0] < 1.0


def test_cuped_ttest_constant_covariate_is_plain_welch():
    rng = np.random.default_rng(3)
    yc, yt = rng.normal(5, 1, 50), rng.normal(5.3, 2, 70)
    control = JointSums.from_values(yc, np.zeros(50))
    treatment = JointSums.from_values(yt, np.zeros(70))
    res = cuped_ttest(control, treatment)
    ref = welch_ttest(control.y, treatment.y)
    assert res.theta[0] == 0.0
    assert res.variance_reduction[0] == pytest.approx(0.0, abs=1e-12)
    for name in ("lift_abs", "lift_rel", "se_abs", "se_rel", "p_value", "ci_low", "ci_high"):
        assert getattr(res, name)[0] == pytest.approx(getattr(ref, name)[0], rel=1e-9), name


def test_cuped_ttest_large_offset_covariate_is_stable():
    # A covariate around 1e6 with unit spread: centred co-moments keep θ exact (the
    # inputs themselves lose ~1e-10 of x to rounding, hence the tolerances).
    rng = np.random.default_rng(4)
    x_c, x_t = rng.normal(0, 1, 300), rng.normal(0, 1, 300)
    y_c, y_t = 2 * x_c + rng.normal(0, 1, 300), 0.3 + 2 * x_t + rng.normal(0, 1, 300)
    near = cuped_ttest(JointSums.from_values(y_c, x_c), JointSums.from_values(y_t, x_t))
    far = cuped_ttest(JointSums.from_values(y_c, x_c + 1e6), JointSums.from_values(y_t, x_t + 1e6))
    assert far.theta[0] == pytest.approx(near.theta[0], rel=1e-7)
    assert far.lift_abs[0] == pytest.approx(near.lift_abs[0], rel=1e-7)
    assert far.p_value[0] == pytest.approx(near.p_value[0], rel=1e-6)


def test_cuped_ttest_degenerate_cells_get_reasons_not_errors():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, 20)
    cells_c = [
        JointSums.from_values([1.0], [2.0]),  # one unit
        JointSums.from_values(3 + 2 * x, x),  # y exactly linear in x
        JointSums.from_values(rng.normal(0, 1, 20), x),  # zero baseline below
        JointSums.from_values(rng.normal(5, 1, 20), x),  # fine
    ]
    cells_t = [
        JointSums.from_values(rng.normal(0, 1, 5), rng.normal(0, 1, 5)),
        JointSums.from_values(4 + 2 * x, x),
        JointSums.from_values(rng.normal(1, 1, 20), x),
        JointSums.from_values(rng.normal(5, 1, 20), x),
    ]
    control, treatment = _stack(cells_c), _stack(cells_t)
    control = JointSums(
        n=control.n,
        mean_y=np.where(np.arange(4) == 2, 0.0, control.mean_y),
        mean_x=control.mean_x,
        m2_y=control.m2_y,
        m2_x=control.m2_x,
        c_xy=control.c_xy,
    )
    res = cuped_ttest(control, treatment)
    assert res.reason.tolist() == [TOO_FEW_UNITS, ZERO_VARIANCE, ZERO_BASELINE, ""]
    assert np.isnan(res.p_value[:2]).all()
    assert np.isnan(res.variance_reduction[:2]).all()
    assert res.lift_abs[1] == pytest.approx(1.0)
    assert np.isfinite(res.p_value[2])
    assert np.isnan(res.lift_rel[2])
    assert np.isnan(res.ci_low[2])
    assert np.isfinite(res.p_value[3])
    assert np.isfinite(res.ci_low[3])


def test_cuped_ttest_new_user_cell_next_to_returning_users():
    rng = np.random.default_rng(6)
    x_c, x_t = rng.normal(3, 1, 500), rng.normal(3, 1, 500)
    returning_c = JointSums.from_values(x_c + rng.normal(0, 0.5, 500), x_c)
    returning_t = JointSums.from_values(x_t + rng.normal(0.1, 0.5, 500), x_t)
    new_c = JointSums.from_values(rng.normal(3, 1, 200), np.zeros(200))
    new_t = JointSums.from_values(rng.normal(3, 1, 200), np.zeros(200))
    res = cuped_ttest(_stack([returning_c, new_c]), _stack([returning_t, new_t]))
    assert res.variance_reduction[0] > 0.6
    assert res.theta[1] == 0.0
    assert res.variance_reduction[1] == pytest.approx(0.0, abs=1e-12)
    assert res.reason.tolist() == ["", ""]


@pytest.mark.parametrize(("alternative", "open_side"), [("greater", "high"), ("less", "low")])
def test_cuped_ttest_one_sided_intervals(arms, alternative, open_side):
    (yc, xc), (yt, xt) = arms
    control, treatment = JointSums.from_values(yc, xc), JointSums.from_values(yt, xt)
    two = cuped_ttest(control, treatment)
    one = cuped_ttest(control, treatment, alternative=alternative)
    expected_p = two.p_value[0] / 2 if alternative == "greater" else 1 - two.p_value[0] / 2
    assert one.p_value[0] == pytest.approx(expected_p, rel=1e-9)
    bound = one.ci_high if open_side == "high" else one.ci_low
    # the log-scale interval's open lower side is the -100% floor
    assert bound[0] == (np.inf if open_side == "high" else -1.0)
    assert np.isinf(getattr(one, f"ci_abs_{open_side}")[0])


def test_cuped_ttest_negative_baseline_flips_relative_one_sided_bound():
    rng = np.random.default_rng(7)
    x_c, x_t = rng.normal(0, 1, 100), rng.normal(0, 1, 100)
    control = JointSums.from_values(-5 + x_c + rng.normal(0, 1, 100), x_c)
    treatment = JointSums.from_values(-4 + x_t + rng.normal(0, 1, 100), x_t)
    res = cuped_ttest(control, treatment, alternative="greater", relative_interval="delta")
    assert np.isinf(res.ci_abs_high[0])
    assert np.isfinite(res.ci_abs_low[0])
    assert np.isinf(res.ci_low[0])
    assert np.isfinite(res.ci_high[0])


def test_cuped_ttest_rejects_bad_arguments():
    arm = JointSums.from_values([1.0, 2.0], [1.0, 3.0])
    with pytest.raises(TypeError, match="must be an instance of JointSums"):
        cuped_ttest(arm.y, arm)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be > 0 and < 1"):
        cuped_ttest(arm, arm, alpha=1.0)
    with pytest.raises(ValueError, match="must be one of"):
        cuped_ttest(arm, arm, alternative="bigger")  # type: ignore[arg-type]


# ------------------------------------------------------------------ Monte-Carlo
# For bivariate normal users, each arm's mean vector and scatter matrix are independent:
# means ~ N(μ, Σ/n), scatter ~ Wishart(n - 1, Σ). So one replicate costs two draws.
REPS = 4_000
N_ARM = 500


def _draw_arm(rng, mu_y, rho, reps=REPS, n=N_ARM):
    cov = np.array([[4.0, 2.0 * rho], [2.0 * rho, 1.0]])  # sd_y = 2, sd_x = 1
    means = rng.multivariate_normal([mu_y, 3.0], cov / n, size=reps)
    scatter = scipy.stats.wishart.rvs(df=n - 1, scale=cov, size=reps, random_state=rng)
    return JointSums(
        n=np.full(reps, float(n)),
        mean_y=means[:, 0],
        mean_x=means[:, 1],
        m2_y=scatter[:, 0, 0],
        m2_x=scatter[:, 1, 1],
        c_xy=scatter[:, 0, 1],
    )


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.6])
def test_cuped_ttest_monte_carlo_planted_rho(rho):
    rng = np.random.default_rng(int(100 * rho) + 11)
    effect = 0.2
    control, treatment = _draw_arm(rng, 10.0, rho), _draw_arm(rng, 10.0 + effect, rho)
    res = cuped_ttest(control, treatment)
    plain = welch_ttest(control.y, treatment.y)

    err = res.lift_abs - effect
    assert abs(err.mean()) <= Z * err.std(ddof=1) / np.sqrt(REPS)  # unbiased
    ratio = res.lift_abs.var(ddof=1) / plain.lift_abs.var(ddof=1)
    assert ratio == pytest.approx(1 - rho**2, abs=0.05)
    assert np.nanmean(res.variance_reduction) == pytest.approx(rho**2, abs=0.05)

    half = Z * np.sqrt(0.95 * 0.05 / REPS)
    covered = (res.ci_abs_low <= effect) & (effect <= res.ci_abs_high)
    assert abs(covered.mean() - 0.95) <= half
    rel = effect / 10.0
    covered_rel = (res.ci_low <= rel) & (rel <= res.ci_high)
    assert abs(covered_rel.mean() - 0.95) <= half


def test_cuped_ttest_monte_carlo_aa_false_positive_rate():
    rng = np.random.default_rng(99)
    res = cuped_ttest(_draw_arm(rng, 10.0, 0.6), _draw_arm(rng, 10.0, 0.6, n=N_ARM))
    half = Z * np.sqrt(0.05 * 0.95 / REPS)
    assert abs((res.p_value < 0.05).mean() - 0.05) <= half


def test_cuped_ttest_merged_sums_equal_raw_data(arms):
    (yc, xc), (yt, xt) = arms
    whole = cuped_ttest(JointSums.from_values(yc, xc), JointSums.from_values(yt, xt))
    merged_c = JointSums.from_values(yc[:150], xc[:150]) + JointSums.from_values(yc[150:], xc[150:])
    merged_t = JointSums.from_values(yt[:900], xt[:900]) + JointSums.from_values(yt[900:], xt[900:])
    merged = cuped_ttest(merged_c, merged_t)
    for name in ("lift_abs", "se_abs", "p_value", "ci_low", "theta", "variance_reduction"):
        assert getattr(merged, name) == pytest.approx(getattr(whole, name), rel=1e-9), name


def test_cuped_ttest_passes_adjusted_moments_to_the_shared_lift(monkeypatch, arms):
    import experiment.stats.cuped as cuped_module

    seen: dict[str, Any] = {}
    real = lift_result

    def spy(*args, **kwargs):
        seen["args"] = args
        seen["kwargs"] = kwargs
        return real(*args, **kwargs)

    monkeypatch.setattr(cuped_module, "lift_result", spy)
    (yc, xc), (yt, xt) = arms
    res = cuped_ttest(JointSums.from_values(yc, xc), JointSums.from_values(yt, xt), alpha=0.1)
    mean_c, mean_t, var_c, var_t, _ = seen["args"]
    assert seen["kwargs"]["alpha"] == 0.1
    assert seen["kwargs"]["alternative"] == "two-sided"
    assert mean_c[0] == res.mean_control_adj[0]
    assert mean_t[0] == res.mean_treatment_adj[0]
    assert var_c[0] == pytest.approx(np.var(yc - res.theta[0] * xc, ddof=1) / yc.size)
    assert var_t[0] == pytest.approx(np.var(yt - res.theta[0] * xt, ddof=1) / yt.size)
