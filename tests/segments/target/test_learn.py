"""The policy learner and the held-out value, against raw-data references and simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiment.sums import MeanSums
from segments.target.learn import Moments, gain_curve, learn, policy_value


def _moments(groups: list[list[np.ndarray]]) -> Moments:
    """Moments of raw per-user values: groups[option][cell]."""
    mean = np.array([[v.mean() for v in opt] for opt in groups])
    var = np.array([[v.var(ddof=1) / v.size for v in opt] for opt in groups])
    return Moments(mean, var, np.ones(mean.shape[1]))


def _draw(
    rng: np.random.Generator, base: np.ndarray, effect: np.ndarray, n: int
) -> list[list[np.ndarray]]:
    control = [rng.binomial(1, p, n).astype(float) for p in base]
    treated = [rng.binomial(1, p + e, n).astype(float) for p, e in zip(base, effect, strict=True)]
    return [control, treated]


def test_policy_value_matches_raw_data() -> None:
    rng = np.random.default_rng(1)
    raw = _draw(rng, np.array([0.05, 0.1, 0.2]), np.array([0.02, 0.0, -0.01]), 3000)
    held = _moments(raw)
    share = np.array([0.2, 0.5, 0.3])
    choice = np.array([1, 1, 0])
    got = policy_value(held, share, choice, alpha=0.05)
    diff = [raw[1][c].mean() - raw[0][c].mean() for c in range(3)]
    var = [raw[1][c].var(ddof=1) / 3000 + raw[0][c].var(ddof=1) / 3000 for c in range(3)]
    value = 1000 * (share[0] * diff[0] + share[1] * diff[1])
    se = 1000 * np.sqrt(share[0] ** 2 * var[0] + share[1] ** 2 * var[1])
    assert got.value == pytest.approx(value, rel=1e-12)
    assert got.ci_high - got.ci_low == pytest.approx(2 * stats.norm.isf(0.025) * se, rel=1e-9)
    assert got.p_value == pytest.approx(2 * stats.norm.sf(abs(value) / se), rel=1e-9)
    # the sums' moments give the same numbers as the raw arrays
    sums = MeanSums.from_values(raw[1][0])
    assert float(sums.mean[0]) == pytest.approx(raw[1][0].mean())


def _overall(m: Moments, share: np.ndarray) -> Moments:
    return Moments(
        (m.mean * share).sum(axis=1, keepdims=True),
        (m.var_mean * share**2).sum(axis=1, keepdims=True),
        np.ones(1),
    )


@pytest.mark.slow
def test_homogeneous_effect_is_treat_all_and_value_ci_covers_truth() -> None:
    """Simulation with known truth: discovery learns, the held-out CI covers the true value."""
    rng = np.random.default_rng(7)
    base = np.array([0.03, 0.06, 0.1, 0.02])
    effect = 0.2 * base  # one multiplicative effect: no cell differs in sign
    share = np.array([0.3, 0.3, 0.2, 0.2])
    reps, covered, treat_all = 300, 0, 0
    for _ in range(reps):
        disc = _moments(_draw(rng, base, effect, 4000))
        held = _moments(_draw(rng, base, effect, 4000))
        choice, _ = learn(disc, _overall(disc, share), share, alpha=0.05)
        treat_all += bool((choice == 1).all())
        truth = 1000 * float((share * effect * (choice == 1)).sum())
        est = policy_value(held, share, choice, alpha=0.05)
        covered += est.ci_low <= truth <= est.ci_high if (choice == 1).any() else 1
    assert treat_all / reps >= 0.9
    tol = 3.29 * np.sqrt(0.95 * 0.05 / reps)
    assert covered / reps >= 0.95 - tol


def test_a_strong_responder_cell_departs_from_the_default() -> None:
    rng = np.random.default_rng(3)
    base = np.array([0.05, 0.05, 0.05])
    effect = np.array([0.05, -0.01, -0.01])  # overall negative, cell 0 strongly positive
    share = np.array([0.2, 0.4, 0.4])
    disc = _moments(_draw(rng, base, effect, 20000))
    choice, gain = learn(disc, _overall(disc, share), share, alpha=0.05)
    assert choice.tolist() == [1, 0, 0]
    assert gain[0] > 0


def test_budget_and_cost_limit_the_treated_share() -> None:
    m = Moments(np.array([[0.1, 0.1, 0.1], [0.2, 0.15, 0.11]]), np.full((2, 3), 1e-8), np.ones(3))
    share = np.array([0.3, 0.3, 0.4])
    choice, _ = learn(m, _overall(m, share), share, alpha=0.05, budget=0.65)
    assert share[choice > 0].sum() <= 0.65
    assert choice.tolist() == [1, 1, 0]  # the largest gains fit first
    choice, _ = learn(m, _overall(m, share), share, alpha=0.05, cost=0.03)
    assert choice.tolist() == [1, 1, 0]  # cell 2 gains 0.01 < cost


def test_gain_curve_starts_at_zero_and_ends_at_treat_all() -> None:
    rng = np.random.default_rng(5)
    held = _moments(_draw(rng, np.array([0.05, 0.1]), np.array([0.01, 0.02]), 2000))
    share = np.array([0.5, 0.5])
    curve = gain_curve(held, share, np.array([1, 0]), np.array([1, 1]), alpha=0.05)
    assert curve[0][2].value == 0
    assert curve[-1][1] == pytest.approx(1.0)
    assert curve[-1][2].value == pytest.approx(
        policy_value(held, share, np.array([1, 1]), alpha=0.05).value
    )


def test_three_arms_each_cell_gets_its_significantly_better_arm() -> None:
    """Options: control, arm 1 (good overall), arm 2 (better only in cell 1)."""
    mean = np.array([[0.10, 0.10, 0.10], [0.13, 0.11, 0.13], [0.10, 0.20, 0.10]])
    m = Moments(mean, np.full((3, 3), 1e-6), np.ones(3))
    share = np.array([0.4, 0.2, 0.4])
    overall = Moments((mean * share).sum(axis=1, keepdims=True), np.full((3, 1), 1e-7), np.ones(1))
    choice, gain = learn(m, overall, share, alpha=0.05)
    assert choice.tolist() == [1, 2, 1]
    assert gain.tolist() == pytest.approx([0.03, 0.10, 0.03])
    held = policy_value(m, share, choice, alpha=0.05, against=np.array([1, 1, 1]))
    assert held.value == pytest.approx(1000 * 0.2 * (0.20 - 0.11))
