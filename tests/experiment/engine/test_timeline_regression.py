"""Sequential timeline with ``cuped: [a, b]``: every day's regression-adjusted lift.

The last day must equal the final analysis (itself tested against statsmodels in
test_regression_engine.py); an intermediate day must equal statsmodels' OLS HC2
on the users' cumulative values up to that day, recomputed with pandas from the
raw events.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from experiment.analysis.compare import compare
from experiment.analysis.lift import analyze_cells
from experiment.config import load_experiment
from experiment.engine import aggregate
from experiment.engine.dataset import open_dataset
from segments import load_segments
from tests.fixtures.regression import REGRESSION_EXPERIMENT

# the regression engine tests' experiment, with the daily timeline
EXPERIMENT = REGRESSION_EXPERIMENT.replace(
    "window: {days: 14}\n", "window: {days: 14}\nsequential: true\n"
)
assert "sequential: true" in EXPERIMENT
LISTED = ("conversion", "revenue", "ctr")


@pytest.fixture(scope="module")
def analysed(dataset_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("timeline_regression")
    for name in ("events.parquet", "segments.yaml", "customers.parquet", "assignments.parquet"):
        shutil.copy(dataset_dir / name, folder / name)
    (folder / "experiment.yaml").write_text(EXPERIMENT)
    config = load_experiment(folder / "experiment.yaml")
    assert config.segments is not None
    segment_set = load_segments(config.segments)
    cells = aggregate(open_dataset(folder), config, segment_set)
    return folder, config, cells, analyze_cells(cells, config, segment_set)


def _reference(folder, days: int) -> pd.DataFrame:
    """Per-user values up to window day ``days - 1``'s end (users assigned by then), in pandas."""
    cust = pd.read_parquet(folder / "customers.parquet")
    asg = pd.read_parquet(folder / "assignments.parquet")
    asg = asg[asg.experiment == "exp1"]
    start = asg.assigned_at.min()
    cutoff = start + pd.Timedelta(days=days)
    asg = asg[asg.assigned_at < cutoff]
    ev = pd.read_parquet(folder / "events.parquet").merge(asg[["user_id", "assigned_at"]])
    ev = ev[(ev.ts >= start) & (ev.ts < cutoff) & (ev.ts >= ev.assigned_at)]
    counts = ev.pivot_table(index="user_id", columns="event", values="ts", aggfunc="count")
    per_user = counts.reindex(columns=["purchase", "click", "impression"]).fillna(0)
    per_user["revenue"] = ev[ev.event == "purchase"].groupby("user_id").revenue.sum()
    df: pd.DataFrame = asg.merge(cust, on="user_id", how="left").set_index("user_id")
    df = df.join(per_user).fillna({"purchase": 0, "click": 0, "impression": 0, "revenue": 0})
    df["conversion"] = (df.purchase > 0).astype(float)
    df["seg_all"] = True
    df["seg_buyers"] = (df.orders_90d >= 1).fillna(False)
    return df


def _statsmodels(df: pd.DataFrame, metric: str) -> tuple[float, float]:
    """Treatment coefficient and HC2 SE of ``y ~ t + (x - x̄)`` (``ψ`` for the ratio)."""
    sm = pytest.importorskip("statsmodels.api")
    if metric == "ctr":  # the delta method's linearisation, R per arm
        y = np.empty(len(df))
        for arm in ("control", "treatment"):
            at = (df.arm == arm).to_numpy()
            num, den = df.click.to_numpy()[at], df.impression.to_numpy()[at]
            ratio = num.sum() / den.sum()
            y[at] = ratio + (num - ratio * den) / den.mean()
    else:
        y = df[metric].to_numpy()
    t = (df.arm == "treatment").astype(float).to_numpy()
    device = pd.get_dummies(df.device, drop_first=True, dtype=float).to_numpy()
    x = np.column_stack(
        [df.orders_90d.fillna(0).to_numpy(), df.days_since_last_login.to_numpy(), device]
    )
    fit = sm.OLS(y, sm.add_constant(np.column_stack([t, x - x.mean(axis=0)]))).fit(cov_type="HC2")
    return float(fit.params[1]), float(fit.bse[1])


def test_every_day_carries_the_regression_sums(analysed):
    _, config, cells, results = analysed
    for _, day in cells.timeline:
        assert set(day.regression) == set(LISTED)
        assert day.regression_names == cells.regression_names
    metrics = {p.metric for p in results.timeline}
    assert metrics == {m.name for m in config.metrics}


@pytest.mark.parametrize("metric", LISTED)
def test_last_day_equals_the_final_regression_adjustment(analysed, metric):
    _, config, cells, _ = analysed
    _, last = cells.timeline[-1]
    final, day = cells.regression[metric], last.regression[metric]
    for field in ("n", "mean_y", "m2_y", "mean_x", "c_xx", "c_xy"):
        want, got = getattr(final, field), getattr(day, field)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.nanmax(np.abs(want)))
    want = compare(cells, metric, 0, 1, config.alpha)
    got = compare(last, metric, 0, 1, config.alpha)
    np.testing.assert_allclose(got.lift_abs, want.lift_abs, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.se_abs, want.se_abs, rtol=1e-9, atol=1e-12)


def test_last_point_equals_the_final_rows(analysed):
    _, _, _, results = analysed
    last = max(p.date for p in results.timeline)
    points = {(p.segment, p.metric, p.arm): p for p in results.timeline if p.date == last}
    for row in results.results:
        if row.metric in LISTED:
            p = points[(row.segment, row.metric, row.arm)]
            assert p.lift_rel == pytest.approx(row.lift_rel, rel=1e-9, abs=1e-12)
            assert p.ci_low == pytest.approx(row.seq_ci_low, rel=1e-9, abs=1e-12)
            assert p.ci_high == pytest.approx(row.seq_ci_high, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("metric", LISTED)
@pytest.mark.parametrize("segment", ["all", "buyers"])
def test_middle_day_equals_statsmodels_on_truncated_events(analysed, metric, segment):
    folder, config, cells, _ = analysed
    day = 4
    ref = _reference(folder, day + 1)
    est, se = _statsmodels(ref[ref[f"seg_{segment}"]], metric)
    _, cut = cells.timeline[day]
    res = compare(cut, metric, 0, 1, config.alpha)
    si = cut.segments.index(segment)
    assert res.lift_abs[si] == pytest.approx(est, rel=1e-9, abs=1e-12)
    assert res.se_abs[si] == pytest.approx(se, rel=0.01)
    final = compare(cells, metric, 0, 1, config.alpha)
    assert res.lift_abs[si] != pytest.approx(final.lift_abs[si], rel=1e-6)  # a different day


def test_numpy_walk_equals_the_engine_query(analysed, monkeypatch):
    """The regression sums of DuckDB's numpy walk equal those of the engine query (the
    path of Spark and PostgreSQL) on every day."""
    import experiment.engine.timeline as timeline_module

    folder, config, local, _ = analysed
    monkeypatch.setattr(timeline_module, "LOCAL", frozenset())
    engine = aggregate(open_dataset(folder), config, load_segments(config.segments))
    for (_, a), (_, b) in zip(local.timeline, engine.timeline, strict=True):
        for name in LISTED:
            x, y = a.regression[name], b.regression[name]
            for field in ("n", "mean_y", "m2_y", "mean_x", "c_xx", "c_xy"):
                np.testing.assert_allclose(
                    getattr(x, field), getattr(y, field), rtol=1e-11, atol=1e-8, err_msg=field
                )
