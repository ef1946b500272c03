"""Assignment on DuckDB, Spark (ANSI on and off) and PostgreSQL equals Python's ``assign()``.

The reference is :func:`experiment.assign` per user, with segment membership computed
here in plain Python from the same columns (not by the rule compiler). Each engine
reports its number of mismatched users, which must be 0.
"""

import datetime as dt
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiment.assignment import AssignmentSpec, assign
from experiment.config import load_experiment
from experiment.engine.assign import assign_to, assigned_users
from experiment.engine.assign_write import ParquetTarget, table_target
from segments import load_segments
from tests.fixtures.engines import spark_ansi

pytestmark = [
    pytest.mark.engines,
    # pyspark 4.0's pandas conversions use options pandas 3 deprecates; not ours to fix
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning"),
    # py4j leaves its gateway sockets to the garbage collector
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]

N_USERS = 20_000
SEGMENTS = """\
segments:
  - name: buyers
    where: "orders_90d >= 1"
  - name: mobile
    where: "device == 'mobile'"
  - name: lapsed_desktop
    where: "days_since_last_login >= 14 and device in ['desktop', 'tablet']"
"""
EXPERIMENT = """\
name: exp1
salt: exp1-salt
segments: segments.yaml
arms: {{control: 0.4, a: 0.3, b: 0.3}}
holdout: 0.05
traffic: {traffic}
allocation:
  buyers: {{arms: {{control: 0.2, a: 0.5, b: 0.3}}}}
  lapsed_desktop: {{arms: {{control: 0.5, a: 0.25, b: 0.25}}, traffic: 0.5}}
metrics:
  - {{name: conversion, kind: proportion, event: purchase}}
"""
T1 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
T2 = dt.datetime(2026, 1, 8, tzinfo=dt.UTC)


def _customers() -> pa.Table:
    gen = np.random.default_rng(16)
    odd = ["", "'", "a'b", "naïve", "用户", " space ", "x" * 200, "1", "NULL"]
    ids = odd + [f"u{i}-{gen.integers(10**12)}" for i in range(N_USERS - len(odd))]
    orders = gen.poisson(1.0, N_USERS).astype(float)
    orders[gen.random(N_USERS) < 0.05] = np.nan  # nulls are not members
    return pa.table(
        {
            "user_id": ids,
            "orders_90d": pa.array(orders, from_pandas=True),
            "days_since_last_login": gen.integers(0, 60, N_USERS),
            "device": gen.choice(["mobile", "desktop", "tablet"], N_USERS),
        }
    )


def _members(row: dict[str, Any]) -> list[str]:
    """Segment membership by hand, the rules of SEGMENTS read in Python."""
    orders, days, device = row["orders_90d"], row["days_since_last_login"], row["device"]
    return [
        name
        for name, member in (
            ("buyers", orders is not None and orders >= 1),
            ("mobile", device == "mobile"),
            ("lapsed_desktop", days >= 14 and device in ("desktop", "tablet")),
        )
        if member
    ]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("assign-engines")
    (folder / "segments.yaml").write_text(SEGMENTS)
    (folder / "experiment.yaml").write_text(EXPERIMENT.format(traffic=0.6))
    (folder / "ramped.yaml").write_text(EXPERIMENT.format(traffic=0.9))
    customers = _customers()
    segment_set = load_segments(folder / "segments.yaml")
    priority = [s.name for s in segment_set.segments]
    configs, want = {}, {}
    for key in ("experiment", "ramped"):
        config = configs[key] = load_experiment(folder / f"{key}.yaml")
        spec = AssignmentSpec.from_config(config, priority=priority)
        want[key] = {
            r["user_id"]: assign(r["user_id"], spec, segments=_members(r))
            for r in customers.to_pylist()
        }
    assert set(want["experiment"].values()) == {"control", "a", "b", "holdout", None}
    return {
        "folder": folder,
        "customers": customers,
        "segments": segment_set,
        "configs": configs,
        "want": want,
    }


def _mismatches(table, setup, key="experiment") -> int:
    users = assigned_users(table, setup["configs"][key], setup["segments"]).users
    got = dict(zip(*users.select("user_id", "arm").to_pyarrow().to_pydict().values(), strict=True))
    want = setup["want"][key]
    assert got.keys() == want.keys()
    return sum(got[u] != want[u] for u in want)


def _spark_customers(con, setup, name="customers"):
    """The customers on Spark, read from Parquet (Arrow via pandas would turn nulls into NaN).

    Each ANSI mode reads its own table: Ibis caches the assignment by expression,
    and a plan Spark analysed in one mode would be reused in the other.
    """
    path = setup["folder"] / "customers.parquet"
    if not path.exists():
        pq.write_table(setup["customers"], path)
    return con.read_parquet(path, table_name=name)


