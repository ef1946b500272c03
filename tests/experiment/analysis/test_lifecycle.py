"""The lifecycle block end to end: analysis on simulated data, results.json, truth, errors."""

import json

import numpy as np
import pytest
import yaml

from experiment import analyze
from experiment.config import load_experiment
from experiment.errors import ConfigError
from experiment.results.analysis import AnalysisResults, load_results
from simulators import simulate


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("winback")
    simulate("lifecycle", users=6000, days=21, seed=11, out=folder)
    segments = yaml.safe_load((folder / "segments.yaml").read_text())
    segments["segments"].append({"name": "recent", "where": "days_since_last_login < 14"})
    (folder / "segments.yaml").write_text(yaml.safe_dump(segments))
    experiment = yaml.safe_load((folder / "experiment.yaml").read_text())
    experiment["lifecycle_analysis"]["migration_segments"] = ["recent"]
    (folder / "experiment.yaml").write_text(yaml.safe_dump(experiment))
    results = analyze(folder, folder / "experiment.yaml")
    truth = json.loads((folder / "truth.json").read_text())["lifecycle"]
    return folder, results, truth


def test_block_is_written_and_read_back(run, tmp_path):
    _, results, _ = run
    block = results.lifecycle
    assert block is not None
    assert block.migration
    assert block.survival
    assert block.value
    path = tmp_path / "results.json"
    path.write_text(results.to_json())
    again = load_results(path)
    assert again.lifecycle is not None
    assert json.loads(again.to_json()) == json.loads(results.to_json())


def test_files_without_the_block_load_and_stay_without_it(run):
    _, results, _ = run
    doc = json.loads(results.to_json())
    del doc["lifecycle"]
    old = AnalysisResults.from_json_dict(doc)
    assert old.lifecycle is None
    assert "lifecycle" not in json.loads(old.to_json())


def test_estimates_sit_near_the_truth(run):
    """|estimate - truth| / SE over every migration and survival test: ~N(0, 1)."""
    _, results, truth = run
    true_move = {(t["segment"], t["to"]): t["effect"] for t in truth["migration"] if t["day"] == 21}
    z = [
        (r.effect - true_move[r.segment, r.to]) / ((r.ci_high - r.ci_low) / (2 * 1.959964))
        for r in results.lifecycle.migration
        if r.day == 21 and np.isfinite(r.ci_high) and r.ci_high > r.ci_low
    ]
    true_surv = {(t["curve"], t["segment"], t["day"]): t["effect"] for t in truth["survival"]}
    z += [
        (r.effect - true_surv[r.curve, r.segment, r.day])
        / ((r.ci_high - r.ci_low) / (2 * 1.959964))
        for r in results.lifecycle.survival
        if np.isfinite(r.ci_high) and r.ci_high > r.ci_low and r.segment != "recent"
    ]
    assert len(z) > 30
    assert abs(np.mean(z)) < 0.5
    assert 0.6 < np.std(z) < 1.5
    assert np.mean(np.abs(z) > 1.959964) < 0.15


def test_planted_reactivation_is_found(run):
    _, results, _ = run
    row = next(
        r
        for r in results.lifecycle.migration
        if r.day == 21 and r.segment == "at_risk" and r.to == "active"
    )
    assert row.effect > 0
    assert row.family == "migration:21:at_risk"
    assert row.family_size >= 3


def test_planted_reactivation_shows_as_joining_a_recency_rule(run):
    """Win-back planted in at_risk and dormant customers: more of the lapsed become recent."""
    _, results, truth = run
    rows = {(r.start, r.to): r for r in results.lifecycle.segment_migration if r.day == 21}
    joined = rows["not_member", "member"]
    assert joined.ci_low > 0
    assert joined.family == "segment_migration:recent:21:not_member"
    assert rows["not_member", "not_member"].effect == pytest.approx(-joined.effect)
    planted = [t["effect"] for t in truth["migration"] if t["segment"] == "at_risk"]
    assert max(planted) > 0  # the truth has the reactivation this row must find
    assert results.lifecycle.migration_segments[0].recomputed == ("days_since_last_login",)


def test_a_missing_value_column_is_a_one_line_config_error(run, tmp_path):
    folder, _, _ = run
    config = load_experiment(folder / "experiment.yaml")
    assert config.lifecycle_analysis is not None
    spec = config.lifecycle_analysis.model_copy(update={"value": "amount"})
    config = config.model_copy(update={"lifecycle_analysis": spec})
    with pytest.raises(ConfigError, match=r"lifecycle_analysis\.value: the events table has no"):
        analyze(folder, config)


def test_days_past_the_window_are_refused(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text(
        "name: x\nwindow: {days: 14}\nmetrics: [{name: c, kind: proportion, event: purchase}]\n"
        "lifecycle_analysis: {days: [20]}\n"
    )
    with pytest.raises(ConfigError, match="lifecycle_analysis"):
        load_experiment(path)


def test_survival_cells_with_too_few_expected_events_are_not_tested():
    """1 lapse in 40 users per arm: no p-value (no test can hold 5% there); 60 in 400: tested."""
    from experiment.analysis.lifecycle import analyze_lifecycle
    from experiment.engine.lifecycle import LifecycleCounts

    window = 3
    events = np.zeros((2, 2, window + 1))
    exits = np.zeros((2, 2, window + 1))
    events[0, :, 1] = [30, 40]  # "all": 400 per arm
    exits[0, :, window] = [370, 360]
    events[1, :, 1] = [1, 0]  # a small segment: 40 per arm, one lapse
    exits[1, :, window] = [39, 40]
    counts = LifecycleCounts(
        arms=("control", "treatment"),
        segments=("all", "small"),
        days=(window,),
        window_days=window,
        migration=np.zeros((1, 2, 5, 5)),
        events={"retained": events},
        exits={"retained": exits},
        spend=np.zeros((6, 2, 2)),
    )
    block = analyze_lifecycle(
        counts,
        control="control",
        alpha=0.05,
        correction="holm",
        retention_days=[2],
        horizons=[],
    )
    rows = {r.segment: r for r in block.survival}
    assert np.isfinite(rows["all"].p_value)
    assert rows["all"].family_size == 1
    assert np.isnan(rows["small"].p_value)
    assert not rows["small"].significant
    assert rows["small"].family_size == 0
    assert np.isfinite(rows["small"].ci_low)  # the estimate and interval are still shown
