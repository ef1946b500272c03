"""The FILTER-ed cell moments: one group of moment columns per (segment, metric).

The form of :mod:`experiment.engine.cells`' query before it unnested segment
memberships (and of the sequential timeline before it dropped the users × days
grid): a table with one row per user, grouped by arm (or more keys), with a
``FILTER``-ed count, means, variances and covariance per (segment, metric)
(:func:`cell_aggs`), read back into :class:`~experiment.sums.CellSums` by
:func:`to_cells`. Kept for scans that group by arm only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from experiment.engine.moments import (
    count_agg,
    metric_sums,
    moment_aggs,
    read_count,
    read_sums,
    stack_sums,
)
from experiment.sums import CellSums

if TYPE_CHECKING:
    import ibis.expr.types as ir
    from numpy.typing import NDArray

    from experiment.config import ExperimentConfig
    from experiment.engine.users import UserTable
    from experiment.sums import JointSums, MeanSums

__all__ = ["cell_aggs", "to_cells"]


def cell_aggs(
    users: UserTable,
    config: ExperimentConfig,
    t: ir.Table | None = None,
) -> dict[str, Any]:
    """The FILTER-ed aggregates of every (segment, metric): count, means, variances, covariance.

    ``t`` (default: ``users.table``) has one row per user with the per-user
    table's columns; the caller groups it (by arm). :func:`to_cells` reads the
    result back.
    """
    t = users.table if t is None else t
    aggs: dict[str, Any] = {}
    for si in range(len(users.segments)):
        mask = users.in_segment(si, t)
        aggs.update(count_agg(t, key=(si,), where=mask))
        for mi, metric in enumerate(config.metrics):
            cols = users.metric_columns(metric, t)
            x = cols[1] if len(cols) == 2 else None
            aggs.update(moment_aggs(cols[0], x, key=(si, mi), where=mask))
    return aggs


def to_cells(
    table: Any, segments: tuple[str, ...], config: ExperimentConfig, start: Any, end: Any
) -> CellSums:
    """Read :func:`cell_aggs` results (one row per arm) back into :class:`CellSums`."""
    arms = tuple(config.arms)
    row_of = {arm: i for i, arm in enumerate(table.column("arm").to_pylist())}

    def column(name: str) -> NDArray[np.float64]:
        col = table.column(name).to_pylist()
        out = np.full(len(arms), np.nan)
        for j, arm in enumerate(arms):
            if arm in row_of and col[row_of[arm]] is not None:
                out[j] = col[row_of[arm]]
        return out

    n = [read_count(column, key=(si,)) for si in range(len(segments))]

    def read(mi: int, joint: bool) -> MeanSums | JointSums:
        return stack_sums(
            [read_sums(column, key=(si, mi), n=n[si], joint=joint) for si in range(len(segments))]
        )

    metrics, cuped = metric_sums(config, read)
    return CellSums(
        segments=segments,
        arms=arms,
        units=np.stack(n),
        metrics=metrics,
        window_start=start,
        window_end=end,
        cuped=cuped,
    )
