"""Candidate attributes leave out ``__name__`` columns (pandas' index, our own column names)."""

from __future__ import annotations

import ibis
import pytest

from experiment.errors import ConfigError
from segments.refine.candidates import attribute_kinds

CUSTOMERS = ibis.memtable(
    {
        "user_id": ["a", "b"],
        "device": ["mobile", "desktop"],
        "orders_90d": [1, 2],
        "__uid__": [1, 2],
        "__index_level_0__": [0, 1],
        "__y__": [0.5, 1.5],
    }
)


def test_default_attributes_skip_double_underscore_columns():
    assert attribute_kinds(CUSTOMERS, None) == {"device": "categorical", "orders_90d": "integer"}


def test_a_requested_double_underscore_column_is_refused_by_name():
    pattern = r"'__uid__' is reserved .* columns are: device, orders_90d$"
    with pytest.raises(ConfigError, match=pattern):
        attribute_kinds(CUSTOMERS, ["__uid__"])
