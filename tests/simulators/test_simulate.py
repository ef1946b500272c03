from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import simulators
from experiment.config import load_experiment
from experiment.errors import ConfigError
from simulators import simulate
from simulators.catalog import BUILTIN_DIR
from tests.fixtures.simulated import DAYS, USERS, Simulated

FILES = [
    "assignments.parquet",
    "customers.parquet",
    "events.parquet",
    "experiment.yaml",
    "segments.yaml",
    "truth.json",
]
TS = pa.timestamp("us", tz="UTC")


def _run(
    out: Path, *, seed: int = 3, users: int = 1500, days: int = 3
) -> simulators.SimulationSummary:
    return simulate("ecommerce", users=users, days=days, seed=seed, out=out)


def test_public_api_exports_are_sorted_and_present():
    assert simulators.__all__ == sorted(simulators.__all__)
    for name in simulators.__all__:
        assert hasattr(simulators, name)


def test_simulate_writes_every_file(simulated: Simulated):
    assert sorted(p.name for p in simulated.out.iterdir()) == FILES
    assert sorted(p.name for p in simulated.summary.paths) == FILES
    assert simulated.summary.users == USERS
    assert simulated.summary.days == DAYS
    assert simulated.summary.events == simulated.events.num_rows


def test_simulate_is_byte_identical_for_the_same_seed(tmp_path: Path):
    _run(tmp_path / "a")
    _run(tmp_path / "b")
    _run(tmp_path / "c", seed=4)
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    for name in ("customers.parquet", "events.parquet", "truth.json"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes(), name


def test_simulate_days_do_not_depend_on_run_length(tmp_path: Path):
    _run(tmp_path / "short", days=2)
    _run(tmp_path / "long", days=3)
    short = pq.read_table(tmp_path / "short" / "events.parquet")
    long = pq.read_table(tmp_path / "long" / "events.parquet")
    assert long.slice(0, short.num_rows).equals(short)


def test_simulate_tables_match_the_data_contract(simulated: Simulated):
    customers = simulated.customers.schema
    assert customers.names[:2] == ["user_id", "signup_at"]
    assert customers.field("user_id").type == pa.string()
    assert customers.field("signup_at").type == TS
    for name in ("country", "device", "channel", "loyalty_tier"):
        assert customers.field(name).type == pa.string()
    for name in (
        "logins_7d",
        "days_since_last_login",
        "orders_90d",
        "cart_abandons_30d",
        "pricing_page_views_30d",
    ):
        assert customers.field(name).type == pa.int64()
    assert customers.field("revenue_90d").type == pa.float64()
    assert customers.field("price_sensitivity").type == pa.float64()
    assert simulated.events.schema == pa.schema(
        [
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("ts", TS, nullable=False),
            pa.field("event", pa.string(), nullable=False),
            pa.field("channel", pa.string(), nullable=False),
            pa.field("device", pa.string(), nullable=False),
            ("revenue", pa.float64()),  # null off purchases
        ]
    )
    assert simulated.assignments.schema == pa.schema(
        [
            ("user_id", pa.string()),
            ("experiment", pa.string()),
            ("arm", pa.string()),
            ("assigned_at", TS),
        ]
    )


def test_simulate_values_are_in_their_domains(simulated: Simulated):
    c = simulated.customers.to_pydict()
    assert c["user_id"][0] == "u0000001"
    assert len(set(c["user_id"])) == USERS
    assert set(c["device"]) == {"mobile", "desktop", "tablet"}
    assert set(c["channel"]) == {"organic", "paid", "email", "referral"}
    assert min(c["price_sensitivity"]) >= 0
    assert max(c["price_sensitivity"]) <= 1
    start = simulated.summary.start
    assert max(c["signup_at"]) < start
    ev = simulated.events
    assert set(ev.column("event").to_pylist()) == {
        "session",
        "login",
        "page_view",
        "pricing_view",
        "impression",
        "click",
        "add_to_cart",
        "purchase",
    }
    assert set(ev.column("channel").to_pylist()) == {"web", "app", "email", "ads"}
    ts = ev.column("ts").cast(pa.int64()).to_numpy()
    start_us = int(start.timestamp()) * 1_000_000
    assert ts.min() >= start_us
    assert ts.max() < start_us + DAYS * 86_400_000_000
    is_purchase = ev.column("event").to_numpy(zero_copy_only=False) == "purchase"
    has_revenue = ev.column("revenue").is_valid().to_numpy(zero_copy_only=False)
    assert np.array_equal(is_purchase, has_revenue)


def test_simulate_assigns_every_customer(simulated: Simulated):
    a = simulated.assignments
    assert a.column("user_id").equals(simulated.customers.column("user_id"))
    assert set(a.column("experiment").to_pylist()) == {"personalised-campaign"}
    assert set(a.column("arm").to_pylist()) == {"control", "treatment"}
    assert set(a.column("assigned_at").to_pylist()) == {simulated.summary.start}


def test_simulate_experiment_copy_points_at_the_dataset(simulated: Simulated):
    cfg = load_experiment(simulated.out / "experiment.yaml")
    assert cfg.window.start == dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    assert cfg.window.days == DAYS
    assert cfg.segments == simulated.out / "segments.yaml"
    assert [m.name for m in cfg.metrics] == ["conversion", "ctr", "revenue_per_user"]


def test_simulate_reports_progress(tmp_path: Path):
    calls: list[tuple[int, int]] = []
    simulate(
        "ecommerce",
        users=500,
        days=3,
        seed=1,
        out=tmp_path,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"users": 0}, "users must be >= 1"),
        ({"days": 0}, "days must be between 1 and 3650"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"users": 2.5}, "users must be a whole number"),
    ],
)
def test_simulate_rejects_bad_sizes(tmp_path: Path, kwargs: dict[str, object], match: str):
    args: dict[str, object] = {"users": 10, "days": 1, "seed": 0, **kwargs}
    with pytest.raises(ConfigError, match=match):
        simulate("ecommerce", out=tmp_path / "out", **args)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_simulate_rejects_unknown_scenario(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"unknown scenario 'foo'; built-in scenarios: aa, ecomm"):
        simulate("foo", users=10, days=1, seed=0, out=tmp_path)


