"""Shared fixtures: a small dataset built directly (independent of the simulator)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)

SEGMENTS_YAML = """\
segments:
  - name: buyers
    description: Ordered in the last 90 days.
    where: "orders_90d >= 1"
  - name: mobile
    where: "device == 'mobile'"
  - name: lapsed_desktop
    where: "days_since_last_login >= 14 and device in ['desktop', 'tablet']"
"""

EXPERIMENT_YAML = """\
name: exp1
salt: exp1-salt
segments: segments.yaml
window: {days: 14}
metrics:
  - {name: conversion, kind: proportion, event: purchase}
  - {name: ctr, kind: ratio, numerator: {event: click}, denominator: {event: impression}}
  - {name: revenue_per_user, kind: mean, event: purchase, value: revenue}
"""


def write_dataset(
    folder: Path, *, n_users: int = 3000, n_events: int = 40_000, rng: int = 0
) -> Path:
    """Customers, events (some before assignment and after the window), assignments."""
    gen = np.random.default_rng(rng)
    uid = np.array([f"u{i:05d}" for i in range(n_users)])
    orders = gen.poisson(1.0, n_users).astype(float)
    orders[gen.random(n_users) < 0.05] = np.nan  # nulls must not be members
    customers = pa.table(
        {
            "user_id": uid,
            "orders_90d": pa.array(orders, from_pandas=True),
            "days_since_last_login": gen.integers(0, 60, n_users),
            "device": gen.choice(["mobile", "desktop", "tablet"], n_users),
        }
    )
    arm = gen.choice(["control", "treatment"], n_users)
    assigned = [START + dt.timedelta(hours=int(h)) for h in gen.integers(0, 48, n_users)]
    ts_type = pa.timestamp("us", tz="UTC")
    assignments = pa.table(
        {
            "user_id": uid,
            "experiment": ["exp1"] * n_users,
            "arm": arm,
            "assigned_at": pa.array(assigned, ts_type),
        }
    )
    # a second experiment's rows must be ignored
    other = pa.table(
        {
            "user_id": uid[:50],
            "experiment": ["other"] * 50,
            "arm": ["treatment"] * 50,
            "assigned_at": pa.array([START] * 50, ts_type),
        }
    )
    ev_user = gen.choice(uid, n_events)
    ev = gen.choice(
        ["impression", "click", "purchase", "session"], n_events, p=[0.7, 0.12, 0.03, 0.15]
    )
    offsets = gen.integers(-2 * 86400, 18 * 86400, n_events)
    ts = [START + dt.timedelta(seconds=int(s)) for s in offsets]
    revenue = np.where(ev == "purchase", gen.lognormal(3.5, 0.8, n_events), np.nan)
    events = pa.table(
        {
            "user_id": ev_user,
            "ts": pa.array(ts, ts_type),
            "event": ev,
            "revenue": pa.array(revenue, from_pandas=True),
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(customers, folder / "customers.parquet")
    pq.write_table(pa.concat_tables([assignments, other]), folder / "assignments.parquet")
    pq.write_table(events, folder / "events.parquet")
    (folder / "segments.yaml").write_text(SEGMENTS_YAML)
    (folder / "experiment.yaml").write_text(EXPERIMENT_YAML)
    return folder


def assert_one_line_error(result: object, phrase: str) -> None:
    """A CLI result failed as bad input: exit 2, one ``error:`` line naming ``phrase``."""
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert phrase in lines[0]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"))
