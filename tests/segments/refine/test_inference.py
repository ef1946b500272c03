"""The pure-numpy side of ``exp refine``: merges, discovery choice, held-out tests."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import pytest
from scipy import stats

from experiment.stats import welch_ttest
from experiment.sums import JointSums, MeanSums
from segments.refine.choose import best_cuts
from segments.refine.estimate import DISCOVERY, ESTIMATION, cut_sums
from segments.refine.inference import cumulate, cut_sides, equivalence_p, interaction_z, lift
from segments.refine.search import Attribute, Scan

BINS = 10


def _cells(cls: type, rows: list[list[Any]]) -> Any:
    return cls(
        **{
            f.name: np.array([[getattr(c, f.name)[0] for c in r] for r in rows])
            for f in fields(cls)
        }
    )


def test_cumulate_equals_repeated_chan_merge() -> None:
    gen = np.random.default_rng(0)
    rows = [
        [
            JointSums.from_values(gen.normal(1e4, 1, k), gen.normal(5, 2, k))
            for k in gen.integers(0, 6, 3)
        ]
        for _ in range(8)
    ]
    rows[3][1] = JointSums.from_values([], [])
    sums = _cells(JointSums, rows)
    cum = cumulate(sums)
    acc: Any = sums[0]
    for k in range(1, 8):
        acc = acc + sums[k]
        for f in fields(JointSums):
            got, want = getattr(cum[k], f.name), getattr(acc, f.name)
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_cut_sides_orders_and_splits_bins() -> None:
    values = [[1.0, 2.0], [3.0], [10.0, 11.0, 12.0]]
    sums = _cells(MeanSums, [[MeanSums.from_values(v)] for v in values])
    order = np.array([[2], [0], [1]])  # bins in the order 2, 0, 1
    low, high = cut_sides(sums, order)
    assert isinstance(low, MeanSums)
    assert isinstance(high, MeanSums)
    assert low.n[:, 0].tolist() == [3.0, 5.0]
    assert high.mean[0, 0] == pytest.approx(2.0)  # bins 0 and 1
    assert low.m2[1, 0] == pytest.approx(np.var([10, 11, 12, 1, 2], ddof=0) * 5)


def test_equivalence_p_is_tost() -> None:
    c = MeanSums.from_values(np.r_[np.ones(300), np.zeros(700)])
    t1 = MeanSums.from_values(np.r_[np.ones(330), np.zeros(670)])
    t2 = MeanSums.from_values(np.r_[np.ones(320), np.zeros(680)])
    a, b = lift(c, t1, 0.05), lift(c, t2, 0.05)
    d = a.lift_rel - b.lift_rel
    se = np.hypot(a.se_rel, b.se_rel)
    want = max(stats.norm.sf((d[0] + 0.1) / se[0]), stats.norm.cdf((d[0] - 0.1) / se[0]))
    assert equivalence_p(a, b, 0.1)[0] == pytest.approx(want, abs=1e-12)
    z = interaction_z(a, b)
    assert z[0] == pytest.approx(d[0] / se[0])


def _scan(gen: np.random.Generator, n: int, lift_of_bin: np.ndarray) -> Scan:
    """Per (half, bin) sums of a 0/1 metric with baselines that differ 6-fold across bins."""
    base = np.linspace(0.05, 0.3, BINS)
    half = gen.integers(0, 2, n)
    b = gen.integers(0, BINS, n)
    treated = gen.random(n) < 0.5
    y = (gen.random(n) < base[b] * np.where(treated, 1 + lift_of_bin[b], 1.0)).astype(float)
    arms = []
    for arm in (~treated, treated):
        key = (half * BINS + b)[arm]
        cnt = np.bincount(key, minlength=2 * BINS).astype(float)
        s1 = np.bincount(key, weights=y[arm], minlength=2 * BINS)
        mean = s1 / cnt
        m2 = s1 - cnt * mean**2  # 0/1 values: Σy² = Σy
        shape = (2, BINS, 1)
        arms.append(MeanSums(n=cnt.reshape(shape), mean=mean.reshape(shape), m2=m2.reshape(shape)))
    edges = tuple(float(e) for e in range(1, BINS))
    return Scan(Attribute("a", "numeric", edges), tuple(range(BINS)), arms[0], arms[1])


def _held_out_p(scan: Scan) -> float:
    best = best_cuts(scan, [0], 100)[0]
    (lc, lt), (hc, ht) = cut_sums(best, ESTIMATION)
    z = interaction_z(welch_ttest(hc, ht), welch_ttest(lc, lt))  # type: ignore[arg-type]
    return float(2 * stats.norm.sf(abs(z[0])))


def test_refine_homogeneous_multiplicative_effect_is_rarely_significant() -> None:
    """+20% everywhere on baselines 5%..30%: held-out interaction p < 0.05 in ≤ 5% + 3.29 sd."""
    gen = np.random.default_rng(7)
    reps = 300
    hits = sum(_held_out_p(_scan(gen, 20_000, np.full(BINS, 0.2))) < 0.05 for _ in range(reps))
    assert hits / reps <= 0.05 + 3.29 * np.sqrt(0.05 * 0.95 / reps)


def test_refine_planted_step_is_found_and_significant() -> None:
    gen = np.random.default_rng(8)
    step = np.where(np.arange(BINS) >= 6, 0.4, 0.0)
    found = 0
    for _ in range(50):
        scan = _scan(gen, 20_000, step)
        best = best_cuts(scan, [0], 100)[0]
        found += best.cut == 6 and _held_out_p(scan) < 0.05
    assert found >= 40


def test_cumulate_keeps_all_zero_cells_exactly_zero() -> None:
    """A side with no conversion must have mean exactly 0 (not 1e-18), or log lifts explode."""
    rows = [[MeanSums.from_values(v)] for v in ([0.0] * 7, [0.0] * 3, [1.0, 0.0, 1.0])]
    cum = cumulate(_cells(MeanSums, rows))
    assert isinstance(cum, MeanSums)
    assert cum.mean[:2, 0].tolist() == [0.0, 0.0]


def test_lift_with_no_treatment_events_has_no_relative_ci() -> None:
    """−100% ± 0 is the delta method's collapse at a zero mean, not evidence."""
    c = MeanSums.from_values(np.r_[np.ones(5), np.zeros(95)])
    t = MeanSums.from_values(np.zeros(100))
    res = lift(c, t, 0.05)
    assert res.lift_rel[0] == -1.0
    assert np.isnan(res.se_rel[0])
    assert np.isnan(res.ci_low[0])
    assert np.isnan(interaction_z(res, lift(c, c, 0.05))[0])


