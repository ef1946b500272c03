"""Table names for ``--to-table``: dotted identifiers only, split for Ibis."""

import ibis
import pytest

from experiment.engine.assign_write import table_target
from experiment.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "table", "database"),
    [
        ("assignments", "assignments", None),
        ("public.assignments", "assignments", "public"),
        ("cat.sch._t9", "_t9", ("cat", "sch")),
    ],
)
def test_table_target_splits_dotted_names(name, table, database):
    target = table_target(ibis.duckdb.connect(), name)
    assert (target.name, target.database, target.label) == (table, database, name)


@pytest.mark.parametrize(
    "name",
    ["", "1x", "a..b", "a.b.c.d", "x; drop table y", 'a"b', "a b", "t-1", "naïve", "a.", ".a"],
)
def test_table_target_rejects_anything_but_dotted_identifiers(name):
    with pytest.raises(ConfigError, match="not a table name"):
        table_target(ibis.duckdb.connect(), name)
