"""srm_test against scipy.stats.chisquare, flags, and the zero-total case."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from experiment.stats import srm_test


@pytest.mark.parametrize(
    ("observed", "weights"),
    [
        ([50_112, 49_888], [0.5, 0.5]),
        ([50_112, 49_888], [1, 1]),
        ([1_930, 18_070], [0.1, 0.9]),
        ([330, 350, 290], [1, 1, 1]),
        ([0, 12], [0.5, 0.5]),
    ],
)
def test_srm_test_matches_scipy_chisquare(observed, weights):
    w = np.asarray(weights, dtype=float)
    ref = scipy.stats.chisquare(observed, f_exp=np.sum(observed) * w / w.sum())
    got = srm_test(observed, weights)
    assert got.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert got.flag == (ref.pvalue < 0.001)


def test_srm_test_flags_a_broken_split():
    assert srm_test([505_000, 495_000], [0.5, 0.5]).flag  # REALISM.md B3: p ~ 1e-23
    assert not srm_test([5_050, 4_950], [0.5, 0.5]).flag  # p = 0.32
    assert srm_test([5_050, 4_950], [0.5, 0.5], threshold=0.5).flag


def test_srm_test_zero_total_is_nan_and_not_flagged():
    got = srm_test([0, 0], [0.5, 0.5])
    assert np.isnan(got.statistic)
    assert np.isnan(got.p_value)
    assert got.flag is False


@pytest.mark.parametrize(
    ("observed", "weights", "match"),
    [
        ([10], [1.0], "at least 2"),
        ([10, 10], [1.0, 1.0, 1.0], "at least 2"),
        ([[10, 10]], [[1.0, 1.0]], "at least 2"),
        ([10, -1], [1.0, 1.0], "must be finite and >= 0"),
        ([10, np.nan], [1.0, 1.0], "must be finite and >= 0"),
        ([10, 10], [1.0, 0.0], "must be finite and > 0"),
    ],
)
def test_srm_test_bad_arguments_raise(observed, weights, match):
    with pytest.raises(ValueError, match=match):
        srm_test(observed, weights)


def test_srm_test_bad_threshold_raises():
    with pytest.raises(ValueError, match=r"threshold == 0\.0, must be > 0 and < 1"):
        srm_test([10, 10], [1, 1], threshold=0)


def test_srm_test_many_matches_scipy_row_by_row():
    from experiment.stats import srm_test_many

    observed = np.array([[50_112, 49_888], [1_930, 18_070], [0, 0], [10, 0]])
    shares = np.array([[0.5, 0.5], [0.1, 0.9], [0.5, 0.5], [1.0, 0.0]])
    got = srm_test_many(observed, shares)
    for i in range(2):
        ref = scipy.stats.chisquare(observed[i], f_exp=observed[i].sum() * shares[i])
        assert got.p_value[i] == pytest.approx(ref.pvalue, rel=1e-9)
        assert got.statistic[i] == pytest.approx(ref.statistic, rel=1e-12)
    assert np.isnan(got.p_value[2])
    assert not got.flag[2]
    assert got.p_value[3] == pytest.approx(1.0)  # an arm with share 0 and no units: fine
    assert srm_test_many([[0, 5]], [[1.0, 0.0]]).p_value[0] == 0.0  # units where none expected
    with pytest.raises(ValueError, match="need shape"):
        srm_test_many([1, 2], [1, 1])
