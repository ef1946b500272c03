"""The Python API: a light import, the same results as the CLI, sums kept exactly."""

import subprocess
import sys

import numpy as np
import pytest

import experiment
from experiment.errors import DataError
from experiment.results.sums import read_sums, sums_table, write_sums
from tests.fixtures.dataset import write_dataset


def test_import_experiment_loads_no_heavy_library():
    code = (
        "import sys, experiment\n"
        "heavy = [m for m in ('ibis', 'duckdb', 'pandas', 'scipy', 'matplotlib', 'pyarrow',"
        " 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = write_dataset(tmp_path_factory.mktemp("api") / "d", n_users=1500, n_events=12_000)
    text = (folder / "experiment.yaml").read_text()
    (folder / "experiment.yaml").write_text(text + "sequential: true\n")
    return folder


def test_sums_through_a_file_give_exactly_the_same_results(folder, tmp_path):
    # the engine's parallel sums differ between runs in the last bits: compare one run's sums
    exp = folder / "experiment.yaml"
    cells = experiment.compute_sums(folder, exp)
    path = write_sums(cells, tmp_path / "sums.parquet")
    kept = read_sums(path)
    assert kept.segments == cells.segments
    assert kept.arms == cells.arms
    assert len(kept.timeline) == len(cells.timeline) > 0
    np.testing.assert_array_equal(kept.units, cells.units)
    assert kept.quality == cells.quality
    direct = experiment.analyze_sums(cells, exp)
    assert experiment.analyze_sums(path, exp).to_json() == direct.to_json()
    assert direct.timeline


def test_sums_table_is_one_long_table(folder):
    cells = experiment.compute_sums(folder, folder / "experiment.yaml")
    table = sums_table(cells)
    final = [d is None for d in table.column("day").to_pylist()]
    assert sum(final) == len(cells.segments) * len(cells.arms) * len(cells.metrics)
    assert table.column_names[:4] == ["day", "segment", "arm", "metric"]


def test_results_objects_display_compactly(folder):
    results = experiment.analyze(folder, folder / "experiment.yaml")
    text = repr(results)
    assert text.startswith("<AnalysisResults 'exp1'")
    assert text.count("\n") <= 3
    assert "ResultRow(" not in text
    frame = results.to_pandas()
    assert {"decision", "decision_reason", "verdict"} <= set(frame.columns)
    assert set(frame.decision) <= {"ship", "don't ship", "keep testing", "below minimum size",
                                   "no data"}  # fmt: skip
    plan = experiment.plan_power(folder, folder / "experiment.yaml")
    assert repr(plan).startswith("<PowerPlan 'exp1'")
    assert len(plan.to_pandas()) == len(plan.rows)
    assert "<table" in plan._repr_html_()


def test_validate_segments_report_has_the_display(folder):
    report = experiment.validate_segments(folder / "segments.yaml", folder)
    assert repr(report).startswith("<ValidationReport")
    assert list(report.to_pandas().segment) == [s.name for s in report.segments]


def test_analyze_sums_bad_path_is_one_line_data_error(tmp_path):
    with pytest.raises(DataError, match="sums file not found"):
        experiment.analyze_sums(tmp_path / "none.parquet", tmp_path / "exp.yaml")
