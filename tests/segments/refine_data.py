"""Small datasets for the ``exp refine`` tests, and an independent reference in pandas."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
TS = pa.timestamp("us", tz="UTC")

EXPERIMENT = """\
name: exp1
salt: exp1-salt
segments: segments.yaml
window: {days: 14}
metrics:
  - {name: conversion, kind: proportion, event: purchase}
  - {name: ctr, kind: ratio, numerator: {event: click}, denominator: {event: impression}}
"""


def write_planted(
    folder: Path,
    *,
    n_users: int = 20_000,
    base: float = 0.10,
    lift_above: float = 0.6,
    lift_below: float = 0.0,
    threshold: float = 0.6,
    rng: int = 0,
    segments: str = "segments:\n  - {name: everyone_x, where: 'x >= 0'}\n",
) -> Path:
    """Users with ``x ~ U(0, 1)``; conversion ``base·(1 + lift)``, ``lift`` by side of ``x``.

    Also noise attributes ``z`` (numeric), ``k`` (integer) and ``tier`` (string,
    with baselines that differ by tier), and clicks/impressions for a ratio metric.
    """
    gen = np.random.default_rng(rng)
    uid = np.array([f"u{i:06d}" for i in range(n_users)])
    x = gen.random(n_users)
    tier = gen.choice(["a", "b", "c"], n_users)
    customers = pa.table(
        {
            "user_id": uid,
            "x": x,
            "z": gen.normal(size=n_users),
            "k": gen.integers(0, 10, n_users),
            "tier": tier,
            "signup": pa.array([START] * n_users, TS),
        }
    )
    arm = gen.choice(["control", "treatment"], n_users)
    start_us = int(START.timestamp() * 1_000_000)
    assigned = start_us + gen.integers(0, 86_400, n_users) * 1_000_000
    assignments = pa.table(
        {
            "user_id": uid,
            "experiment": ["exp1"] * n_users,
            "arm": arm,
            "assigned_at": pa.array(assigned, pa.int64()).cast(TS),
        }
    )
    treated = arm == "treatment"
    baseline = base * np.select([tier == "a", tier == "b"], [0.5, 1.0], 2.0)
    lift = np.where(x >= threshold, lift_above, lift_below)
    p = np.clip(baseline * (1 + np.where(treated, lift, 0.0)), 0, 1)
    buys = gen.random(n_users) < p
    impressions = gen.poisson(5, n_users)
    clicks = gen.binomial(impressions, np.clip(0.2 * (1 + np.where(treated, lift, 0.0)), 0, 1))
    everyone = np.arange(n_users)
    who = np.concatenate(
        [np.flatnonzero(buys), np.repeat(everyone, impressions), np.repeat(everyone, clicks)]
    )
    kinds = np.repeat(
        ["purchase", "impression", "click"], [buys.sum(), impressions.sum(), clicks.sum()]
    )
    when = assigned[who] + 2 * 3_600_000_000
    events = pa.table(
        {"user_id": uid[who], "ts": pa.array(when, pa.int64()).cast(TS), "event": kinds}
    )
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(customers, folder / "customers.parquet")
    pq.write_table(assignments, folder / "assignments.parquet")
    pq.write_table(events, folder / "events.parquet")
    (folder / "segments.yaml").write_text(segments)
    (folder / "experiment.yaml").write_text(EXPERIMENT)
    return folder


def halves(user_ids: pd.Series, salt: str, seed: int) -> pd.Series:
    """The refine half of each user (0 discovery, 1 estimation), computed in Python."""
    return user_ids.map(
        lambda u: int(
            int(hashlib.md5(f"refine:{salt}:{seed}:{u}".encode()).hexdigest()[0], 16) >= 8
        )
    )


def per_user(folder: Path, days: int = 14) -> pd.DataFrame:
    """Per analysed user: arm, customers columns, purchases, clicks, impressions (in window)."""
    a = pd.read_parquet(folder / "assignments.parquet")
    a = a[a.experiment == "exp1"]
    first = a.groupby("user_id").agg(
        arm=("arm", "first"), n=("arm", "nunique"), at=("assigned_at", "min")
    )
    first = first[first.n == 1]
    start = first["at"].min()
    end = start + pd.Timedelta(days=days)
    ev = pd.read_parquet(folder / "events.parquet")
    ev = ev.merge(first[["at"]], left_on="user_id", right_index=True)
    ev = ev[(ev.ts >= start) & (ev.ts < end) & (ev.ts >= ev["at"])]
    counts = ev.groupby(["user_id", "event"]).size().unstack(fill_value=0)
    users = first.join(counts, how="left").fillna({c: 0 for c in counts.columns})
    customers = pd.read_parquet(folder / "customers.parquet").set_index("user_id")
    return users.join(customers, how="left").reset_index()


def relative_lift(y_c: np.ndarray, y_t: np.ndarray) -> tuple[float, float]:
    """Relative lift and its delta-method standard error (means, ddof=1)."""
    mc, mt = y_c.mean(), y_t.mean()
    vc, vt = y_c.var(ddof=1) / y_c.size, y_t.var(ddof=1) / y_t.size
    return (mt - mc) / mc, float(np.sqrt(vt / mc**2 + mt**2 * vc / mc**4))


def ratio_lift(
    y_c: np.ndarray, x_c: np.ndarray, y_t: np.ndarray, x_t: np.ndarray
) -> tuple[float, float]:
    """Relative lift of ``Σy/Σx`` and its delta-method standard error (Deng et al. 2018)."""

    def moments(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
        r = y.mean() / x.mean()
        lin = (y - r * x) / x.mean()
        return r, lin.var(ddof=1) / y.size

    (rc, vc), (rt, vt) = moments(y_c, x_c), moments(y_t, x_t)
    return (rt - rc) / rc, float(np.sqrt(vt / rc**2 + rt**2 * vc / rc**4))
