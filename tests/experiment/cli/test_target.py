"""`exp target` end to end (typer's CliRunner, real DuckDB)."""

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from experiment.cli import app
from experiment.results.targeting import load_targeting
from segments import load_segments
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.dataset import write_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("target") / "data", n_users=3000, n_events=30_000)


def test_target_writes_policy_rollout_evidence_and_report(data, tmp_path):
    args = ["target", str(data), "-e", str(data / "experiment.yaml"), "--attributes", "none"]
    args += ["--out", str(tmp_path / "policy.yaml"), "--report", str(tmp_path / "p.html")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "p.html",
        "policy.json",
        "policy.rollout.yaml",
        "policy.yaml",
    ]
    found = load_targeting(tmp_path / "policy.json")
    policy = load_segments(tmp_path / "policy.yaml")
    assert policy.exclusive
    assert policy.names == [c.name for c in found.cells]
    rollout = yaml.safe_load((tmp_path / "policy.rollout.yaml").read_text())
    assert [r["segment"] for r in rollout["rollout"]] == policy.names
    assert {r["arm"] for r in rollout["rollout"]} <= {found.control, *found.arms}
    assert rollout["recommendation"] == found.recommendation
    page = (tmp_path / "p.html").read_text()
    assert "<svg" in page
    assert "Gain curve" in page
    assert "recommendation" in result.output


def test_target_json_format_prints_the_evidence(data, tmp_path):
    args = ["target", str(data), "-e", str(data / "experiment.yaml"), "--attributes", "none"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "p.yaml"), "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert {v["policy"] for v in doc["values"]} == {
        "learned",
        "treat_all",
        "treat_none",
        "learned_vs_treat_all",
    }


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [(["--budget", "0"], "budget"), (["--metric", "nope"], "nope"), (["--attributes", "zz"], "zz")],
)
def test_target_bad_input_is_one_line_exit_2(data, tmp_path, monkeypatch, extra, phrase):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["target", str(data), "-e", str(data / "experiment.yaml"), *extra])
    assert_one_line_error(result, phrase)
    assert list(tmp_path.iterdir()) == []
