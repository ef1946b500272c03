"""Fixtures: one simulated e-commerce dataset shared by the simulator tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulators import SimulationSummary, simulate
from simulators.schema import EVENTS

USERS = 20_000
DAYS = 14
SEED = 11


@dataclass(frozen=True)
class Simulated:
    """A simulated dataset with per-user event counts aligned to the customers rows."""

    summary: SimulationSummary
    out: Path
    customers: pa.Table
    assignments: pa.Table
    events: pa.Table
    truth: dict[str, Any]
    counts: dict[str, np.ndarray]
    revenue: np.ndarray


def per_user(customers: pa.Table, events: pa.Table) -> tuple[dict[str, np.ndarray], np.ndarray]:
    ids = customers.column("user_id").to_numpy(zero_copy_only=False)
    user = np.searchsorted(ids, events.column("user_id").to_numpy(zero_copy_only=False))
    event = events.column("event").to_numpy(zero_copy_only=False)
    counts = {name: np.bincount(user[event == name], minlength=ids.size) for name in EVENTS}
    amounts = np.nan_to_num(events.column("revenue").to_numpy(zero_copy_only=False))
    return counts, np.bincount(user, weights=amounts, minlength=ids.size)


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Simulated:
    out = tmp_path_factory.mktemp("sim")
    summary = simulate("ecommerce", users=USERS, days=DAYS, seed=SEED, out=out)
    customers = pq.read_table(out / "customers.parquet")
    events = pq.read_table(out / "events.parquet")
    counts, revenue = per_user(customers, events)
    return Simulated(
        summary=summary,
        out=out,
        customers=customers,
        assignments=pq.read_table(out / "assignments.parquet"),
        events=events,
        truth=json.loads((out / "truth.json").read_text()),
        counts=counts,
        revenue=revenue,
    )
