import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from experiment.analysis import analyze_cells
from experiment.analysis.quality import quality_checks
from experiment.assignment import assign_many
from experiment.config import load_experiment
from experiment.engine import aggregate
from experiment.engine.dataset import open_dataset
from experiment.errors import DataError
from experiment.sums import MeanSums, QualityCounts
from segments import load_segments
from tests.fixtures.dataset import write_dataset

NAMES = [
    "multiple_arms",
    "duplicate_customers",
    "assignments_without_customer",
    "events_before_assignment",
    "events_outside_window",
    "invalid_revenue",
]


def test_quality_checks_messages_actions_and_severities():
    dq = quality_checks(
        QualityCounts(
            multiple_arms=2, events_outside_window=5, invalid_revenue=1, revenue_values=1000
        ),
        invalid_threshold=0.01,
    )
    assert [c.name for c in dq.checks] == NAMES
    by = {c.name: c for c in dq.checks}
    assert (by["multiple_arms"].count, by["multiple_arms"].action) == (2, "excluded")
    assert by["multiple_arms"].severity == "warning"
    assert by["duplicate_customers"].severity == "info"
    assert by["assignments_without_customer"].action == "counted"
    assert by["events_outside_window"].severity == "info"
    assert "0.10% of 1,000" in by["invalid_revenue"].message
    assert all("\n" not in c.message for c in dq.checks)


def test_quality_checks_invalid_revenue_over_threshold_is_an_error():
    counts = QualityCounts(invalid_revenue=30, revenue_values=1000, value_columns=("revenue",))
    with pytest.raises(DataError, match=r"30 revenue values NaN, infinite or negative \(3.00% of"):
        quality_checks(counts, invalid_threshold=0.02)
    assert quality_checks(counts, invalid_threshold=0.05).checks[-1].count == 30


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    """The conftest dataset with planted problems of every kind."""
    folder = write_dataset(tmp_path_factory.mktemp("dirty"), n_users=2000, n_events=30_000, rng=4)
    cust = pq.read_table(folder / "customers.parquet").to_pandas()
    cust = pd.concat([cust.iloc[7:], cust.iloc[10:15]])  # u00000-06 missing; 10-14 twice
    pq.write_table(pa.Table.from_pandas(cust, preserve_index=False), folder / "customers.parquet")
    asg = pq.read_table(folder / "assignments.parquet").to_pandas()
    dup = asg[asg.experiment == "exp1"].iloc[100:109].copy()
    dup["arm"] = np.where(dup.arm == "control", "treatment", "control")
    pq.write_table(
        pa.Table.from_pandas(pd.concat([asg, dup]), preserve_index=False),
        folder / "assignments.parquet",
    )
    ev = pq.read_table(folder / "events.parquet")
    revenue = ev.column("revenue").to_numpy(zero_copy_only=False).copy()
    missing = np.isnan(revenue)
    purchases = np.flatnonzero(~missing)
    revenue[purchases[:3]] = np.nan  # a real NaN, not a null
    revenue[purchases[3:5]] = np.inf
    revenue[purchases[5:9]] = -5.0
    ev = ev.set_column(3, "revenue", pa.array(revenue, mask=missing))
    pq.write_table(ev, folder / "events.parquet")
    return folder


