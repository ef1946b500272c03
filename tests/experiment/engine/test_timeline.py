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


REFERENCE_YAML = """\
name: exp1
segments: segments.yaml
window: {days: 10}
sequential: true
allocation: {mobile: {arms: {control: 1, treatment: 3}}}
metrics:
  - {name: conversion, kind: proportion, event: purchase}
  - {name: ctr, kind: ratio, numerator: {event: click}, denominator: {event: impression}}
  - {name: revenue_q, kind: mean, event: purchase, value: revenue, cap: {quantile: 0.9}}
  - {name: revenue_cuped, kind: mean, event: purchase, value: revenue, cuped: tenure}
  - {name: sessions, kind: mean, event: session, cap: {value: 3}}
  - {name: d2_retention, kind: retention, event: session, day: 2}
"""


@pytest.fixture(scope="module")
def edge_dataset(dataset_dir, tmp_path_factory):
    """The shared dataset plus late assignments, two-arm users, a duplicated customer,
    invalid revenue and a covariate far from 0 (1e7 + a fraction: a large offset)."""
    folder = tmp_path_factory.mktemp("timeline_edges")
    gen = np.random.default_rng(5)
    cust = pd.read_parquet(dataset_dir / "customers.parquet")
    cust["tenure"] = 1e7 + gen.random(len(cust))
    cust = pd.concat([cust, cust.iloc[[3]]])  # u00003 twice: excluded everywhere
    asg = pd.read_parquet(dataset_dir / "assignments.parquet")
    start = asg[asg.experiment == "exp1"].assigned_at.min()
    late = asg.index[(asg.experiment == "exp1") & (gen.random(len(asg)) < 0.15)]
    asg.loc[late, "assigned_at"] = start + pd.to_timedelta(gen.integers(2, 14 * 24, len(late)), "h")
    twice = asg[asg.user_id.isin(["u00007", "u00008"])].assign(arm="treatment", experiment="exp1")
    asg = pd.concat([asg, twice.assign(arm="control"), twice])
    ev = pd.read_parquet(dataset_dir / "events.parquet")
    ev.loc[ev.index[ev.event == "purchase"][:20], "revenue"] = -1.0  # invalid: not summed
    for name, frame in (("customers", cust), ("assignments", asg), ("events", ev)):
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    segments = "segments:\n  - {name: buyers, where: 'orders_90d >= 1'}\n"
    (folder / "segments.yaml").write_text(
        segments + "  - {name: mobile, where: \"device == 'mobile'\"}\n"
    )
    (folder / "experiment.yaml").write_text(REFERENCE_YAML)
    config = load_experiment(folder / "experiment.yaml")
    assert config.segments is not None
    cells = aggregate(open_dataset(folder), config, load_segments(config.segments))
    return folder, config, cells


