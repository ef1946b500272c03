import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from experiment.errors import RuleError
from segments import SegmentSet, membership, parse_segments
from segments.rules import (
    Between,
    Column,
    DaysSince,
    NullCheck,
    SegmentRef,
    parse_rule,
    segments_of,
)
from tests.fixtures.rules import lifecycle_reference, reference_membership

AS_OF = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _table(n: int = 3000, rng: int = 5) -> pa.Table:
    gen = np.random.default_rng(rng)
    seconds = gen.integers(0, 400 * 86400, n)
    signup = [
        AS_OF - dt.timedelta(seconds=int(s), microseconds=int(u))
        for s, u in zip(seconds, gen.integers(0, 10**6, n), strict=True)
    ]
    revenue = gen.lognormal(3, 1.2, n) * (gen.random(n) < 0.6)
    revenue[gen.random(n) < 0.05] = np.nan
    recency = gen.integers(0, 120, n).astype(float)
    recency[gen.random(n) < 0.03] = np.nan
    return pa.table(
        {
            "user_id": [f"u{i:05d}" for i in range(n)],
            "signup_at": pa.array(signup, pa.timestamp("us", tz="UTC")),
            "days_since_last_login": pa.array(recency, pa.float64(), from_pandas=True),
            "revenue_90d": pa.array(revenue, from_pandas=True),
            "orders_90d": gen.poisson(1.0, n),
            "logins_7d": gen.poisson(2.0, n),
            "device": gen.choice(["mobile", "desktop", "tablet"], n, p=[0.55, 0.4, 0.05]),
            "country": pa.array(
                [
                    None if x < 0.05 else c
                    for x, c in zip(gen.random(n), gen.choice(["US", "DE", "FR"], n), strict=True)
                ]
            ),
        }
    )


RULES = {
    "vip": "lifecycle == 'vip'",
    "new_mobile": "days_since(signup_at) <= 30 and device == 'mobile'",
    "recent_signup": "between(days_since(signup_at), 7, 60)",
    "lapsed": "between(days_since_last_login, 14, 60)",
    "no_country": "is_null(country)",
    "has_country_not_us": "not_null(country) and country not in ['US']",
    "vip_not_lapsed": "segment('vip') and not segment('lapsed')",
    "nested": "segment('vip_not_lapsed') or (orders_90d >= 3 and not (device in ['tablet']))",
    "stage_risky": "lifecycle in ['at_risk', 'dormant'] or revenue_90d < 5",
    "chained": "1 <= orders_90d < 3 and logins_7d != 0",
}


def _set(rules: dict[str, str], **extra) -> SegmentSet:
    return parse_segments(
        {"segments": [{"name": k, "where": v} for k, v in rules.items()], **extra}, source="s.yaml"
    )


def test_parse_rule_functions_build_typed_nodes():
    node = parse_rule("between(days_since(signup_at), 0, 30)")
    assert isinstance(node, Between)
    assert isinstance(node.value, DaysSince)
    assert parse_rule("not_null(x)") == NullCheck(Column("x", 9), negate=True)
    assert parse_rule("is_null(x)") == NullCheck(Column("x", 8), negate=False)
    assert segments_of(parse_rule("segment('a') and not segment(\"b\")")) == ["a", "b"]
    assert isinstance(parse_rule("segment('a')"), SegmentRef)


@pytest.mark.parametrize(
    ("rule", "phrase"),
    [
        ("eval('1') == 1", "the only functions are"),
        ("days_since(signup_at)", "is a value"),
        ("days_since('x') > 1", "needs a column name"),
        ("segment(vip)", "quoted name"),
        ("between(a, 1)", "takes 3 argument"),
        ("between(a, b, 3)", "bounds must be constants"),
        ("is_null(a, b)", "takes 1 argument"),
        ("segment('a') == 1", "is a condition, not a value"),
        ("days_since(x, key=1) > 1", "plain positional"),
    ],
)
def test_parse_rule_rejects_bad_function_use(rule, phrase):
    with pytest.raises(RuleError, match=phrase) as info:
        parse_rule(rule)
    assert "\n" not in str(info.value)


def test_membership_full_language_equals_pandas_reference():
    table = _table()
    seg = _set(RULES)
    got = membership(table, seg, as_of=AS_OF)
    ref = reference_membership(table.to_pandas(), seg, AS_OF)
    assert list(got) == list(RULES)
    for name in RULES:
        assert 0 < got[name].sum() < table.num_rows, name
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)


