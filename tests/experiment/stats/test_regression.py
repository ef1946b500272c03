import numpy as np
import pytest

from experiment.stats import cuped_ttest, regression_r2, regression_ttest
from experiment.sums import CovariateSums, JointSums


def _data(n=4000, seed=3):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, n)
    x1 = rng.lognormal(3.0, 1.0, n)
    x2 = rng.poisson(2.0, n).astype(float)
    cat = rng.choice(3, n, p=[0.5, 0.3, 0.2])
    onehot = np.stack([(cat == 1), (cat == 2)], axis=1).astype(float)
    x = np.column_stack([x1, x2, onehot])
    y = 5 + 0.4 * x1 + 2.0 * x2 + 3.0 * onehot[:, 0] - 1.0 * onehot[:, 1]
    y = y + rng.normal(0, 5 + 0.1 * x1, n) + 1.5 * t
    return y, x, t


def test_regression_ttest_equals_statsmodels_ols_hc2():
    sm = pytest.importorskip("statsmodels.api")
    y, x, t = _data()
    res = regression_ttest(
        CovariateSums.from_values(y[t == 0], x[t == 0]),
        CovariateSums.from_values(y[t == 1], x[t == 1]),
    )
    design = sm.add_constant(np.column_stack([t, x]))
    fit = sm.OLS(y, design).fit(cov_type="HC2")
    assert res.lift_abs[0] == pytest.approx(fit.params[1], rel=1e-9)
    assert res.se_abs[0] == pytest.approx(fit.bse[1], rel=0.01)


def test_regression_ttest_one_covariate_is_cuped():
    y, x, t = _data()
    c, tr = t == 0, t == 1
    res = regression_ttest(
        CovariateSums.from_values(y[c], x[c, :1]), CovariateSums.from_values(y[tr], x[tr, :1])
    )
    ref = cuped_ttest(JointSums.from_values(y[c], x[c, 0]), JointSums.from_values(y[tr], x[tr, 0]))
    for name in (
        "lift_abs",
        "se_abs",
        "p_value",
        "lift_rel",
        "ci_low",
        "ci_high",
        "variance_reduction",
    ):
        assert getattr(res, name)[0] == pytest.approx(getattr(ref, name)[0], rel=1e-9)
    assert res.slopes[0, 0] == pytest.approx(ref.theta[0], rel=1e-9)


def test_regression_r2_equals_numpy_lstsq():
    y, x, _ = _data()
    design = np.column_stack([np.ones(y.size), x])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ beta
    r2 = 1 - resid.var() / y.var()
    assert regression_r2(CovariateSums.from_values(y, x))[0] == pytest.approx(r2, rel=1e-9)


def test_covariate_sums_merge_equals_whole():
    y, x, _ = _data(n=500)
    a = CovariateSums.from_values(y[:200], x[:200])
    b = CovariateSums.from_values(y[200:], x[200:])
    whole, merged = CovariateSums.from_values(y, x), a + b
    for name in ("n", "mean_y", "m2_y", "mean_x", "c_xx", "c_xy"):
        np.testing.assert_allclose(getattr(merged, name), getattr(whole, name), rtol=1e-10)


def test_regression_ttest_collinear_and_empty_cells_do_not_raise():
    y, x, t = _data(n=300)
    dup = np.column_stack([x, x[:, 0], 1.0 - x[:, 2] - x[:, 3]])  # duplicated, full one-hot
    res = regression_ttest(
        CovariateSums.from_values(y[t == 0], dup[t == 0]),
        CovariateSums.from_values(y[t == 1], dup[t == 1]),
    )
    ref = regression_ttest(
        CovariateSums.from_values(y[t == 0], x[t == 0]),
        CovariateSums.from_values(y[t == 1], x[t == 1]),
    )
    assert res.lift_abs[0] == pytest.approx(ref.lift_abs[0], rel=1e-6)
    empty = CovariateSums.from_values(y[:0], x[:0])
    out = regression_ttest(empty, CovariateSums.from_values(y[:10], x[:10]))
    assert np.isnan(out.p_value[0])
    assert out.reason[0] == "too_few_units"


def test_regression_ttest_rejects_other_sums():
    y, x, _ = _data(n=50)
    with pytest.raises(TypeError, match="must be instances"):
        regression_ttest(JointSums.from_values(y, x[:, 0]), CovariateSums.from_values(y, x))  # type: ignore[arg-type]


def test_regression_ttest_rejects_mismatched_covariates_and_shapes():
    y, x, _ = _data(n=50)
    with pytest.raises(ValueError, match="same cells and covariates"):
        regression_ttest(CovariateSums.from_values(y, x), CovariateSums.from_values(y, x[:, :2]))
    one, two = np.ones(1), np.ones((1, 1))
    with pytest.raises(ValueError, match="share the cell shape"):
        CovariateSums(n=one, mean_y=one, m2_y=one, mean_x=two, c_xx=two, c_xy=two)


def test_covariate_sums_index_selects_cells():
    y, x, _ = _data(n=60)
    a, b = CovariateSums.from_values(y[:30], x[:30]), CovariateSums.from_values(y[30:], x[30:])
    both = CovariateSums(
        n=np.stack([a.n, b.n], axis=1),
        mean_y=np.stack([a.mean_y, b.mean_y], axis=1),
        m2_y=np.stack([a.m2_y, b.m2_y], axis=1),
        mean_x=np.stack([a.mean_x, b.mean_x], axis=1),
        c_xx=np.stack([a.c_xx, b.c_xx], axis=1),
        c_xy=np.stack([a.c_xy, b.c_xy], axis=1),
    )
    np.testing.assert_array_equal(both[:, 1].c_xx, b.c_xx)
    np.testing.assert_array_equal(both[0].mean_x, np.stack([a.mean_x[0], b.mean_x[0]]))
