"""balance_check on hand-made sums: every arm against control, one family, hidden segments out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from scipy import stats

from experiment.analysis.balance import balance_check
from experiment.sums import CellSums, MeanSums

T0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
ARMS = ("a", "control", "b")  # control in the middle: indices must not be assumed
SEGMENTS = ("all", "vip", "tiny")


def _raw(seed: int) -> dict[str, dict[tuple[int, int], np.ndarray]]:
    rng = np.random.default_rng(seed)
    sizes = {0: 800, 1: 200, 2: 12}
    return {
        name: {
            (si, j): rng.lognormal(1.0 + (0.4 if (name == "x" and j == 2 and si < 2) else 0), 1, n)
            for si, n in sizes.items()
            for j in range(len(ARMS))
        }
        for name in ("x", "y")
    }


def _cells(raw: dict[str, dict[tuple[int, int], np.ndarray]]) -> CellSums:
    balance = {}
    for name, cells in raw.items():
        shape = (len(SEGMENTS), len(ARMS))
        n, mean, m2 = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        for (si, j), values in cells.items():
            n[si, j], mean[si, j] = values.size, values.mean()
            m2[si, j] = ((values - values.mean()) ** 2).sum()
        balance[name] = MeanSums(n=n, mean=mean, m2=m2)
    return CellSums(
        segments=SEGMENTS,
        arms=ARMS,
        units=balance["x"].n,
        metrics={},
        window_start=T0,
        window_end=T0,
        balance=balance,
    )


def test_every_treatment_arm_covariate_and_shown_segment_is_one_holm_family():
    raw = _raw(1)
    result = balance_check(_cells(raw), control="control", threshold=0.001, hidden={"tiny"})
    assert result.tests == 2 * 2 * 2  # covariates x shown segments x treatment arms
    assert [s.segment for s in result.segments] == ["all", "vip"]
    assert all(t.segment != "tiny" for t in result.worst)
    p_values = [t.p_value for t in result.worst]
    assert p_values == sorted(p_values)
    for t in result.worst:
        si, j = SEGMENTS.index(t.segment), ARMS.index(t.arm)
        ref = stats.ttest_ind(raw[t.covariate][si, j], raw[t.covariate][si, 1], equal_var=False)
        assert t.p_value == pytest.approx(ref.pvalue, rel=1e-8)
        assert t.p_adjusted >= t.p_value
    # x is shifted in arm b (all, vip): flagged there, nowhere else
    flagged = {(t.segment, t.covariate, t.arm) for t in result.worst if t.flag}
    assert flagged <= {("all", "x", "b"), ("vip", "x", "b")}
    assert ("all", "x", "b") in flagged
    assert result.flag
    assert {s.segment for s in result.segments if s.flag} == {s for s, *_ in flagged}


def test_no_covariates_means_the_check_did_not_run():
    cells = _cells(_raw(2))
    empty = CellSums(
        segments=cells.segments,
        arms=cells.arms,
        units=cells.units,
        metrics={},
        window_start=T0,
        window_end=T0,
    )
    result = balance_check(empty, control="control", threshold=0.001)
    assert not result.ran
    assert not result.flag
    assert result.worst == ()
