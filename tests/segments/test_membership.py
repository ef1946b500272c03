"""Segments that silently mislead: duplicates and rule values no customer has."""

import ibis
import numpy as np
import pyarrow as pa

from segments.compile import compile_segments
from segments.definitions import parse_segments
from segments.membership import absent_categories, duplicates, fingerprints


def _table(n: int = 2000, rng: int = 0) -> pa.Table:
    gen = np.random.default_rng(rng)
    return pa.table(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "tier": gen.choice(["bronze", "silver", "gold"], n),
            "orders": gen.integers(0, 5, n),
        }
    )


def _set(rules: dict[str, str]):
    return parse_segments(
        {"segments": [{"name": k, "where": v} for k, v in rules.items()]}, source="s.yaml"
    )


RULES = {
    "a": "orders >= 2",
    "b": "orders > 1",  # the members of a, written another way
    "c": "orders >= 2 and tier != 'gold'",
    "d": "tier in ['gold', 'silver']",
    "e": "tier != 'bronze'",  # the members of d
    "f": "orders >= 3",
}


def test_duplicates_match_a_pandas_reference_of_member_sets():
    data = _table()
    t = ibis.memtable(data)
    masks = compile_segments(_set(RULES), t)
    row = t.aggregate(**fingerprints(t, masks)).to_pyarrow().to_pylist()[0]
    df = data.to_pandas()
    members = {
        "a": df.orders >= 2,
        "b": df.orders > 1,
        "c": (df.orders >= 2) & (df.tier != "gold"),
        "d": df.tier.isin(["gold", "silver"]),
        "e": df.tier != "bronze",
        "f": df.orders >= 3,
    }
    ids = {k: frozenset(df.user_id[m]) for k, m in members.items()}
    want = {}
    for k, name in enumerate(ids):
        first = next((p for p in list(ids)[:k] if ids[p] == ids[name]), None)
        if first is not None:
            want[name] = first
    assert duplicates(list(masks), row) == want == {"b": "a", "e": "d"}


def test_no_member_no_duplicate():
    t = ibis.memtable(_table(100))
    masks = compile_segments(_set({"x": "orders > 99", "y": "orders < -1"}), t)
    row = t.aggregate(**fingerprints(t, masks)).to_pyarrow().to_pylist()[0]
    assert duplicates(list(masks), row) == {}


def test_absent_categories_name_segment_value_and_close_match():
    t = ibis.memtable(_table())
    rules = {
        "typo": "tier in ['bronz', 'gold']",
        "ok": "tier == 'silver'",
        "negated": "not (tier != 'platinum')",
        "numeric": "orders == 3",
    }
    found = absent_categories(t, _set(rules))
    assert len(found) == 2
    platinum, bronz = found  # sorted by segment name
    assert "segment 'negated': value 'platinum' never occurs in column 'tier'" in platinum
    assert "did you mean" not in platinum
    assert bronz.startswith("s.yaml: segment 'typo': value 'bronz' never occurs")
    assert "did you mean 'bronze'? values present: 'bronze', 'gold', 'silver'" in bronz


def test_absent_categories_ignores_nulls():
    t = ibis.memtable(pa.table({"user_id": ["a", "b"], "tier": [None, "gold"]}))
    assert absent_categories(t, _set({"g": "tier == 'gold'"})) == ()
