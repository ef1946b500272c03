"""Issue 18 refine fixes: bounded threshold moves, one proposal per cut, untested sides."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from experiment.config import load_experiment
from experiment.engine.dataset import open_dataset
from experiment.results.refinement import Refinement
from experiment.sums import MeanSums
from segments import load_segments
from segments.refine import refine
from segments.refine.distinct import cut_key
from segments.refine.estimate import side
from tests.fixtures.planted import halves, per_user, write_planted

# x >= 0.9 holds 10% of users; the planted step is at 0.6 (40%): moving the threshold
# there would quadruple the segment, so it must stay within [0.5, 2] times its size.
SEGMENTS = """\
segments:
  - {name: top_x, where: "x >= 0.9"}
  - {name: band_x, where: "x >= 0.3 and tier != 'c' and x < 0.8"}
  - {name: tier_a, where: "tier == 'a'"}
  - {name: tier_b, where: "tier == 'b'"}
  - {name: high_z, where: "z >= 0"}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_planted(tmp_path_factory.mktemp("fixes"), segments=SEGMENTS)


@pytest.fixture(scope="module")
def result(folder: Path) -> Refinement:
    config = load_experiment(folder / "experiment.yaml")
    return refine(open_dataset(folder), config, load_segments(folder / "segments.yaml"))


def _size(users, rule: str) -> int:
    return int(users.eval(rule.replace('"', "'")).sum())


def test_threshold_moves_keep_segment_size_and_other_conditions(
    folder: Path, result: Refinement
) -> None:
    users = per_user(folder)
    original = {"top_x": "x >= 0.9", "band_x": "x >= 0.3 and tier != 'c' and x < 0.8"}
    moves = [p for p in result.proposals if p.kind == "threshold"]
    assert moves
    for p in moves:
        if p.segment not in original:
            continue
        (new,) = p.new_segments
        before = _size(users, original[p.segment])
        after = _size(users, new.where)
        assert before / 2.2 <= after <= 2.2 * before, (p.segment, new.where)  # ± bin rounding
        # every other condition of the rule is still there, and the label is the whole rule
        if p.segment == "band_x":
            assert 'tier != "c"' in new.where
            assert new.where.count("x ") == 2
            lo, hi = (float(v) for v in _bounds(new.where))
            assert lo < hi  # a moved bound never crosses the other one
        assert p.sides[0].rule == new.where


def _bounds(rule: str) -> tuple[str, str]:
    parts = [c for c in rule.split(" and ") if c.startswith("x ")]
    low = next(c for c in parts if ">" in c).split()[-1]
    high = next(c for c in parts if "<" in c).split()[-1]
    return low, high


def test_each_cut_is_proposed_once(result: Refinement) -> None:
    cuts = [cut_key(p) for p in result.proposals if p.kind != "merge"]
    assert len(cuts) == len(set(cuts))
    # a threshold of a rule that is a single comparison cuts the whole population:
    # it must not repeat the split of `all` at the same cut-off
    whole = {(p.attribute, p.threshold) for p in result.proposals if p.segment == "all"}
    top = [p for p in result.proposals if p.kind == "threshold" and p.segment == "top_x"]
    assert all((p.attribute, p.threshold) not in whole for p in top)


def test_merges_pair_only_segments_on_the_same_columns(result: Refinement) -> None:
    columns = {"tier_a": {"tier"}, "tier_b": {"tier"}, "high_z": {"z"}, "top_x": {"x"}}
    columns["band_x"] = {"x", "tier"}
    merges = [p for p in result.proposals if p.kind == "merge"]
    for p in merges:
        a, b = (s.name for s in p.sides)
        assert columns[a] == columns[b], (a, b)
    assert {frozenset(s.name for s in p.sides) for p in merges} <= {frozenset({"tier_a", "tier_b"})}


