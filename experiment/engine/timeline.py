"""The sequential timeline: the cell sums per window day, cumulated up to each day's end.

A sequential experiment costs one query beyond the main one: per-user values
cumulated up to each window day, grouped by (day, arm), with one ``FILTER``-ed
group of moment columns per (segment, metric) (:func:`cell_aggs`), read back
into one :class:`~experiment.sums.CellSums` per day (:func:`to_cells`). Quantile
caps are the final analysis's caps, so the last day is the final analysis.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from experiment.engine.events import event_value, invalid, selects
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
    from experiment.engine.dataset import Dataset
    from experiment.engine.users import UserTable
    from experiment.sums import JointSums, MeanSums

__all__ = ["cell_aggs", "timeline", "to_cells"]


def cell_aggs(
    users: UserTable,
    config: ExperimentConfig,
    t: ir.Table | None = None,
) -> dict[str, Any]:
    """The FILTER-ed aggregates of every (segment, metric): count, means, variances, covariance.

    ``t`` (default: ``users.table``) has one row per user (or per user and day) with
    the per-user table's columns; the caller groups it by arm (and day).
    :func:`to_cells` reads the result back.
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


def _day_of(ts: ir.TimestampValue, start: Any) -> ir.IntegerValue:
    """Whole days since ``start``, floored (exact to the microsecond; negative before it)."""
    import ibis

    day: ir.IntegerValue = ts.delta(ibis.literal(start), unit="microsecond") // 86_400_000_000
    return day.cast("int64")


def timeline(
    dataset: Dataset, users: UserTable, config: ExperimentConfig
) -> tuple[tuple[str, CellSums], ...]:
    """Per window day (ISO date), the cell sums cumulated up to that day's end.

    ``users.caps`` must hold every cap (the final analysis's).
    """
    table = _query(dataset, users, config)
    return _days(table, users.segments, config, users.start, users.end)


def _daily(ev: ir.Table, users: UserTable, config: ExperimentConfig) -> tuple[ir.Table, list[str]]:
    """Per (user, day): each measure's count or value sum; and the measure columns."""
    aggs: dict[str, Any] = {}
    for metric in config.metrics:
        for measure in metric.measures:
            name = users.measure_cols[measure]
            if name in aggs:
                continue
            is_event = selects(ev, measure)
            if measure.value is None:
                aggs[name] = ev.count(where=is_event)
            else:
                value = event_value(ev, measure, metric)
                aggs[name] = value.sum(where=is_event & ~invalid(value))
    daily = ev.group_by(["user_id", "__day__"]).aggregate(**aggs)
    return daily.rename(__uid__="user_id", __d__="__day__"), list(aggs)


def _query(dataset: Dataset, users: UserTable, config: ExperimentConfig) -> Any:
    """One query: the cell aggregates per (arm, window day), cumulated up to each day's end.

    Post-exposure in-window events become per-(user, day) measures; a grid gives
    every user a row for each day from its assignment day on (users assigned after
    the window join on its last day, so that the last day is the final analysis);
    the grid LEFT JOINs the daily measures and a cumulative window sum per user
    turns them into per-user values up to that day. Rows: users × days at most.
    """
    import ibis
    import pyarrow as pa

    units, start, end = users.units, users.start, users.end
    days = config.window.days
    ev = dataset.events
    ev = ev.filter((ev.ts >= start) & (ev.ts < end))
    ev = ev.inner_join(units.select("user_id", "assigned_at"), "user_id")
    ev = ev.filter(ev.ts >= ev.assigned_at)
    ev = ev.mutate(__day__=_day_of(ev.ts, start))
    daily, measures = _daily(ev, users, config)

    calendar = ibis.memtable(pa.table({"__day__": pa.array(range(days), pa.int64())}))
    first = ibis.least(_day_of(units.assigned_at, start), days - 1)
    grid = units.mutate(__first__=first).cross_join(calendar)
    grid = grid.filter(grid["__day__"] >= grid["__first__"])
    g = grid.left_join(
        daily, (grid.user_id == daily["__uid__"]) & (grid["__day__"] == daily["__d__"])
    )
    per_user = ibis.window(group_by=g.user_id, order_by=g["__day__"], preceding=None, following=0)
    g = g.select(
        "user_id",
        "arm",
        "arms_seen",
        "__day__",
        **{c: g[c].fill_null(0).sum().over(per_user) for c in measures},
    )
    g = g.left_join(users.members, g.user_id == users.members.user_id).drop("user_id_right")
    cell = cell_aggs(users, config, g)
    return g.group_by(["__day__", "arm"]).aggregate(**cell).to_pyarrow()


def _days(
    table: Any, segments: tuple[str, ...], config: ExperimentConfig, start: Any, end: Any
) -> tuple[tuple[str, CellSums], ...]:
    """Split the per-(day, arm) table into one :class:`CellSums` per day."""
    import pyarrow.compute as pc

    out = []
    for d in range(config.window.days):
        day_end = min(start + dt.timedelta(days=d + 1), end)
        part = table.filter(pc.equal(table.column("__day__"), d))
        date = (start + dt.timedelta(days=d)).date().isoformat()
        out.append((date, to_cells(part, segments, config, start, day_end)))
    return tuple(out)
