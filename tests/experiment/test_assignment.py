import hashlib

import ibis
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import experiment
from experiment.assignment import (
    HOLDOUT,
    Allocation,
    AssignmentSpec,
    assign,
    assign_many,
    assignment_expr,
    bucket,
)
from experiment.config import ExperimentConfig

ARMS = {"control": 0.5, "treatment": 0.5}
METRICS = [{"name": "c", "kind": "proportion", "event": "purchase"}]


def _spec(**fields) -> AssignmentSpec:
    config = ExperimentConfig.model_validate({"name": "e", "metrics": METRICS, **fields})
    return AssignmentSpec.from_config(config, priority=["vip", "at_risk"])


FULL = {
    "salt": "s1",
    "arms": {"control": 0.4, "a": 0.3, "b": 0.3},
    "holdout": 0.05,
    "traffic": 0.8,
    "allocation": {
        "vip": {"arms": {"control": 0.1, "a": 0.45, "b": 0.45}},
        "at_risk": {"arms": {"control": 0.5, "a": 0.25, "b": 0.25}, "traffic": 0.5},
    },
}


def test_bucket_matches_independent_md5_definition():
    digest = hashlib.md5(b"salt:user-42").digest()
    assert bucket("user-42", salt="salt") == int.from_bytes(digest[:4], "big") / 2**32


@given(user=st.text(max_size=40), salt=st.text(max_size=20))
def test_assign_is_deterministic_and_plain_spec_equals_assign_many(user, salt):
    spec = _spec(salt=salt)
    arm = assign(user, spec)
    assert arm == assign(user, spec)
    assert assign_many([user], salt=salt, arms=ARMS)[0] == arm


def test_assign_many_shares_follow_weights():
    arms = {"control": 0.2, "a": 0.3, "b": 0.5}
    got = assign_many((f"u{i}" for i in range(100_000)), salt="s", arms=arms)
    counts = np.array([(got == a).sum() for a in arms])
    expected = np.array(list(arms.values())) * counts.sum()
    assert stats.chisquare(counts, expected).pvalue > 0.001


def test_assign_many_rejects_bad_weights():
    with pytest.raises(ValueError, match="weight > 0"):
        assign_many(["u"], salt="s", arms={"a": 1.0, "b": 0.0})


def test_assign_is_reexported_from_the_light_package():
    assert experiment.assign is assign
    assert experiment.AssignmentSpec is AssignmentSpec


def _ids(n: int) -> list[str]:
    gen = np.random.default_rng(3)
    odd = ["", "'", "a'b", "naïve", "用户", " space ", "x" * 200, "1", "NULL"]
    return odd + [f"u{i}-{gen.integers(10**9)}" for i in range(n - len(odd))]


def test_engine_expression_agrees_exactly_with_python():
    ids = _ids(6000)
    vip = [i % 3 == 0 for i in range(len(ids))]
    risk = [i % 4 == 0 for i in range(len(ids))]
    spec = _spec(**FULL)
    t = ibis.memtable(pa.table({"user_id": ids, "vip": vip, "at_risk": risk}))
    con = ibis.duckdb.connect()
    expr = t.select(
        "user_id", arm=assignment_expr(t.user_id, spec, {"vip": t.vip, "at_risk": t.at_risk})
    )
    got = dict(zip(*con.to_pyarrow(expr).to_pydict().values(), strict=True))
    want = {
        u: assign(u, spec, segments=[s for s, m in (("vip", v), ("at_risk", r)) if m])
        for u, v, r in zip(ids, vip, risk, strict=True)
    }
    assert got == want
    assert set(want.values()) == {"control", "a", "b", HOLDOUT, None}


def test_segment_priority_decides_for_users_in_several_segments():
    spec = _spec(**FULL)
    ids = _ids(3000)
    both = [assign(u, spec, segments=["at_risk", "vip"]) for u in ids]
    vip = [assign(u, spec, segments=["vip"]) for u in ids]
    assert both == vip
    assert both != [assign(u, spec, segments=["at_risk"]) for u in ids]


def test_holdout_is_fixed_when_weights_and_traffic_change():
    ids = _ids(20_000)
    a = _spec(holdout=0.1, traffic=0.3, arms={"control": 0.9, "treatment": 0.1})
    b = _spec(holdout=0.1, traffic=1.0, arms={"control": 0.2, "treatment": 0.8})
    held_a = {u for u in ids if assign(u, a) == HOLDOUT}
    held_b = {u for u in ids if assign(u, b) == HOLDOUT}
    assert held_a == held_b
    n, share = len(ids), len(held_a) / len(ids)
    assert abs(share - 0.1) < 3.29 * np.sqrt(0.1 * 0.9 / n)


