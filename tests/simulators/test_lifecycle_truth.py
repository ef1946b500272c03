"""The lifecycle truth: stages, migration, survival and value from both potential outcomes."""

import numpy as np
import pytest

from segments.lifecycle import STAGES
from simulators.lifecycle_truth import stage_codes, start_columns
from simulators.potential import simulate_potential


@pytest.fixture(scope="module")
def run():
    return simulate_potential("lifecycle", users=6000, days=21, seed=3)


def test_stage_at_start_equals_the_segments_lifecycle_membership(run):
    config = run.scenario.segment_set.lifecycle
    r0, age, vip = start_columns(run.customers, config, run.scenario.config.start)
    codes = stage_codes(r0, age, vip, config)
    for s, stage in enumerate(STAGES):  # segments.membership compiles segments/lifecycle.py
        np.testing.assert_array_equal(codes == s, run.members[stage])


def test_unaffected_stages_have_exactly_zero_effects(run):
    rows = run.lifecycle["migration"]
    assert rows, "the lifecycle scenario writes migration truth"
    for row in rows:
        if row["segment"] in {"new", "vip"}:
            assert row["effect"] == 0.0
    value = {r["segment"]: r["effect"] for r in run.lifecycle["value"] if r["horizon"] == 21}
    assert value["new"] == 0.0
    assert value["vip"] == 0.0


def test_planted_effects_move_customers_the_planted_way(run):
    end = {(r["segment"], r["to"]): r for r in run.lifecycle["migration"] if r["day"] == 21}
    assert end["at_risk", "active"]["effect"] > 0.02  # reactivation
    assert end["dormant", "dormant"]["effect"] < -0.02
    shares = [end["at_risk", to]["share_control"] for to in STAGES]
    assert sum(shares) == pytest.approx(1.0)
    retained = {
        (r["segment"], r["day"]): r["effect"]
        for r in run.lifecycle["survival"]
        if r["curve"] == "retained"
    }
    assert retained["active", 14] >= 0.0  # churn reduction: fewer lapse
