"""benchmarks/analyze.py: up to 100 segments, whose SQL twins (the floor's) match the compiler."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import ModuleType

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from segments import load_segments
from segments.membership import membership
from tests.fixtures.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("analyze")


@pytest.fixture(scope="module")
def folder(bench: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = tmp_path_factory.mktemp("bench") / bench.folder_name(3000, 100)
    bench.build(path, 3000, 100)
    return path


def test_folder_names_keep_the_20_segment_data_where_it_was(bench):
    assert bench.folder_name(1_000_000) == "users-1000000"
    assert bench.folder_name(1_000_000, 20) == "users-1000000"
    assert bench.folder_name(1_000_000, 100) == "users-1000000-segments-100"


def test_segment_counts_are_bounded_and_start_with_the_20(bench):
    assert bench.segment_rules(20) == bench.SEGMENTS
    assert bench.segment_rules(5) == bench.SEGMENTS[:5]
    hundred = bench.segment_rules(100)
    assert len({name for name, _ in hundred}) == 100
    for count in (0, 101):
        with pytest.raises(ValueError, match="1 to 100"):
            bench.segment_rules(count)


def test_each_sql_twin_has_the_members_of_its_rule(bench, folder):
    customers = pq.read_table(folder / "customers.parquet")
    segment_set = load_segments(folder / "segments.yaml")
    start = dt.datetime.fromisoformat(bench.START.replace("+00", "+00:00"))
    compiled = membership(customers, segment_set, as_of=start)
    rules = bench.segment_rules(100)
    assert list(compiled) == [name for name, _ in rules]
    con = duckdb.connect()
    con.register("c", customers)
    flags = ", ".join(f"coalesce({bench.sql_rule(r)}, false)" for _, r in rules)
    sql_flags = np.array(con.execute(f"SELECT {flags} FROM c").fetchall(), dtype=bool)
    for k, (name, _) in enumerate(rules):
        assert np.array_equal(sql_flags[:, k], compiled[name]), name
    sizes = sql_flags.sum(axis=0)
    assert sizes.min() > 0  # every segment has members, none has everyone
    assert sizes.max() < len(customers)


def test_the_floor_sums_every_segment(bench, folder):
    got = duckdb.connect().execute(bench.baseline_group_sql(folder, 100)).fetchall()
    segments = {row[0] for row in got}
    assert segments == {"all"} | {name for name, _ in bench.segment_rules(100)}
    n = {(row[0], row[1]): row[2] for row in got}
    assert sum(n[("all", arm)] for arm in ("control", "treatment")) == 3000
