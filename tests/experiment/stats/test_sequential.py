"""sequential_interval: the gbstats formulas, duality, reasons, and peeking by Monte-Carlo."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiment.stats import (
    SequentialResult,
    sequential_interval,
    sequential_rho,
    welch_ttest,
)
from experiment.stats.messages import TOO_FEW_UNITS, ZERO_BASELINE
from experiment.sums import MeanSums


def _mean_sums(n, mean, m2):
    f64 = np.float64
    return MeanSums(n=np.asarray(n, f64), mean=np.asarray(mean, f64), m2=np.asarray(m2, f64))


def _gbstats_reference(estimate, variance, n, alpha=0.05, tuning=5000.0):
    """gbstats 0.8 ``SequentialTwoSidedTTest`` written out independently, scalar by scalar.

    rho: eq. 161; interval: eq. 9 with s2 = variance * N; p-value: eq. 155.
    """
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)
    s2 = variance * n
    width = math.sqrt(s2) * math.sqrt(
        2 * (n * rho**2 + 1) * math.log(math.sqrt(n * rho**2 + 1) / alpha) / (n * rho) ** 2
    )
    st2 = estimate**2 * n / variance
    tr2p1 = n * rho**2 + 1
    evalue = math.exp(rho**2 * st2 / (2 * tr2p1)) / math.sqrt(tr2p1)
    return estimate - width, estimate + width, min(1 / evalue, 1.0)


def _lift(n_c=1_000, n_t=1_200, means=(10.0, 10.4), sds=(3.0, 4.0)):
    control = _mean_sums(n=[n_c], mean=[means[0]], m2=[(n_c - 1) * sds[0] ** 2])
    treatment = _mean_sums(n=[n_t], mean=[means[1]], m2=[(n_t - 1) * sds[1] ** 2])
    return welch_ttest(control, treatment, relative_interval="delta"), n_c + n_t


def test_sequential_rho_matches_formula():
    assert sequential_rho(0.05, 5000) == pytest.approx(
        math.sqrt((-2 * math.log(0.05) + math.log(1 - 2 * math.log(0.05))) / 5000), rel=1e-12
    )
    assert sequential_rho(0.05, 20_000) == pytest.approx(sequential_rho(0.05, 5000) / 2)


@pytest.mark.parametrize(("alpha", "tuning"), [(0.05, 5000.0), (0.01, 20_000.0), (0.1, 500.0)])
def test_sequential_interval_matches_gbstats_formulas(alpha, tuning):
    lift, n = _lift()
    seq = sequential_interval(lift, n, alpha=alpha, tuning=tuning)
    low, high, _ = _gbstats_reference(lift.lift_abs[0], lift.se_abs[0] ** 2, n, alpha, tuning)
    assert seq.seq_ci_abs_low[0] == pytest.approx(low, rel=1e-9)
    assert seq.seq_ci_abs_high[0] == pytest.approx(high, rel=1e-9)
    low, high, _ = _gbstats_reference(lift.lift_rel[0], lift.se_rel[0] ** 2, n, alpha, tuning)
    assert seq.seq_ci_low[0] == pytest.approx(low, rel=1e-9)
    assert seq.seq_ci_high[0] == pytest.approx(high, rel=1e-9)


@pytest.mark.parametrize("shift", [0.05, 0.2, 0.35, 0.6])
def test_sequential_p_value_matches_gbstats_formula(shift):
    lift, n = _lift(means=(10.0, 10.0 + shift))
    seq = sequential_interval(lift, n)
    *_, p_ref = _gbstats_reference(lift.lift_abs[0], lift.se_abs[0] ** 2, n)
    assert seq.seq_p_value[0] == pytest.approx(p_ref, rel=1e-9, abs=1e-300)


def test_sequential_pinned_values():
    # Pinned from the reference above: N = 2200, Δ = 0.4, se² = 9/1000 + 16/1200.
    lift, n = _lift()
    seq = sequential_interval(lift, n)
    assert seq.seq_ci_abs_low[0] == pytest.approx(-0.0639916607178067, rel=1e-8)
    assert seq.seq_ci_abs_high[0] == pytest.approx(0.8639916607178073, rel=1e-8)
    assert seq.seq_p_value[0] == pytest.approx(0.1308770591563199, rel=1e-8)
    assert lift.p_value[0] < 0.01  # significant at a fixed horizon, not sequentially
    assert seq.rho == pytest.approx(0.0398400668, rel=1e-8)


def test_sequential_p_value_is_dual_to_the_interval():
    shifts = np.linspace(0.0, 0.8, 161)
    control = _mean_sums(n=np.full(161, 900.0), mean=np.full(161, 5.0), m2=np.full(161, 899 * 4.0))
    treatment = _mean_sums(n=np.full(161, 900.0), mean=5.0 + shifts, m2=np.full(161, 899 * 4.0))
    lift = welch_ttest(control, treatment)
    for alpha in (0.05, 0.2):
        seq = sequential_interval(lift, 1800, alpha=alpha)
        excludes = (seq.seq_ci_abs_low > 0) | (seq.seq_ci_abs_high < 0)
        assert np.array_equal(seq.seq_p_value < alpha, excludes)
        assert excludes.any()
        assert not excludes.all()


def test_sequential_interval_is_wider_than_fixed_horizon():
    lift, n = _lift()
    seq = sequential_interval(lift, n)
    ratio = (seq.seq_ci_abs_high - seq.seq_ci_abs_low) / (lift.ci_abs_high - lift.ci_abs_low)
    assert 1.4 < ratio[0] < 2.0
    assert seq.seq_p_value[0] > lift.p_value[0]


def test_sequential_interval_reasons_and_broadcasting():
    control = _mean_sums(n=[1, 500, 500, 500], mean=[1.0, 0.0, 2.0, 2.0], m2=[0.0, 499, 499, 499])
    treatment = _mean_sums(n=[5, 500, 500, 500], mean=[1.0, 0.2, 2.1, 2.1], m2=[4.0, 499, 499, 499])
    lift = welch_ttest(control, treatment)
    seq = sequential_interval(lift, np.array([6, 1000, 1000, 0]))
    assert isinstance(seq, SequentialResult)
    assert seq.reason.tolist() == [TOO_FEW_UNITS, ZERO_BASELINE, "", TOO_FEW_UNITS]
    assert np.isnan(seq.seq_p_value[[0, 3]]).all()
    # A zero baseline keeps the absolute sequence; only the relative one is undefined.
    assert np.isfinite(seq.seq_p_value[1])
    assert np.isfinite(seq.seq_ci_abs_low[1])
    assert np.isnan(seq.seq_ci_low[1])
    assert np.isfinite(seq.seq_ci_low[2])
    scalar_n = sequential_interval(lift, 1000)
    assert scalar_n.seq_p_value[2] == seq.seq_p_value[2]


def test_sequential_interval_rejects_bad_arguments():
    lift, n = _lift()
    with pytest.raises(TypeError, match="must be an instance of LiftResult"):
        sequential_interval(object(), n)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must broadcast"):
        sequential_interval(lift, [1, 2, 3])
    with pytest.raises(ValueError, match="must be > 0"):
        sequential_interval(lift, n, tuning=0.0)
    with pytest.raises(ValueError, match=r"alpha == 1\.0"):
        sequential_interval(lift, n, alpha=1.0)


# ------------------------------------------------------------------ Monte-Carlo
# REALISM.md B6: A/A, 28 daily looks, N* = 5000. Daily increments are drawn as sums
# (mean ~ N(μ, σ²/m), m2 ~ σ² χ²(m - 1)) and merged with ``+``, so each look analyses the
# cumulative data of every replicate in one vectorised call.
REPS = 2_000
LOOKS = 28
PER_DAY = 200  # per arm; 11,200 users in total by day 28


def _day(rng, reps=REPS, m=PER_DAY, mu=3.0, sd=2.0):
    return MeanSums(
        n=np.full(reps, float(m)),
        mean=rng.normal(mu, sd / np.sqrt(m), reps),
        m2=sd**2 * rng.chisquare(m - 1, reps),
    )


def _peek(rng, effect=0.0):
    control, treatment = _day(rng), _day(rng, mu=3.0 + effect)
    seq_hit = np.zeros(REPS, dtype=bool)
    naive_hit = np.zeros(REPS, dtype=bool)
    missed = np.zeros(REPS, dtype=bool)
    for look in range(LOOKS):
        if look:
            control, treatment = control + _day(rng), treatment + _day(rng, mu=3.0 + effect)
        lift = welch_ttest(control, treatment)
        seq = sequential_interval(lift, control.n + treatment.n)
        seq_hit |= seq.seq_p_value < 0.05
        naive_hit |= lift.p_value < 0.05
        missed |= (seq.seq_ci_abs_low > effect) | (seq.seq_ci_abs_high < effect)
    return seq_hit.mean(), naive_hit.mean(), missed.mean()


def test_sequential_monte_carlo_peeking_keeps_false_positives_below_alpha():
    seq_fpr, naive_fpr, _ = _peek(np.random.default_rng(28))
    assert 0.005 <= seq_fpr <= 0.05  # measured 1.75%
    assert naive_fpr >= 0.18  # measured 27.8% on the same draws (REALISM B6: ~25-28%)


def test_sequential_monte_carlo_covers_planted_effect_at_every_look():
    seq_power, _, missed = _peek(np.random.default_rng(29), effect=0.1)
    assert missed <= 0.05  # measured 1.55%
    assert seq_power > 0.3  # measured 43%: the sequence still detects a real effect
