from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from experiment.config import load_experiment
from experiment.engine import aggregate
from experiment.engine.dataset import open_dataset
from experiment.errors import ConfigError, DataError
from experiment.sums import JointSums, MeanSums
from segments import load_segments
from tests.fixtures.dataset import per_user_reference, write_dataset


@pytest.fixture(scope="module")
def cells(dataset_dir):
    config = load_experiment(dataset_dir / "experiment.yaml")
    assert config.segments is not None
    return aggregate(open_dataset(dataset_dir), config, load_segments(config.segments))


def test_aggregate_cells_equal_pandas_reference(dataset_dir, cells):
    df = per_user_reference(dataset_dir)
    assert cells.segments == ("all", "buyers", "mobile", "lapsed_desktop")
    assert cells.arms == ("control", "treatment")
    for si, seg in enumerate(cells.segments):
        for j, arm in enumerate(cells.arms):
            d = df[df[f"seg_{seg}"] & (df.arm == arm)]
            assert cells.units[si, j] == len(d)
            conv = cells.metrics["conversion"]
            assert isinstance(conv, MeanSums)
            assert conv.mean[si, j] == pytest.approx(d.conversion.mean(), rel=1e-12)
            assert conv.var[si, j] == pytest.approx(d.conversion.var(ddof=1), rel=1e-9)
            rev = cells.metrics["revenue_per_user"]
            assert rev.mean[si, j] == pytest.approx(d.revenue.mean(), rel=1e-12)
            assert rev.var[si, j] == pytest.approx(d.revenue.var(ddof=1), rel=1e-9)
            ctr = cells.metrics["ctr"]
            assert isinstance(ctr, JointSums)
            assert ctr.mean_y[si, j] == pytest.approx(d.click.mean(), rel=1e-12)
            assert ctr.mean_x[si, j] == pytest.approx(d.impression.mean(), rel=1e-12)
            assert ctr.cov[si, j] == pytest.approx(np.cov(d.click, d.impression)[0, 1], rel=1e-9)


def test_aggregate_only_counts_post_exposure_events_in_window(dataset_dir, cells):
    ev = pd.read_parquet(dataset_dir / "events.parquet")
    n_clicks_raw = (ev.event == "click").sum()
    ctr = cells.metrics["ctr"]
    clicks_counted = float((ctr.n[0] * ctr.mean_y[0]).sum())
    assert 0 < clicks_counted < n_clicks_raw  # events before assignment / after the window dropped


def test_aggregate_large_offset_variance_is_accurate(tmp_path):
    """Revenue near 1e9 with unit spread: centred moments must not cancel."""
    folder = write_dataset(tmp_path / "d", n_users=400, n_events=4000, rng=5)
    ev = pa.parquet.read_table(folder / "events.parquet").to_pandas()
    ev["event"] = "purchase"
    ev.loc[ev.index % 20 == 0, "event"] = "click"  # every metric's event occurs
    ev.loc[ev.index % 20 == 1, "event"] = "impression"
    ev["revenue"] = 1e9 + np.random.default_rng(1).normal(0, 1, len(ev))
    pa.parquet.write_table(
        pa.Table.from_pandas(ev, preserve_index=False), folder / "events.parquet"
    )
    config = load_experiment(folder / "experiment.yaml")
    cells = aggregate(open_dataset(folder), config, None)
    df = per_user_reference(folder)
    rev = cells.metrics["revenue_per_user"]
    assert isinstance(rev, MeanSums)
    d = df[df.arm == "control"]
    assert rev.var[0, 0] == pytest.approx(d.revenue.var(ddof=1), rel=1e-6)


