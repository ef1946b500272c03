"""End-to-end tests of the `exp` command line (typer's CliRunner, real DuckDB)."""

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from experiment.cli import app
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.dataset import write_dataset

runner = CliRunner()

CONTRACT_ROW = {
    "segment", "metric", "arm", "n_control", "n_treatment", "mean_control", "mean_treatment",
    "lift_abs", "lift_rel", "ci_low", "ci_high", "ci_abs_low", "ci_abs_high", "p_value",
    "p_adjusted", "significant", "method",
}  # fmt: skip


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = runner.invoke(app, ["demo", "--out", str(out), "--users", "20000", "--days", "7"])
    assert result.exit_code == 0, result.output
    return out


def test_demo_writes_results_for_every_segment_and_metric(demo_dir):
    doc = json.loads((demo_dir / "results.json").read_text())
    segments = [s["name"] for s in doc["segments"]]
    assert segments[0] == "all"
    assert len(segments) == 6
    pairs = {(r["segment"], r["metric"]) for r in doc["results"]}
    assert pairs == {(s, m) for s in segments for m in ("conversion", "ctr", "revenue_per_user")}
    assert all(set(r) >= CONTRACT_ROW for r in doc["results"])
    assert {"p_value", "observed", "expected", "flag"} <= set(doc["srm"])
    assert (demo_dir / "report.html").read_text().startswith("<!doctype html>")


def test_demo_results_agree_with_simulator_truth(demo_dir):
    """Every estimate lies within 4 standard errors of the true effect."""
    doc = json.loads((demo_dir / "results.json").read_text())
    truth = json.loads((demo_dir / "data" / "truth.json").read_text())
    true = {(t["segment"], t["metric"], t["arm"]): t["lift_abs"] for t in truth["effects"]}
    z = []
    for row in doc["results"]:
        se = (row["ci_abs_high"] - row["ci_abs_low"]) / (2 * 1.96)
        z.append((row["lift_abs"] - true[(row["segment"], row["metric"], row["arm"])]) / se)
    assert len(z) == 18
    assert max(abs(v) for v in z) < 4
    assert not any(math.isnan(v) for v in z)


