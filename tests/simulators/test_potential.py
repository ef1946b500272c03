from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from experiment.errors import ConfigError
from simulators import simulate
from simulators.potential import simulate_potential
from simulators.truth import metric_value

USERS, DAYS, SEED = 1500, 4, 5


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("potential")
    simulate("ecommerce", users=USERS, days=DAYS, seed=SEED, out=out)
    return out


def test_simulate_potential_truth_equals_truth_json(written: Path):
    run = simulate_potential("ecommerce", users=USERS, days=DAYS, seed=SEED)
    expected = json.loads((written / "truth.json").read_text())["effects"]
    mine = run.truth()
    assert len(mine) == len(expected)
    for row, effect in zip(expected, mine, strict=True):
        assert (row["segment"], row["metric"], row["arm"]) == (
            effect.segment,
            effect.metric,
            effect.arm,
        )
        for field in ("mean_control", "mean_treatment", "lift_abs", "lift_rel"):
            if row[field] is None:
                assert getattr(effect, field) is None
            else:
                assert getattr(effect, field) == pytest.approx(row[field], rel=1e-12, abs=1e-12)


def test_simulate_potential_customers_equal_the_written_table(written: Path):
    run = simulate_potential("ecommerce", users=USERS, days=DAYS, seed=SEED)
    assert run.customers.equals(pq.read_table(written / "customers.parquet"))


def test_simulate_potential_observed_world_matches_the_events(written: Path):
    """A user's observed purchases are their assigned arm's potential outcome."""
    run = simulate_potential("ecommerce", users=USERS, days=DAYS, seed=SEED)
    ids = run.customers.column("user_id").to_numpy(zero_copy_only=False)
    arms = pq.read_table(written / "assignments.parquet")
    arm = dict(zip(arms.column("user_id").to_pylist(), arms.column("arm").to_pylist(), strict=True))
    events = pq.read_table(written / "events.parquet", columns=["user_id", "event"]).to_pydict()
    bought = np.zeros(USERS)
    index = {u: i for i, u in enumerate(ids)}
    for user, event in zip(events["user_id"], events["event"], strict=True):
        if event == "purchase":
            bought[index[user]] += 1
    expected = np.asarray([bought[i] > 0 for i in range(USERS)], dtype=float)
    observed = np.where(
        np.asarray([arm[u] for u in ids]) == "treatment",
        run.values("conversion", "treatment")[0],
        run.values("conversion", "control")[0],
    )
    np.testing.assert_array_equal(observed, expected)


def test_simulate_potential_daily_outcomes_are_cumulative():
    run = simulate_potential("ecommerce", users=800, days=3, seed=2, daily=True)
    assert len(run.daily) == 3
    impressions = [run.values("ctr", "control", day=d)[1] for d in range(3)]
    assert np.all(np.diff(np.vstack(impressions), axis=0) >= 0)
    assert impressions[2].sum() > impressions[0].sum()
    final = simulate_potential("ecommerce", users=800, days=3, seed=2)
    np.testing.assert_array_equal(final.outcomes.counts, run.outcomes.counts)
    metric = run.metric("conversion")
    assert metric_value(metric, run.daily[0], 0, run.members["all"]) <= metric_value(
        metric, run.outcomes, 0, run.members["all"]
    )


def test_simulate_potential_values_by_kind():
    run = simulate_potential("ecommerce", users=500, days=2, seed=1)
    (conversion,) = run.values("conversion", "control")
    assert set(np.unique(conversion)) <= {0.0, 1.0}
    clicks, impressions = run.values("ctr", "treatment")
    assert np.all(clicks <= impressions)
    assert run.covariate("orders_90d").dtype == np.float64
    with pytest.raises(KeyError):
        run.metric("nope")


def test_simulate_potential_rejects_bad_sizes():
    with pytest.raises(ConfigError, match="users must be"):
        simulate_potential("ecommerce", users=0, days=2, seed=1)
    with pytest.raises(ConfigError, match="days must be"):
        simulate_potential("ecommerce", users=10, days=0, seed=1)