def test_simulate_failure_leaves_no_files(tmp_path: Path):
    def interrupt(done: int, total: int) -> None:
        if done == 2:  # customers and part of the events are written by now
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate("ecommerce", users=500, days=4, seed=1, out=tmp_path, progress=interrupt)
    assert list(tmp_path.iterdir()) == []


def test_simulate_failure_keeps_the_previous_dataset(tmp_path: Path):
    _run(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def interrupt(done: int, total: int) -> None:
        if done == total:  # everything simulated, nothing published yet
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        simulate("ecommerce", users=500, days=3, seed=9, out=tmp_path, progress=interrupt)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_simulate_rejects_an_output_path_that_is_a_file(tmp_path: Path):
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(ConfigError, match="cannot create the output folder"):
        simulate("ecommerce", users=10, days=1, seed=0, out=target)


def test_simulate_supports_several_treatment_arms(tmp_path: Path):
    folder = tmp_path / "shop"
    shutil.copytree(BUILTIN_DIR / "ecommerce", folder)
    exp = folder / "experiment.yaml"
    exp.write_text(
        exp.read_text().replace("{control: 0.5, treatment: 0.5}", "{control: 2, a: 1, b: 1}")
    )
    sc = folder / "scenario.yaml"
    sc.write_text(
        sc.read_text().replace("{segment: cart_abandoners,", "{segment: cart_abandoners, arm: a,")
    )
    simulate(folder, users=3000, days=2, seed=5, out=tmp_path / "out")
    truth = json.loads((tmp_path / "out" / "truth.json").read_text())
    assert truth["scenario"] == "shop"
    assert {e["arm"] for e in truth["effects"]} == {"a", "b"}
    lifts = {(e["segment"], e["metric"], e["arm"]): e["lift_abs"] for e in truth["effects"]}
    assert lifts["cart_abandoners", "ctr", "a"] > 0
    assert lifts["cart_abandoners", "ctr", "b"] == 0
    arms = pq.read_table(tmp_path / "out" / "assignments.parquet").column("arm").to_pylist()
    assert set(arms) == {"control", "a", "b"}