def _reference(folder):
    """Every count with pandas, independently of the engine."""
    cust = pd.read_parquet(folder / "customers.parquet")
    asg = pd.read_parquet(folder / "assignments.parquet")
    asg = asg[asg.experiment == "exp1"]
    arms = asg.groupby("user_id").arm.nunique()
    units = asg[asg.user_id.isin(arms[arms == 1].index)].groupby("user_id").assigned_at.min()
    start = units.min()
    end = start + pd.Timedelta(days=14)
    rows = cust.user_id.value_counts()
    raw = pq.read_table(folder / "events.parquet")
    ev = raw.to_pandas()
    raw_ts = ev.ts
    ev["is_nan"] = pc.is_nan(raw.column("revenue")).fill_null(False).to_numpy(zero_copy_only=False)
    ev = ev.merge(units.rename("asg_at"), on="user_id")
    config = load_experiment(folder / "experiment.yaml")  # only the metrics' event types count
    kinds = {m.event for metric in config.metrics for m in metric.measures}
    assert set(ev.event) - kinds  # the data has events no metric reads
    inside = (ev.ts >= start) & (ev.ts < end)
    post = ev[inside & (ev.ts >= ev.asg_at) & (ev.event == "purchase")]
    valid_users = units.index[~units.index.isin(rows[rows > 1].index)]
    post = post[post.user_id.isin(valid_users)]
    rev = post.revenue
    bad = post.is_nan | np.isinf(rev) | (rev < 0)
    # the value checks read every user's purchases in the window, assigned or not
    window = raw.to_pandas()
    window["is_nan"] = (
        pc.is_nan(raw.column("revenue")).fill_null(False).to_numpy(zero_copy_only=False)
    )
    window = window[(window.ts >= start) & (window.ts < end) & (window.event == "purchase")]
    window_bad = window.is_nan | np.isinf(window.revenue) | (window.revenue < 0)
    return {
        "multiple_arms": int((arms > 1).sum()),
        "duplicate_customers": int(units.index.isin(rows[rows > 1].index).sum()),
        "assignments_without_customer": int((~units.index.isin(rows.index)).sum()),
        "events_before_assignment": int(
            (
                inside & (ev.ts < ev.asg_at) & ev.user_id.isin(valid_users) & ev.event.isin(kinds)
            ).sum()
        ),
        "events_outside_window": int(((raw_ts < start) | (raw_ts >= end)).sum()),
        "invalid_revenue": int(window_bad.sum()),
        "revenue_values": int((window.revenue.notna() | window.is_nan).sum()),  # NaN is a value
        "valid_revenue_sum": float(rev[~bad].sum()),
        "units": len(valid_users),
    }


def test_engine_quality_counts_equal_pandas_reference(dirty):
    config = load_experiment(dirty / "experiment.yaml")
    cells = aggregate(open_dataset(dirty), config, load_segments(dirty / "segments.yaml"))
    ref = _reference(dirty)
    q = cells.quality
    assert q.multiple_arms == ref["multiple_arms"] == 9
    assert q.duplicate_customers == ref["duplicate_customers"] == 5
    assert q.assignments_without_customer == ref["assignments_without_customer"] == 7
    assert q.events_before_assignment == ref["events_before_assignment"] > 0
    assert q.events_outside_window == ref["events_outside_window"] > 0
    assert q.invalid_revenue == ref["invalid_revenue"] > 0
    assert q.revenue_values == ref["revenue_values"] > q.invalid_revenue
    assert cells.units[0].sum() == ref["units"]
    rev = cells.metrics["revenue_per_user"]
    assert isinstance(rev, MeanSums)
    total = float(np.nansum(rev.n[0] * rev.mean[0]))
    assert total == pytest.approx(ref["valid_revenue_sum"], rel=1e-9)  # invalid values excluded
    results = analyze_cells(cells, config, None)
    by = {c.name: c for c in results.data_quality.checks}
    assert [c.name for c in results.data_quality.checks][: len(NAMES)] == NAMES
    assert by["multiple_arms"].count == 9


def _with_arms(folder, arms):
    asg = pq.read_table(folder / "assignments.parquet").to_pandas()
    mine = asg.experiment == "exp1"
    asg.loc[mine, "arm"] = arms
    pq.write_table(pa.Table.from_pandas(asg, preserve_index=False), folder / "assignments.parquet")


def _analyze(folder):
    config = load_experiment(folder / "experiment.yaml")
    segment_set = load_segments(folder / "segments.yaml")
    return analyze_cells(aggregate(open_dataset(folder), config, segment_set), config, segment_set)


