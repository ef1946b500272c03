"""The analysis window (experiment.engine.window): a start in the file skips the per-user scan.

With ``window.start`` given, a one-scan check replaces the per-user ``GROUP BY``
over the assignments; the window, the sums and the errors must not change.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from experiment.api import compute_sums
from experiment.errors import DataError


def _with_start(src: Path, dst: Path, start: str) -> Path:
    shutil.copytree(src, dst)
    yaml = dst / "experiment.yaml"
    text = yaml.read_text().replace("window: {days: 14}", f"window: {{start: '{start}', days: 14}}")
    assert "start:" in text
    yaml.write_text(text)
    return dst


def _first_assignment(folder: Path) -> str:
    table = pq.read_table(folder / "assignments.parquet")
    at = table.filter(pc.equal(table.column("experiment"), "exp1")).column("assigned_at")
    first = pc.min(at).as_py()
    return str(first.isoformat())


def test_a_start_in_the_file_gives_the_same_sums_as_the_first_assignment(
    dataset_dir: Path, tmp_path: Path
) -> None:
    fixed = _with_start(dataset_dir, tmp_path / "d", _first_assignment(dataset_dir))
    found = compute_sums(dataset_dir, dataset_dir / "experiment.yaml")
    given = compute_sums(fixed, fixed / "experiment.yaml")
    assert given.window_start == found.window_start
    assert given.window_end == found.window_end
    np.testing.assert_array_equal(given.units, found.units)
    for name, sums in found.metrics.items():
        for field, value in vars(sums).items():
            np.testing.assert_array_equal(getattr(given.metrics[name], field), value)


@pytest.mark.parametrize(
    ("column", "phrase"), [("assigned_at", "null assigned_at"), ("user_id", "null user_id")]
)
def test_null_ids_or_times_are_refused_with_a_start_in_the_file(
    dataset_dir: Path, tmp_path: Path, column: str, phrase: str
) -> None:
    fixed = _with_start(dataset_dir, tmp_path / "d", "2026-03-02T00:00:00Z")
    path = fixed / "assignments.parquet"
    table = pq.read_table(path)
    i = table.schema.get_field_index(column)
    values = table.column(column).to_pylist()
    nulls = pa.array([None] * 100 + values[100:], table.schema.field(column).type)
    pq.write_table(table.set_column(i, table.schema.field(column), nulls), path)
    with pytest.raises(DataError, match=phrase):
        compute_sums(fixed, fixed / "experiment.yaml")
