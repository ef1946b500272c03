"""The special-function tails equal scipy.stats' t, chi2 and norm bit for bit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from experiment.stats._dist import chi2_sf, norm_cdf, norm_isf, norm_pdf, norm_sf, t_isf, t_sf

X = np.array(
    [-np.inf, -1e300, -40.0, -8.5, -3.0, -1.959963984540054, -1e-300, -0.0, 0.0, 1e-12, 0.3,
     1.0, 2.5, 7.0, 39.0, 1e12, np.inf, np.nan]
)  # fmt: skip
DF = np.array([-1.0, 0.0, 1e-3, 0.5, 1.0, 2.0, 2.5, 9.0, 30.0, 1e3, 1e7, 1e15, np.inf, np.nan])
Q = np.array([-0.1, 0.0, 1e-300, 1e-12, 0.001, 0.025, 0.05, 0.5, 0.8, 0.975, 1 - 1e-12, 1.0, 1.1,
              np.nan])  # fmt: skip


def _grid(a, b):
    pairs = np.array(list(itertools.product(a, b)))
    return pairs[:, 0], pairs[:, 1]


def _same(ours, ref):
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))


@pytest.mark.parametrize(
    ("ours", "ref", "args"),
    [
        (t_sf, stats.t.sf, _grid(X, DF)),
        (t_isf, stats.t.isf, _grid(Q, DF)),
        (chi2_sf, stats.chi2.sf, _grid([*np.abs(X[:-1]).tolist(), -1.0, np.nan], DF)),
    ],
    ids=["t.sf", "t.isf", "chi2.sf"],
)
def test_dist_two_parameter_tails_equal_scipy_stats(ours, ref, args):
    with np.errstate(all="ignore"):
        _same(ours(*args), ref(*args))


@pytest.mark.parametrize(
    ("ours", "ref", "grid"),
    [(norm_sf, stats.norm.sf, X), (norm_cdf, stats.norm.cdf, X), (norm_pdf, stats.norm.pdf, X),
     (norm_isf, stats.norm.isf, Q)],
    ids=["norm.sf", "norm.cdf", "norm.pdf", "norm.isf"],
)  # fmt: skip
def test_dist_normal_tails_equal_scipy_stats(ours, ref, grid):
    with np.errstate(all="ignore"):
        _same(ours(grid), ref(grid))


def test_dist_scalars_stay_scalars():
    assert np.ndim(t_sf(1.5, 10.0)) == 0
    assert t_sf(1.5, 10.0) == stats.t.sf(1.5, 10.0)
    assert norm_isf(0.025) == stats.norm.isf(0.025)
    assert chi2_sf(3.0, 2) == stats.chi2.sf(3.0, 2)
