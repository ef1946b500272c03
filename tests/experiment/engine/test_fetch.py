"""The pandas-free fetch (experiment.engine.fetch) against Ibis's own ``to_pyarrow``."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import ibis
import pyarrow as pa
import pytest

from experiment.engine.fetch import column_values, rows, scalar


def _table() -> ibis.Table:
    utc = dt.UTC
    data = pa.table(
        {
            "i": pa.array([1, 2, 3], pa.int64()),
            "s": ["a", None, "c"],
            "tz": pa.array(
                [
                    dt.datetime(2026, 3, 2, 10, 11, 12, 345678, tzinfo=utc),
                    None,
                    dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=utc),
                ],
                pa.timestamp("us", tz="UTC"),
            ),
            "naive": pa.array(
                [dt.datetime(2020, 1, 1, 0, 0, 1), None, dt.datetime(1900, 2, 3, 4, 5, 6)],
                pa.timestamp("us"),
            ),
            "x": [1.5, None, -2.0],
        }
    )
    return ibis.duckdb.connect().create_table("t", data)


def test_rows_equal_ibis_to_pyarrow_to_pylist() -> None:
    t = _table()
    summed = t.aggregate(n=t.i.sum(), first=t.tz.min(), last=t.naive.max(), x=t.x.mean())
    for expr in (t.order_by("i"), summed):
        assert rows(expr) == expr.to_pyarrow().to_pylist()
    got = rows(t.order_by("i"))
    assert got[0]["tz"] == dt.datetime(2026, 3, 2, 10, 11, 12, 345678, tzinfo=dt.UTC)
    assert got[0]["tz"].tzinfo == t.tz.min().to_pyarrow().as_py().tzinfo


def test_scalar_equals_ibis_to_pyarrow_as_py() -> None:
    t = _table()
    for expr in (t.tz.min(), t.tz.max(), t.naive.min(), t.i.sum(), t.s.max(), t.x.isnull().sum()):
        assert scalar(expr) == expr.to_pyarrow().as_py()
        assert type(scalar(expr)) is type(expr.to_pyarrow().as_py())


def test_an_analysis_imports_neither_pandas_nor_matplotlib(dataset_dir: Path) -> None:
    code = (
        "import sys, experiment\n"
        f"experiment.analyze({str(dataset_dir)!r}, {str(dataset_dir / 'experiment.yaml')!r})\n"
        "unused = ('pandas', 'matplotlib', 'scipy.optimize', 'ibis.backends.sql.compilers.trino')\n"
        "print(sorted(m for m in unused if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("tz", ["UTC", "Etc/UTC", "+01:00", "-05:30", "Europe/Paris", None])
@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_timestamps_become_the_datetimes_pyarrow_gives(tz: str | None, unit: str) -> None:
    ticks = {"s": 1_767_225_600, "ms": 1_767_225_600_123, "us": 1_767_225_600_123_456}[unit]
    column = pa.array([ticks, None, -ticks], pa.timestamp(unit, tz=tz))
    mine, theirs = column_values(column), column.to_pylist()
    assert mine == theirs
    assert [repr(v.tzinfo) for v in mine if v] == [repr(v.tzinfo) for v in theirs if v]
