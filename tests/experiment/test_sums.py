"""Sufficient statistics equal numpy on the raw data, and merge like the data does."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiment.sums import JointSums, MeanSums

_values = st.lists(st.floats(-1e3, 1e3, allow_nan=False), max_size=30)


def _arr(*values: float) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _assert_mean_sums_equal(got: MeanSums, want: MeanSums) -> None:
    assert got.n == pytest.approx(want.n)
    assert got.mean == pytest.approx(want.mean, rel=1e-9, abs=1e-9, nan_ok=True)
    assert got.m2 == pytest.approx(want.m2, rel=1e-9, abs=1e-6)


def _assert_joint_sums_equal(got: JointSums, want: JointSums) -> None:
    _assert_mean_sums_equal(got.y, want.y)
    _assert_mean_sums_equal(got.x, want.x)
    assert got.c_xy == pytest.approx(want.c_xy, rel=1e-9, abs=1e-6)


def test_mean_sums_from_values_matches_numpy():
    y = np.random.default_rng(1).lognormal(1.0, 1.2, size=500)
    sums = MeanSums.from_values(y)
    assert sums.n == pytest.approx([500])
    assert sums.mean == pytest.approx([y.mean()], rel=1e-12)
    assert sums.sum == pytest.approx([y.sum()], rel=1e-12)
    assert sums.var == pytest.approx([np.var(y, ddof=1)], rel=1e-12)


def test_mean_sums_from_values_empty_and_single():
    empty, single = MeanSums.from_values([]), MeanSums.from_values([4.0])
    assert empty.n.tolist() == [0.0]
    assert np.isnan(empty.mean).all()
    assert np.isnan(empty.var).all()
    assert empty.sum.tolist() == [0.0]
    assert single.mean.tolist() == [4.0]
    assert np.isnan(single.var).all()


def test_joint_sums_from_values_matches_numpy():
    rng = np.random.default_rng(2)
    x = 1.0 + rng.negative_binomial(2, 0.25, size=400)
    y = rng.binomial(x.astype(np.int64), 0.1).astype(np.float64)
    sums = JointSums.from_values(y, x)
    cov = np.cov(x, y)
    assert sums.mean_y == pytest.approx([y.mean()], rel=1e-12)
    assert sums.mean_x == pytest.approx([x.mean()], rel=1e-12)
    assert sums.y.var == pytest.approx([cov[1, 1]], rel=1e-12)
    assert sums.x.var == pytest.approx([cov[0, 0]], rel=1e-12)
    assert sums.cov == pytest.approx([cov[0, 1]], rel=1e-12)


def test_mean_sums_merge_equals_whole():
    y = np.random.default_rng(3).normal(5.0, 2.0, size=300)
    parts = [MeanSums.from_values(chunk) for chunk in np.split(y, [0, 1, 100, 250])]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged + part
    _assert_mean_sums_equal(merged, MeanSums.from_values(y))


def test_mean_sums_merge_is_vectorised_over_cells():
    a = MeanSums(n=_arr(0, 3, 2), mean=_arr(np.nan, 1.0, 5.0), m2=_arr(0, 2.0, 8.0))
    b = MeanSums(n=_arr(0, 0, 2), mean=_arr(np.nan, np.nan, 1.0), m2=_arr(0, 0, 2.0))
    merged = a + b
    assert merged.n.tolist() == [0.0, 3.0, 4.0]
    assert np.isnan(merged.mean[0])
    assert merged.mean[1:].tolist() == [1.0, 3.0]
    # cell 2: two groups of 2 with means 5 and 1: 8 + 2 + 16 * 2 * 2 / 4
    assert merged.m2.tolist() == [0.0, 2.0, 26.0]


def test_joint_sums_merge_equals_whole():
    rng = np.random.default_rng(4)
    x = rng.normal(3.0, 1.0, size=200)
    y = 2.0 * x + rng.normal(size=200)
    parts = [
        JointSums.from_values(y[s], x[s]) for s in (slice(0, 0), slice(0, 70), slice(70, None))
    ]
    merged = parts[0] + parts[1] + parts[2]
    _assert_joint_sums_equal(merged, JointSums.from_values(y, x))


def test_mean_sums_large_offset_stays_accurate():
    rng = np.random.default_rng(5)
    y = 1e9 + rng.normal(0.0, 1.0, size=20_000)
    exact_var = np.var(y - 1e9, ddof=1)  # the shift is exact this close to 1e9
    whole = MeanSums.from_values(y)
    merged = MeanSums.from_values(y[:7_000]) + MeanSums.from_values(y[7_000:])
    assert whole.var == pytest.approx([exact_var], rel=1e-6)
    assert merged.var == pytest.approx([exact_var], rel=1e-6)
    # Raw power sums cancel catastrophically here: the reason sums are centred.
    power = MeanSums.from_power_sums(y.size, y.sum(), (y**2).sum())
    assert abs(power.var[0] / exact_var - 1) > 1e-3


def test_joint_sums_large_offset_stays_accurate():
    rng = np.random.default_rng(6)
    dx = rng.normal(size=10_000)
    dy = dx + rng.normal(size=10_000)
    merged = JointSums.from_values(1e9 + dy[:3_000], 1e9 + dx[:3_000]) + JointSums.from_values(
        1e9 + dy[3_000:], 1e9 + dx[3_000:]
    )
    exact = np.cov((1e9 + dx) - 1e9, (1e9 + dy) - 1e9)[0, 1]
    assert merged.cov == pytest.approx([exact], rel=1e-6)


def test_mean_sums_from_power_sums_round_trips():
    y = np.random.default_rng(7).normal(3.0, 2.0, size=(4, 50))
    sums = MeanSums.from_power_sums(
        n=np.full(4, 50.0), sum_y=y.sum(axis=1), sum_y2=(y**2).sum(axis=1)
    )
    assert sums.mean == pytest.approx(y.mean(axis=1), rel=1e-12)
    assert sums.var == pytest.approx(np.var(y, axis=1, ddof=1), rel=1e-9)
    assert sums.sum == pytest.approx(y.sum(axis=1), rel=1e-12)


def test_mean_sums_from_power_sums_empty_cell():
    sums = MeanSums.from_power_sums(n=[0.0, 2.0], sum_y=[0.0, 4.0], sum_y2=[0.0, 10.0])
    assert np.isnan(sums.mean[0])
    assert sums.m2.tolist() == [0.0, 2.0]


def test_mean_sums_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        MeanSums(n=_arr(1, 2), mean=_arr(1.0), m2=_arr(0.0))


def test_joint_sums_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        JointSums.from_values([1.0, 2.0], [1.0])


@settings(max_examples=100, deadline=None, database=None)
@given(a=_values, b=_values, c=_values)
def test_mean_sums_merge_is_associative_and_order_independent(a, b, c):
    sa, sb, sc = (MeanSums.from_values(v) for v in (a, b, c))
    whole = MeanSums.from_values(a + b + c)
    _assert_mean_sums_equal((sa + sb) + sc, whole)
    _assert_mean_sums_equal(sa + (sb + sc), whole)
    _assert_mean_sums_equal(sc + sa + sb, whole)


@settings(max_examples=60, deadline=None, database=None)
@given(sizes=st.lists(st.integers(0, 30), min_size=3, max_size=3), seed=st.integers(0, 2**32 - 1))
def test_joint_sums_merge_is_associative_and_order_independent(sizes, seed):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=(2, size)) * 100 for size in sizes]
    sa, sb, sc = (JointSums.from_values(p[0], p[1]) for p in parts)
    whole = JointSums.from_values(*np.concatenate(parts, axis=1))
    _assert_joint_sums_equal((sa + sb) + sc, whole)
    _assert_joint_sums_equal(sa + (sb + sc), whole)
    _assert_joint_sums_equal(sb + sc + sa, whole)


def test_sums_index_every_field_alike():
    y = np.array([[1.0, 2.0, 4.0], [3.0, 5.0, 8.0]])
    x = y + 1.0
    mean = MeanSums(n=y, mean=2 * y, m2=3 * y)
    joint = JointSums(n=y, mean_y=2 * y, mean_x=3 * y, m2_y=4 * y, m2_x=5 * y, c_xy=x)
    col = mean[:, 1]
    assert (col.n.tolist(), col.mean.tolist(), col.m2.tolist()) == ([2, 5], [4, 10], [6, 15])
    cell = joint[1, 2]
    got = [getattr(cell, f).item() for f in ("n", "mean_y", "mean_x", "m2_y", "m2_x", "c_xy")]
    assert got == [8, 16, 24, 32, 40, 9]
