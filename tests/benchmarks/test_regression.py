"""Fast version of ``benchmarks/regression.py``: k covariates beat one, A/A stays at alpha."""

from __future__ import annotations

import math

from tests.fixtures.benchmarks import load_benchmark


def test_regression_benchmark_reduction_and_aa_rate():
    bench = load_benchmark("regression")
    runs = 600
    for fig in bench.run(runs=runs, users=2000, seed=5):
        # the k-covariate fit removes at least what the best single covariate does
        assert fig.ratio_all <= min(fig.ratio_single.values()) + 0.02
        assert 0.05 < fig.reported_all < 0.3
        band = 3.29 * math.sqrt(0.05 * 0.95 / runs)
        assert abs(fig.aa_rate - 0.05) <= band
