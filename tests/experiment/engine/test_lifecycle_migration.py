"""Rule-segment migration in the engine against a pandas recomputation from the raw events.

A small simulated win-back dataset written with its 90-day pre-period events, so
every rolling column at day ``d`` is, by its definition, the count (or sum) of the
events of days ``[d - N, d)``: pandas computes that directly from the events (no
start value, nothing subtracted), the recency and the lifecycle stage as in
``test_lifecycle.py``, evaluates each rule by hand and counts (arm, member at the
start, member at the day); the engine's matrices must be equal. Bad
``migration_segments`` are refused with one line.
"""

import numpy as np
import pandas as pd
import pytest
import yaml

from experiment.config import load_experiment
from experiment.engine.dataset import open_dataset
from experiment.engine.lifecycle import lifecycle_counts
from experiment.errors import ConfigError
from experiment.lifecyclespec import RollingFeature
from segments.definitions import load_segments
from segments.lifecycle import STAGES
from simulators import simulate

DAY = pd.Timedelta(days=1)
RULES = {
    "recent": "days_since_last_login < 14",
    "buyer": "orders_90d >= 1 and sessions_30d >= 2 and device == 'mobile'",
    "recent_spender": ("segment('recent') and revenue_90d > 20 and days_since(signup_at) > 60"),
    "slipping": "lifecycle == 'at_risk' or (logins_7d <= 1 and plan == 'membership')",
}


