"""End-to-end tests of `exp assign` (typer's CliRunner, real DuckDB)."""

import datetime as dt

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from experiment.api import assign_dataset
from experiment.assignment import AssignmentSpec, assign
from experiment.cli import app
from experiment.config import load_experiment
from segments import load_segments
from tests.fixtures.dataset import write_dataset

runner = CliRunner()

RAMP = """
holdout: 0.05
traffic: {traffic}
allocation:
  buyers: {{arms: {{control: 0.2, treatment: 0.8}}}}
  mobile: {{traffic: 0.5}}
"""


@pytest.fixture
def folder(tmp_path):
    folder = write_dataset(tmp_path / "d", n_users=3000, n_events=500, rng=6)
    base = (folder / "experiment.yaml").read_text()
    (folder / "experiment.yaml").write_text(base + RAMP.format(traffic=0.5))
    (folder / "ramped.yaml").write_text(base + RAMP.format(traffic=0.9))
    return folder


def _rows(folder, experiment="exp1"):
    table = pq.read_table(folder / "assignments.parquet").to_pandas()
    return table[table.experiment == experiment].set_index("user_id")


def test_assign_writes_the_arms_python_assign_gives_and_keeps_other_experiments(folder):
    other_before = _rows(folder, "other")
    result = runner.invoke(app, ["assign", str(folder), "-e", str(folder / "experiment.yaml")])
    assert result.exit_code == 0, result.output
    assert "assignments per segment" in result.stdout
    assert "not entered" in result.stdout
    rows = _rows(folder)
    config = load_experiment(folder / "experiment.yaml")
    segment_set = load_segments(folder / "segments.yaml")
    spec = AssignmentSpec.from_config(config, priority=[s.name for s in segment_set.segments])
    customers = pq.read_table(folder / "customers.parquet").to_pandas()
    buyers = set(customers.user_id[customers.orders_90d >= 1])
    mobile = set(customers.user_id[customers.device == "mobile"])
    want = {}
    for uid in customers.user_id:
        segs = [s for s, m in (("buyers", uid in buyers), ("mobile", uid in mobile)) if m]
        arm = assign(uid, spec, segments=segs)
        if arm is not None:
            want[uid] = arm
    assert rows.arm.to_dict() == want
    assert set(rows.arm) == {"control", "treatment", "holdout"}
    assert _rows(folder, "other").equals(other_before)


def test_assign_ramp_up_keeps_assigned_at_of_users_who_keep_their_arm(folder):
    first = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    later = dt.datetime(2026, 1, 8, tzinfo=dt.UTC)
    assign_dataset(folder, folder / "experiment.yaml", now=first)
    before = _rows(folder)
    assign_dataset(folder, folder / "ramped.yaml", now=later)
    after = _rows(folder)
    assert set(before.index) < set(after.index)  # more traffic: only additions
    kept = after.loc[before.index]
    assert (kept.arm == before.arm).all()
    assert (kept.assigned_at == before.assigned_at).all()
    assert (before.assigned_at == first).any()  # users new in the first run got `now`
    new = after.drop(before.index)
    assert (new.assigned_at == later).all()


def test_assign_unknown_allocation_segment_is_one_line_and_writes_nothing(folder, tmp_path):
    before = (folder / "assignments.parquet").read_bytes()
    text = (folder / "experiment.yaml").read_text().replace("  mobile:", "  mobil:")
    bad = folder / "bad.yaml"
    bad.write_text(text)
    result = runner.invoke(app, ["assign", str(folder), "-e", str(bad)])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "unknown segment 'mobil'; segments are: buyers, mobile, lapsed_desktop" in lines[0]
    assert (folder / "assignments.parquet").read_bytes() == before
    assert not list(folder.glob(".assignments.parquet.*"))


def test_assign_missing_customers_is_one_line(tmp_path, folder):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(
        app, ["assign", str(tmp_path / "empty"), "-e", str(folder / "experiment.yaml")]
    )
    assert result.exit_code == 2
    assert "table 'customers' not found" in result.stderr


def test_assign_help_explains():
    result = runner.invoke(app, ["assign", "--help"])
    assert result.exit_code == 0
    assert "md5(salt:user_id)" in result.stdout


