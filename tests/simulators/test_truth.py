from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from experiment.config import MetricSpec
from simulators import load_scenario
from simulators.outcomes import PotentialOutcomes
from simulators.truth import true_effects
from tests.fixtures.simulated import DAYS, SEED, USERS, Simulated

FIELDS = ["segment", "metric", "arm", "mean_control", "mean_treatment", "lift_abs", "lift_rel"]


def _effect(simulated: Simulated, segment: str, metric: str) -> dict[str, Any]:
    rows = [
        e for e in simulated.truth["effects"] if e["segment"] == segment and e["metric"] == metric
    ]
    assert len(rows) == 1
    row: dict[str, Any] = rows[0]
    return row


def test_truth_has_the_design_shape(simulated: Simulated):
    truth = simulated.truth
    assert list(truth) == ["scenario", "seed", "users", "days", "effects"]
    assert (truth["scenario"], truth["seed"], truth["users"], truth["days"]) == (
        "ecommerce",
        SEED,
        USERS,
        DAYS,
    )
    scenario = load_scenario("ecommerce")
    segments = ["all", *scenario.segment_set.names]
    metrics = [m.name for m in scenario.experiment.metrics]
    assert [(e["segment"], e["metric"], e["arm"]) for e in truth["effects"]] == [
        (s, m, "treatment") for s in segments for m in metrics
    ]
    for row in truth["effects"]:
        assert list(row) == FIELDS
        assert row["lift_abs"] == pytest.approx(row["mean_treatment"] - row["mean_control"])
        assert row["lift_rel"] == pytest.approx(row["lift_abs"] / row["mean_control"])


@pytest.mark.parametrize("segment", ["first_time_buyers", "dormant"])
@pytest.mark.parametrize("metric", ["conversion", "ctr", "revenue_per_user"])
def test_truth_planted_zero_segments_have_zero_lift(
    simulated: Simulated, segment: str, metric: str
):
    row = _effect(simulated, segment, metric)
    assert row["mean_control"] > 0
    assert row["lift_abs"] == 0
    assert row["lift_rel"] == 0


def test_truth_planted_effect_has_the_planted_size(simulated: Simulated):
    # cart_abandoners: purchase x1.40 and ctr x1.10, so purchases rise by up to x1.54;
    # conversion (>= 1 purchase) saturates a little below that.
    conversion = _effect(simulated, "cart_abandoners", "conversion")
    assert 0.25 < conversion["lift_rel"] < 0.70
    ctr = _effect(simulated, "cart_abandoners", "ctr")
    assert ctr["lift_rel"] == pytest.approx(0.10, abs=0.02)
    assert _effect(simulated, "all", "conversion")["lift_rel"] > 0


def test_truth_control_world_matches_observed_control_users(simulated: Simulated):
    # control users are observed in the control world, so the truth's control mean
    # over all users is close to the observed control conversion
    control = simulated.assignments.column("arm").to_numpy(zero_copy_only=False) == "control"
    observed = np.mean(simulated.counts["purchase"][control] > 0)
    truth = _effect(simulated, "all", "conversion")["mean_control"]
    assert observed == pytest.approx(truth, abs=0.01)


def _outcomes() -> PotentialOutcomes:
    out = PotentialOutcomes.zeros(2, 4)
    users = np.array([0, 1, 1, 2, 3, 3, 3])
    out.add_events("impression", users)
    out.add_events("click", np.array([1]), arm=0)
    out.add_events("click", np.array([1, 3]), arm=1)
    out.add_events("purchase", np.array([3]), arm=1)
    out.add_revenue(1, np.array([3]), np.array([20.0]))
    return out


def test_true_effects_compute_each_metric_kind():
    metrics = [
        MetricSpec.model_validate({"name": "conv", "kind": "proportion", "event": "purchase"}),
        MetricSpec.model_validate(
            {
                "name": "ctr",
                "kind": "ratio",
                "numerator": {"event": "click"},
                "denominator": {"event": "impression"},
            }
        ),
        MetricSpec.model_validate(
            {"name": "rpu", "kind": "mean", "event": "purchase", "value": "revenue"}
        ),
    ]
    members = {"all": np.ones(4, dtype=bool), "empty": np.zeros(4, dtype=bool)}
    rows = true_effects(
        _outcomes(), metrics, members, arms=["control", "treatment"], control="control"
    )
    conv, ctr, rpu = rows[:3]
    assert (conv.mean_control, conv.mean_treatment, conv.lift_rel) == (0.0, 0.25, None)
    assert ctr.mean_control == pytest.approx(1 / 7)
    assert ctr.mean_treatment == pytest.approx(2 / 7)
    assert ctr.lift_rel == pytest.approx(1.0)
    assert rpu.mean_treatment == pytest.approx(5.0)
    assert all(r.mean_control is None and r.lift_abs is None for r in rows[3:])
