"""Attribute scans from power sums against numpy per cell and the engine's FILTER-ed moments."""

from __future__ import annotations

from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pytest

from experiment.sums import JointSums, MeanSums
from segments.refine.search import ARM, HALF, Attribute, Sample, Scan, X, Y, bin_sums

FLAGS = ("__flag__0__", "__flag__1__", "__flag__2__")
EDGES = (-0.5, 0.0, 0.7)


def _table(y: np.ndarray, x: np.ndarray | None, rng: np.random.Generator) -> dict[str, Any]:
    n = len(y)
    a = rng.normal(size=n)
    a[rng.random(n) < 0.05] = np.nan  # nulls: in no bin
    cols: dict[str, Any] = {
        ARM: rng.integers(0, 2, n).astype(np.int8),
        HALF: rng.integers(0, 2, n).astype(np.int8),
        Y: y,
        FLAGS[0]: np.ones(n, dtype=bool),
        FLAGS[1]: rng.random(n) < 0.4,
        FLAGS[2]: np.zeros(n, dtype=bool),
        "a": pa.array(a, from_pandas=True),
        "c": rng.choice(np.array(["p", "q", "r"]), n),
    }
    cols[FLAGS[2]][:3] = True  # a group of three users: cells of one member, empty cells
    if x is not None:
        cols[X] = x
    return cols


def _sample(cols: dict[str, Any], *, ratio: bool, plain: bool, binary: bool = False) -> Sample:
    con = ibis.duckdb.connect()
    table = con.create_table("sample", pa.table(cols))
    return Sample(table=table, flags=FLAGS, ratio=ratio, plain=plain, binary=binary)


def _bin(cols: dict[str, Any], attribute: Attribute | None) -> np.ndarray:
    if attribute is None:
        return np.zeros(len(cols[Y]), dtype=np.int64)
    if attribute.name == "c":
        return np.asarray(np.searchsorted(["p", "q", "r"], cols["c"]), dtype=np.int64)
    a = cols["a"].to_numpy(zero_copy_only=False)
    return np.asarray(np.where(np.isnan(a), -1, np.searchsorted(EDGES, a, side="right")))


def _reference(
    cols: dict[str, Any], scan: Scan, attribute: Attribute | None, rel: float = 1e-9
) -> None:
    """Every cell's count, means and centred moments against numpy on the raw rows."""
    bins = _bin(cols, attribute)
    y, x = cols[Y], cols.get(X, cols[Y])
    for arm, sums in ((0, scan.control), (1, scan.treatment)):
        for half in (0, 1):
            for b in range(len(scan.bins)):
                for g, flag in enumerate(FLAGS):
                    rows = (cols[ARM] == arm) & (cols[HALF] == half) & (bins == b) & cols[flag]
                    cell = (half, b, g)
                    assert sums.n[cell] == rows.sum()
                    if not rows.any():
                        continue
                    yy = y[rows]
                    got: tuple[Any, ...]
                    want: tuple[Any, ...]
                    if isinstance(sums, JointSums):
                        xx = x[rows]
                        got = (sums.mean_y, sums.mean_x, sums.m2_y, sums.m2_x, sums.c_xy)
                        want = (
                            yy.mean(),
                            xx.mean(),
                            ((yy - yy.mean()) ** 2).sum(),
                            ((xx - xx.mean()) ** 2).sum(),
                            ((yy - yy.mean()) * (xx - xx.mean())).sum(),
                        )
                    else:
                        assert isinstance(sums, MeanSums)
                        got = (sums.mean, sums.m2)
                        want = (yy.mean(), ((yy - yy.mean()) ** 2).sum())
                    for value, expected in zip(got, want, strict=True):
                        assert value[cell] == pytest.approx(expected, rel=rel, abs=1e-6)


def _same(a: Scan, b: Scan) -> None:
    """The power-sum scan equals the FILTER-ed one (counts exactly, moments to 1e-12)."""
    assert a.bins == b.bins
    for x, y in ((a.control, b.control), (a.treatment, b.treatment)):
        assert type(x) is type(y)
        np.testing.assert_array_equal(x.n, y.n)
        for name in x.__dataclass_fields__:
            np.testing.assert_allclose(getattr(x, name), getattr(y, name), rtol=1e-12, atol=0)


ATTRIBUTES = [None, Attribute("a", "numeric", EDGES), Attribute("c", "categorical")]


@pytest.mark.parametrize("attribute", ATTRIBUTES)
@pytest.mark.parametrize("kind", ["mean", "binary", "ratio", "offset"])
def test_power_scan_matches_numpy_and_the_filtered_scan(
    kind: str, attribute: Attribute | None
) -> None:
    rng = np.random.default_rng(7)
    n = 4000
    x = None
    if kind == "binary":
        y = (rng.random(n) < 0.3).astype(np.float64)
    elif kind == "offset":  # (Σy)²/n ≫ m2: the power sums cancel, Welford's moments are read
        y = 1e9 + rng.normal(size=n)
    else:
        y = rng.exponential(20.0, n).round(2)
    if kind == "ratio":
        x = rng.poisson(5.0, n).astype(np.float64)
    cols = _table(y, x, rng)
    ratio, binary = x is not None, kind == "binary"
    groups = [0, 1, 2]
    fast = bin_sums(_sample(cols, ratio=ratio, plain=True, binary=binary), attribute, groups)
    slow = bin_sums(_sample(cols, ratio=ratio, plain=False), attribute, groups)
    _same(fast, slow)
    # at a 1e9 offset the engine's Welford moments (DuckDB var_pop) hold ~8 digits
    _reference(cols, fast, attribute, rel=1e-6 if kind == "offset" else 1e-9)


def test_sample_with_non_finite_values_is_not_plain() -> None:
    from segments.refine.scan import plain_values

    con = ibis.duckdb.connect()
    for bad in (np.nan, np.inf, -np.inf, None):
        values = pa.array([1.0, 2.0, bad], type=pa.float64(), from_pandas=True)
        table = con.create_table("t", pa.table({Y: values, X: [1.0, 2.0, 3.0]}), overwrite=True)
        assert not plain_values(table, [Y, X])
        assert plain_values(table, [X])


@pytest.mark.parametrize(("plain", "binary"), [(True, True), (True, False), (False, False)])
def test_group_of_every_user_needs_no_flag_column(plain: bool, binary: bool) -> None:
    """A ``None`` flag (``all``, a threshold base of everyone) scans as a column of all true."""
    rng = np.random.default_rng(11)
    n = 3000
    y = (rng.random(n) < 0.3).astype(np.float64) if binary else rng.exponential(5.0, n)
    cols = _table(y, None, rng)
    con = ibis.duckdb.connect()
    table = con.create_table("sample", pa.table(cols))
    with_column = Sample(table=table, flags=FLAGS, ratio=False, plain=plain, binary=binary)
    without = Sample(table=table, flags=(None, *FLAGS[1:]), ratio=False, plain=plain, binary=binary)
    for attribute in ATTRIBUTES:
        _same(bin_sums(without, attribute, [0, 1, 2]), bin_sums(with_column, attribute, [0, 1, 2]))
        _reference(cols, bin_sums(without, attribute, [0, 1, 2]), attribute)
