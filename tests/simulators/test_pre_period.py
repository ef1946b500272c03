from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from experiment.cli import app
from simulators import simulate
from simulators.pre_period import HISTORY_DAYS

runner = CliRunner()
USERS, DAYS, SEED = 3000, 2, 5
DAY = pd.Timedelta(days=1)
# customers column -> (event, window in days); cart_abandons_30d is checked on its own
COUNTS = {
    "logins_7d": ("login", 7),
    "sessions_30d": ("session", 30),
    "impressions_30d": ("impression", 30),
    "clicks_30d": ("click", 30),
    "feature_uses_30d": ("feature_use", 30),
    "premium_feature_uses_30d": ("premium_feature_use", 30),
    "pricing_page_views_30d": ("pricing_view", 30),
    "orders_90d": ("purchase", 90),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """E-commerce with and without the pre-period events written."""
    root = tmp_path_factory.mktemp("pre")
    for name, write in (("with", True), ("without", False)):
        simulate(
            "ecommerce", users=USERS, days=DAYS, seed=SEED, out=root / name, pre_period_events=write
        )
    return root / "with", root / "without"


@pytest.fixture(scope="module")
def saas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SaaS (feature uses, which e-commerce lacks) with the pre-period events written."""
    out = tmp_path_factory.mktemp("pre_saas")
    simulate("saas", users=USERS, days=DAYS, seed=SEED, out=out, pre_period_events=True)
    return out


def _frames(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    customers = pq.read_table(out / "customers.parquet").to_pandas().set_index("user_id")
    events = pq.read_table(out / "events.parquet").to_pandas()
    start = pq.read_table(out / "assignments.parquet").column("assigned_at")[0].as_py()
    return customers, events, pd.Timestamp(start)


def _count(pre: pd.DataFrame, index: pd.Index, event: str, since: pd.Timestamp) -> pd.Series:
    rows = pre[(pre["event"] == event) & (pre["ts"] >= since)]
    return rows.groupby("user_id").size().reindex(index, fill_value=0)


@pytest.mark.parametrize("scenario", ["ecommerce", "saas"])
def test_pre_period_columns_equal_counts_of_the_written_events(
    runs: tuple[Path, Path], saas: Path, scenario: str
):
    customers, events, start = _frames(runs[0] if scenario == "ecommerce" else saas)
    pre = events[events["ts"] < start]
    assert pre["ts"].min() >= start - HISTORY_DAYS * DAY
    assert len(pre) > 10 * USERS  # a real history, not a handful of rows
    absent = {"feature_uses_30d", "premium_feature_uses_30d"} if scenario == "ecommerce" else set()
    for column, (event, days) in COUNTS.items():
        expected = _count(pre, customers.index, event, start - days * DAY)
        assert (expected.sum() > 0) == (column not in absent), column
        np.testing.assert_array_equal(customers[column].to_numpy(), expected.to_numpy(), column)
    since = start - 30 * DAY
    carts = _count(pre, customers.index, "add_to_cart", since)
    orders = _count(pre, customers.index, "purchase", since)
    abandons = (carts - orders).to_numpy()
    assert abandons.sum() > 0
    np.testing.assert_array_equal(customers["cart_abandons_30d"].to_numpy(), abandons)
    revenue = pre[pre["event"] == "purchase"].groupby("user_id")["revenue"].sum()
    revenue = revenue.reindex(customers.index, fill_value=0.0).round(2)
    np.testing.assert_allclose(customers["revenue_90d"].to_numpy(), revenue.to_numpy(), atol=1e-6)


def test_pre_period_days_since_last_login_follow_the_last_login_or_the_rule(
    runs: tuple[Path, Path],
):
    customers, events, start = _frames(runs[0])
    logins = events[(events["event"] == "login") & (events["ts"] < start)]
    last = logins.groupby("user_id")["ts"].max().reindex(customers.index)
    dsl = customers["days_since_last_login"].to_numpy()
    seen = last.notna().to_numpy()
    expected = (start - last[seen]).dt.days.to_numpy()  # whole days, rounded down
    np.testing.assert_array_equal(dsl[seen], expected)
    # no login in the history: at least the history's length, or days since signup if shorter
    tenure = (start - customers["signup_at"]).dt.days.to_numpy()
    unseen = ~seen
    assert unseen.any()
    assert seen.any()
    assert np.all(dsl[unseen] <= tenure[unseen])
    assert np.all((dsl[unseen] >= HISTORY_DAYS) | (dsl[unseen] == tenure[unseen]))


def test_pre_period_events_follow_signup_and_precede_assignment(runs: tuple[Path, Path]):
    customers, events, start = _frames(runs[0])
    pre = events[events["ts"] < start]
    signup = pre["user_id"].map(customers["signup_at"])
    assert (pre["ts"] > signup).all()
    assert pre["ts"].is_monotonic_increasing  # written in time order, before the experiment


def test_pre_period_events_change_only_the_draw_of_the_history(runs: tuple[Path, Path]):
    # Written, the history is simulated day by day; counted only, its counters are
    # drawn in the same law (simulators/pre_counts.py, tests/simulators/test_pre_counts.py).
    with_pre, without = runs
    assert (with_pre / "assignments.parquet").read_bytes() == (
        without / "assignments.parquet"
    ).read_bytes()
    static = ["user_id", "signup_at", "country", "age_band", "device", "plan", "interest"]
    a = pq.read_table(with_pre / "customers.parquet", columns=static)
    b = pq.read_table(without / "customers.parquet", columns=static)
    assert a.equals(b)
    start = pq.read_table(without / "assignments.parquet").column("assigned_at")[0]
    assert pc.min(pq.read_table(without / "events.parquet").column("ts")).as_py() >= start.as_py()


def test_pre_period_events_are_skipped_by_the_analysis_and_reported(
    runs: tuple[Path, Path], tmp_path: Path
):
    # the same dataset with its pre-period rows removed (independently of the analysis)
    trimmed = tmp_path / "without"
    shutil.copytree(runs[0], trimmed)
    full = pq.read_table(runs[0] / "events.parquet")
    assigned = pq.read_table(runs[0] / "assignments.parquet").column("assigned_at")[0]
    pq.write_table(
        full.filter(pc.greater_equal(full.column("ts"), assigned)), trimmed / "events.parquet"
    )
    docs = {}
    for data in (runs[0], trimmed):
        out = tmp_path / "out" / data.name
        result = runner.invoke(
            app, ["analyze", str(data), "-e", str(data / "experiment.yaml"), "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        docs[data.name] = json.loads((out / "results.json").read_text())
    with_pre, without = docs["with"], docs["without"]
    # the lifts ignore the pre-period (to rounding: DuckDB's parallel sums vary in the last bit)
    assert len(with_pre["results"]) == len(without["results"])
    for a, b in zip(with_pre["results"], without["results"], strict=True):
        assert a.keys() == b.keys()
        for key, value in a.items():
            if isinstance(value, float) and isinstance(b[key], float):
                assert value == pytest.approx(b[key], rel=1e-9, abs=1e-12), key
            else:
                assert value == b[key], key
    outside = {
        name: next(c for c in doc["data_quality"]["checks"] if c["name"] == "events_outside_window")
        for name, doc in docs.items()
    }
    events = pq.read_table(runs[0] / "events.parquet", columns=["ts"]).column("ts")
    start = pq.read_table(runs[0] / "assignments.parquet").column("assigned_at")[0]
    n_pre = pc.sum(pc.less(events, start)).as_py()
    assert outside["with"]["count"] == n_pre > 0
    assert outside["without"]["count"] == 0


def test_pre_period_events_are_counted_in_the_summary(tmp_path: Path):
    summary = simulate("ecommerce", users=500, days=1, seed=1, out=tmp_path, pre_period_events=True)
    ts = pq.read_table(tmp_path / "events.parquet", columns=["ts"]).column("ts")
    start = pq.read_table(tmp_path / "assignments.parquet").column("assigned_at")[0]
    assert summary.events == len(ts)
    assert summary.pre_period_events == pc.sum(pc.less(ts, start)).as_py() > 0
    assert summary.pre_period_events < summary.events
