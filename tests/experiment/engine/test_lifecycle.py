"""Engine lifecycle counts against a pandas recomputation from the raw tables.

A small simulated win-back dataset, with assignments staggered over the first
days (so first-purchase times are censored at each user's own follow-up): the
migration matrices, both survival curves' event and exit counts and the spend sums
must equal what pandas computes from customers, events and assignments directly,
with the lifecycle rule of segments/lifecycle.py written out here.
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiment.config import load_experiment
from experiment.engine.dataset import open_dataset
from experiment.engine.lifecycle import lifecycle_counts
from segments.definitions import load_segments
from segments.lifecycle import STAGES
from simulators import simulate

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lifecycle")
    simulate("lifecycle", users=2500, days=15, seed=5, out=folder)
    original = pq.read_table(folder / "assignments.parquet")
    assignments = original.to_pandas()
    shift = np.random.default_rng(0).integers(0, 4, len(assignments)) * 86_400 * 10**6 // 3
    assignments["assigned_at"] += pd.to_timedelta(shift, unit="us")
    table = pa.Table.from_pandas(assignments, schema=original.schema, preserve_index=False)
    pq.write_table(table, folder / "assignments.parquet")
    config = load_experiment(folder / "experiment.yaml")
    assert config.lifecycle_analysis is not None
    segments, start = config.segments, config.window.start
    assert segments is not None
    assert start is not None
    config = config.model_copy(
        update={"lifecycle_analysis": config.lifecycle_analysis.model_copy(update={"days": [4, 9]})}
    )
    segment_set = load_segments(segments)
    dataset = open_dataset(folder)
    counts = lifecycle_counts(dataset, config, segment_set, start=start)
    return folder, config, segment_set, counts


def _stage(recency, age, vip, lc):
    code = np.full(recency.shape, STAGES.index("active"))
    code[vip] = STAGES.index("vip")
    code[recency >= lc.at_risk_days] = STAGES.index("at_risk")
    code[recency > lc.dormant_days] = STAGES.index("dormant")
    code[age <= lc.new_days] = STAGES.index("new")
    return code


def _frames(folder, config):
    customers = pd.read_parquet(folder / "customers.parquet")
    events = pd.read_parquet(folder / "events.parquet")
    units = pd.read_parquet(folder / "assignments.parquet")
    users = customers.merge(units[["user_id", "arm", "assigned_at"]], on="user_id")
    start = pd.Timestamp(config.window.start)
    events["k"] = ((events.ts - start) // DAY).astype(int)
    return customers, events, users, start


def test_migration_matrices_equal_pandas(data):
    folder, config, segment_set, counts = data
    lc = segment_set.lifecycle
    customers, events, users, start = _frames(folder, config)
    cut = np.quantile(customers.revenue_90d, 1 - lc.vip_share)
    r0 = users.days_since_last_login.fillna(0).to_numpy(int)
    age = ((start - users.signup_at) // DAY).to_numpy(int)
    vip = users.revenue_90d.to_numpy() >= cut
    s0 = _stage(r0, age, vip, lc)
    logins = events[(events.event == "login") & (events.k >= 0)]
    assert counts.days == (4, 9, 15)
    for i, d in enumerate(counts.days):
        last = logins[logins.k < d].groupby("user_id").k.max()
        k = users.user_id.map(last).to_numpy(float)
        recency = np.where(np.isnan(k), r0 + d, d - 1 - np.nan_to_num(k)).astype(int)
        sd = _stage(recency, age + d, vip, lc)
        for a, arm in enumerate(counts.arms):
            mine = users.arm.to_numpy() == arm
            ref = np.zeros((5, 5))
            np.add.at(ref, (s0[mine], sd[mine]), 1)
            np.testing.assert_array_equal(counts.migration[i, a], ref)


def _lapse(login_days, r0, limit, window):
    last, t = -1 - r0, None
    for day in range(1, window + 1):
        if day - 1 in login_days:
            last = day - 1
        if day - 1 - last >= limit:
            return day
    return t


def test_survival_counts_equal_pandas(data):
    folder, config, segment_set, counts = data
    lc = segment_set.lifecycle
    window = config.window.days
    _customers, events, users, start = _frames(folder, config)
    days_by_user = events[events.event == "login"].groupby("user_id").k.agg(set)
    purchases = events[events.event == "purchase"].merge(users[["user_id", "assigned_at"]])
    purchases = purchases[purchases.ts >= purchases.assigned_at]
    first = ((purchases.ts - purchases.assigned_at) // DAY).groupby(purchases.user_id).min() + 1
    end = start + window * DAY
    retained = np.zeros((2, window + 1, 2))
    no_purchase = np.zeros((2, window + 1, 2))
    for row in users.itertuples():
        a = counts.arms.index(row.arm)
        r0 = 0 if pd.isna(row.days_since_last_login) else int(row.days_since_last_login)
        if r0 < lc.at_risk_days:
            t = _lapse(days_by_user.get(row.user_id, set()), r0, lc.at_risk_days, window)
            retained[a, t if t is not None else window, int(t is not None)] += 1
        follow = min(int((end - row.assigned_at) // DAY), window)
        f = first.get(row.user_id)
        hit = f is not None and f <= follow
        no_purchase[a, int(f) if hit else follow, int(hit)] += 1
    for curve, ref in (("retained", retained), ("no_purchase", no_purchase)):
        np.testing.assert_array_equal(counts.events[curve][0], ref[..., 1])
        np.testing.assert_array_equal(counts.exits[curve][0], ref[..., 0])


def test_spend_sums_equal_pandas(data):
    folder, config, _, counts = data
    window = config.window.days
    _, events, users, start = _frames(folder, config)
    end = start + window * DAY
    full = users[users.assigned_at + window * DAY <= end]
    p = events[events.event == "purchase"].merge(full[["user_id", "assigned_at", "arm"]])
    p = p[(p.ts >= p.assigned_at) & (p.ts < end)]
    seconds = (p.ts - p.assigned_at).dt.total_seconds()
    half = window * 86_400 / 2
    p["y1"] = np.where(seconds < half, p.revenue, 0.0)
    p["y2"] = np.where(seconds >= half, p.revenue, 0.0)
    per = p.groupby("user_id")[["y1", "y2"]].sum()
    full = full.join(per, on="user_id").fillna({"y1": 0.0, "y2": 0.0})
    for a, arm in enumerate(counts.arms):
        f = full[full.arm == arm]
        ref = [
            len(f),
            f.y1.sum(),
            f.y2.sum(),
            (f.y1**2).sum(),
            (f.y2**2).sum(),
            (f.y1 * f.y2).sum(),
        ]
        np.testing.assert_allclose(counts.spend[:, 0, a], ref, rtol=1e-9)


def test_segments_split_the_all_counts(data):
    _, _, _, counts = data
    for curve in counts.events:  # lifecycle segments are exclusive and cover everyone
        np.testing.assert_array_equal(counts.events[curve][1:].sum(axis=0), counts.events[curve][0])
    np.testing.assert_allclose(counts.spend[:, 1:].sum(axis=1)[:3], counts.spend[:3, 0])


def test_login_masks_are_the_login_days_also_without_bit_or():
    """The masks hold exactly the login days (over two words), with BIT_OR and with the
    distinct-sum fallback of engines without it (Spark), against a Python set per user."""
    from types import SimpleNamespace
    from typing import Any

    import ibis
    from ibis.common.exceptions import OperationNotDefinedError

    from experiment.engine.lifecycle_events import WORD, login_masks

    rng = np.random.default_rng(0)
    users = rng.choice(list("abcdefgh"), 300)
    frame = pd.DataFrame({"user_id": users, "k": rng.integers(0, 70, 300)})
    con = ibis.duckdb.connect()
    events = con.create_table("e", frame)

    def refuse(_: object) -> None:
        raise OperationNotDefinedError("BitOr")

    for backend in (con, SimpleNamespace(compile=refuse)):
        dataset: Any = SimpleNamespace(con=backend)
        got = con.execute(login_masks(dataset, events, 70))
        assert len(got) == 8
        for row in got.to_dict("records"):
            days = {k for k in range(70) if int(row[f"__w{k // WORD}__"]) >> (k % WORD) & 1}
            assert days == set(frame.k[frame.user_id == row["user_id"]])
