"""DuckDB's hashed arms are those of the assignment contract (``assign_many``, hashlib MD5)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from experiment.assignment import assign_many
from simulators.arms import arm_index
from simulators.history import user_ids
from simulators.masks import connect


@pytest.mark.parametrize(
    "arms",
    [
        {"control": 0.5, "treatment": 0.5},
        {"control": 1.0, "treatment": 2.0, "flat": 1.0},
        {"b": 0.2, "a": 0.8},
    ],
)
def test_arm_index_equals_assign_many(arms: dict[str, float]):
    ids = user_ids(20_000)
    salt = "it's a 'salt'; -- with quotes"
    expected = assign_many(ids.to_pylist(), salt=salt, arms=arms)
    got = np.asarray(list(arms))[arm_index(ids, salt=salt, arms=arms)]
    np.testing.assert_array_equal(got, expected)
    assert len(set(got)) == len(arms)


def test_arm_index_of_other_ids():
    ids = pa.array(["user-1", "ü-2", "x"])
    arms = {"control": 1.0, "treatment": 1.0}
    expected = assign_many(ids.to_pylist(), salt="winback", arms=arms)
    np.testing.assert_array_equal(
        np.asarray(list(arms))[arm_index(ids, salt="winback", arms=arms)], expected
    )


def test_arm_index_on_a_given_connection_leaves_it_open_for_the_next_query():
    ids = user_ids(5_000)
    arms = {"control": 1.0, "treatment": 1.0}
    con = connect()
    try:
        first = arm_index(ids, salt="s1", arms=arms, con=con)
        second = arm_index(ids, salt="s2", arms=arms, con=con)  # the view is replaced
        assert con.raw_sql("SELECT 1").fetchall() == [(1,)]
    finally:
        con.disconnect()
    names = np.asarray(list(arms))
    np.testing.assert_array_equal(names[first], assign_many(ids.to_pylist(), salt="s1", arms=arms))
    np.testing.assert_array_equal(names[second], assign_many(ids.to_pylist(), salt="s2", arms=arms))