def _reference_days(folder, config, start):
    """Per window day, per-user cumulative metric values of the analysed users (pandas)."""
    days = config.window.days
    asg = pd.read_parquet(folder / "assignments.parquet")
    asg = asg[asg.experiment == "exp1"]
    units = asg.groupby("user_id").agg(
        arm=("arm", "min"), arms=("arm", "nunique"), assigned_at=("assigned_at", "min")
    )
    cust = pd.read_parquet(folder / "customers.parquet")
    ncust = cust.groupby("user_id").size()
    cust = cust.drop_duplicates("user_id").set_index("user_id")
    units = units.join(cust).assign(ncust=ncust.reindex(units.index).fillna(0))
    units = units[(units.arms == 1) & (units.ncust <= 1)]
    day_s = pd.Timedelta(days=1)
    units["first"] = ((units.assigned_at - start) // day_s).clip(0, days - 1)
    ev = pd.read_parquet(folder / "events.parquet").merge(units.assigned_at.reset_index())
    end = start + days * day_s
    ev = ev[(ev.ts >= start) & (ev.ts < end) & (ev.ts >= ev.assigned_at)].copy()
    ev["day"] = (ev.ts - start) // day_s
    ok = ev.revenue.notna() & np.isfinite(ev.revenue) & (ev.revenue >= 0)
    ev["rev"] = np.where((ev.event == "purchase") & ok, ev.revenue, 0.0)
    since = ev.ts - ev.assigned_at
    ev["d2"] = (ev.event == "session") & (since >= 2 * day_s) & (since < 3 * day_s)
    out = []
    for d in range(days):
        e = ev[ev.day <= d]
        count = e.pivot_table(index="user_id", columns="event", values="ts", aggfunc="count")
        u = units[units["first"] <= d].copy()
        for kind in ("purchase", "click", "impression", "session"):
            u[kind] = count[kind].reindex(u.index).fillna(0) if kind in count else 0.0
        u["rev"] = e.groupby("user_id").rev.sum().reindex(u.index).fillna(0.0)
        u["d2"] = e.groupby("user_id").d2.sum().reindex(u.index).fillna(0) > 0
        out.append(u)
    return out


def _moments(g, y, x=None):
    n = len(g)
    my = g[y].mean() if n else np.nan
    res = {"n": n, "mean_y": my, "m2_y": ((g[y] - my) ** 2).sum() if n else 0.0}
    if x is not None:
        mx = g[x].mean() if n else np.nan
        res.update(
            mean_x=mx,
            m2_x=((g[x] - mx) ** 2).sum() if n else 0.0,
            c_xy=((g[x] - mx) * (g[y] - my)).sum() if n else 0.0,
        )
    return res


def test_timeline_sums_equal_pandas_per_user_cumulative_values(edge_dataset):
    folder, config, cells = edge_dataset
    start = pd.Timestamp(cells.window_start)
    per_day = _reference_days(folder, config, start)
    final = per_day[-1]
    cap_q = np.quantile(final.rev, 0.9)  # over every analysed user, as the engine's cap
    assert cells.caps["revenue_q"] == pytest.approx(cap_q, rel=1e-12)
    assert len(cells.timeline) == config.window.days
    late = per_day[-1]["first"].max()
    assert late == config.window.days - 1  # users assigned after the window count on its last day
    for d, (raw, (date, day)) in enumerate(zip(per_day, cells.timeline, strict=True)):
        assert date == (start + pd.Timedelta(days=d)).date().isoformat()
        u = raw.assign(
            conversion=(raw.purchase > 0).astype(float),
            revenue_q=np.minimum(raw.rev, cap_q),
            sessions=np.minimum(raw.session, 3.0),
            d2_retention=raw.d2.astype(float),
            cov=raw.tenure.fillna(0.0),
        )
        members = {
            "all": np.ones(len(u), bool),
            "buyers": (u.orders_90d >= 1).to_numpy(),
            "mobile": (u.device == "mobile").to_numpy(),
        }
        for si, segment in enumerate(day.segments):
            for j, arm in enumerate(day.arms):
                g = u[members[segment] & (u.arm == arm).to_numpy()]
                assert day.units[si, j] == len(g)
                checks = [
                    (day.metrics["conversion"], _moments(g, "conversion")),
                    (day.metrics["ctr"], _moments(g, "click", "impression")),
                    (day.metrics["revenue_q"], _moments(g, "revenue_q")),
                    (day.metrics["sessions"], _moments(g, "sessions")),
                    (day.metrics["d2_retention"], _moments(g, "d2_retention")),
                    (day.cuped["revenue_cuped"], _moments(g, "rev", "cov")),
                ]
                for sums, ref in checks:
                    for name, value in ref.items():
                        field = "mean" if name == "mean_y" and hasattr(sums, "mean") else name
                        field = "m2" if field == "m2_y" and hasattr(sums, "m2") else field
                        got = getattr(sums, field)[si, j]
                        assert got == pytest.approx(value, rel=1e-9, abs=1e-9, nan_ok=True), (
                            date,
                            segment,
                            arm,
                            name,
                        )


def test_numpy_walk_equals_the_engine_query(edge_dataset, monkeypatch):
    """On DuckDB the timeline cumulates the event rows in numpy; Spark and PostgreSQL run
    the engine query. Both give the same daily sums on the edge cases (late and two-arm
    users, a duplicated customer, invalid revenue, a quantile cap, CUPED, retention)."""
    import experiment.engine.timeline as timeline_module

    folder, config, local = edge_dataset
    assert "duckdb" in timeline_module.LOCAL  # the fixture ran the numpy walk
    monkeypatch.setattr(timeline_module, "LOCAL", frozenset())
    engine = aggregate(open_dataset(folder), config, load_segments(config.segments))
    assert [d for d, _ in engine.timeline] == [d for d, _ in local.timeline]
    for (_, a), (_, b) in zip(local.timeline, engine.timeline, strict=True):
        np.testing.assert_array_equal(a.units, b.units)
        for name in config.metrics:
            for field in ("n", "mean", "m2", "mean_y", "mean_x", "m2_y", "m2_x", "c_xy"):
                got = getattr(a.metrics[name.name], field, None)
                if got is not None:
                    want = getattr(b.metrics[name.name], field)
                    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
        for name, sums in a.cuped.items():
            np.testing.assert_allclose(sums.c_xy, b.cuped[name].c_xy, rtol=1e-12, atol=1e-9)
            np.testing.assert_allclose(sums.m2_x, b.cuped[name].m2_x, rtol=1e-12, atol=1e-9)


def test_numpy_walk_gives_the_same_bits_in_any_row_order_and_user_keys(edge_dataset):
    """Users are summed in the order of a hash of their id, a day's values in (user,
    value) order: the engine's row order and user numbering (which vary with its
    threads) do not change a bit of the timeline."""
    from dataclasses import replace

    from experiment.engine.timeline import final_shifts, users_built
    from experiment.engine.timeline_local import fetch, walk
    from experiment.engine.timeline_query import UID
    from experiment.engine.users import user_table

    folder, config, final = edge_dataset
    dataset = open_dataset(folder)
    users = user_table(dataset, config, load_segments(config.segments))
    users = replace(users, caps=final.caps)
    shifts = final_shifts(final, config)
    people, rows, masks = fetch(dataset, users, config, lambda: users_built(dataset))
    kw = {"masks": masks, "users": users, "config": config, "shifts": shifts}
    before = walk(people, rows, **kw)
    gen = np.random.default_rng(3)
    relabel = gen.permutation(len(people[UID]))  # new user keys, same users

    def shuffled(table):
        order = gen.permutation(len(table[UID]))
        out = {name: values[order] for name, values in table.items()}
        out[UID] = relabel[out[UID]]
        return out

    after = walk(shuffled(people), shuffled(rows), **kw)
    assert any(values.dtype == np.float64 for values in rows.values())  # values, not counts
    assert before.keys() == after.keys()
    for name in before:
        np.testing.assert_array_equal(before[name], after[name], err_msg=name)


def test_engine_query_runs_where_the_event_rows_would_not_fit(edge_dataset, monkeypatch):
    """Past DuckDB's memory bound the numpy walk would hold the event rows outside it:
    the engine query (which spills) runs instead, with the same sums."""
    import experiment.engine.timeline as timeline_module

    folder, config, local = edge_dataset

    def refuse(*args, **kwargs):
        raise AssertionError("the numpy walk ran")

    monkeypatch.setattr(timeline_module, "local_changes", refuse)
    monkeypatch.setattr(timeline_module, "ROW_BYTES", 10**15)
    engine = aggregate(open_dataset(folder), config, load_segments(config.segments))
    _, a = local.timeline[-1]
    _, b = engine.timeline[-1]
    np.testing.assert_allclose(a.metrics["sessions"].m2, b.metrics["sessions"].m2, rtol=1e-12)  # type: ignore[union-attr]
    monkeypatch.setattr(timeline_module, "ROW_BYTES", 64)
    with pytest.raises(AssertionError, match="numpy walk"):
        aggregate(open_dataset(folder), config, load_segments(config.segments))


def test_walk_runs_without_numpy_huge_pages_and_restores_the_setting(sequential, monkeypatch):
    """Numpy's huge-page advice is off while the timeline walks (its arrays are short-lived)
    and back to what it was afterwards, on and off alike: a process-wide setting."""
    from numpy._core import multiarray

    import experiment.engine.timeline_local as local

    switch = multiarray._set_madvise_hugepage  # type: ignore[attr-defined]
    seen = []
    walk = local.walk

    def spying(*args, **kwargs):
        state = switch(False)  # returns the setting in force; False is the walk's own
        seen.append(state)
        return walk(*args, **kwargs)

    monkeypatch.setattr(local, "walk", spying)
    folder, config, _, _ = sequential
    segment_set = load_segments(config.segments)
    original = switch(True)
    try:
        for setting in (True, False):
            switch(setting)
            aggregate(open_dataset(folder), config, segment_set)
            assert switch(setting) is setting  # restored
    finally:
        switch(original)
    assert seen == [False, False]