def test_lifecycle_stages_equal_reference_and_are_configurable():
    table = _table()
    df = table.to_pandas()
    for extra in (
        {},
        {"lifecycle": {"new_days": 60, "vip_share": 0.1, "at_risk_signals": "logins_7d == 0"}},
    ):
        rules = {
            f"is_{s}": f"lifecycle == '{s}'" for s in ("new", "dormant", "at_risk", "vip", "active")
        }
        seg = _set(rules, **extra)
        got = membership(table, seg, as_of=AS_OF)
        stage = lifecycle_reference(df, seg.lifecycle, AS_OF)
        total = np.zeros(len(df), int)
        for name, mask in got.items():
            np.testing.assert_array_equal(mask, (stage == name[3:]).to_numpy(bool), err_msg=name)
            total += mask
        assert (total == 1).all()  # the stages partition the customers


def test_cross_skips_small_cells_and_equals_reference():
    table = _table()
    seg = parse_segments(
        {"segments": [{"cross": ["lifecycle", "device"]}], "min_size": 60}, source="s.yaml"
    )
    got = membership(table, seg, as_of=AS_OF)
    ref = reference_membership(table.to_pandas(), seg, AS_OF)
    assert set(got) == set(ref)
    assert all(name.startswith("lifecycle_device_") for name in got)
    for name in ref:
        assert got[name].sum() >= 60
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
    # some combination (tablet) falls under the floor and is skipped
    assert len(got) < 5 * 3


def test_exclusive_set_is_first_match_wins_plus_rest():
    table = _table()
    rules = {
        "vip": "lifecycle == 'vip'",
        "mobile": "device == 'mobile'",
        "lapsed": "days_since_last_login >= 14",
    }
    overlapping = membership(table, _set(rules), as_of=AS_OF)
    exclusive = membership(table, _set(rules, exclusive=True), as_of=AS_OF)
    assert list(exclusive) == [*rules, "rest"]
    stacked = np.stack(list(exclusive.values()))
    assert (stacked.sum(axis=0) == 1).all()
    np.testing.assert_array_equal(exclusive["vip"], overlapping["vip"])
    np.testing.assert_array_equal(exclusive["mobile"], overlapping["mobile"] & ~overlapping["vip"])
    assert (overlapping["vip"] & overlapping["mobile"]).any()


@pytest.mark.parametrize(
    ("rules", "phrase"),
    [
        ({"a": "segment('b')", "b": "segment('a')"}, "cycle: a -> b -> a"),
        ({"a": "segment('a') or orders_90d > 1"}, "cycle: a -> a"),
        ({"a": "segment('vipp')", "vip": "orders_90d > 1"}, "did you mean 'vip'"),
        ({"a": "lifecycle == 'vipp'"}, "unknown lifecycle stage 'vipp'"),
        ({"a": "days_since(device) > 3"}, "needs a timestamp or date column"),
        ({"a": "days_since(signup_at) > 'x'"}, "days_since\\(signup_at\\) is a number"),
        ({"a": "revenu_90d > 3"}, "did you mean 'revenue_90d'"),
        ({"a": "between(device, 1, 2)"}, "is a string but is compared with number"),
        ({"a": "orders_90d > device"}, "compared with column 'device'"),
    ],
)
def test_compile_errors_name_file_segment_and_fix(rules, phrase):
    with pytest.raises(RuleError, match=phrase) as info:
        membership(_table(200), _set(rules), as_of=AS_OF)
    assert str(info.value).startswith("s.yaml: segment 'a': ")
    assert "\n" not in str(info.value)


def test_days_since_without_as_of_is_a_rule_error():
    with pytest.raises(RuleError, match="needs the analysis start"):
        membership(_table(50), _set({"a": "days_since(signup_at) < 3"}))


def test_cross_with_too_many_values_is_refused():
    with pytest.raises(RuleError, match="more than 50 values"):
        membership(
            _table(300),
            parse_segments({"segments": [{"cross": ["user_id"]}]}, source="s.yaml"),
            as_of=AS_OF,
        )


def test_lifecycle_family_is_a_one_column_cross():
    table = _table()
    seg = parse_segments({"segments": [{"cross": ["lifecycle"]}], "min_size": 1}, source="s.yaml")
    got = membership(table, seg, as_of=AS_OF)
    stage = lifecycle_reference(table.to_pandas(), seg.lifecycle, AS_OF)
    assert set(got) == {f"lifecycle_{s}" for s in stage.unique()}
    for name, mask in got.items():
        np.testing.assert_array_equal(
            mask, (stage == name.removeprefix("lifecycle_")).to_numpy(bool)
        )