share = st.floats(min_value=0.01, max_value=1.0)


@settings(max_examples=60, deadline=None)
@given(
    traffic=st.tuples(share, share).map(sorted),
    treated=st.tuples(share, share).map(sorted),
    ratio=st.floats(min_value=0.1, max_value=0.9),
    salt=st.text(max_size=8),
)
def test_ramp_only_moves_users_into_the_experiment_or_into_treatment(traffic, treated, ratio, salt):
    """Raise traffic and treatment share (fixed ratio between treatments): never back."""

    def spec(t: float, tr: float) -> AssignmentSpec:
        arms = {"control": max(1 - tr, 0.0), "a": tr * ratio, "b": tr * (1 - ratio)}
        return AssignmentSpec(
            salt, "control", Allocation.from_weights(arms, control="control", traffic=t)
        )

    before, after = spec(traffic[0], treated[0]), spec(traffic[1], treated[1])
    for i in range(300):
        old, new = assign(f"u{i}", before), assign(f"u{i}", after)
        assert old is None or new == old or (old == "control" and new in ("a", "b"))


def _contingency(x, y):
    xs, ys = sorted(set(x), key=str), sorted(set(y), key=str)
    table = np.zeros((len(xs), len(ys)))
    for a, b in zip(x, y, strict=True):
        table[xs.index(a), ys.index(b)] += 1
    return table


def test_different_salts_give_independent_splits():
    ids = [f"user-{i}" for i in range(40_000)]
    arms = {"control": 1, "a": 1, "b": 1}
    x = assign_many(ids, salt="exp-one", arms=arms).tolist()
    y = assign_many(ids, salt="exp-two", arms=arms).tolist()
    assert stats.chi2_contingency(_contingency(x, y)).pvalue > 0.001
    z = assign_many(ids, salt="exp-one", arms=arms).tolist()
    assert stats.chi2_contingency(_contingency(x, z)).pvalue < 1e-100  # the test has power


def test_digest_slices_for_arm_traffic_and_pick_are_independent():
    digests = [hashlib.md5(f"s:u{i}".encode()).hexdigest() for i in range(40_000)]
    deciles = [[int(d[k : k + 8], 16) * 10 // 2**32 for d in digests] for k in (0, 8, 16)]
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert stats.chi2_contingency(_contingency(deciles[a], deciles[b])).pvalue > 0.001


@pytest.mark.slow
def test_engine_hash_is_uniform_over_a_million_ids():
    con = ibis.duckdb.connect()
    t = ibis.memtable(pa.table({"user_id": [f"id-{i}" for i in range(1_000_000)]}))
    from experiment.assignment import hex_int

    digest = (ibis.literal("uniform:") + t.user_id).hexdigest("md5")
    hist = con.to_pyarrow(t.select(b=hex_int(digest, 0) * 100 // 2**32).b.value_counts())
    counts = np.zeros(100)
    counts[np.asarray(hist.column(0))] = hist.column(1)
    assert counts.sum() == 1_000_000
    assert stats.chisquare(counts).pvalue > 0.001
    spec = _spec(salt="uniform", arms={"control": 0.2, "a": 0.3, "b": 0.5})
    arms = con.to_pyarrow(t.select(arm=assignment_expr(t.user_id, spec, {})).arm.value_counts())
    shares = {r["arm"]: r["arm_count"] / 1e6 for r in arms.to_pylist()}
    for arm, weight in {"control": 0.2, "a": 0.3, "b": 0.5}.items():
        assert abs(shares[arm] - weight) < 0.002  # within 0.2 percentage points


def test_from_config_rejects_allocation_outside_priority():
    config = ExperimentConfig.model_validate(
        {"name": "e", "metrics": METRICS, "allocation": {"vip": {"traffic": 0.5}}}
    )
    with pytest.raises(ValueError, match="not among segments"):
        AssignmentSpec.from_config(config, priority=["at_risk"])


def test_allocation_thresholds_are_exact_integer_cuts():
    alloc = Allocation.from_weights({"control": 1, "t": 3}, control="control", traffic=0.5)
    assert alloc.control == 2**30
    assert alloc.traffic == 2**31
    assert alloc.treatments == (("t", 2**32),)
    with pytest.raises(ValueError, match="need a 'control' arm"):
        Allocation.from_weights({"a": 1, "b": 1}, control="control", traffic=1.0)
