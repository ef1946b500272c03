"""A fast run of ``benchmarks/shrinkage.py --simulator``: shrinkage on simulated journeys.

The full benchmark scores 600 experiments (10 populations × 60 re-randomisations of
40,000 customers) of the ``mosaic`` scenario; here 60 experiments of one population
of 20,000, with bands wide enough for that few: the shrunken lifts' error against
the true per-segment lifts is well below the raw one, their intervals cover near
95%, and on the homogeneous arm (one effect for everyone) they sit much closer to
``all``'s lift than the raw ones.
"""

from __future__ import annotations

import pytest

from tests.fixtures.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("shrinkage")


def test_shrinkage_beats_raw_lifts_on_the_mosaic_scenario(bench):
    figures, _ = bench.simulated(users=20_000, days=14, populations=1, reps=60, seed=3)
    assert figures.reduction >= 0.25, figures
    assert 0.90 <= figures.cover_shrunk <= 0.99, figures
    assert 0.88 <= figures.cover_raw <= 0.99, figures


def test_shrinkage_pulls_a_common_effect_to_the_common_lift(bench):
    figures, pulled = bench.simulated(
        arm="flat", users=20_000, days=14, populations=1, reps=60, seed=4
    )
    assert pulled.spread_shrunk < 0.5 * pulled.spread_raw, pulled
    assert pulled.mean_shrinkage > 0.6, pulled
    assert figures.reduction > 0.5, figures