def test_side_without_treatment_events_has_no_interval_nor_test(folder: Path) -> None:
    config = load_experiment(folder / "experiment.yaml")
    control = MeanSums.from_values(np.r_[np.ones(30), np.zeros(970)])
    treatment = MeanSums.from_values(np.zeros(1000))
    got, _ = side(
        "s", "x >= 1", control=control, treatment=treatment, full_n=(2e3, 2e3), config=config
    )
    assert got.reason == "no_treatment_events"
    assert math.isnan(got.lift_rel)
    assert math.isnan(got.ci_low)
    assert math.isnan(got.p_value)
    both, _ = side(
        "s", "x >= 1", control=treatment, treatment=control, full_n=(2e3, 2e3), config=config
    )
    assert both.reason == "no_control_events"


def test_proposals_with_an_untested_side_are_in_no_family(folder: Path, tmp_path: Path) -> None:
    """A segment whose treated held-out users never convert: its split has no p-value."""
    import pandas as pd

    events = pd.read_parquet(folder / "events.parquet")
    assignments = pd.read_parquet(folder / "assignments.parquet")
    customers = pd.read_parquet(folder / "customers.parquet")
    treated = set(assignments.user_id[assignments.arm == "treatment"])
    held = customers.user_id[halves(customers.user_id, "exp1-salt", 0) == 1]
    high = set(customers.user_id[customers.x >= 0.5]) & set(held)  # estimation half only
    drop = (events.event == "purchase") & events.user_id.isin(treated & high)
    for name in ("assignments", "customers"):
        pd.read_parquet(folder / f"{name}.parquet").to_parquet(tmp_path / f"{name}.parquet")
    events[~drop].to_parquet(tmp_path / "events.parquet")
    (tmp_path / "segments.yaml").write_text("segments:\n  - {name: hx, where: 'x >= 0.5'}\n")
    (tmp_path / "experiment.yaml").write_text((folder / "experiment.yaml").read_text())
    config = load_experiment(tmp_path / "experiment.yaml")
    got = refine(
        open_dataset(tmp_path),
        config,
        load_segments(tmp_path / "segments.yaml"),
        attributes=["z"],
    )
    hx = next(p for p in got.proposals if p.segment == "hx" and p.kind == "split")
    assert "no treatment events" in hx.reason
    assert math.isnan(hx.interaction_p)
    assert math.isnan(hx.p_adjusted)
    assert not hx.significant
    assert all(s.reason == "no_treatment_events" for s in hx.sides)


def test_held_out_tests_use_the_experiments_cuped(folder: Path, tmp_path: Path) -> None:
    """With ``cuped: k`` the held-out lift is the OLS treatment coefficient (statsmodels)."""
    import statsmodels.api as sm

    for name in ("assignments", "customers", "events"):
        (tmp_path / f"{name}.parquet").write_bytes((folder / f"{name}.parquet").read_bytes())
    (tmp_path / "segments.yaml").write_text("segments:\n  - {name: hz, where: 'z >= 0'}\n")
    text = (folder / "experiment.yaml").read_text()
    text = text.replace("event: purchase}", "event: purchase, cuped: k}")
    (tmp_path / "experiment.yaml").write_text(text)
    config = load_experiment(tmp_path / "experiment.yaml")
    got = refine(
        open_dataset(tmp_path), config, load_segments(tmp_path / "segments.yaml"), attributes=["x"]
    )
    split = next(p for p in got.proposals if p.segment == "all" and p.kind == "split")
    users = per_user(tmp_path)
    held = users[halves(users.user_id, "exp1-salt", 0) == 1]
    for s in split.sides:
        part = held[held.eval(s.rule)]
        design = np.column_stack(
            [np.ones(len(part)), (part.arm == "treatment").astype(float), part.k.astype(float)]
        )
        fit = sm.OLS((part.purchase > 0).astype(float).to_numpy(), design).fit()
        assert s.lift_abs == pytest.approx(fit.params[1], rel=1e-6)