def _config(folder, names, **extra):
    config = load_experiment(folder / "experiment.yaml")
    assert config.lifecycle_analysis is not None
    block = config.lifecycle_analysis.model_copy(
        update={"days": [4, 9], "migration_segments": names, **extra}
    )
    return config.model_copy(
        update={"segments": folder / "segments-rules.yaml", "lifecycle_analysis": block}
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lifecycle-rules")
    simulate("lifecycle", users=2000, days=15, seed=11, out=folder, pre_period_events=True)
    spec = yaml.safe_load((folder / "segments.yaml").read_text())
    spec["segments"] += [{"name": n, "where": w} for n, w in RULES.items()]
    spec["segments"] += [
        {"name": "tiers", "cross": ["device"]},
        {"name": "abandoner", "where": "cart_abandons_30d >= 1"},
        {"name": "tiered", "where": "loyalty_tier == 'gold'"},
    ]
    (folder / "segments-rules.yaml").write_text(yaml.safe_dump(spec))
    config = _config(folder, list(RULES))
    segment_set = load_segments(folder / "segments-rules.yaml")
    counts = lifecycle_counts(open_dataset(folder), config, segment_set, start=config.window.start)
    return folder, config, segment_set, counts


def _window_sum(events, users, event, days, value=None):
    """Per user (in ``users`` order): count (or sum of ``value``) of ``event`` on days [lo, hi)."""
    lo, hi = days
    e = events[(events.event == event) & (events.k >= lo) & (events.k < hi)]
    got = e.groupby("user_id")[value].sum() if value else e.groupby("user_id").size()
    return users.user_id.map(got).fillna(0).to_numpy(float)


def _stage(recency, age, vip, lc):
    code = np.full(recency.shape, STAGES.index("active"))
    code[vip] = STAGES.index("vip")
    code[recency >= lc.at_risk_days] = STAGES.index("at_risk")
    code[recency > lc.dormant_days] = STAGES.index("dormant")
    code[age <= lc.new_days] = STAGES.index("new")
    return code


def _members(users, events, customers, start, *, d, lc):
    """Each rule's membership at day ``d``, from the raw events (pandas)."""
    logins = events[(events.event == "login") & (events.k >= 0) & (events.k < d)]
    last = users.user_id.map(logins.groupby("user_id").k.max())
    r0 = users.days_since_last_login.to_numpy(float)
    recency = np.where(last.isna(), r0 + d, d - 1 - last.to_numpy(float))
    if d == 0:
        orders = users.orders_90d.to_numpy(float)
        sessions = users.sessions_30d.to_numpy(float)
        logins7 = users.logins_7d.to_numpy(float)
        revenue = users.revenue_90d.to_numpy(float)
    else:
        orders = _window_sum(events, users, "purchase", (d - 90, d))
        sessions = _window_sum(events, users, "session", (d - 30, d))
        logins7 = _window_sum(events, users, "login", (d - 7, d))
        revenue = _window_sum(events, users, "purchase", (d - 90, d), "revenue")
    age = ((start + d * DAY - users.signup_at) // DAY).to_numpy(int)
    cut = np.quantile(customers.revenue_90d, 1 - lc.vip_share)
    vip = users.revenue_90d.to_numpy() >= cut
    stage = _stage(np.nan_to_num(recency).astype(int), age, vip, lc)
    recent = recency < 14
    return {
        "recent": recent,
        "buyer": (orders >= 1) & (sessions >= 2) & (users.device == "mobile").to_numpy(),
        "recent_spender": recent & (revenue > 20) & (age > 60),
        "slipping": (stage == STAGES.index("at_risk"))
        | ((logins7 <= 1) & (users.plan == "membership").to_numpy()),
    }


def test_rule_migration_equals_pandas(data):
    folder, config, segment_set, counts = data
    customers = pd.read_parquet(folder / "customers.parquet")
    events = pd.read_parquet(folder / "events.parquet")
    units = pd.read_parquet(folder / "assignments.parquet")
    users = customers.merge(units[["user_id", "arm"]], on="user_id")
    start = pd.Timestamp(config.window.start)
    events["k"] = ((events.ts - start) // DAY).astype(int)
    assert (events.k < 0).any(), "the fixture needs pre-period events"
    lc = segment_set.lifecycle
    arm = users.arm.map({a: i for i, a in enumerate(counts.arms)}).to_numpy()
    at_start = _members(users, events, customers, start, d=0, lc=lc)
    names = [p.name for p in counts.rule_segments]
    assert names == list(RULES)
    for i, d in enumerate(counts.days):
        later = _members(users, events, customers, start, d=d, lc=lc)
        for j, name in enumerate(names):
            want = np.zeros((len(counts.arms), 2, 2))
            np.add.at(want, (arm, 1 - at_start[name].astype(int), 1 - later[name].astype(int)), 1)
            np.testing.assert_array_equal(counts.rule_migration[j][i], want, err_msg=f"{name} {d}")
    moved = counts.rule_migration[0][-1]
    assert moved[:, 1, 0].sum() > 0
    assert moved[:, 0, 1].sum() > 0


def test_columns_are_said_recomputed_or_frozen(data):
    *_, counts = data
    plans = {p.name: p for p in counts.rule_segments}
    assert plans["buyer"].recomputed == ("orders_90d", "sessions_30d")
    assert plans["buyer"].frozen == ("device",)
    # through segment('recent'): its recency is recomputed too
    assert plans["recent_spender"].recomputed == ("days_since_last_login", "revenue_90d")
    assert plans["recent_spender"].frozen == ("signup_at",)
    assert plans["slipping"].recomputed == ("lifecycle", "logins_7d")


@pytest.mark.parametrize(
    ("names", "extra", "message"),
    [
        (["nope"], {}, "'nope' is not a segment"),
        (["tiers"], {}, "'tiers' is not a rule segment"),
        (["recent", "abandoner"], {}, "reads 'cart_abandons_30d', which changes with behaviour"),
        (["tiered"], {}, "reads 'loyalty_tier'"),
        (
            ["abandoner"],
            {"features": {"cart_abandons_30d": RollingFeature(event="x", days=30, sum="nope")}},
            "no column 'nope' to sum",
        ),
    ],
)
def test_bad_migration_segments_are_one_line(data, names, extra, message):
    folder, _, _, _ = data
    config = _config(folder, names, **extra)
    with pytest.raises(ConfigError, match=message) as info:
        lifecycle_counts(
            open_dataset(folder),
            config,
            load_segments(folder / "segments-rules.yaml"),
            start=config.window.start,
        )
    assert "\n" not in str(info.value)