def test_srm_flags_a_planted_52_48_split_and_passes_a_clean_one(tmp_path):
    folder = write_dataset(tmp_path / "d", n_users=20_000, n_events=2000, rng=8)
    ids = pq.read_table(folder / "customers.parquet").column("user_id").to_pylist()
    _with_arms(folder, assign_many(ids, salt="exp1-salt", arms={"control": 1, "treatment": 1}))
    clean = _analyze(folder)
    assert not clean.srm.flag
    assert not any(s.flag for s in clean.srm.segments)
    gen = np.random.default_rng(0)
    _with_arms(folder, np.where(gen.random(len(ids)) < 0.52, "control", "treatment"))
    planted = _analyze(folder)
    assert planted.srm.flag
    assert planted.srm.p_value < 1e-5
    assert planted.srm.observed["control"] / 20_000 == pytest.approx(0.52, abs=0.01)


def test_srm_per_segment_flags_a_dropout_in_one_segment(tmp_path):
    folder = write_dataset(tmp_path / "d", n_users=20_000, n_events=2000, rng=9)
    cust = pq.read_table(folder / "customers.parquet").to_pandas()
    arms = assign_many(cust.user_id, salt="exp1-salt", arms={"control": 1, "treatment": 1})
    mobile_treated = (cust.device == "mobile").to_numpy() & (arms == "treatment")
    drop = mobile_treated & (np.random.default_rng(1).random(len(arms)) < 0.15)
    asg = pq.read_table(folder / "assignments.parquet").to_pandas()
    asg = asg[~asg.user_id.isin(cust.user_id[drop]) | (asg.experiment != "exp1")]
    asg.loc[asg.experiment == "exp1", "arm"] = arms[~drop]
    pq.write_table(pa.Table.from_pandas(asg, preserve_index=False), folder / "assignments.parquet")
    results = _analyze(folder)
    flagged = {s.segment for s in results.srm.segments if s.flag}
    assert flagged == {"mobile"}


def test_value_checks_read_every_value_column_of_one_event(tmp_path):
    # One metric summing two columns of the same event: both columns are checked.
    folder = write_dataset(tmp_path / "data", n_users=500, n_events=8000, rng=3)
    ev = pq.read_table(folder / "events.parquet")
    revenue = ev.column("revenue").to_numpy(zero_copy_only=False)
    cost = np.where(np.isnan(revenue), np.nan, -1.0)  # every purchase's cost is invalid
    ev = ev.append_column("cost", pa.array(cost, from_pandas=True))
    pq.write_table(ev, folder / "events.parquet")
    (folder / "experiment.yaml").write_text(
        "name: exp1\nsalt: exp1-salt\nwindow: {days: 14}\nmetrics:\n"
        "  - {name: margin, kind: ratio, numerator: {event: purchase, value: revenue},\n"
        "     denominator: {event: purchase, value: cost}}\n"
    )
    cells = aggregate(open_dataset(folder), load_experiment(folder / "experiment.yaml"), None)
    df = ev.to_pandas()
    asg = pd.read_parquet(folder / "assignments.parquet")
    start = asg[asg.experiment == "exp1"].assigned_at.min()
    window = df[(df.ts >= start) & (df.ts < start + pd.Timedelta(days=14))]
    purchases = window[window.event == "purchase"]
    values = int(purchases.revenue.notna().sum())
    assert values > 0
    assert cells.quality.invalid_revenue == values  # the costs, all negative
    assert cells.quality.revenue_values == 2 * values


def test_most_events_outside_the_window_is_a_warning_not_a_note():
    few = quality_checks(
        QualityCounts(events_outside_window=50, events_total=100), invalid_threshold=0.01
    )
    most = quality_checks(
        QualityCounts(events_outside_window=51, events_total=100, events_before_window=40),
        invalid_threshold=0.01,
    )
    by_few = {c.name: c for c in few.checks}
    by_most = {c.name: c for c in most.checks}
    assert by_few["events_outside_window"].severity == "info"
    assert by_most["events_outside_window"].severity == "warning"
    assert "51 of 100 events (51%)" in by_most["events_outside_window"].message
    assert "40 before it" in by_most["events_outside_window"].message
