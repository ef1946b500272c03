"""The engine's queries compile for Snowflake and BigQuery (no server: ``ibis.to_sql``).

The queries of :func:`experiment.engine.aggregate` (the quantile caps, the main
(segment, arm) query and the sequential timeline) are built on a small DuckDB
dataset with a rule, a crossed and a cluster segment, CUPED, a quantile cap, a
ratio and a retention metric, then compiled as another engine would get them
(:func:`~experiment.engine.moments.plain_sums`: DuckDB's ``fsum`` is a plain SUM).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from experiment.config import load_experiment
from experiment.engine.caps import cap_quantiles
from experiment.engine.cells import cell_query, pattern_query
from experiment.engine.dataset import open_dataset
from experiment.engine.moments import plain_sums
from experiment.engine.timeline import timeline_query
from experiment.engine.users import user_table
from segments import load_segments
from simulators import simulate

SEGMENTS = """
min_size: 5
segments:
  - name: frequent
    where: "orders_90d >= 2 and device in ['mobile', 'desktop']"
  - cross: [lifecycle, device]
  - name: taste
    cluster: {features: [sessions_30d, orders_90d, revenue_90d], k: 2, seed: 1}
"""

EXPERIMENT = """
name: personalised-campaign
salt: personalised-campaign-2026
arms: {control: 0.5, treatment: 0.5}
segments: segments.yaml
sequential: true
metrics:
  - {name: conversion, kind: proportion, event: purchase}
  - {name: ctr, kind: ratio, numerator: {event: click}, denominator: {event: impression}}
  - {name: revenue_capped, kind: mean, event: purchase, value: revenue,
     cap: {quantile: 0.99}, cuped: revenue_90d}
  - {name: d3_retention, kind: retention, event: session, day: 3}
"""


@pytest.fixture(scope="module")
def queries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder: Path = tmp_path_factory.mktemp("dialects") / "data"
    simulate("ecommerce", users=400, days=7, seed=2, out=folder)
    (folder / "segments.yaml").write_text(SEGMENTS)
    (folder / "experiment.yaml").write_text(EXPERIMENT)
    config = load_experiment(folder / "experiment.yaml")
    dataset = open_dataset(folder)
    users = user_table(
        dataset, config, load_segments(folder / "segments.yaml"), quantile_caps=False
    )
    caps = cap_quantiles(users, config)
    assert caps is not None
    capped = replace(users, table=users.table.drop("user_id").cross_join(caps))
    final = replace(users, caps={"revenue_capped": 100.0})
    shifts = [(0.0, 0.0)] * len(config.metrics)
    return {
        "caps": caps,
        "cells": cell_query(capped, config),  # quantile cap: the cap query cross joined
        "cells_fixed_cap": cell_query(final, config),  # the cap as a constant
        "patterns": pattern_query(capped, config),  # the main query, per membership pattern
        "patterns_fixed_cap": pattern_query(final, config),
        "timeline": timeline_query(dataset, final, config, shifts),
    }


@pytest.mark.parametrize(
    ("dialect", "query"),
    [
        ("snowflake", "cells"),
        ("snowflake", "cells_fixed_cap"),
        ("snowflake", "timeline"),
        ("snowflake", "patterns"),
        ("snowflake", "patterns_fixed_cap"),
        ("bigquery", "patterns_fixed_cap"),
        ("bigquery", "cells_fixed_cap"),  # no exact quantile there: see the last test
        ("bigquery", "timeline"),
    ],
)
def test_engine_query_compiles(queries, query, dialect):
    import ibis

    sql = ibis.to_sql(plain_sums(queries[query]), dialect=dialect)
    assert "GROUP BY" in sql.upper()
    assert "FSUM" not in sql.upper()  # DuckDB's builtin exists nowhere else
    # the same query on DuckDB keeps its compensated sums
    assert "FSUM" in ibis.to_sql(queries[query], dialect="duckdb").upper()


def test_quantile_cap_compiles_exact_for_snowflake(queries):
    import ibis

    sql = ibis.to_sql(queries["caps"], dialect="snowflake").upper()
    assert "PERCENTILE_CONT" in sql  # exact, interpolated: not APPROX_PERCENTILE
    assert "APPROX" not in sql


def test_quantile_cap_has_no_bigquery_compilation(queries):
    """BigQuery has no exact quantile aggregate (README: use a fixed cap there)."""
    import ibis
    from ibis.common.exceptions import OperationNotDefinedError

    with pytest.raises(OperationNotDefinedError, match="Quantile"):
        ibis.to_sql(queries["caps"], dialect="bigquery")
