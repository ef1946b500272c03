"""The run's segment and ``where:`` masks (one query on a view) against a pandas reference."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

import simulators
from experiment.errors import RuleError
from segments import parse_segments
from simulators.catalog import load_scenario
from simulators.cohort import build_cohort
from simulators.masks import connect, customer_masks
from simulators.scenario import EffectSpec
from tests.fixtures.rules import exclusive_reference

AS_OF = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize("scenario", simulators.builtin_scenarios())
def test_cohort_members_equal_a_pandas_reference_on_every_scenario(scenario):
    loaded = load_scenario(scenario)
    cohort = build_cohort(loaded, 2000, 11, None)
    segment_set = loaded.segment_set
    if {s.kind for s in segment_set.segments} - {"rule", "cross"}:
        pytest.skip("model segments are covered by tests/segments/test_models.py")
    df = cohort.customers.to_pandas()
    ref = exclusive_reference(df, segment_set, loaded.config.start)
    assert list(cohort.members) == ["all", *ref]
    assert cohort.members["all"].all()
    for name, mask in ref.items():
        np.testing.assert_array_equal(cohort.members[name], mask, err_msg=f"{scenario}: {name}")
    assert any(0 < m.sum() < len(df) for m in cohort.members.values())  # not all trivially empty


def _customers(n: int = 3000) -> pa.Table:
    rng = np.random.default_rng(5)
    ps = rng.random(n)
    ps[::7] = np.nan  # nulls: no match in a compared column
    return pa.table(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "price_sensitivity": pa.array(ps, from_pandas=True),
            "sessions_30d": rng.integers(0, 20, n),
            "country": rng.choice(["US", "DE", "FR"], n),
        }
    )


def test_segments_and_where_rules_come_back_in_row_order_in_one_query():
    table = _customers()
    df = table.to_pandas()
    segment_set = parse_segments(
        {"segments": [{"name": "engaged", "where": "sessions_30d >= 8"}]}, source="s.yaml"
    )
    effects = [
        EffectSpec(segment="all", purchase=0.2),
        EffectSpec(segment="engaged", where='segment("engaged") and country == "US"', ctr=0.1),
        EffectSpec(segment="all", where="price_sensitivity >= 0.5", purchase=0.5),
    ]
    masks = customer_masks(table, segment_set, effects, as_of=AS_OF, con=connect())
    engaged = (df.sessions_30d >= 8).to_numpy()
    np.testing.assert_array_equal(masks.members["engaged"], engaged)
    assert masks.where[0] is None
    np.testing.assert_array_equal(masks.where[1], engaged & (df.country == "US").to_numpy())
    np.testing.assert_array_equal(masks.where[2], (df.price_sensitivity >= 0.5).to_numpy())


def test_a_bad_where_rule_is_a_rule_error():
    segment_set = parse_segments(
        {"segments": [{"name": "a", "where": "sessions_30d > 1"}]}, source="s.yaml"
    )
    effects = [EffectSpec(segment="a", where="no_such_column > 1", ctr=0.1)]
    with pytest.raises(RuleError, match="no_such_column"):
        customer_masks(_customers(10), segment_set, effects, as_of=AS_OF)
