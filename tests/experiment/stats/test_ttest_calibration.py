"""Monte-Carlo calibration of welch_ttest, simulated at the sufficient-statistics level.

For normal data the mean and the centred sum of squares are independent, with
``mean ~ N(μ, σ²/n)`` and ``m2 ~ σ² χ²(n - 1)``, so each replicate costs two draws per
arm and thousands of experiments run as one vectorised call. Tolerances are binomial
bands with z = 3.29 (REALISM.md B1, PlanOut's tests).
"""

from __future__ import annotations

import numpy as np
import pytest

from experiment.stats import welch_ttest
from experiment.sums import MeanSums

REPS = 10_000
Z = 3.29


def _band(rate: float, reps: int = REPS) -> tuple[float, float]:
    half = Z * np.sqrt(rate * (1 - rate) / reps)
    return rate - half, rate + half


def _draw(rng: np.random.Generator, n: int, mu: float, sd: float, reps: int = REPS) -> MeanSums:
    return MeanSums(
        n=np.full(reps, float(n)),
        mean=rng.normal(mu, sd / np.sqrt(n), reps),
        m2=sd**2 * rng.chisquare(n - 1, reps),
    )


# (n_control, n_treatment, sd_control, sd_treatment): small unequal arms with unequal
# spread, where Welch's df matter, and a 10/90 split.
DESIGNS = [(40, 15, 1.0, 3.0), (200, 1_800, 2.0, 1.0), (6, 9, 1.0, 1.0)]


@pytest.mark.parametrize("design", DESIGNS)
def test_welch_ttest_aa_false_positive_rate_in_band(design):
    n_c, n_t, sd_c, sd_t = design
    rng = np.random.default_rng(1_000 + n_c)
    res = welch_ttest(_draw(rng, n_c, 5.0, sd_c), _draw(rng, n_t, 5.0, sd_t))
    reject = res.p_value < 0.05
    low, high = _band(0.05)
    assert low <= reject.mean() <= high
    tail_low, tail_high = _band(0.025)
    assert tail_low <= (reject & (res.lift_abs > 0)).mean() <= tail_high
    assert tail_low <= (reject & (res.lift_abs < 0)).mean() <= tail_high


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_welch_ttest_aa_one_sided_false_positive_rate_in_band(alternative):
    rng = np.random.default_rng(11)
    res = welch_ttest(_draw(rng, 40, 5.0, 1.0), _draw(rng, 15, 5.0, 3.0), alternative=alternative)
    low, high = _band(0.05)
    assert low <= (res.p_value < 0.05).mean() <= high


@pytest.mark.parametrize("design", DESIGNS)
def test_welch_ttest_ci_covers_planted_difference(design):
    n_c, n_t, sd_c, sd_t = design
    rng = np.random.default_rng(2_000 + n_c)
    effect = 0.7
    res = welch_ttest(_draw(rng, n_c, 5.0, sd_c), _draw(rng, n_t, 5.0 + effect, sd_t))
    covered = (res.ci_abs_low <= effect) & (effect <= res.ci_abs_high)
    low, high = _band(0.95)
    assert low <= covered.mean() <= high


def test_welch_ttest_one_sided_ci_covers_planted_difference():
    rng = np.random.default_rng(12)
    effect = 0.7
    res = welch_ttest(_draw(rng, 40, 5.0, 1.0), _draw(rng, 15, 5.7, 3.0), alternative="greater")
    low, high = _band(0.95)
    assert low <= (res.ci_abs_low <= effect).mean() <= high
    assert np.all(res.ci_abs_high == np.inf)


def test_welch_ttest_relative_ci_covers_planted_lift():
    rng = np.random.default_rng(13)
    mu_c, lift = 5.0, 0.1
    res = welch_ttest(_draw(rng, 2_000, mu_c, 4.0), _draw(rng, 1_500, mu_c * (1 + lift), 5.0))
    covered = (res.ci_low <= lift) & (lift <= res.ci_high)
    low, high = _band(0.95)
    assert low <= covered.mean() <= high
