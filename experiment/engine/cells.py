"""Data access: reduce a dataset to sufficient statistics per (segment, arm, metric).

Everything heavy happens in the query engine. Segment rules and metric
definitions compile to Ibis expressions; one query repeats each user's row once
per segment it belongs to and groups by (segment, arm), scanning the per-user
table once, and returns a handful of numbers per cell: the count, the mean and
the population variance (and, for ratio metrics, the covariance) of each per-user
metric. Those become centred moments in :mod:`experiment.sums`; no Python loop
touches a user or an event. The same query counts what the data-quality checks
report per user (events before assignment, users seen in two arms or with
duplicate or no customer rows) and the units per allocation stratum for the
per-segment SRM; one scan of the events counts those outside the window and the
invalid metric values (:mod:`experiment.engine.users`). :func:`cell_aggs` gives the same
cell sums as ``FILTER``-ed aggregates for callers that group the per-user table
their own way.

A metric with a CUPED covariate (``cuped: revenue_90d``) also gets, in the same
aggregate, the covariate's mean and variance and its covariance with the metric
(:class:`JointSums` in ``CellSums.cuped``); the covariate is a customers column,
joined beside the segment flags. A metric with a quantile ``cap`` gets its cap
(the quantile over all analysed users) from a one-row query over the per-user
table, which is then written once to a temporary table that both queries read. A
sequential experiment costs one more query: the same aggregates per (arm, window
day) on per-user values cumulated up to each day (``CellSums.timeline``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.engine.users import (
    ALL,
    CAP,
    NCUST,
    QUALITY_COLUMNS,
    QUALITY_EVENTS,
    STRATUM,
    Q,
    UserTable,
    cap_quantiles,
    event_value,
    invalid,
    selects,
    user_table,
)
from experiment.plan import kind_plan
from experiment.sums import CellSums, JointSums, MeanSums, QualityCounts

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from experiment.engine.dataset import Dataset
    from segments.definitions import SegmentSet

__all__ = ["ALL", "CellSums", "aggregate", "cell_aggs", "to_cells"]

# Private names of engine-side columns; indices, never user text, go into them.
_N = "__n__{}__"
_MEAN = "__mean__{}__{}__{}__"  # segment, metric, y|x
_VAR = "__var__{}__{}__{}__"
_COV = "__cov__{}__{}__"
_STRATUM_N = "__stratum__{}__{}__"  # segment, stratum


def cell_aggs(
    users: UserTable,
    config: ExperimentConfig,
    t: ir.Table | None = None,
    *,
    extra: ir.BooleanValue | None = None,
) -> dict[str, Any]:
    """The FILTER-ed aggregates of every (segment, metric): count, means, variances, covariance.

    ``t`` (default: ``users.table``) has one row per user (or per user and day) with
    the per-user table's columns; the caller groups it by arm (and day, or sample
    half and attribute bin). ``extra`` narrows every segment further (a refinement's
    candidate side). :func:`to_cells` reads the result back.
    """
    t = users.table if t is None else t
    aggs: dict[str, Any] = {}
    for si in range(len(users.segments)):
        mask = users.in_segment(si, t)
        mask = mask if extra is None else mask & extra
        aggs[_N.format(si)] = t.count(where=mask)
        for mi, metric in enumerate(config.metrics):
            cols = users.metric_columns(metric, t)
            for part, col in zip("yx", cols, strict=False):
                aggs[_MEAN.format(si, mi, part)] = col.mean(where=mask)
                aggs[_VAR.format(si, mi, part)] = col.var(how="pop", where=mask)
            if len(cols) == 2:
                aggs[_COV.format(si, mi)] = cols[0].cov(cols[1], how="pop", where=mask)
    return aggs


def _day_of(ts: ir.TimestampValue, start: Any) -> ir.IntegerValue:
    """Whole days since ``start``, floored (exact to the microsecond; negative before it)."""
    import ibis

    day: ir.IntegerValue = ts.delta(ibis.literal(start), unit="microsecond") // 86_400_000_000
    return day.cast("int64")


def _timeline(dataset: Dataset, users: UserTable, config: ExperimentConfig) -> Any:
    """One query: the cell aggregates per (arm, window day), cumulated up to each day's end.

    Post-exposure in-window events become per-(user, day) measures; a grid gives
    every user a row for each day from its assignment day on (users assigned after
    the window join on its last day, so that the last day is the final analysis);
    the grid LEFT JOINs the daily measures and a cumulative window sum per user
    turns them into per-user values up to that day. Rows: users × days at most.
    Quantile caps are the final analysis's caps.
    """
    import ibis
    import pyarrow as pa

    units, measure_cols = users.units, users.measure_cols
    start, end = users.start, users.end
    days = config.window.days
    ev = dataset.events
    ev = ev.filter((ev.ts >= start) & (ev.ts < end))
    ev = ev.inner_join(units.select("user_id", "assigned_at"), "user_id")
    ev = ev.filter(ev.ts >= ev.assigned_at)
    ev = ev.mutate(__day__=_day_of(ev.ts, start))
    aggs: dict[str, Any] = {}
    for metric in config.metrics:
        for measure in metric.measures:
            name = measure_cols[measure]
            if name in aggs:
                continue
            is_event = selects(ev, measure)
            if measure.value is None:
                aggs[name] = ev.count(where=is_event)
            else:
                value = event_value(ev, measure, metric)
                aggs[name] = value.sum(where=is_event & ~invalid(value))
    daily = ev.group_by(["user_id", "__day__"]).aggregate(**aggs)
    daily = daily.rename(__uid__="user_id", __d__="__day__")

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
        **{c: g[c].fill_null(0).sum().over(per_user) for c in aggs},
    )
    g = g.left_join(users.members, g.user_id == users.members.user_id).drop("user_id_right")
    cell = cell_aggs(users, config, g)
    return g.group_by(["__day__", "arm"]).aggregate(**cell).to_pyarrow()


def _timeline_cells(
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


def aggregate(
    dataset: Dataset, config: ExperimentConfig, segment_set: SegmentSet | None
) -> CellSums:
    """Reduce the dataset to :class:`CellSums` in the engine.

    Raises:
        DataError: no assignments for the experiment.
        RuleError: a segment rule does not fit the customers table.
        ConfigError: a metric names a column the events table lacks, a CUPED
            covariate that is not a numeric customers column, or an allocation
            names a segment the segments file lacks.
    """
    _tune(dataset)
    users = user_table(dataset, config, segment_set, quantile_caps=False)
    segments, strata = users.segments, users.strata
    table, caps = _cell_table(users, config)
    start, end = users.start, users.end
    cells = to_cells(table, segments, config, start, end)
    if config.sequential:  # the timeline caps at the final analysis's caps
        timeline = _timeline(dataset, replace(users, caps=caps), config)
        cells = replace(cells, timeline=_timeline_cells(timeline, segments, config, start, end))
    total = {
        name: int(np.nansum(table.column(name).to_numpy(zero_copy_only=False)))
        for name in table.column_names
        if name.startswith("__q__")
    }
    quality = QualityCounts(
        events_outside_window=users.outside,
        **{
            f: total[Q.format(f)]
            for f in (
                "multiple_arms",
                "duplicate_customers",
                "assignments_without_customer",
                *QUALITY_EVENTS,
            )
        },
        invalid_revenue=users.invalid_values,
        revenue_values=users.values,
        value_columns=users.value_columns,
    )
    strata_units = _strata_units(table, cells, strata) if len(strata) > 1 else None
    return replace(cells, strata=strata, strata_units=strata_units, quality=quality, caps=caps)


def _tune(dataset: Dataset) -> None:
    """DuckDB settings for one big aggregate: no row order to keep (less memory).

    The memory limit stays the connection's (DuckDB's default is 80% of RAM): a
    caller that needs a bound opens the dataset with ``memory_limit``, and DuckDB
    spills beyond it (at 10M users, 1.5 GiB keeps peak RSS under 2 GB for about
    10 s more; see README "Benchmarks").
    """
    if dataset.con.name == "duckdb":
        dataset.con.raw_sql("SET preserve_insertion_order = false").fetchall()


def _cell_table(users: UserTable, config: ExperimentConfig) -> tuple[Any, dict[str, float]]:
    """The main query: every cell's sums, quality and stratum counts; and the caps.

    Each user's row is repeated once per segment it belongs to (an unnested list
    of segment indices: ``0`` for ``all``, ``-1`` for every assigned user, valid or
    not, which carries the quality counts), then one plain ``GROUP BY segment,
    arm`` computes count, means, variances and covariances: no per-segment
    ``FILTER`` re-evaluates the metric expressions. The result is pivoted to
    :func:`cell_aggs`' layout (one row per arm) for :func:`to_cells`.

    A quantile cap needs every user's value before any capped sum. Inlined, it is
    a window over the whole per-user query (DuckDB then holds every row and column
    in memory) and Ibis repeats that query rather than share it; so with quantile
    caps the per-user table is written once to a temporary table, read by a
    one-row cap query cross joined to it, and dropped.
    """
    if cap_quantiles(users, config) is None:
        return _cell_rows(users, config)
    with users.table.drop("user_id").cache() as cached:
        caps = cap_quantiles(replace(users, table=cached), config)
        t = cached if caps is None else cached.cross_join(caps)
        return _cell_rows(replace(users, table=t), config)


def _cell_rows(users: UserTable, config: ExperimentConfig) -> tuple[Any, dict[str, float]]:
    """The query of :func:`_cell_table` on ``users.table``.

    A column ``CAP.format(mi)`` of the table, where present, caps metric ``mi``.
    """
    import ibis

    t, strata = users.table, users.strata
    valid = users.valid(t)
    cols: dict[str, Any] = {}
    stats: dict[str, tuple[str, Any]] = {}  # query name: (cell_aggs name template, agg)
    for mi, metric in enumerate(config.metrics):
        values = users.metric_columns(metric, t)
        if CAP.format(mi) in t.columns:
            values[0] = ibis.least(values[0], t[CAP.format(mi)])
            cols[f"cap{mi}"] = t[CAP.format(mi)]
        for part, col in zip("yx", values, strict=False):
            cols[f"{part}{mi}"] = col
        for part in "yx"[: len(values)]:
            stats[f"mean_{part}{mi}"] = (_MEAN.format("{}", mi, part), ("mean", f"{part}{mi}"))
            stats[f"var_{part}{mi}"] = (_VAR.format("{}", mi, part), ("var", f"{part}{mi}"))
        if len(values) == 2:
            stats[f"cov{mi}"] = (_COV.format("{}", mi), ("cov", f"y{mi}"))
    one, zero = ibis.literal(1, type="int64"), ibis.literal(0, type="int64")
    quality = {
        Q.format("multiple_arms"): ibis.ifelse(t.arms_seen > 1, one, zero),
        Q.format("duplicate_customers"): ibis.ifelse(
            (t.arms_seen == 1) & (t[NCUST] > 1), one, zero
        ),
        Q.format("assignments_without_customer"): ibis.ifelse(
            (t.arms_seen == 1) & t[NCUST].isnull(), one, zero
        ),
        **{c: ibis.ifelse(valid, t[c], 0) for c in QUALITY_COLUMNS},
    }
    for k in range(1, len(strata)):
        cols[f"stratum{k}"] = ibis.ifelse(t[STRATUM] == k, one, zero)
    member = [ibis.literal(-1, type="int16"), ibis.ifelse(valid, 0, None).cast("int16")]
    member += [
        ibis.ifelse(users.in_segment(si, t), si, None).cast("int16")
        for si in range(1, len(users.segments))
    ]
    long = t.select("arm", __si__=ibis.array(member).unnest(), **cols, **quality)
    long = long.filter(long["__si__"].notnull())
    aggs: dict[str, Any] = {"n": long.count()}
    for name, (_, (how, col)) in stats.items():
        if how == "mean":
            aggs[name] = long[col].mean()
        elif how == "var":
            aggs[name] = long[col].var(how="pop")
        else:
            aggs[name] = long[col].cov(long["x" + col[1:]], how="pop")
    aggs.update({c: long[c].sum() for c in quality})
    aggs.update({c: long[c].sum() for c in cols if c.startswith("stratum")})
    aggs.update({c: long[c].max() for c in cols if c.startswith("cap")})
    rows = long.group_by(["__si__", "arm"]).aggregate(**aggs).to_pyarrow().to_pylist()
    return _pivot(rows, users, config, stats, tuple(quality))


def _pivot(
    rows: list[dict[str, Any]],
    users: UserTable,
    config: ExperimentConfig,
    stats: dict[str, tuple[str, Any]],
    quality: tuple[str, ...],
) -> tuple[Any, dict[str, float]]:
    """:func:`_cell_table`'s rows, one per (segment, arm), as one row per arm; and the caps."""
    import pyarrow as pa

    strata = users.strata
    arms = sorted({r["arm"] for r in rows})
    wide: dict[str, list[Any]] = {"arm": arms}
    for si in range(len(users.segments)):  # every cell exists, an empty one with n = 0
        wide[_N.format(si)] = [0] * len(arms)
        wide.update({template.format(si): [None] * len(arms) for template, _ in stats.values()})
        wide.update({_STRATUM_N.format(si, k): [0] * len(arms) for k in range(1, len(strata))})
    wide.update({c: [0] * len(arms) for c in quality})
    caps = dict(users.caps)
    for r in rows:
        si, j = r["__si__"], arms.index(r["arm"])
        out = {c: r[c] for c in quality} if si < 0 else {_N.format(si): r["n"]}
        if si >= 0:
            out.update({template.format(si): r[name] for name, (template, _) in stats.items()})
            out.update({_STRATUM_N.format(si, k): r[f"stratum{k}"] for k in range(1, len(strata))})
        for name, value in out.items():
            wide[name][j] = value
        for mi, metric in enumerate(config.metrics):
            if si < 0 and f"cap{mi}" in r:
                caps[metric.name] = math.nan if r[f"cap{mi}"] is None else float(r[f"cap{mi}"])
    return pa.table(wide), caps


