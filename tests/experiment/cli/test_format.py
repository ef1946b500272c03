"""``--format json|csv``: machine-readable output on standard output, nothing else there."""

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from experiment.cli import app
from tests.fixtures.cli import assert_one_line_error

runner = CliRunner()


@pytest.fixture(scope="module")
def analyzed(dataset_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("format")
    args = ["analyze", str(dataset_dir), "-e", str(dataset_dir / "experiment.yaml")]
    result = runner.invoke(app, [*args, "--out", str(out), "--no-html", "--format", "json"])
    assert result.exit_code == 0, result.output
    return dataset_dir, out, result


def test_analyze_json_on_stdout_is_the_results_file(analyzed):
    _, out, result = analyzed
    printed = json.loads(result.stdout)  # nothing but the document on stdout
    assert printed == json.loads((out / "results.json").read_text())
    assert "SRM" in result.stderr  # the trust lines still reach the user, on stderr


def test_analyze_csv_has_one_line_per_result_row(analyzed, tmp_path):
    data, out, _ = analyzed
    args = ["analyze", str(data), "-e", str(data / "experiment.yaml"), "--out", str(tmp_path)]
    result = runner.invoke(app, [*args, "--no-html", "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    expected = json.loads((out / "results.json").read_text())["results"]
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert (row["segment"], row["metric"], row["arm"]) == (
            want["segment"], want["metric"], want["arm"]
        )  # fmt: skip
        if want["p_value"] is None:
            assert row["p_value"] == ""
        else:
            assert float(row["p_value"]) == want["p_value"]  # repr round-trips exactly


def test_validate_csv_flattens_metrics_and_json_alias_still_works(dataset_dir):
    args = ["segments", "validate", str(dataset_dir / "segments.yaml"), "--data", str(dataset_dir)]
    args += ["--metric", "orders=orders_90d"]
    as_csv = runner.invoke(app, [*args, "--format", "csv"])
    assert as_csv.exit_code in (0, 1), as_csv.output  # 1: a segment fails a check
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert rows
    assert "mde_rel.orders" in rows[0]
    via_alias = runner.invoke(app, [*args, "--json"])
    via_format = runner.invoke(app, [*args, "--format", "json"])
    assert json.loads(via_alias.stdout) == json.loads(via_format.stdout)


def test_report_prints_the_decisions_as_json(analyzed, tmp_path):
    _, out, _ = analyzed
    args = ["report", str(out / "results.json"), "--out", str(tmp_path / "r.html")]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert {d["kind"] for d in doc["decisions"]} <= {
        "ship", "don't ship", "keep testing", "below minimum size", "no data"
    }  # fmt: skip
    assert (tmp_path / "r.html").exists()


def test_an_unknown_format_is_one_line(analyzed, tmp_path):
    data, _, _ = analyzed
    args = ["analyze", str(data), "-e", str(data / "experiment.yaml"), "--out", str(tmp_path)]
    result = runner.invoke(app, [*args, "--format", "xml"])
    assert_one_line_error(result, "--format")
    assert not list(tmp_path.iterdir())
