"""A fast run of ``benchmarks/balance.py``: few false flags on A/A, planted imbalances caught.

The benchmark runs 1,000 A/A experiments; here 50 (and 200 in the slow test).
A per-test check at 5%, or Holm over too few tests, would flag most A/A runs;
a check that cannot see the covariates would miss the planted ones.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.fixtures.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("balance")


def test_clean_aa_is_rarely_flagged(bench):
    rate = bench.run("clean", bench.clean, runs=50, users=20_000, seed=1)
    assert rate.flagged <= 1  # P(>= 2 of 50) < 0.2% at a family-wise 0.1%


def test_a_shifted_covariate_is_flagged(bench):
    rate = bench.run("shift", bench.shifted(0.1), runs=10, users=20_000, seed=2)
    assert rate.flagged == 10


def test_a_wrong_key_join_is_flagged_and_srm_cannot_see_it(bench):
    rate = bench.run("wrong key", bench.wrong_key(0.2), runs=10, users=20_000, seed=3)
    assert rate.flagged == 10
    assert rate.srm_flagged == 0  # the arm counts are those of a fair coin


def test_a_sort_order_assignment_is_flagged(bench):
    rate = bench.run("sort", bench.sort_order(0.1), runs=10, users=20_000, seed=4)
    assert rate.flagged == 10


def test_flagged_tests_name_the_shifted_covariate(bench):
    import numpy as np

    from experiment.analysis.balance import balance_check

    rng = np.random.default_rng(6)
    cells = bench.shifted(0.2)(bench.customers(20_000, rng), rng)
    result = balance_check(cells, control="control", threshold=0.001)
    assert result.flag
    assert {t.covariate for t in result.worst if t.flag} == {"sessions_30d"}
    assert result.worst[0].smd > 0  # raised in treatment


@pytest.mark.slow  # Monte Carlo: 200 A/A experiments of 50,000 users
def test_false_flag_rate_at_most_one_percent_over_200_runs(bench):
    rate = bench.run("clean", bench.clean, runs=200, users=50_000, seed=7)
    assert rate.flagged <= 2