def _strata_units(table: Any, cells: CellSums, strata: tuple[str, ...]) -> NDArray[np.float64]:
    """Units per (segment, stratum, arm); stratum 0 is what the allocations leave."""
    arm_rows = table.column("arm").to_pylist()
    out = np.zeros((len(cells.segments), len(strata), len(cells.arms)))
    for si in range(len(cells.segments)):
        for k in range(1, len(strata)):
            col = table.column(_STRATUM_N.format(si, k)).to_pylist()
            for r, arm in enumerate(arm_rows):
                if arm in cells.arms:
                    out[si, k, cells.arms.index(arm)] = col[r] or 0
    out[:, 0, :] = cells.units - out[:, 1:, :].sum(axis=1)
    return out


def to_cells(
    table: Any, segments: tuple[str, ...], config: ExperimentConfig, start: Any, end: Any
) -> CellSums:
    """Read :func:`cell_aggs` results (one row per arm) back into :class:`CellSums`."""
    arms = tuple(config.arms)
    row_of = {arm: i for i, arm in enumerate(table.column("arm").to_pylist())}
    shape = (len(segments), len(arms))

    def grid(template: str, *key: object) -> NDArray[np.float64]:
        col = table.column(template.format(*key)).to_pylist()
        out = np.full(shape[1], np.nan)
        for j, arm in enumerate(arms):
            if arm in row_of and col[row_of[arm]] is not None:
                out[j] = col[row_of[arm]]
        return out

    n = np.stack([np.nan_to_num(grid(_N, si)) for si in range(shape[0])])
    metrics: dict[str, MeanSums | JointSums] = {}
    cuped: dict[str, JointSums] = {}
    for mi, metric in enumerate(config.metrics):

        def stat(template: str, part: str, mi: int = mi) -> NDArray[np.float64]:
            return np.stack([grid(template, si, mi, part) for si in range(shape[0])])

        m2_y = np.nan_to_num(stat(_VAR, "y")) * n
        joint = None
        ratio = kind_plan(metric.kind).ratio
        if ratio or metric.cuped is not None:
            cov = np.stack([grid(_COV, si, mi) for si in range(shape[0])])
            joint = JointSums(
                n=n,
                mean_y=stat(_MEAN, "y"),
                mean_x=stat(_MEAN, "x"),
                m2_y=m2_y,
                m2_x=np.nan_to_num(stat(_VAR, "x")) * n,
                c_xy=np.nan_to_num(cov) * n,
            )
        if ratio and joint is not None:
            metrics[metric.name] = joint
        else:  # a CUPED metric's y margin stays the metric; its joint sums go to ``cuped``
            metrics[metric.name] = MeanSums(n=n, mean=stat(_MEAN, "y"), m2=m2_y)
            if joint is not None:
                cuped[metric.name] = joint
    return CellSums(
        segments=segments,
        arms=arms,
        units=n,
        metrics=metrics,
        window_start=start,
        window_end=end,
        cuped=cuped,
    )
