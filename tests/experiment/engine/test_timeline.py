"""Sequential timeline: cumulative lift per window day, from one extra engine query."""

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig, load_experiment
from experiment.engine import aggregate
from experiment.engine.dataset import open_dataset
from experiment.results import AnalysisResults
from experiment.stats import sequential_interval, welch_ttest
from experiment.sums import MeanSums
from segments import load_segments


@pytest.fixture(scope="module")
def sequential(dataset_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sequential")
    for name in ("customers", "events", "assignments"):
        shutil.copy(dataset_dir / f"{name}.parquet", folder)
    shutil.copy(dataset_dir / "segments.yaml", folder)
    text = (dataset_dir / "experiment.yaml").read_text()
    retention = "  - {name: d2_retention, kind: retention, event: session, day: 2}\n"
    (folder / "experiment.yaml").write_text(text + retention + "sequential: true\n")
    config = load_experiment(folder / "experiment.yaml")
    assert config.segments is not None
    segment_set = load_segments(config.segments)
    cells = aggregate(open_dataset(folder), config, segment_set)
    return folder, config, cells, analyze_cells(cells, config, segment_set)


def test_timeline_has_every_day_segment_metric_and_arm(sequential):
    _, config, cells, results = sequential
    assert len(cells.timeline) == config.window.days
    dates = sorted({p.date for p in results.timeline})
    assert len(dates) == config.window.days
    assert dates[0] == cells.window_start.date().isoformat()
    assert len(results.timeline) == config.window.days * len(results.results)


def test_timeline_last_point_equals_final_result(sequential):
    _, _, _, results = sequential
    last = max(p.date for p in results.timeline)
    points = {(p.segment, p.metric, p.arm): p for p in results.timeline if p.date == last}
    for row in results.results:
        p = points[(row.segment, row.metric, row.arm)]
        assert p.lift_rel == pytest.approx(row.lift_rel, rel=1e-9, abs=1e-12)
        assert p.ci_low == pytest.approx(row.seq_ci_low, rel=1e-9, abs=1e-12)
        assert p.ci_high == pytest.approx(row.seq_ci_high, rel=1e-9, abs=1e-12)


def test_timeline_middle_day_equals_pandas_on_truncated_events(sequential):
    folder, config, cells, results = sequential
    day = 4
    start = pd.Timestamp(cells.window_start)
    cutoff = start + pd.Timedelta(days=day + 1)
    asg = pd.read_parquet(folder / "assignments.parquet")
    asg = asg[(asg.experiment == "exp1") & (asg.assigned_at < cutoff)]
    cust = pd.read_parquet(folder / "customers.parquet")
    ev = pd.read_parquet(folder / "events.parquet").merge(asg[["user_id", "assigned_at"]])
    ev = ev[(ev.ts >= start) & (ev.ts < cutoff) & (ev.ts >= ev.assigned_at)]
    revenue = ev[ev.event == "purchase"].groupby("user_id").revenue.sum()
    df = asg.merge(cust, on="user_id", how="left").set_index("user_id")
    df["revenue"] = revenue.reindex(df.index).fillna(0.0)
    df = df[df.orders_90d >= 1]  # the "buyers" segment
    sums = {
        arm: MeanSums(
            n=np.array([len(g)], float),
            mean=np.array([g.revenue.mean()]),
            m2=np.array([((g.revenue - g.revenue.mean()) ** 2).sum()]),
        )
        for arm, g in df.groupby("arm")
    }
    ref = welch_ttest(sums["control"], sums["treatment"], alpha=config.alpha)
    n_total = np.array([float(len(df))])
    seq = sequential_interval(ref, n_total, alpha=config.alpha, tuning=config.sequential_tuning)
    date = (start + pd.Timedelta(days=day)).date().isoformat()
    (point,) = [
        p
        for p in results.timeline
        if (p.date, p.segment, p.metric) == (date, "buyers", "revenue_per_user")
    ]
    assert point.lift_rel == pytest.approx(float(ref.lift_rel[0]), rel=1e-9)
    assert point.ci_low == pytest.approx(float(seq.seq_ci_low[0]), rel=1e-9)
    assert point.ci_high == pytest.approx(float(seq.seq_ci_high[0]), rel=1e-9)
    first = results.timeline[0]
    assert first.date < date  # earlier days differ: the timeline is cumulative, not final
    assert point.lift_rel != pytest.approx(
        next(
            r.lift_rel
            for r in results.results
            if (r.segment, r.metric) == ("buyers", "revenue_per_user")
        )
    )


def test_timeline_round_trips_through_results_json(sequential):
    _, _, _, results = sequential
    doc = AnalysisResults.from_json_dict(results.to_json_dict())
    # An unbounded early-day (Fieller) interval is nan, which never equals itself: compare reprs.
    assert repr(doc.timeline[:5]) == repr(results.timeline[:5])


def test_timeline_is_empty_without_sequential(dataset_dir):
    config = load_experiment(dataset_dir / "experiment.yaml")
    cells = aggregate(open_dataset(dataset_dir), config, None)
    assert cells.timeline == ()
    assert analyze_cells(cells, config, None).timeline == ()


def test_timeline_days_split_at_exact_window_start(tmp_path):
    start = dt.datetime(2026, 1, 5, 0, 0, 0, 500_000, tzinfo=dt.UTC)
    ts = pa.timestamp("us", tz="UTC")
    day = dt.timedelta(days=1)
    pq.write_table(pa.table({"user_id": ["a", "b", "c"]}), tmp_path / "customers.parquet")
    pq.write_table(
        pa.table(
            {
                "user_id": ["a", "b", "c"],
                "experiment": ["e"] * 3,
                "arm": ["control", "treatment", "treatment"],
                "assigned_at": pa.array([start] * 3, ts),
            }
        ),
        tmp_path / "assignments.parquet",
    )
    late = dt.timedelta(microseconds=100_000)  # 0.1 s either side of the day boundary
    pq.write_table(
        pa.table(
            {
                "user_id": ["a", "b", "c"],
                "ts": pa.array([start + day - late, start + day - late, start + day + late], ts),
                "event": ["purchase"] * 3,
                "revenue": [1.0, 1.0, 1.0],
            }
        ),
        tmp_path / "events.parquet",
    )
    config = ExperimentConfig.model_validate(
        {
            "name": "e",
            "window": {"days": 3},
            "sequential": True,
            "metrics": [{"name": "conversion", "kind": "proportion", "event": "purchase"}],
        }
    )
    cells = aggregate(open_dataset(tmp_path), config, None)
    means = [c.metrics["conversion"].mean[0].tolist() for _, c in cells.timeline]  # type: ignore[union-attr]
    assert means == [[1.0, 0.5], [1.0, 1.0], [1.0, 1.0]]
