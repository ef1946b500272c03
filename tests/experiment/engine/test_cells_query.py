"""The one-query aggregate equals the per-segment FILTER aggregates it replaced."""

from __future__ import annotations

import shutil

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiment.analysis.bayes import threaded_beta_binomial
from experiment.config import load_experiment
from experiment.engine import aggregate, cell_aggs, to_cells
from experiment.engine.cells import cell_query, pattern_query
from experiment.engine.dataset import open_dataset
from experiment.engine.fetch import rows
from experiment.engine.users import STRATUM, user_table
from experiment.stats import bayes_beta_binomial
from experiment.sums import MeanSums
from segments import load_segments
from segments.membership import FP_HASHES

EXPERIMENT = """\
name: exp1
salt: exp1-salt
segments: segments.yaml
window: {days: 14}
allocation:
  mobile: {arms: {control: 0.3, treatment: 0.7}}
metrics:
  - {name: conversion, kind: proportion, event: purchase}
  - {name: ctr, kind: ratio, numerator: {event: click}, denominator: {event: impression}}
  - name: revenue
    kind: mean
    event: purchase
    value: revenue
    cap: {quantile: 0.95}
    cuped: orders_90d
  - {name: sessions, kind: mean, event: session, cap: {value: 3}}
"""


@pytest.fixture(scope="module")
def folder(dataset_dir, tmp_path_factory):
    """The shared dataset plus duplicate customer rows, a user in two arms, and strata."""
    out = tmp_path_factory.mktemp("query")
    for name in ("events.parquet", "segments.yaml"):
        shutil.copy(dataset_dir / name, out / name)
    customers = pq.read_table(dataset_dir / "customers.parquet")
    pq.write_table(pa.concat_tables([customers, customers.slice(0, 7)]), out / "customers.parquet")
    assignments = pq.read_table(dataset_dir / "assignments.parquet")
    twice = assignments.slice(100, 3)  # exp1 rows: the same users in the other arm too
    other = ["control" if a == "treatment" else "treatment" for a in twice["arm"].to_pylist()]
    flipped = twice.set_column(2, "arm", pa.array(other))
    pq.write_table(pa.concat_tables([assignments, flipped]), out / "assignments.parquet")
    (out / "experiment.yaml").write_text(EXPERIMENT)
    return out


def _reference(folder):
    """The previous main query: one row per arm, a FILTER-ed aggregate per segment."""
    config = load_experiment(folder / "experiment.yaml")
    assert config.segments is not None
    users = user_table(open_dataset(folder), config, load_segments(config.segments))
    t = users.table
    aggs = cell_aggs(users, config)
    for si in range(len(users.segments)):
        aggs[f"stratum_{si}"] = t.count(where=users.in_segment(si) & (t[STRATUM] == 1))
    table = t.group_by("arm").aggregate(**aggs).to_pyarrow()
    cells = to_cells(table, users.segments, config, users.start, users.end)
    rows = table.column("arm").to_pylist()  # GROUP BY gives no row order: map to the arms
    order = [rows.index(arm) for arm in config.arms]
    strata = np.array(
        [table.column(f"stratum_{si}").to_pylist() for si in range(len(users.segments))]
    )[:, order]
    return config, users, cells, strata


def test_aggregate_equals_filter_aggregates_with_caps_cuped_strata(folder):
    config, users, ref, strata = _reference(folder)
    assert config.segments is not None
    cells = aggregate(open_dataset(folder), config, load_segments(config.segments))
    assert cells.segments == ref.segments
    assert cells.caps == pytest.approx(users.caps, rel=1e-15)
    assert set(cells.caps) == {"revenue", "sessions"}
    np.testing.assert_array_equal(cells.units, ref.units)
    for name, sums in ref.metrics.items():
        for field, want in vars(sums).items():
            got = getattr(cells.metrics[name], field)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name + field)
    for field, want in vars(ref.cuped["revenue"]).items():
        np.testing.assert_allclose(getattr(cells.cuped["revenue"], field), want, rtol=1e-12)
    assert cells.strata == ("", "mobile")
    assert cells.strata_units is not None
    np.testing.assert_array_equal(cells.strata_units[:, 1, :], strata)
    np.testing.assert_array_equal(cells.strata_units.sum(axis=1), cells.units)