def test_assigned_dataset_passes_srm_per_allocation_and_ignores_holdout(folder):
    from experiment.analysis import analyze_cells
    from experiment.engine import aggregate
    from experiment.engine.dataset import open_dataset

    assign_dataset(folder, folder / "experiment.yaml", now=dt.datetime(2026, 1, 5, tzinfo=dt.UTC))
    config = load_experiment(folder / "experiment.yaml")
    segment_set = load_segments(folder / "segments.yaml")
    cells = aggregate(open_dataset(folder), config, segment_set)
    assert cells.strata == ("", "buyers", "mobile")
    results = analyze_cells(cells, config, segment_set)
    rows = _rows(folder)
    assert cells.units[0].sum() == (rows.arm != "holdout").sum()  # holdout never analysed
    assert not results.srm.flag
    assert not any(s.flag for s in results.srm.segments)
    buyers_share = rows[rows.index.isin(_buyers(folder))].arm.value_counts(normalize=True)
    assert results.srm.expected["treatment"] > 0.5  # the 80% buyers allocation mixes in
    assert buyers_share["treatment"] > 0.7


def _buyers(folder):
    customers = pq.read_table(folder / "customers.parquet").to_pandas()
    return set(customers.user_id[customers.orders_90d >= 1])


def _python_arms(folder):
    """Python's assign() per customer of the folder (entered users only)."""
    config = load_experiment(folder / "experiment.yaml")
    segment_set = load_segments(folder / "segments.yaml")
    spec = AssignmentSpec.from_config(config, priority=[s.name for s in segment_set.segments])
    customers = pq.read_table(folder / "customers.parquet").to_pandas()
    buyers = set(customers.user_id[customers.orders_90d >= 1])
    mobile = set(customers.user_id[customers.device == "mobile"])
    want = {}
    for uid in customers.user_id:
        segs = [s for s, m in (("buyers", uid in buyers), ("mobile", uid in mobile)) if m]
        if (arm := assign(uid, spec, segments=segs)) is not None:
            want[uid] = arm
    return want


@pytest.fixture
def duckdb_file(folder, tmp_path):
    import ibis

    path = tmp_path / "engine.duckdb"
    con = ibis.duckdb.connect(path)
    con.create_table("customers", pq.read_table(folder / "customers.parquet"))
    con.create_table("assignments", pq.read_table(folder / "assignments.parquet"))
    con.disconnect()
    return path


def _table(path, name="assignments"):
    import ibis

    con = ibis.duckdb.connect(path)
    try:
        return con.table(name).to_pyarrow().to_pandas()
    finally:
        con.disconnect()


def test_assign_engine_to_table_writes_python_arms_into_the_engine(folder, duckdb_file):
    args = ["assign", "-e", str(folder / "experiment.yaml"), "--engine", f"duckdb://{duckdb_file}"]
    result = runner.invoke(app, [*args, "--to-table", "main.assignments"])
    assert result.exit_code == 0, result.output
    assert "main.assignments" in result.stdout
    rows = _table(duckdb_file)
    mine = rows[rows.experiment == "exp1"].set_index("user_id")
    assert mine.arm.to_dict() == _python_arms(folder)
    assert (rows.experiment == "other").sum() == 50


def test_assign_engine_out_writes_one_parquet_file(folder, duckdb_file, tmp_path):
    out = tmp_path / "out" / "assignments.parquet"
    args = ["assign", "-e", str(folder / "experiment.yaml"), "--engine", f"duckdb://{duckdb_file}"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out).to_pandas().set_index("user_id")
    assert rows.arm.to_dict() == _python_arms(folder)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--to-table", "x; drop table customers"],
            "--to-table 'x; drop table customers': not a table name",
        ),
        (["--to-table", "a.b.c.d"], "not a table name"),
        (["--to-table", "1x"], "not a table name"),
        ([], "one of --to-table NAME or --out FILE.parquet"),
    ],
)
def test_assign_engine_bad_options_are_one_line_and_write_nothing(
    folder, duckdb_file, extra, message
):
    before = _table(duckdb_file)
    args = ["assign", "-e", str(folder / "experiment.yaml"), "--engine", f"duckdb://{duckdb_file}"]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert message in lines[0]
    assert _table(duckdb_file).equals(before)
    assert _table(duckdb_file, "customers").shape[0] == 3000


def test_assign_dataset_and_engine_together_is_a_usage_error(folder, duckdb_file):
    args = ["assign", str(folder), "-e", str(folder / "experiment.yaml")]
    result = runner.invoke(app, [*args, "--engine", f"duckdb://{duckdb_file}"])
    assert result.exit_code == 2
    assert "DATASET and --engine: give one of them, not both" in result.stderr
    result = runner.invoke(app, [*args, "--to-table", "t"])
    assert result.exit_code == 2
    assert "--to-table and --out need --engine" in result.stderr
