"""Regression adjustment of ratio metrics: on the delta method's linearisation."""

import numpy as np
import pytest

from experiment.stats import (
    ratio_linearised,
    ratio_regression_ttest,
    ratio_ttest,
    regression_r2,
)
from experiment.sums import CovariateSums, JointSums


def _data(n=5000, seed=11):
    """Clicks over impressions per user, driven by two numeric and one categorical covariate."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, n).astype(float)
    w1 = rng.gamma(2.0, 3.0, n)
    w2 = rng.poisson(1.5, n).astype(float)
    cat = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    onehot = np.stack([(cat == 1), (cat == 2)], axis=1).astype(float)
    w = np.column_stack([w1, w2, onehot])
    impressions = rng.poisson(2.0 + 0.8 * w1 + onehot[:, 0]).astype(float)
    p = np.clip(0.05 + 0.01 * w2 + 0.04 * onehot[:, 1] + 0.01 * t, 0, 1)
    clicks = rng.binomial(impressions.astype(int), p).astype(float)
    return clicks, impressions, w, t


def _arms(y, x, w, t):
    return [
        CovariateSums.from_values(y[t == a], np.column_stack([w[t == a], x[t == a]]))
        for a in (0, 1)
    ]


def _psi(y, x, t):
    """The linearised per-user values ``R + (y - R x) / x̄``, ``R = Σy / Σx`` per arm."""
    psi = np.empty(y.size)
    for a in (0, 1):
        at = t == a
        ratio = y[at].sum() / x[at].sum()
        psi[at] = ratio + (y[at] - ratio * x[at]) / x[at].mean()
    return psi


def test_ratio_regression_equals_statsmodels_ols_hc2_on_the_linearisation():
    sm = pytest.importorskip("statsmodels.api")
    y, x, w, t = _data()
    res = ratio_regression_ttest(*_arms(y, x, w, t))
    design = sm.add_constant(np.column_stack([t, w - w.mean(axis=0)]))
    fit = sm.OLS(_psi(y, x, t), design).fit(cov_type="HC2")
    assert res.lift_abs[0] == pytest.approx(fit.params[1], rel=1e-9, abs=1e-12)
    assert res.se_abs[0] == pytest.approx(fit.bse[1], rel=0.01)
    assert res.mean_control[0] == pytest.approx(y[t == 0].sum() / x[t == 0].sum(), rel=1e-12)
    assert res.variance_reduction[0] > 0.02  # the covariates explain part of ψ


def test_ratio_regression_without_a_useful_covariate_is_the_delta_method():
    y, x, _, t = _data()
    const = np.ones((y.size, 1))
    res = ratio_regression_ttest(*_arms(y, x, const, t))
    ref = ratio_ttest(*[JointSums.from_values(y[t == a], x[t == a]) for a in (0, 1)])
    for name in ("lift_abs", "se_abs", "p_value", "lift_rel", "se_rel", "ci_low", "ci_high"):
        assert getattr(res, name)[0] == pytest.approx(getattr(ref, name)[0], rel=1e-9)


def test_ratio_linearised_moments_equal_numpy():
    y, x, w, t = _data(n=300)
    at = t == 0
    lin = ratio_linearised(_arms(y, x, w, t)[0])
    psi = _psi(y, x, t)[at]
    ref = CovariateSums.from_values(psi, w[at])
    for name in ("mean_y", "m2_y", "mean_x", "c_xx", "c_xy"):
        np.testing.assert_allclose(getattr(lin, name), getattr(ref, name), rtol=1e-9, atol=1e-9)
    design = np.column_stack([np.ones(at.sum()), w[at]])
    beta, *_ = np.linalg.lstsq(design, psi, rcond=None)
    r2 = 1 - (psi - design @ beta).var() / psi.var()
    assert regression_r2(lin)[0] == pytest.approx(r2, rel=1e-9)


def test_ratio_regression_degenerate_cells_carry_reasons():
    w = np.array([[1.0], [2.0], [0.0]])
    zero = CovariateSums.from_values([0.0, 0.0, 0.0], np.column_stack([w, np.zeros(3)]))
    some = CovariateSums.from_values([1.0, 2.0, 0.0], np.column_stack([w, [2.0, 3.0, 1.0]]))
    res = ratio_regression_ttest(zero, some)
    assert res.reason.tolist() == ["zero_denominator"]
    assert np.isnan(res.lift_abs[0])
    one = CovariateSums.from_values([1.0], np.array([[1.0, 2.0]]))
    assert ratio_regression_ttest(one, some).reason.tolist() == ["too_few_units"]


def test_ratio_regression_rejects_sums_without_a_denominator():
    only = CovariateSums.from_values([1.0, 2.0], np.array([1.0, 3.0]))
    with pytest.raises(ValueError, match="denominator last"):
        ratio_regression_ttest(only, only)
    with pytest.raises(TypeError, match="must be instances of"):
        ratio_regression_ttest(JointSums.from_values([1.0], [1.0]), only)  # type: ignore[arg-type]