def test_report_rerenders_html_from_json(demo_dir, tmp_path):
    out = tmp_path / "again.html"
    result = runner.invoke(app, ["report", str(demo_dir / "results.json"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text() == (demo_dir / "report.html").read_text()


@pytest.mark.parametrize(
    ("segments_yaml", "phrase"),
    [
        (
            "segments:\n  - name: evil\n    where: \"__import__('os').system('touch /tmp/x')\"\n",
            "segment 'evil': function calls are not allowed in rules at column 1",
        ),
        (
            "segments:\n  - {name: lapsed, where: 'days_since_login >= 14'}\n",
            "unknown column 'days_since_login'; did you mean 'days_since_last_login'?",
        ),
        (
            "segments:\n  - {name: sql, where: '1=1; DROP TABLE customers'}\n",
            "segment 'sql': not a valid rule",
        ),
    ],
)
def test_analyze_bad_rule_is_one_line_exit_2_and_writes_nothing(tmp_path, segments_yaml, phrase):
    data = write_dataset(tmp_path / "data", n_users=300, n_events=2000)
    (data / "segments.yaml").write_text(segments_yaml)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["analyze", str(data), "-e", str(data / "experiment.yaml"), "--out", str(out)]
    )
    assert_one_line_error(result, phrase)
    assert not out.exists()


def test_analyze_small_dataset_end_to_end(tmp_path):
    data = write_dataset(tmp_path / "data", n_users=600, n_events=6000)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["analyze", str(data), "-e", str(data / "experiment.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.json"]
    doc = json.loads((out / "results.json").read_text())
    assert doc["experiment"] == "exp1"
    assert len(doc["results"]) == 4 * 3


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["analyze", "nope", "-e", "nope.yaml"], "nope.yaml: experiment file not found"),
        (["report", "missing.json"], "missing.json: results file not found"),
        (["simulate", "--scenario", "atlantis", "--users", "10"], "unknown scenario 'atlantis'"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, args, phrase):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(runner.invoke(app, args), phrase)
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_option_value_is_exit_2():
    result = runner.invoke(app, ["simulate", "--users", "0"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["simulate", "analyze", "report", "demo"])
def test_cli_help_explains_each_command(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


@pytest.mark.slow
def test_demo_default_size_finds_largest_effect_and_not_zero_effects(tmp_path):
    """Issue 2's acceptance: at the demo's size and seed, the largest planted effect is
    significant and no planted-zero segment is."""
    from experiment.cli.simulate import DEMO_DAYS, DEMO_SEED, DEMO_USERS

    args = ["--users", str(DEMO_USERS), "--days", str(DEMO_DAYS), "--seed", str(DEMO_SEED)]
    assert runner.invoke(app, ["demo", "--out", str(tmp_path), *args]).exit_code == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    truth = json.loads((tmp_path / "data" / "truth.json").read_text())
    segment_truth = [t for t in truth["effects"] if t["segment"] != "all"]
    largest = max(segment_truth, key=lambda t: t["lift_rel"] or 0.0)
    zero = {t["segment"] for t in segment_truth if t["lift_abs"] == 0.0}
    assert zero, "the scenario must plant some exactly-zero segments"
    rows = {(r["segment"], r["metric"]): r for r in doc["results"]}
    assert rows[(largest["segment"], largest["metric"])]["significant"]
    for seg in zero:
        for metric in ("conversion", "ctr", "revenue_per_user"):
            assert not rows[(seg, metric)]["significant"], (seg, metric)


def test_simulate_pre_period_events_flag_writes_events_before_assignment(tmp_path):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    out = tmp_path / "d"
    args = ["simulate", "--users", "2000", "--days", "2", "--out", str(out)]
    assert runner.invoke(app, [*args, "--pre-period-events"]).exit_code == 0
    events = pq.read_table(out / "events.parquet", columns=["ts"])
    start = pq.read_table(out / "assignments.parquet", columns=["assigned_at"]).column(0)[0]
    before = pc.sum(pc.less(events.column("ts"), start)).as_py()
    assert before > 0
    assert runner.invoke(app, [*args, "--no-pre-period-events"]).exit_code == 0
    events = pq.read_table(out / "events.parquet", columns=["ts"])
    assert pc.sum(pc.less(events.column("ts"), start)).as_py() == 0


@pytest.mark.parametrize(
    ("limit", "phrase"),
    [
        ("lots", "memory limit 'lots': expected a size from 16MiB to 1024TiB, such as 1.5GB"),
        ("1KB", "memory limit '1KB': expected a size from 16MiB to 1024TiB"),
    ],
)
def test_analyze_bad_memory_limit_is_one_line_exit_2_and_writes_nothing(tmp_path, limit, phrase):
    data = write_dataset(tmp_path / "data", n_users=300, n_events=2000)
    out = tmp_path / "out"
    args = ["analyze", str(data), "-e", str(data / "experiment.yaml"), "--out", str(out)]
    result = runner.invoke(app, [*args, "--memory-limit", limit])
    assert_one_line_error(result, phrase)
    assert not out.exists()


def test_analyze_under_a_memory_limit_equals_the_unbounded_run(tmp_path):
    data = write_dataset(tmp_path / "data", n_users=600, n_events=6000)
    docs = []
    for name, extra in (("free", []), ("bounded", ["--memory-limit", "256MB"])):
        out = tmp_path / name
        args = ["analyze", str(data), "-e", str(data / "experiment.yaml"), "--out", str(out)]
        result = runner.invoke(app, [*args, "--no-html", *extra])
        assert result.exit_code == 0, result.output
        docs.append(json.loads((out / "results.json").read_text())["results"])
    assert docs[0] == docs[1]
