"""``segments.refine.refine`` against independent pandas/scipy computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiment.config import load_experiment
from experiment.engine.dataset import open_dataset
from experiment.errors import ConfigError
from experiment.results.refinement import Proposal, Refinement
from segments import compile_segments, load_segments, parse_segments
from segments.refine import refine
from tests.fixtures.planted import halves, per_user, ratio_lift, relative_lift, write_planted

SEGMENTS = """\
segments:
  - {name: tier_a, where: "tier == 'a'"}
  - {name: tier_b, where: "tier == 'b'"}
  - {name: low_x, where: "x >= 0.2 and tier != 'c'"}
"""


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_planted(tmp_path_factory.mktemp("planted"), segments=SEGMENTS)


@pytest.fixture(scope="module")
def planted_result(planted: Path) -> Refinement:
    config = load_experiment(planted / "experiment.yaml")
    return refine(open_dataset(planted), config, load_segments(planted / "segments.yaml"))


def _run(folder: Path, **kwargs: object) -> Refinement:
    config = load_experiment(folder / "experiment.yaml")
    seg = load_segments(folder / "segments.yaml")
    return refine(open_dataset(folder), config, seg, **kwargs)  # type: ignore[arg-type]


def _split(result: Refinement, segment: str, kind: str = "split") -> Proposal:
    return next(p for p in result.proposals if p.kind == kind and p.segment == segment)


def test_refine_finds_planted_threshold(planted_result: Refinement) -> None:
    top = _split(planted_result, "all")
    assert top.attribute == "x"
    assert top.threshold is not None
    assert abs(top.threshold - 0.6) <= 0.06
    assert top.significant
    first, second = top.sides
    assert first.rule == f"x >= {top.threshold:g}"
    assert first.lift_rel > 0.3
    assert abs(second.lift_rel) < 0.15


def test_refine_threshold_kind_moves_cutoff(planted_result: Refinement) -> None:
    moved = _split(planted_result, "low_x", kind="threshold")
    assert moved.attribute == "x"
    assert moved.threshold is not None
    assert abs(moved.threshold - 0.6) <= 0.06
    (new,) = moved.new_segments
    # only the bound moves: the other condition stays, in place
    assert new.where == f'x >= {moved.threshold:g} and tier != "c"'
    assert moved.sides[0].rule == new.where


def _inside(est: pd.DataFrame, kind: str, segment: str) -> pd.Series:
    """Membership of a proposal's parent (a threshold's base drops its comparison)."""
    if segment == "all":
        return pd.Series(True, index=est.index)
    if segment == "low_x":
        base = est.tier != "c"
        return base if kind == "threshold" else base & (est.x >= 0.2)
    return est.tier == segment[-1]


def test_refine_sides_match_pandas(planted: Path, planted_result: Refinement) -> None:
    users = per_user(planted)
    est = users[halves(users.user_id, "exp1-salt", 0) == 1]
    checked = 0
    for proposal in planted_result.proposals:
        if proposal.kind == "merge":
            continue
        inside = _inside(est, proposal.kind, proposal.segment)
        col = est[proposal.attribute]
        lifts = []
        for k, side in enumerate(proposal.sides):
            if proposal.groups is not None:
                mask = col.isin(list(proposal.groups[k]))
            else:
                ge = "_ge_" in side.name
                mask = col >= proposal.threshold if ge else col < proposal.threshold
            part = est[inside & mask]
            y = (part.purchase > 0).astype(float)
            y_c, y_t = y[part.arm == "control"].to_numpy(), y[part.arm == "treatment"].to_numpy()
            lifts.append(relative_lift(y_c, y_t))
            assert (side.n_control, side.n_treatment) == (y_c.size, y_t.size)
            assert side.lift_rel == pytest.approx(lifts[-1][0], abs=1e-9)
            assert side.mean_control == pytest.approx(y_c.mean(), abs=1e-12)
            welch = stats.ttest_ind(y_t, y_c, equal_var=False)
            assert side.p_value == pytest.approx(welch.pvalue, abs=1e-9)
        z = (lifts[0][0] - lifts[1][0]) / np.hypot(lifts[0][1], lifts[1][1])
        assert proposal.interaction_p == pytest.approx(2 * stats.norm.sf(abs(z)), abs=1e-9)
        checked += 1
    assert checked >= 5  # all, three segments, one threshold


def test_refine_ratio_metric_matches_delta_method(planted: Path) -> None:
    result = _run(planted, metric="ctr", attributes=["x"], seed=3)
    top = _split(result, "all")
    users = per_user(planted)
    est = users[halves(users.user_id, "exp1-salt", 3) == 1]
    hi = est[est.x >= top.threshold]
    c, t = hi[hi.arm == "control"], hi[hi.arm == "treatment"]
    lift, _ = ratio_lift(
        c.click.to_numpy(), c.impression.to_numpy(), t.click.to_numpy(), t.impression.to_numpy()
    )
    assert top.sides[0].lift_rel == pytest.approx(lift, abs=1e-9)
    assert result.metric == "ctr"
    assert result.attributes == ("x",)


def test_refine_estimation_ignores_discovery_outcomes(planted: Path, tmp_path: Path) -> None:
    """Changing discovery-half outcomes leaves every held-out number of the split as is.

    A two-level attribute has a single cut, so the split is the same either way.
    """
    customers = pd.read_parquet(planted / "customers.parquet")
    customers["flag"] = np.where(customers.k >= 5, "hi", "lo")
    events = pd.read_parquet(planted / "events.parquet")
    disc = halves(events.user_id, "exp1-salt", 0) == 0
    buys = disc & (events.event == "purchase")
    perturbed = pd.concat([events[~buys], events[buys].iloc[::2], events[disc].iloc[:300]])
    results = []
    for name, ev in (("before", events), ("after", perturbed)):
        folder = tmp_path / name
        folder.mkdir()
        for f in ("assignments.parquet", "experiment.yaml"):
            (folder / f).write_bytes((planted / f).read_bytes())
        (folder / "segments.yaml").write_text("segments:\n  - {name: a, where: \"tier == 'a'\"}\n")
        customers.to_parquet(folder / "customers.parquet")
        ev.to_parquet(folder / "events.parquet")
        results.append(_run(folder, attributes=["flag"], min_size=10))
    before, after = results
    assert [p.discovery_z for p in before.proposals] != [p.discovery_z for p in after.proposals]
    splits = [
        (b, a) for b, a in zip(before.proposals, after.proposals, strict=True) if b.kind == "split"
    ]
    assert len(splits) == 2  # all, a
    for b, a in splits:
        assert {s.name: s for s in b.sides} == {s.name: s for s in a.sides}
        assert b.interaction_p == a.interaction_p


def test_refine_new_segments_are_valid(planted: Path, planted_result: Refinement) -> None:
    original = (planted / "segments.yaml").read_text()
    import yaml

    doc = yaml.safe_load(original)
    for p in planted_result.proposals:
        doc["segments"] += [{"name": s.name, "where": s.where} for s in p.new_segments]
    seg = parse_segments(doc, source="proposals.yaml")
    compiled = compile_segments(seg, open_dataset(planted).customers)
    assert len(compiled) == len(doc["segments"])


def test_refine_json_round_trip(planted_result: Refinement, tmp_path: Path) -> None:
    from experiment.results.refinement import load_refinement

    path = tmp_path / "r.json"
    path.write_text(planted_result.to_json())
    back = load_refinement(path)
    assert back.proposals[0].summary == planted_result.proposals[0].summary
    assert [p.kind for p in back.proposals] == [p.kind for p in planted_result.proposals]


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({"metric": "nope"}, "metric 'nope'"),
        ({"arm": "control"}, "arm 'control'"),
        ({"attributes": ["nope"]}, "'nope' is not a customers column"),
        ({"attributes": ["signup"]}, "'signup' cannot be cut"),
        ({"attributes": ["user_id"]}, "'user_id' is the user id"),
        ({"min_size": 0}, "min_size"),
    ],
)
def test_refine_bad_names_are_one_line_config_errors(
    planted: Path, kwargs: dict[str, object], phrase: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        _run(planted, **kwargs)
    assert phrase in str(exc.value)
    assert "\n" not in str(exc.value)


def test_refine_too_many_levels_is_config_error(planted: Path, tmp_path: Path) -> None:
    for name in ("assignments.parquet", "events.parquet", "experiment.yaml", "segments.yaml"):
        (tmp_path / name).write_bytes((planted / name).read_bytes())
    customers = pd.read_parquet(planted / "customers.parquet")
    customers["code"] = [f"c{i % 40}" for i in range(len(customers))]
    customers.to_parquet(tmp_path / "customers.parquet")
    with pytest.raises(ConfigError, match="at most 30"):
        _run(tmp_path, attributes=["code"])
    assert "code" not in _run(tmp_path, attributes=None, min_size=10**9).attributes


def test_refine_merge_pairs_segments_with_close_lifts(
    planted: Path, planted_result: Refinement
) -> None:
    """tier_a and tier_b share one lift structure: merged, TOST on held-out lifts."""
    merge = next(p for p in planted_result.proposals if p.kind == "merge" and p.segment == "tier_a")
    assert {s.name for s in merge.sides} == {"tier_a", "tier_b"}
    assert merge.new_segments[0].where == 'segment("tier_a") or segment("tier_b")'
    users = per_user(planted)
    est = users[halves(users.user_id, "exp1-salt", 0) == 1]
    lifts = []
    for tier in ("a", "b"):
        part = est[est.tier == tier]
        y = (part.purchase > 0).astype(float)
        lifts.append(
            relative_lift(
                y[part.arm == "control"].to_numpy(), y[part.arm == "treatment"].to_numpy()
            )
        )
    d, se = lifts[0][0] - lifts[1][0], np.hypot(lifts[0][1], lifts[1][1])
    tost = max(stats.norm.sf((d + 0.1) / se), stats.norm.cdf((d - 0.1) / se))
    assert merge.equivalence_p == pytest.approx(tost, abs=1e-9)
    assert merge.interaction_p == pytest.approx(2 * stats.norm.sf(abs(d / se)), abs=1e-9)


def test_refine_reports_progress_per_attribute(planted: Path) -> None:
    calls: list[tuple[int, int, str]] = []
    result = _run(planted, attributes=["z", "tier"], progress=lambda *a: calls.append(a))
    assert calls[-1][:2] == (4, 4)
    assert [c[2] for c in calls[1:]] == ["z", "tier", "x"]  # x: low_x's rule threshold
    assert result.attributes == ("z", "tier")
    assert result.candidates == sum(p.candidates for p in result.proposals)


def test_duplicated_customers_are_left_out_as_if_absent(planted: Path, tmp_path: Path) -> None:
    """Users with two customer rows (different attributes) are not analysed.

    The attributes ride on the per-user table's customers join; for a duplicated id
    any row's values are carried, and the user is filtered out: the refinement is
    the one of the data without those users at all.
    """
    customers = pd.read_parquet(planted / "customers.parquet")
    assignments = pd.read_parquet(planted / "assignments.parquet")
    events = pd.read_parquet(planted / "events.parquet")
    dup_ids = customers.user_id.iloc[::7]
    twins = customers[customers.user_id.isin(dup_ids)].copy()
    twins["x"] = 1.0 - twins["x"]
    twins["tier"] = "c"
    runs = []
    for name, cust, asg, ev in (
        ("dup", pd.concat([customers, twins]), assignments, events),
        (
            "absent",
            customers[~customers.user_id.isin(dup_ids)],
            assignments[~assignments.user_id.isin(dup_ids)],
            events[~events.user_id.isin(dup_ids)],
        ),
    ):
        folder = tmp_path / name
        folder.mkdir()
        for f in ("experiment.yaml", "segments.yaml"):
            (folder / f).write_bytes((planted / f).read_bytes())
        cust.to_parquet(folder / "customers.parquet")
        asg.to_parquet(folder / "assignments.parquet")
        ev.to_parquet(folder / "events.parquet")
        runs.append(_run(folder, min_size=10))
    dup, absent = runs
    assert dup.discovery_users + dup.estimation_users < len(customers)
    assert dup.to_json() == absent.to_json()