def test_duckdb_assigns_as_python(setup):
    con = ibis.duckdb.connect()
    assert _mismatches(con.create_table("customers", setup["customers"]), setup) == 0


@pytest.mark.parametrize("ansi", [True, False], ids=["ansi-on", "ansi-off"])
def test_spark_assigns_as_python(setup, spark_session, ansi):
    con = ibis.pyspark.connect(spark_session)
    customers = _spark_customers(con, setup, f"customers_ansi_{'on' if ansi else 'off'}")
    with spark_ansi(spark_session, ansi):
        assert _mismatches(customers, setup) == 0


@pytest.fixture
def pg(postgres_url):
    con = ibis.connect(postgres_url)
    yield con
    con.disconnect()


def test_postgres_assigns_as_python(setup, pg):
    con = pg
    customers = con.create_table("customers", setup["customers"], overwrite=True)
    assert _mismatches(customers, setup) == 0


def _other_rows() -> pa.Table:
    """Another experiment's rows, which every write must keep as they are."""
    return pa.table(
        {
            "user_id": ["u-x", "u-y"],
            "experiment": ["other", "other"],
            "arm": ["control", "treatment"],
            "assigned_at": pa.array([T1, T1], pa.timestamp("us", tz="UTC")),
        }
    )


def _check_rows(
    rows: list[dict[str, Any]], setup, *, first: str | None = None, now: dt.datetime | None = T1
) -> None:
    """This experiment's rows equal Python's arms; ``assigned_at`` as ``keep_earlier`` says."""
    mine = {r["user_id"]: r for r in rows if r["experiment"] == "exp1"}
    key = "ramped" if first else "experiment"
    want = {u: a for u, a in setup["want"][key].items() if a is not None}
    assert {u: r["arm"] for u, r in mine.items()} == want
    before = setup["want"]["experiment"]
    for uid, row in mine.items():
        kept = first is not None and before[uid] == row["arm"]
        if now is not None:  # None: stamped with the current time
            assert row["assigned_at"] == (T1 if kept or first is None else T2)
    assert sorted((r["user_id"], r["arm"]) for r in rows if r["experiment"] != "exp1") == [
        ("u-x", "control"),
        ("u-y", "treatment"),
    ]


def test_spark_result_is_written_as_one_parquet_file(setup, spark_session, tmp_path):
    con = ibis.pyspark.connect(spark_session)
    target = tmp_path / "assignments.parquet"
    pq.write_table(_other_rows(), target)
    config = setup["configs"]["experiment"]
    summary = assign_to(
        _spark_customers(con, setup), config, setup["segments"], ParquetTarget(path=target), now=T1
    )
    assert target.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assignments.parquet"]  # no temp left
    _check_rows(pq.read_table(target).to_pylist(), setup)
    assert summary.counts["all"]["holdout"] == sum(
        a == "holdout" for a in setup["want"]["experiment"].values()
    )


@pytest.mark.parametrize("engine", ["duckdb-file", "postgres"])
def test_to_table_replaces_this_experiment_and_keeps_the_rest(setup, engine, tmp_path, request):
    if engine == "postgres":
        con, name = request.getfixturevalue("pg"), "public.assignments"
    else:
        con, name = ibis.duckdb.connect(tmp_path / "db.duckdb"), "main.assignments"
    customers = con.create_table("customers", setup["customers"], overwrite=True)
    target = table_target(con, name)
    con.create_table("assignments", _other_rows(), database=target.database, overwrite=True)
    for key, now in (("experiment", T1), ("ramped", T2)):
        config = setup["configs"][key]
        summary = assign_to(customers, config, setup["segments"], target, now=now)
        assert summary.path == name
    _check_rows(
        con.table("assignments", database=target.database).to_pyarrow().to_pylist(),
        setup,
        first="experiment",
    )
    if engine == "duckdb-file":  # committed to the file, not only visible in this session
        con.disconnect()
        again = ibis.duckdb.connect(tmp_path / "db.duckdb")
        assert again.table("assignments").count().to_pyarrow().as_py() == 2 + sum(
            a is not None for a in setup["want"]["ramped"].values()
        )
        again.disconnect()


def test_cli_assigns_into_a_postgres_table(setup, pg, postgres_url):
    from typer.testing import CliRunner

    from experiment.cli import app

    pg.create_table("customers", setup["customers"], overwrite=True)
    pg.create_table("cli_assignments", _other_rows(), overwrite=True)
    args = ["assign", "-e", str(setup["folder"] / "experiment.yaml"), "--engine", postgres_url]
    result = CliRunner().invoke(app, [*args, "--to-table", "public.cli_assignments"])
    assert result.exit_code == 0, result.output
    _check_rows(pg.table("cli_assignments").to_pyarrow().to_pylist(), setup, now=None)
