"""Reading moments: the engine's variance is read only where the power sums cancel."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiment.engine.moments import VarianceNeededError, read_sums
from experiment.sums import MeanSums


def _columns(values: list[list[float]], *, welford: bool):
    """The columns ``moment_aggs`` would give for cells holding ``values`` (key ``(0,)``)."""
    arrays = [np.asarray(v, dtype=np.float64) for v in values]
    # sums as exact as the engine's compensated ones: math.fsum of each product
    out = {
        "__n__0__": np.array([float(len(a)) for a in arrays]),
        "__c__0__y__": np.array([float(len(a)) for a in arrays]),
        "__s1__0__y__": np.array([math.fsum(a) for a in arrays]),
        "__s2__0__yy__": np.array([math.fsum(a * a) for a in arrays]),
    }
    if welford:
        out["__var__0__y__"] = np.array([np.var(a) for a in arrays])
    else:
        out["__lo__0__y__"] = np.array([a.min() for a in arrays])
        out["__hi__0__y__"] = np.array([a.max() for a in arrays])

    def column(name: str) -> np.ndarray:
        return out[name]

    return column


def test_read_sums_constant_cell_without_variance_column_has_zero_m2():
    """Equal values near 1e9 cancel in the power sums; their least == greatest gives m2 = 0."""
    column = _columns([[1e9 + 0.3] * 5, [1.0, 2.0, 4.0]], welford=False)
    sums = read_sums(column, key=(0,), n=np.array([5.0, 3.0]), joint=False)
    assert isinstance(sums, MeanSums)
    assert sums.m2[0] == 0.0
    assert sums.m2[1] == pytest.approx(3 * np.var([1.0, 2.0, 4.0]), rel=1e-12)


def test_read_sums_cancelling_cell_needs_the_engine_variance():
    spread = list(1e9 + np.random.default_rng(3).normal(0, 1e-3, 50))
    with pytest.raises(VarianceNeededError, match="__var__0__y__"):
        read_sums(_columns([spread], welford=False), key=(0,), n=np.array([50.0]), joint=False)
    sums = read_sums(_columns([spread], welford=True), key=(0,), n=np.array([50.0]), joint=False)
    assert isinstance(sums, MeanSums)
    assert sums.m2[0] == pytest.approx(50 * np.var(spread), rel=1e-9)
