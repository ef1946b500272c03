"""Every row's family-adjusted interval agrees with its verdict, and follows the experiment file."""

import math

import numpy as np
import pytest

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig
from tests.fixtures.sums import cell_sums

METRICS = [
    {"name": "conv", "kind": "proportion", "event": "purchase"},
    {"name": "rev", "kind": "mean", "event": "purchase", "value": "revenue"},
    {"name": "ctr", "kind": "ratio", "numerator": {"event": "c"}, "denominator": {"event": "i"}},
]


def _cells(seed):
    gen = np.random.default_rng(seed)
    n = 6000
    arm = gen.choice(["control", "b", "c"], n)
    lift = np.where(arm == "b", 1.15, 1.0)
    group = gen.integers(0, 8, n)
    conv = (gen.random(n) < 0.05 * lift * (1 + group / 8)).astype(float)
    rev = conv * gen.lognormal(3.0, 1.0, n) * lift
    imp = gen.poisson(6.0, n) + 1.0
    clicks = gen.binomial(imp.astype(int), 0.08 * lift).astype(float)
    members = {"all": np.ones(n, bool)} | {f"s{g}": group == g for g in range(8)}
    return cell_sums(
        {"conv": conv, "rev": rev, "ctr": (clicks, imp)},
        arm=arm,
        members=members,
        arms=("control", "b", "c"),
    )


@pytest.mark.parametrize("interval", ["fieller", "log", "delta"])
@pytest.mark.parametrize("correction", ["holm", "bh", "none"])
def test_rows_adjusted_interval_excludes_zero_iff_significant(interval, correction):
    config = ExperimentConfig.model_validate(
        {
            "name": "e",
            "arms": {"control": 1, "b": 1, "c": 1},
            "metrics": METRICS,
            "correction": correction,
            "relative_interval": interval,
        }
    )
    checked = significant = 0
    for seed in range(4):
        for row in analyze_cells(_cells(seed), config, None).results:
            assert (row.ci_abs_adj_low > 0 or row.ci_abs_adj_high < 0) == row.significant
            if not (math.isnan(row.ci_adj_low) or math.isnan(row.ci_adj_high)):
                assert (row.ci_adj_low > 0 or row.ci_adj_high < 0) == row.significant
                assert row.ci_adj_low >= -1.0 or interval == "delta"
                checked += 1
            significant += row.significant
            if correction == "none" and interval == "fieller":
                assert row.ci_adj_low == pytest.approx(row.ci_low, rel=1e-6, nan_ok=True)
    assert checked > 5  # Fieller: unbounded (null) where Holm pushes p adj. to 1
    assert significant > 0
