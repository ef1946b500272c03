"""adjust_pvalues against statsmodels multipletests, per family, with nan and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from experiment.stats import adjust_pvalues

_SM_METHOD = {"holm": "holm", "bh": "fdr_bh"}


def _approx(expected: object) -> object:
    """Reference-engine tolerance: equal up to floating-point noise."""
    return pytest.approx(expected, rel=1e-9, abs=1e-12)


@pytest.fixture(scope="module")
def pvalues() -> np.ndarray:
    rng = np.random.default_rng(5)
    p = np.concatenate(
        [rng.uniform(size=30), rng.uniform(0, 0.01, size=10), [0.02, 0.02, 0.02, 1.0, 0.0]]
    )
    return rng.permutation(p)


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_adjust_pvalues_matches_statsmodels_one_family(pvalues, method):
    ref = multipletests(pvalues, method=_SM_METHOD[method])[1]
    assert adjust_pvalues(pvalues, method=method) == _approx(ref)


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_adjust_pvalues_matches_statsmodels_per_group(pvalues, method):
    groups = np.random.default_rng(6).choice(["conversion", "revenue", "ctr"], size=pvalues.size)
    got = adjust_pvalues(pvalues, method=method, groups=groups)
    for label in np.unique(groups):
        in_family = groups == label
        ref = multipletests(pvalues[in_family], method=_SM_METHOD[method])[1]
        assert got[in_family] == _approx(ref)


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_adjust_pvalues_leaves_nan_out_of_the_family(pvalues, method):
    p = pvalues.copy()
    p[[0, 7, 19]] = np.nan
    groups = np.arange(p.size) % 2
    got = adjust_pvalues(p, method=method, groups=groups)
    assert np.isnan(got[[0, 7, 19]]).all()
    for label in (0, 1):
        keep = (groups == label) & ~np.isnan(p)
        ref = multipletests(p[keep], method=_SM_METHOD[method])[1]
        assert got[keep] == _approx(ref)


@pytest.mark.parametrize("method", ["holm", "bh"])
def test_adjust_pvalues_keeps_tiny_pvalues_exact(method):
    p = np.array([1e-300, 3e-250, 0.5, 1e-20, 0.04])
    groups = np.array([7, 7, 7, 9, 9])
    got = adjust_pvalues(p, method=method, groups=groups)
    for label in (7, 9):
        ref = multipletests(p[groups == label], method=_SM_METHOD[method])[1]
        assert got[groups == label] == pytest.approx(ref, rel=1e-12, abs=0)


def test_adjust_pvalues_none_returns_a_copy(pvalues):
    got = adjust_pvalues(pvalues, method="none")
    np.testing.assert_array_equal(got, pvalues)
    assert got is not pvalues


@pytest.mark.parametrize("method", ["holm", "bh", "none"])
def test_adjust_pvalues_keeps_shape_and_handles_empty(method):
    p = np.array([[0.01, 0.2], [np.nan, 0.03]])
    assert adjust_pvalues(p, method=method).shape == (2, 2)
    assert adjust_pvalues([], method=method).shape == (0,)
    assert np.isnan(adjust_pvalues([np.nan, np.nan], method=method)).all()


def test_adjust_pvalues_bad_arguments_raise():
    with pytest.raises(ValueError, match="p_values must be >= 0 and <= 1"):
        adjust_pvalues([0.1, 1.2])
    with pytest.raises(ValueError, match="must have the same shape"):
        adjust_pvalues([0.1, 0.2], groups=["a"])
    with pytest.raises(ValueError, match="method == 'bonferroni', must be one of"):
        adjust_pvalues([0.1], method="bonferroni")  # type: ignore[arg-type]


_p = st.one_of(st.floats(0, 1), st.just(float("nan")), st.sampled_from([0.0, 0.01, 0.05, 1.0]))


@settings(max_examples=200, deadline=None, database=None)
@given(
    p=st.lists(_p, max_size=25),
    method=st.sampled_from(["holm", "bh"]),
    n_groups=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_adjust_pvalues_is_monotone_capped_and_order_free(p, method, n_groups, seed):
    rng = np.random.default_rng(seed)
    raw = np.array(p, dtype=np.float64)
    groups = rng.integers(0, n_groups, size=raw.size)
    got = adjust_pvalues(raw, method=method, groups=groups)

    ok = ~np.isnan(raw)
    np.testing.assert_array_equal(np.isnan(got), ~ok)
    assert np.all(got[ok] >= raw[ok])
    assert np.all(got[ok] <= 1.0)
    for label in np.unique(groups):
        family = ok & (groups == label)
        order = np.argsort(raw[family], kind="stable")
        assert np.all(np.diff(got[family][order]) >= 0)
        single = adjust_pvalues(raw[family], method=method)  # a family alone gives the same
        np.testing.assert_array_equal(single, got[family])

    perm = rng.permutation(raw.size)
    np.testing.assert_array_equal(
        adjust_pvalues(raw[perm], method=method, groups=groups[perm]), got[perm]
    )
