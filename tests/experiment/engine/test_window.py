"""The analysis window (experiment.engine.window): a start in the file skips the per-user scan.

With ``window.start`` given, a one-scan check replaces the per-user ``GROUP BY``
over the assignments; the window, the sums and the errors must not change.
"""

from __future__ import annotations

import datetime as dt
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


def _assert_same_sums(given: object, found: object) -> None:
    np.testing.assert_array_equal(given.units, found.units)  # type: ignore[attr-defined]
    for name, sums in found.metrics.items():  # type: ignore[attr-defined]
        for field, value in vars(sums).items():
            np.testing.assert_array_equal(getattr(given.metrics[name], field), value)  # type: ignore[attr-defined]


def test_a_start_with_a_utc_offset_is_the_same_instant_in_utc(
    dataset_dir: Path, tmp_path: Path
) -> None:
    # DuckDB knows zone names, not bare offsets: "+02:00" used to fail in the engine
    first = pc.min(pq.read_table(dataset_dir / "assignments.parquet")["assigned_at"]).as_py()
    utc = _with_start(dataset_dir, tmp_path / "utc", first.isoformat())
    shifted = first.astimezone(dt.timezone(dt.timedelta(hours=2)))
    offset = _with_start(dataset_dir, tmp_path / "offset", shifted.isoformat())
    assert "+02:00" in (offset / "experiment.yaml").read_text()
    given = compute_sums(offset, offset / "experiment.yaml")
    found = compute_sums(utc, utc / "experiment.yaml")
    assert given.window_start == found.window_start
    _assert_same_sums(given, found)


@pytest.mark.parametrize(
    ("table", "column", "tz"),
    [("events", "ts", "UTC"), ("events", "ts", None), ("assignments", "assigned_at", "UTC")],
)
def test_nanosecond_timestamps_give_the_same_sums_as_microseconds(
    dataset_dir: Path, tmp_path: Path, table: str, column: str, tz: str | None
) -> None:
    # DuckDB reads them as TIMESTAMPTZ_NS (unknown to Ibis) or TIMESTAMP_NS (not comparable)
    ns = tmp_path / "ns"
    shutil.copytree(dataset_dir, ns)
    path = ns / f"{table}.parquet"
    data = pq.read_table(path)
    i = data.schema.get_field_index(column)
    data = data.set_column(i, column, pc.cast(data[column], pa.timestamp("ns", tz=tz)))
    pq.write_table(data, path)
    _assert_same_sums(
        compute_sums(ns, ns / "experiment.yaml"),
        compute_sums(dataset_dir, dataset_dir / "experiment.yaml"),
    )


def test_an_assignment_in_the_year_9999_is_a_data_error(dataset_dir: Path, tmp_path: Path) -> None:
    late = tmp_path / "late"
    shutil.copytree(dataset_dir, late)
    path = late / "assignments.parquet"
    data = pq.read_table(path)
    i = data.schema.get_field_index("assigned_at")
    end = pa.array([dt.datetime(9999, 12, 31, tzinfo=dt.UTC)] * data.num_rows, data[i].type)
    pq.write_table(data.set_column(i, "assigned_at", end), path)
    with pytest.raises(DataError, match="ends after the year 9999"):
        compute_sums(late, late / "experiment.yaml")
