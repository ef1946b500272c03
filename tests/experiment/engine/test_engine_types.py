"""Engine tables whose column types Parquet files cannot have, read like the files."""

import duckdb
import numpy as np
import pytest

from experiment.config import load_experiment
from experiment.engine import aggregate
from experiment.engine.source import DataSource, open_source
from experiment.sums import JointSums


def _warehouse(folder, path, *changes):
    con = duckdb.connect(str(path))
    try:
        for table in ("customers", "events", "assignments"):
            source = folder / f"{table}.parquet"
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet(?)", [str(source)])
        for change in changes:
            con.execute(change)
    finally:
        con.close()
    return f"duckdb://{path}"


def _sums(url, folder):
    data = open_source(DataSource(engine=url))
    try:
        cells = aggregate(data, load_experiment(folder / "experiment.yaml"), None)
    finally:
        data.con.disconnect()
    means = {k: v.mean_y if isinstance(v, JointSums) else v.mean for k, v in cells.metrics.items()}
    return cells.units.tolist(), {k: np.ravel(m).tolist() for k, m in means.items()}


@pytest.mark.parametrize("ts_type", ["TIMESTAMP_NS", "TIMESTAMP"])
def test_nanosecond_and_naive_event_times_give_the_sums_of_zoned_ones(
    dataset_dir, tmp_path, ts_type
):
    # DuckDB would not compare TIMESTAMP_NS with the zoned window (a binder error mid-query)
    expected = _sums(_warehouse(dataset_dir, tmp_path / "tz.db"), dataset_dir)
    url = _warehouse(dataset_dir, tmp_path / "ns.db", f"ALTER TABLE events ALTER ts TYPE {ts_type}")
    units, means = _sums(url, dataset_dir)
    assert units == expected[0]
    for name, values in means.items():
        assert values == pytest.approx(expected[1][name], rel=1e-12, nan_ok=True)
