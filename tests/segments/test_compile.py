import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from experiment.errors import ConfigError, RuleError
from segments import membership, parse_segments


def _table(rng: int = 3, n: int = 2000) -> pa.Table:
    gen = np.random.default_rng(rng)
    orders = gen.poisson(1.2, n).astype(float)
    orders[gen.random(n) < 0.1] = np.nan
    return pa.table(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "orders_90d": pa.array(orders, from_pandas=True),
            "days_since_last_login": gen.integers(0, 90, n),
            "revenue_90d": gen.lognormal(3, 1, n),
            "device": gen.choice(["mobile", "desktop", "tablet"], n),
            "is_paid": gen.random(n) < 0.3,
        }
    )


RULES = {
    "at_risk": "days_since_last_login >= 14 and orders_90d == 0",
    "mobile_or_tablet": "device in ['mobile', 'tablet']",
    "not_mobile": "device not in ['mobile']",
    "vip": "revenue_90d > 60 or orders_90d >= 4",
    "lapsed_not_vip": "not (revenue_90d > 60) and 30 <= days_since_last_login < 60",
    "paid": "is_paid == True",
    "no_orders": "not orders_90d >= 1",
}


def _reference(df: pd.DataFrame) -> dict[str, np.ndarray]:
    o = df.orders_90d
    ok = o.notna()
    return {
        "at_risk": ((df.days_since_last_login >= 14) & (o == 0) & ok).to_numpy(),
        "mobile_or_tablet": df.device.isin(["mobile", "tablet"]).to_numpy(),
        "not_mobile": (~df.device.isin(["mobile"])).to_numpy(),
        "vip": ((df.revenue_90d > 60) | (ok & (o >= 4))).to_numpy(),
        "lapsed_not_vip": (
            ~(df.revenue_90d > 60)
            & (df.days_since_last_login >= 30)
            & (df.days_since_last_login < 60)
        ).to_numpy(),
        "paid": df.is_paid.to_numpy(),
        "no_orders": (
            ok & ~(o >= 1)
        ).to_numpy(),  # null orders: not a member (SQL three-valued logic)
    }


def test_membership_equals_pandas_reference():
    table = _table()
    seg = parse_segments(
        {"segments": [{"name": k, "where": v} for k, v in RULES.items()]}, source="s.yaml"
    )
    got = membership(table, seg)
    want = _reference(table.to_pandas())
    assert list(got) == list(RULES)
    for name in RULES:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        assert got[name].dtype == np.bool_


def test_membership_unknown_column_suggests_close_match():
    seg = parse_segments(
        {"segments": [{"name": "at_risk", "where": "logins_7 > 1"}]}, source="s.yaml"
    )
    table = _table().append_column("logins_7d", pa.array(np.zeros(2000)))
    with pytest.raises(
        RuleError,
        match=r"s.yaml: segment 'at_risk': unknown column 'logins_7'; did you mean 'logins_7d'\?",
    ):
        membership(table, seg)


def test_membership_unknown_column_lists_columns_when_nothing_is_close():
    seg = parse_segments({"segments": [{"name": "x", "where": "zzzzzz > 1"}]}, source="s.yaml")
    with pytest.raises(RuleError, match="columns are: user_id, orders_90d"):
        membership(_table(), seg)


@pytest.mark.parametrize(
    ("rule", "phrase"),
    [
        ("device > 3", "column 'device' is a string but is compared with number 3"),
        ("orders_90d == 'a'", "column 'orders_90d' is a number but is compared with string"),
        ("device in [1, 2]", "compared with number 1"),
    ],
)
def test_membership_type_mismatch_is_a_rule_error(rule, phrase):
    seg = parse_segments({"segments": [{"name": "x", "where": rule}]}, source="s.yaml")
    with pytest.raises(RuleError, match=phrase):
        membership(_table(), seg)


def test_parse_segments_names_the_segment_of_a_bad_rule():
    with pytest.raises(RuleError, match=r"^s.yaml: segment 'bad': function calls are not allowed"):
        parse_segments({"segments": [{"name": "bad", "where": "exec('1') == 1"}]}, source="s.yaml")


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        ({"segments": [{"name": "all", "where": "a == 1"}]}, "reserved"),
        ({"segments": [{"name": "a b", "where": "a == 1"}]}, "must start with a letter"),
        (
            {"segments": [{"name": "x"}]},
            "field 'segments\\[0\\]': each segment needs exactly one of",
        ),
        ({"segments": [{"where": "a == 1"}]}, "a 'where' segment needs a name"),
        ({"segments": [{"name": "x", "where": "a == 1", "cross": ["d"]}]}, "exactly one of"),
        ({"segments": [{"name": "rest", "where": "a == 1"}]}, "reserved"),
        ({"segments": [{"name": "x", "where": "a == 1"}], "min_size": 0}, "min_size"),
        (
            {"segments": [{"name": "c", "cluster": {"features": ["a"], "k": 1}}]},
            "k must be 'auto' or an integer",
        ),
        (
            {
                "segments": [
                    {
                        "name": "p",
                        "predict": {
                            "target": "a == 1",
                            "features": ["b"],
                            "bands": {"x": [0.5, 0.2]},
                        },
                    }
                ]
            },
            "0 <= low < high <= 1",
        ),
        (
            {"segments": [{"name": "x", "where": "a == 1"}], "lifecycle": {"dormant_days": 7}},
            "dormant_days must be greater",
        ),
        ({"segments": [{"name": "x", "where": "a == 1", "colour": 1}]}, "segments\\[0\\].colour"),
        ({"segments": []}, "field 'segments'"),
        (
            {"segments": [{"name": "x", "where": "a == 1"}, {"name": "x", "where": "a == 2"}]},
            "defined twice",
        ),
    ],
)
def test_parse_segments_config_errors(data, phrase):
    with pytest.raises(ConfigError, match=phrase):
        parse_segments(data, source="s.yaml")


@pytest.mark.parametrize("n", [2, 3, 7, 450])
def test_membership_of_long_or_and_and_chains_equals_pandas(n):
    table = _table()
    df = table.to_pandas()
    values = [f"orders_90d == {i}" for i in range(n)]
    rules = {
        "any": " or ".join(values),
        "every": " and ".join(f"revenue_90d > {i % 40}" for i in range(n)),
    }
    seg = parse_segments(
        {"segments": [{"name": k, "where": v} for k, v in rules.items()]}, source="s.yaml"
    )
    got = membership(table, seg)
    np.testing.assert_array_equal(got["any"], df.orders_90d.isin(range(n)).to_numpy())
    want_all = (df.revenue_90d > min(n - 1, 39)).to_numpy()
    np.testing.assert_array_equal(got["every"], want_all)


@pytest.mark.parametrize(
    ("rule", "member"),
    [
        ("orders_90d < 9223372036854775807", "ok"),
        ("orders_90d > -9223372036854775808", "ok"),
        ("revenue_90d < 1.7e308", "ok"),
    ],
)
def test_membership_accepts_the_int64_and_float_limits(rule, member):
    table = _table()
    seg = parse_segments({"segments": [{"name": member, "where": rule}]}, source="s.yaml")
    got = membership(table, seg)[member]
    assert got.sum() > 0
