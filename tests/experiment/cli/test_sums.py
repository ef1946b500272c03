"""`exp analyze --save-sums` / `--from-sums`: the kept sums reproduce the analysis exactly."""

import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from experiment.cli import app
from tests.fixtures.cli import assert_one_line_error
from tests.fixtures.dataset import write_dataset

runner = CliRunner()

EXPERIMENT = """\
name: exp1
salt: exp1-salt
segments: segments.yaml
window: {days: 14}
sequential: true
allocation:
  buyers: {arms: {control: 0.3, treatment: 0.7}}
metrics:
  - {name: conversion, kind: proportion, event: purchase, cuped: orders_90d}
  - {name: ctr, kind: ratio, numerator: {event: click}, denominator: {event: impression}}
  - {name: revenue_per_user, kind: mean, event: purchase, value: revenue}
"""


def _close(a, b, path="$"):
    """Every field equal; floats to 1e-12 (relative, or absolute near zero)."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (path, a, b)
    else:
        assert a == b, (path, a, b)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("sums")
    folder = write_dataset(root / "data", n_users=2000, n_events=20_000, rng=3)
    (folder / "experiment.yaml").write_text(EXPERIMENT)
    out = root / "out"
    args = ["analyze", str(folder), "-e", str(folder / "experiment.yaml"), "--out", str(out)]
    result = runner.invoke(app, [*args, "--save-sums", "--no-html"])
    assert result.exit_code == 0, result.output
    return folder, out


def test_from_sums_reproduces_results_json_field_by_field(analysed):
    folder, out = analysed
    again = out.parent / "again"
    result = _from_sums(folder, out / "sums.parquet", again, None, "--no-html")
    assert result.exit_code == 0, result.output
    before = json.loads((out / "results.json").read_text())
    after = json.loads((again / "results.json").read_text())
    assert before["timeline"], "the sequential timeline must be exercised"
    assert before["cuped_covariates"] == {"conversion": "orders_90d"}
    _close(before, after)


def test_from_sums_with_another_alpha_changes_only_the_statistics(analysed):
    folder, out = analysed
    text = EXPERIMENT + "alpha: 0.2\ncorrection: none\n"
    (folder / "loose.yaml").write_text(text)
    again = out.parent / "loose"
    result = _from_sums(folder, out / "sums.parquet", again, folder / "loose.yaml", "--no-html")
    assert result.exit_code == 0, result.output
    before = json.loads((out / "results.json").read_text())
    after = json.loads((again / "results.json").read_text())
    assert after["alpha"] == 0.2
    assert [r["mean_treatment"] for r in after["results"]] == [
        r["mean_treatment"] for r in before["results"]
    ]


def _from_sums(folder, sums, out, experiment=None, *extra):
    return runner.invoke(
        app,
        ["analyze", "--from-sums", str(sums), "-e", str(experiment or folder / "experiment.yaml"),
         "--out", str(out), *extra],
    )  # fmt: skip


def test_from_sums_not_parquet_is_one_line_and_writes_nothing(analysed, tmp_path):
    folder, _ = analysed
    bad = tmp_path / "sums.parquet"
    bad.write_text("not parquet at all")
    result = _from_sums(folder, bad, tmp_path / "o")
    assert_one_line_error(result, "not a Parquet file")
    assert str(bad) in result.stderr.replace("\n", "")
    assert not (tmp_path / "o").exists()


def test_from_sums_parquet_of_another_shape_is_one_line(analysed, tmp_path):
    folder, _ = analysed
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), other)
    result = _from_sums(folder, other, tmp_path / "o")
    assert_one_line_error(result, "not a seglift sums table")
    assert not (tmp_path / "o").exists()


def test_from_sums_missing_file_is_one_line(analysed, tmp_path):
    folder, _ = analysed
    result = _from_sums(folder, tmp_path / "nope.parquet", tmp_path / "o")
    assert_one_line_error(result, "sums file not found")


@pytest.mark.parametrize(
    ("edit", "phrase"),
    [
        (lambda t: t.replace("revenue_per_user", "revenue"), "sums hold metrics"),
        (lambda t: t.replace(", cuped: orders_90d", ""), "CUPED covariate differs"),
        (
            lambda t: t.replace(
                "allocation:\n  buyers: {arms: {control: 0.3, treatment: 0.7}}\n",
                "arms: {control: 1, treatment: 1, b: 1}\n",
            ),
            "sums hold arms",
        ),
        (lambda t: t.replace("segments: segments.yaml\n", ""), "sums hold segments"),
    ],
)
def test_from_sums_experiment_that_does_not_fit_is_one_line(analysed, tmp_path, edit, phrase):
    folder, out = analysed
    changed = folder / f"changed_{abs(hash(phrase))}.yaml"
    changed.write_text(edit(EXPERIMENT))
    result = _from_sums(folder, out / "sums.parquet", tmp_path / "o", changed)
    assert_one_line_error(result, phrase)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("both", "phrase"), [(True, "not both"), (False, "no data: give")])
def test_dataset_and_from_sums_both_or_neither_is_usage_error(analysed, tmp_path, both, phrase):
    folder, out = analysed
    args = ["analyze", "-e", str(folder / "experiment.yaml"), "--out", str(tmp_path / "o")]
    if both:
        args += [str(folder), "--from-sums", str(out / "sums.parquet")]
    result = runner.invoke(app, args)
    assert_one_line_error(result, phrase)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flag", [["--save-sums"], ["--memory-limit", "1GB"]])
def test_from_sums_with_an_option_that_reads_data_is_usage_error(analysed, tmp_path, flag):
    folder, out = analysed
    args = [
        "analyze",
        "--from-sums",
        str(out / "sums.parquet"),
        "-e",
        str(folder / "experiment.yaml"),
    ]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o"), *flag])
    assert_one_line_error(result, "--from-sums does not")
    assert not (tmp_path / "o").exists()
