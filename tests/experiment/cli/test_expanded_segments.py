"""``exp analyze`` on a segments file whose entries expand (crossed, lifecycle, clusters).

The analysed names (``lifecycle_at_risk``, ``taste_0``) are not the file's entry
names: the CLI, and ``--from-sums`` on kept sums, must accept them.
"""

import json

import pytest
import yaml
from typer.testing import CliRunner

from experiment.cli import app
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.wide_report import wide_dataset

runner = CliRunner()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("expanded")
    data = wide_dataset(folder / "data")
    out = folder / "out"
    args = ["analyze", str(data), "-e", str(data / "experiment.yaml"), "--out", str(out)]
    result = runner.invoke(app, [*args, "--no-html", "--save-sums"])
    assert result.exit_code == 0, result.output
    return data, out


def test_analyze_measures_every_expanded_segment(analysed):
    data, out = analysed
    doc = json.loads((out / "results.json").read_text())
    names = {s["name"] for s in doc["segments"]}
    entries = yaml.safe_load((data / "segments.yaml").read_text())["segments"]
    assert {e["name"] for e in entries if "where" in e} <= names
    assert any(n.startswith("lifecycle_") for n in names)
    assert any(n.startswith("stage_by_device_") for n in names)
    assert any(n.startswith("taste_") for n in names)


def test_from_sums_accepts_the_expanded_names_and_gives_the_same_rows(analysed, tmp_path):
    data, out = analysed
    args = [
        "analyze",
        "--from-sums",
        str(out / "sums.parquet"),
        "-e",
        str(data / "experiment.yaml"),
    ]
    again = runner.invoke(app, [*args, "--out", str(tmp_path / "again"), "--no-html"])
    assert again.exit_code == 0, again.output
    first = json.loads((out / "results.json").read_text())["results"]
    second = json.loads((tmp_path / "again" / "results.json").read_text())["results"]
    assert [(r["segment"], r["metric"], r["arm"], r["p_value"]) for r in first] == [
        (r["segment"], r["metric"], r["arm"], r["p_value"]) for r in second
    ]


def test_from_sums_refuses_a_segments_file_that_lost_a_rule_entry(analysed, tmp_path):
    data, out = analysed
    plan = yaml.safe_load((data / "segments.yaml").read_text())
    plan["segments"] = [e for e in plan["segments"] if e.get("name") != "first_time_buyers"]
    (tmp_path / "segments.yaml").write_text(yaml.safe_dump(plan))
    config = yaml.safe_load((data / "experiment.yaml").read_text())
    config["segments"] = str(tmp_path / "segments.yaml")
    (tmp_path / "experiment.yaml").write_text(yaml.safe_dump(config))
    args = [
        "analyze",
        "--from-sums",
        str(out / "sums.parquet"),
        "-e",
        str(tmp_path / "experiment.yaml"),
    ]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x"), "--no-html"])
    assert_one_line_error(result, "first_time_buyers")
    assert not (tmp_path / "x").exists()
