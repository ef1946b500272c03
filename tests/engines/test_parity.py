"""The engine's queries give the same results.json on Spark and PostgreSQL as on DuckDB.

One small simulated dataset, an experiment with CUPED, a quantile cap, a ratio,
a retention (lifecycle) metric and sequential monitoring, and a segments file
with a rule, a crossed (``lifecycle`` × ``device``) and a cluster segment. It is
analysed on DuckDB (the reference: it also fits the cluster model, which the
other engines then read from the sidecar) and on each engine after loading the
same Parquet tables there by hand. Every number of results.json must agree to
1e-9: ``|a - b| <= 1e-9 * max(1, |a|)``, i.e. relative for numbers above 1 in
magnitude and absolute below; strings, booleans and nulls must be equal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from experiment import api
from experiment.engine.dataset import Dataset
from simulators import simulate
from tests.fixtures.engines import load_postgres

pytestmark = pytest.mark.engines

TOL = 1e-9
TABLES = ("customers", "events", "assignments")

SEGMENTS = """
min_size: 20
segments:
  - name: frequent
    where: "orders_90d >= 2 and device in ['mobile', 'desktop']"
  - name: recent
    where: "days_since(signup_at) <= 200"
  - cross: [lifecycle, device]
  - name: taste
    cluster: {features: [sessions_30d, orders_90d, revenue_90d], k: 3, seed: 1}
"""

EXPERIMENT = """
name: personalised-campaign
salt: personalised-campaign-2026
control: control
arms: {control: 0.5, treatment: 0.5}
segments: segments.yaml
alpha: 0.05
correction: holm
sequential: true
metrics:
  - {name: conversion, kind: proportion, event: purchase}
  - {name: ctr, kind: ratio, numerator: {event: click}, denominator: {event: impression}}
  - {name: revenue_capped, kind: mean, event: purchase, value: revenue,
     cap: {quantile: 0.99}, cuped: revenue_90d}
  - {name: d3_retention, kind: retention, event: session, day: 3}
"""


@dataclass(frozen=True)
class Reference:
    folder: Path
    results: dict[str, Any]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The dataset and its results.json on DuckDB (embedded, opened from the folder)."""
    folder = tmp_path_factory.mktemp("parity") / "data"
    simulate("ecommerce", users=2500, days=14, seed=5, out=folder)
    (folder / "segments.yaml").write_text(SEGMENTS)
    (folder / "experiment.yaml").write_text(EXPERIMENT)
    results = api.analyze(folder, folder / "experiment.yaml")
    return Reference(folder=folder, results=json.loads(results.to_json()))


def numbers(a: Any, b: Any, path: str = "$") -> Iterator[tuple[str, float, float]]:
    """Every pair of numbers of two JSON documents; anything else must be equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{path}: keys differ"
        for key in a:
            yield from numbers(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} items vs {len(b)}"
        for i, (u, v) in enumerate(zip(a, b, strict=True)):
            yield from numbers(u, v, f"{path}[{i}]")
    elif isinstance(a, int | float) and not isinstance(a, bool):
        assert isinstance(b, int | float), f"{path}: {a!r} vs {b!r}"
        assert not isinstance(b, bool), f"{path}: {a!r} vs {b!r}"
        yield path, float(a), float(b)
    else:
        assert a == b, f"{path}: {a!r} vs {b!r}"


def assert_parity(ref: dict[str, Any], got: dict[str, Any], engine: str) -> float:
    """Every number within :data:`TOL`; returns the largest absolute difference."""
    pairs = list(numbers(ref, got))
    worst = 0.0
    for path, a, b in pairs:
        assert math.isfinite(b), f"{engine} {path}: {b}"
        assert abs(a - b) <= TOL * max(1.0, abs(a)), f"{engine} {path}: {a!r} vs {b!r}"
        worst = max(worst, abs(a - b))
    assert len(pairs) > 1000  # the comparison saw the whole document
    print(f"{engine}: {len(pairs)} numbers, max abs difference {worst:.3g}")
    return worst


def test_reference_exercises_every_feature(reference):
    """The DuckDB reference has what the parity tests are meant to cover."""
    rows = reference.results["results"]
    segments = {r["segment"] for r in rows}
    assert {"all", "frequent", "recent"} <= segments
    assert any(s.startswith("lifecycle_device_") for s in segments)
    assert sum(s.startswith("taste_") for s in segments) == 3
    capped = [r for r in rows if r["metric"] == "revenue_capped"]
    assert any(r.get("cuped_variance_reduction") for r in capped)
    assert sum(r.get("seq_p_value") is not None for r in rows) > len(rows) / 2
    assert reference.results["timeline"]  # the sequential experiment's daily query ran
    assert {r["metric"] for r in rows} == {"conversion", "ctr", "revenue_capped", "d3_retention"}


def _dataset(folder: Path, con: Any, tables: dict[str, Any]) -> Dataset:
    return Dataset(path=folder, con=con, **tables)


def test_spark_results_equal_duckdb(reference, spark_session):
    import ibis

    for name in TABLES:
        frame = spark_session.read.parquet(str(reference.folder / f"{name}.parquet"))
        frame.createOrReplaceTempView(name)
    con = ibis.pyspark.connect(spark_session)
    dataset = _dataset(reference.folder, con, {n: con.table(n) for n in TABLES})
    results = api.analyze(dataset, reference.folder / "experiment.yaml")
    assert_parity(reference.results, json.loads(results.to_json()), "spark")


def test_postgres_results_equal_duckdb(reference, postgres_url):
    import ibis

    con = ibis.connect(postgres_url)
    try:
        tables = {
            n: load_postgres(con, n, pq.read_table(reference.folder / f"{n}.parquet"))
            for n in TABLES
        }
        dataset = _dataset(reference.folder, con, tables)
        results = api.analyze(dataset, reference.folder / "experiment.yaml")
        assert_parity(reference.results, json.loads(results.to_json()), "postgres")
    finally:
        con.disconnect()
