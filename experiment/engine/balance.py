"""Pre-exposure balance covariates: which customers columns, and their moments per cell.

The balance check compares, per (segment, arm), covariates fixed before
assignment. They are the metrics' CUPED covariates and the numeric (and boolean,
as 0/1) customers columns that the segments file's rules, cluster and predictive
features read: columns the user has declared pre-period by building the
analysis on them, and those whose imbalance would bias a segment's lift. Other
customers columns are not read (a customers snapshot may hold columns refreshed
after assignment, which would flag a true effect as an imbalance), nor are
strings and timestamps.

The moments come from the main (segment, arm) query of
:mod:`experiment.engine.cells` (one mean and one variance per column and cell,
named by :mod:`experiment.engine.moments` under the key ``(-1, k)``); a CUPED
covariate's moments are already there, in the metric's joint sums.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiment.engine.moments import moment_aggs, read_sums
from experiment.sums import JointSums, MeanSums
from segments.rules import columns_of

if TYPE_CHECKING:
    from collections.abc import Callable

    import ibis.expr.types as ir
    import numpy as np
    from numpy.typing import NDArray

    from experiment.config import ExperimentConfig
    from segments.definitions import SegmentSet

__all__ = ["balance_aggs", "balance_columns", "read_balance"]


def balance_columns(
    customers: ir.Table, config: ExperimentConfig, segment_set: SegmentSet | None
) -> tuple[str, ...]:
    """The covariates the balance check compares: CUPED columns, then the segments' columns.

    Only numeric and boolean customers columns count; ``user_id`` never does.
    """
    names = [m.cuped for m in config.metrics if m.cuped is not None]
    for entry in segment_set.segments if segment_set is not None else ():
        if entry.rule is not None:
            names += [name for name, _ in columns_of(entry.rule)]
        for spec in (entry.cluster, entry.predict):
            names += list(spec.features) if spec is not None else []
    schema = customers.schema()
    return tuple(
        name
        for name in dict.fromkeys(names)
        if name in schema
        and name != "user_id"
        and (schema[name].is_numeric() or schema[name].is_boolean())
    )


def _key(k: int) -> tuple[int, int]:
    """Moment-column key of balance covariate ``k`` (metrics use ``(mi,)``: no clash)."""
    return (-1, k)


def balance_aggs(
    values: dict[int, ir.NumericColumn], *, welford: bool = True
) -> dict[str, ir.Scalar]:
    """Mean and population variance of each balance covariate ``k`` (its per-user column).

    ``welford``: as :func:`~experiment.engine.moments.moment_aggs`.
    """
    aggs: dict[str, ir.Scalar] = {}
    for k, value in values.items():
        aggs.update(moment_aggs(value, key=_key(k), welford=welford))
    return aggs


def read_balance(
    column: Callable[[str], NDArray[np.float64]],
    *,
    n: NDArray[np.float64],
    names: tuple[str, ...],
    cuped: dict[str, JointSums],
    config: ExperimentConfig,
) -> dict[str, MeanSums]:
    """Each balance covariate's sums per (segment, arm), by column name.

    A CUPED covariate's are its metric's joint sums' ``x`` margin (the same
    per-user values over the same users); the others are read from ``column``.
    """
    from_cuped = {m.cuped: cuped[m.name].x for m in config.metrics if m.cuped and m.name in cuped}
    out: dict[str, MeanSums] = {}
    for k, name in enumerate(names):
        if name in from_cuped:
            out[name] = from_cuped[name]
            continue
        sums = read_sums(column, key=_key(k), n=n, joint=False)
        if not isinstance(sums, MeanSums):
            raise RuntimeError("Mean sums expected.")
        out[name] = sums
    return out