def test_aggregate_excludes_users_seen_in_two_arms(tmp_path):
    folder = write_dataset(tmp_path / "d", n_users=500, n_events=2000, rng=2)
    asg = pa.parquet.read_table(folder / "assignments.parquet").to_pandas()
    dup = asg[asg.experiment == "exp1"].head(10).copy()
    dup["arm"] = np.where(dup.arm == "control", "treatment", "control")
    asg = pd.concat([asg, dup])
    pa.parquet.write_table(
        pa.Table.from_pandas(asg, preserve_index=False), folder / "assignments.parquet"
    )
    cells = aggregate(open_dataset(folder), load_experiment(folder / "experiment.yaml"), None)
    assert cells.units[0].sum() == 490


def test_aggregate_unknown_experiment_names_present_ones(dataset_dir, tmp_path):
    text = (dataset_dir / "experiment.yaml").read_text().replace("name: exp1", "name: nope")
    (tmp_path / "e.yaml").write_text(text)
    config = load_experiment(tmp_path / "e.yaml")
    with pytest.raises(
        DataError, match="no assignments for experiment 'nope'; experiments present: exp1, other"
    ):
        aggregate(open_dataset(dataset_dir), config, None)


def test_aggregate_metric_on_missing_column_is_config_error(dataset_dir, tmp_path):
    text = (dataset_dir / "experiment.yaml").read_text().replace("value: revenue", "value: amount")
    (tmp_path / "e.yaml").write_text(text)
    with pytest.raises(
        ConfigError, match="metric 'revenue_per_user': events table has no column 'amount'"
    ):
        aggregate(open_dataset(dataset_dir), load_experiment(tmp_path / "e.yaml"), None)


def test_open_dataset_missing_table_and_column(tmp_path, dataset_dir):
    with pytest.raises(DataError, match="dataset folder not found"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "d").mkdir()
    with pytest.raises(DataError, match="table 'customers' not found"):
        open_dataset(tmp_path / "d")
    folder = tmp_path / "d2"
    folder.mkdir()
    for name in ("customers", "assignments"):
        (folder / f"{name}.parquet").write_bytes((dataset_dir / f"{name}.parquet").read_bytes())
    pa.parquet.write_table(pa.table({"user_id": ["a"], "when": [1]}), folder / "events.parquet")
    with pytest.raises(DataError, match="table 'events' lacks column\\(s\\) ts, event"):
        open_dataset(folder)


def test_open_dataset_rejects_non_parquet(tmp_path, dataset_dir):
    folder = tmp_path / "d"
    folder.mkdir()
    for name in ("customers", "assignments", "events"):
        (folder / f"{name}.parquet").write_bytes((dataset_dir / f"{name}.parquet").read_bytes())
    (folder / "events.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        open_dataset(folder)


def test_ibis_duckdb_create_table_round_trip():
    """DESIGN.md: Ibis 12 + sqlglot 30 broke create_table on DuckDB; catch resolver drift."""
    import ibis

    con = ibis.duckdb.connect()
    table = pa.table({"user_id": ["a", "b"], "x": [1.5, 2.5]})
    con.create_table("t", table)
    assert con.table("t").to_pyarrow().equals(table)
    assert con.table("t").user_id.hexdigest("md5").to_pyarrow().to_pylist()[0] == (
        "0cc175b9c0f1b6a831c399e269772661"
    )


def test_open_dataset_spills_to_the_system_temp_folder(dataset_dir):
    # DuckDB's default would be ./.tmp, inside whatever folder the user runs exp from
    import tempfile

    con = open_dataset(dataset_dir).con
    (spill,) = con.raw_sql("SELECT current_setting('temp_directory')").fetchone()
    assert Path(spill).parent == Path(tempfile.gettempdir())


def test_assignment_days_is_the_span_of_assigned_at(dataset_dir, cells):
    # Reference: pyarrow on the assignments file (every exp1 user is analysed once).
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(dataset_dir / "assignments.parquet")
    at = table.filter(pc.equal(table.column("experiment"), "exp1")).column("assigned_at")
    span = (pc.max(at).as_py() - pc.min(at).as_py()).total_seconds() / 86_400
    assert span > 1.0  # the fixture spreads assignments over two days
    assert cells.assignment_days == pytest.approx(span, rel=1e-12)
