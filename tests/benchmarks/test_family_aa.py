"""A fast run of ``benchmarks/family_aa.py``: A/A family-wise error per default family.

The full benchmark runs 2,000 experiments; here 400, with the binomial tolerance
z = 3.29 above alpha, so a correction that lets a family's error grow (e.g. Holm
run on fewer tests than the family holds) fails while chance almost never does.
"""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import pytest

from tests.fixtures.benchmarks import load_benchmark

RUNS = 400
Z = 3.29


@pytest.fixture(scope="module")
def family_aa() -> ModuleType:
    return load_benchmark("family_aa")


@pytest.mark.slow  # Monte Carlo: 400 simulated experiments through analyze_cells
def test_default_scope_family_wise_error_at_most_alpha(family_aa):
    rates, consistency = family_aa.run(RUNS, seed=11, scopes=("primary_and_segments",))
    tolerance = family_aa.ALPHA + Z * math.sqrt(family_aa.ALPHA * (1 - family_aa.ALPHA) / RUNS)
    by_family = {r.family: r for r in rates}
    assert set(by_family) == {
        "primary",
        "segments:conversion:a",
        "segments:conversion:b",
        "segments:revenue:a",
        "segments:revenue:b",
    }
    assert by_family["primary"].size == 4
    for rate in rates:
        assert rate.rate <= tolerance, (rate.family, rate.rate)
    if consistency.excludes_not_rejected is not None:  # once adjusted intervals exist
        assert consistency.excludes_not_rejected == consistency.rejected_includes == 0


def test_simulated_all_cell_pools_the_segments(family_aa):
    """The benchmark's ``all`` sums equal the sums of the pooled per-segment values."""
    rng = np.random.default_rng(0)
    n = np.array([[3.0, 4.0], [2.0, 5.0]])
    values = [[rng.normal(size=int(k)) for k in row] for row in n]
    total = np.array([[v.sum() for v in row] for row in values])
    m2 = np.array([[((v - v.mean()) ** 2).sum() for v in row] for row in values])
    sums = family_aa._mean_sums(n, total, m2)
    for j in range(2):
        pooled = np.concatenate([values[0][j], values[1][j]])
        assert sums.n[0, j] == pooled.size
        assert sums.mean[0, j] == pytest.approx(pooled.mean(), rel=1e-12)
        assert sums.m2[0, j] == pytest.approx(((pooled - pooled.mean()) ** 2).sum(), rel=1e-12)
