"""``exp analyze``'s tables: whole when piped, fitted to COLUMNS in a terminal."""

import pytest
from typer.testing import CliRunner

from experiment.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def analyze_args(dataset_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("width")
    return ["analyze", str(dataset_dir), "-e", str(dataset_dir / "experiment.yaml"),
            "--out", str(out), "--no-html"]  # fmt: skip


def _segments(dataset_dir):
    import yaml

    plan = yaml.safe_load((dataset_dir / "segments.yaml").read_text())
    return [s["name"] for s in plan["segments"]]


def test_piped_output_is_never_wrapped_nor_cut(analyze_args, dataset_dir):
    result = runner.invoke(app, analyze_args, env={"COLUMNS": ""})
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout.replace("… keep testing", "")
    for header in ("users C/T", "control", "treatment", "p adj.", "verdict"):
        assert header in result.stdout
    for name in _segments(dataset_dir):
        assert f" {name} " in result.stdout


def test_columns_80_keeps_every_segment_name_whole(analyze_args, dataset_dir):
    result = runner.invoke(app, analyze_args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    table = result.stdout.split("lift vs")[1].split("decisions")[0]
    assert max(len(line) for line in table.splitlines()) <= 80
    for name in _segments(dataset_dir):
        assert f" {name} " in table, name
    assert "users C/T" not in table


def test_wide_shows_every_column_whatever_the_terminal(analyze_args):
    result = runner.invoke(app, [*analyze_args, "--wide"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    table = result.stdout.split("lift vs")[1].split("decisions")[0]
    for header in ("arm", "users C/T", "control", "treatment", "p adj.", "verdict"):
        assert header in table, header
    assert "…" not in table
