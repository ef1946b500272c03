"""The engine stage: the only Ibis code besides segments' compiler.

It opens a dataset (a Parquet folder, :mod:`~experiment.engine.dataset`, or any
source, :mod:`~experiment.engine.source`), builds the per-user table
(:mod:`~experiment.engine.users`, with :mod:`~experiment.engine.caps` and the
data-quality counts of :mod:`~experiment.engine.quality`) and reduces it to
sufficient statistics per (segment, arm, metric) in one query
(:mod:`~experiment.engine.cells`, which sums the users of each membership pattern
first, :mod:`~experiment.engine.cellquery`; a sequential experiment adds
:mod:`~experiment.engine.timeline`). Every query names and reads its moment
columns through :mod:`~experiment.engine.moments`. Nothing here tests anything:
the sums go to :mod:`experiment.analysis`.

The queries are portable Ibis: the same code runs on DuckDB, Spark and PostgreSQL
(``tests/engines/`` compares every number of results.json) and compiles for
Snowflake and BigQuery. The one engine-specific choice is made from the tables'
backend when a query is built: DuckDB's compensated ``fsum``
(:func:`~experiment.engine.fsum.fsum`). On DuckDB, Ibis loads only DuckDB's SQL
compiler (:mod:`~experiment.engine.compilers`). Results come back through
:mod:`~experiment.engine.fetch` (Arrow without importing pandas); the analysis
window and the assignments' ids and times are checked in
:mod:`~experiment.engine.window`.
"""

from experiment.engine.caps import cap_quantiles, with_quantile_caps
from experiment.engine.cells import aggregate
from experiment.engine.dataset import Dataset, open_dataset
from experiment.engine.filtered import cell_aggs, to_cells
from experiment.engine.moments import (
    Key,
    count_agg,
    moment_aggs,
    read_count,
    read_sums,
    stack_sums,
)
from experiment.engine.source import DataSource, open_source
from experiment.engine.users import ALL, UserTable, user_table
from experiment.sums import CellSums

__all__ = [
    "ALL",
    "CellSums",
    "DataSource",
    "Dataset",
    "Key",
    "UserTable",
    "aggregate",
    "cap_quantiles",
    "cell_aggs",
    "count_agg",
    "moment_aggs",
    "open_dataset",
    "open_source",
    "read_count",
    "read_sums",
    "stack_sums",
    "to_cells",
    "user_table",
    "with_quantile_caps",
]