def test_aggregate_quality_counts_duplicates_and_two_arms(folder):
    config = load_experiment(folder / "experiment.yaml")
    assert config.segments is not None
    cells = aggregate(open_dataset(folder), config, load_segments(config.segments))
    assert cells.quality.multiple_arms == 3
    assert cells.quality.duplicate_customers == 7
    customers = pq.read_table(folder / "customers.parquet").column("user_id").to_pylist()
    dup = set(customers[:7])
    assigned = pq.read_table(folder / "assignments.parquet").to_pandas()
    assigned = assigned[assigned.experiment == "exp1"]
    one_arm = assigned.groupby("user_id").arm.nunique() == 1
    assert cells.units[0].sum() == one_arm.sum() - len(dup & set(one_arm[one_arm].index))


def test_aggregate_keeps_a_memory_limit_the_caller_set(folder):
    config = load_experiment(folder / "experiment.yaml")
    assert config.segments is not None
    dataset = open_dataset(folder)
    dataset.con.raw_sql("SET memory_limit = '500MB'").fetchall()
    aggregate(dataset, config, load_segments(config.segments))
    limit = dataset.con.raw_sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
    order = dataset.con.raw_sql("SELECT current_setting('preserve_insertion_order')").fetchall()
    assert "476" in str(limit) or "500" in str(limit)  # 500 MB, shown as 476.8 MiB
    assert order[0][0] is False


def test_threaded_beta_binomial_equals_one_call():
    rng = np.random.default_rng(5)
    n = np.round(10 ** rng.uniform(0, 6, (1500, 2)))
    mean = np.round(rng.uniform(0, 0.3, (1500, 1)) * n) / n
    control = MeanSums(n=n[:, 0], mean=mean[:, 0], m2=np.zeros(1500))
    treatment = MeanSums(n=n[:, 1], mean=mean[:, 1], m2=np.zeros(1500))
    one = bayes_beta_binomial(control, treatment)
    sliced = threaded_beta_binomial(control, treatment)
    for field in ("chance_to_win", "expected_loss", "expected_loss_control"):
        np.testing.assert_allclose(getattr(sliced, field), getattr(one, field), rtol=1e-13)
    assert sliced.reason.tolist() == one.reason.tolist()


def test_ibis_unnest_of_nullable_array_keeps_nulls_as_rows():
    """The engine filters nulls after unnesting: the backend must keep them as rows."""
    t = ibis.memtable(pa.table({"f": [True, False]}))
    arr = ibis.array([ibis.literal(-1), ibis.ifelse(t.f, 1, None)])
    out = t.select(si=arr.unnest()).to_pyarrow().column("si").to_pylist()
    assert sorted(out, key=lambda v: (v is None, v)) == [-1, -1, 1, None]


def test_user_table_without_counts_keeps_surplus_and_the_same_table(folder):
    """``counts=False`` (refine, target) skips the reported counts, not the surplus rows;
    nor the fingerprint hashes the main query sums for segment twins."""
    config = load_experiment(folder / "experiment.yaml")
    assert config.segments is not None
    dataset, segment_set = open_dataset(folder), load_segments(config.segments)
    full = user_table(dataset, config, segment_set)
    lean = user_table(dataset, config, segment_set, counts=False)
    assert lean.surplus == full.surplus == 7
    assert full.events > 0
    assert (lean.events, lean.outside, lean.values) == (0, 0, 0)
    assert lean.segment_warnings == ()
    got = lean.table.to_pyarrow().sort_by("user_id")
    want = full.table.to_pyarrow().sort_by("user_id")
    assert set(want.column_names) - set(got.column_names) == set(FP_HASHES)
    assert got.equals(want.drop_columns(list(FP_HASHES)))


def test_pattern_query_equals_the_per_user_query(folder):
    """Summing users per membership pattern first changes no count and no sum beyond 1e-12."""
    config = load_experiment(folder / "experiment.yaml")
    assert config.segments is not None
    users = user_table(open_dataset(folder), config, load_segments(config.segments))
    key = ("__si__", "arm")
    per_user = {tuple(r[k] for k in key): r for r in rows(cell_query(users, config))}
    by_pattern = {tuple(r[k] for k in key): r for r in rows(pattern_query(users, config))}
    assert set(by_pattern) == set(per_user)
    assert {si for si, _ in by_pattern} == set(range(-1, len(users.segments)))
    shared = set(next(iter(by_pattern.values()))) & set(next(iter(per_user.values())))
    assert len(shared) > 30  # counts, sums, strata, quality, caps, assignment span
    for cell, row in per_user.items():
        for name in shared:
            got, want = by_pattern[cell][name], row[name]
            if isinstance(want, float):
                assert got == pytest.approx(want, rel=1e-12, abs=1e-9), (cell, name)
            else:
                assert got == want, (cell, name)
