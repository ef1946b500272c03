"""``segments.target.target`` on planted data, against pandas on the held-out half."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiment.config import load_experiment
from experiment.engine.dataset import open_dataset
from experiment.errors import ConfigError
from experiment.results.targeting import Targeting, load_targeting
from segments import load_segments
from segments.target import target
from tests.fixtures.planted import halves, per_user, write_planted

SEGMENTS = """\
segments:
  - {name: tier_a, where: "tier == 'a'"}
  - {name: tier_b, where: "tier == 'b'"}
"""


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_planted(tmp_path_factory.mktemp("target"), segments=SEGMENTS)


def _run(folder: Path, **kwargs: object) -> Targeting:
    config = load_experiment(folder / "experiment.yaml")
    seg = load_segments(folder / "segments.yaml")
    return target(open_dataset(folder), config, seg, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def plain(planted: Path) -> Targeting:
    return _run(planted, attributes=[])


def test_target_cells_are_exclusive_tiers(plain: Targeting) -> None:
    assert [c.name for c in plain.cells] == ["tier_a", "tier_b", "everyone_else"]
    assert sum(c.share for c in plain.cells) == pytest.approx(1.0)


def test_target_values_match_pandas_on_the_held_out_half(planted: Path, plain: Targeting) -> None:
    users = per_user(planted)
    users["y"] = (users.purchase > 0).astype(float)
    held = users[halves(users.user_id, "exp1-salt", 0) == 1]
    cell_of = {"tier_a": "a", "tier_b": "b", "everyone_else": "c"}
    value, var = 0.0, 0.0
    for c in plain.cells:
        share = (users.tier == cell_of[c.name]).mean()
        assert c.share == pytest.approx(share, rel=1e-12)
        part = held[held.tier == cell_of[c.name]]
        y_c, y_t = part.y[part.arm == "control"], part.y[part.arm == "treatment"]
        diff = y_t.mean() - y_c.mean()
        assert c.lift_abs == pytest.approx(diff, rel=1e-9)
        if c.arm:
            value += 1000 * share * diff
            var += (1000 * share) ** 2 * (y_t.var() / len(y_t) + y_c.var() / len(y_c))
    got = plain.value_of("learned")
    assert got.value == pytest.approx(value, rel=1e-9)
    half = stats.norm.isf(0.025) * np.sqrt(var)
    assert got.ci_low == pytest.approx(value - half, rel=1e-9, abs=1e-9)
    assert plain.value_of("treat_none").value == 0.0


def test_target_policy_ignores_held_out_outcomes(
    planted: Path, plain: Targeting, tmp_path: Path
) -> None:
    """Changing every held-out outcome changes the values, never the policy."""
    events = pd.read_parquet(planted / "events.parquet")
    held = set(events.user_id[halves(events.user_id, "exp1-salt", 0) == 1])
    events = events[~((events.event == "purchase") & events.user_id.isin(held))]
    for name in ("assignments", "customers"):
        pd.read_parquet(planted / f"{name}.parquet").to_parquet(tmp_path / f"{name}.parquet")
    events.to_parquet(tmp_path / "events.parquet")
    for name in ("segments.yaml", "experiment.yaml"):
        (tmp_path / name).write_text((planted / name).read_text())
    other = _run(tmp_path, attributes=[])
    assert [(c.name, c.arm, c.gain) for c in other.cells] == [
        (c.name, c.arm, c.gain) for c in plain.cells
    ]
    assert other.value_of("treat_all").value != plain.value_of("treat_all").value


@pytest.mark.slow
def test_target_refines_the_planted_step_and_round_trips(planted: Path, tmp_path: Path) -> None:
    found = _run(planted, attributes=["x", "z"])
    refined = [c for c in found.cells if c.parent]
    assert refined, "the planted x >= 0.6 step should split at least one cell"
    assert all("x" in c.rule for c in refined)
    path = tmp_path / "policy.json"
    path.write_text(found.to_json())
    assert load_targeting(path) == found or load_targeting(path).to_json() == found.to_json()


def test_target_bad_budget_is_a_config_error(planted: Path) -> None:
    with pytest.raises(ConfigError, match="budget"):
        _run(planted, attributes=[], budget=0.0)