def test_best_cuts_needs_min_size_in_both_halves() -> None:
    """A cut whose held-out side is too small is no candidate (counts only, no outcomes)."""
    gen = np.random.default_rng(3)
    scan = _scan(gen, 20_000, np.zeros(BINS))
    assert best_cuts(scan, [0], 100)[0].candidates == BINS - 1
    arms = [s for s in (scan.control, scan.treatment) if isinstance(s, MeanSums)]
    emptied = [MeanSums(n=s.n.copy(), mean=s.mean, m2=s.m2) for s in arms]
    for s in emptied:
        s.n[ESTIMATION, 0, 0] = 40.0  # bin 0 of the held-out half: 80 users in all
    thin = Scan(scan.attribute, scan.bins, emptied[0], emptied[1])
    assert best_cuts(thin, [0], 100)[0].candidates == BINS - 2
    assert best_cuts(thin, [0], 100)[0].cut != 1


def test_best_cuts_needs_min_events_per_arm_and_side() -> None:
    """Cuts whose side has fewer than ``min_events`` conversions in an arm are no candidates."""
    gen = np.random.default_rng(4)
    scan = _scan(gen, 4_000, np.zeros(BINS))
    c, t = scan.control, scan.treatment
    assert isinstance(c, MeanSums)
    assert isinstance(t, MeanSums)
    events = [(s.n[DISCOVERY, :, 0] * s.mean[DISCOVERY, :, 0]) for s in (c, t)]
    # the low side of cut j holds bins 0..j-1; its events are the cumulative sums
    low = np.minimum(*(np.cumsum(e)[:-1] for e in events))
    high = np.minimum(*(e.sum() - np.cumsum(e)[:-1] for e in events))
    floor = 25.0
    want = int(((low >= floor) & (high >= floor)).sum())
    assert 0 < want < BINS - 1  # the floor binds on some cuts and not on others
    assert best_cuts(scan, [0], 10)[0].candidates == BINS - 1
    assert best_cuts(scan, [0], 10, min_events=floor)[0].candidates == want
