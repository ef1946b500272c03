"""The engine stage: the only Ibis code besides segments' compiler.

It opens a dataset (:mod:`~experiment.engine.dataset`), builds the per-user table
(:mod:`~experiment.engine.users`) and reduces it to sufficient statistics per
(segment, arm, metric) in one query (:mod:`~experiment.engine.cells`). Nothing
here tests anything: the sums go to :mod:`experiment.analysis`.
"""

from experiment.engine.cells import aggregate, cell_aggs, to_cells
from experiment.engine.dataset import Dataset, open_dataset
from experiment.engine.users import ALL, UserTable, user_table
from experiment.sums import CellSums

__all__ = [
    "ALL",
    "CellSums",
    "Dataset",
    "UserTable",
    "aggregate",
    "cell_aggs",
    "open_dataset",
    "to_cells",
    "user_table",
]
