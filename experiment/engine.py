"""Data access: reduce a dataset to sufficient statistics per (segment, arm, metric).

Everything heavy happens in the query engine. Segment rules and metric
definitions compile to Ibis expressions; one ``group_by(arm).aggregate(...)`` with
filtered aggregates per segment scans the per-user table once and returns a
handful of numbers per cell: the count, the mean and the population variance
(and, for ratio metrics, the covariance) of each per-user metric. Those become
centred moments in :mod:`experiment.sums`; no Python loop touches a user or an
event. The same query counts what the data-quality checks report (events before
assignment or outside the window, invalid values, users with duplicate or no
customer rows) and the units per allocation stratum for the per-segment SRM.

A metric with a CUPED covariate (``cuped: revenue_90d``) also gets, in the same
aggregate, the covariate's mean and variance and its covariance with the metric
(:class:`JointSums` in ``CellSums.cuped``); the covariate is a customers column,
joined beside the segment flags. A metric with a quantile ``cap`` costs one extra
scalar query (the quantile over all assigned users) before the main one. A
sequential experiment costs one more query: the same aggregates per (arm, window
day) on per-user values cumulated up to each day (``CellSums.timeline``).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.config import check_allocation
from experiment.errors import ConfigError, DataError
from experiment.quality import QualityCounts
from experiment.sums import JointSums, MeanSums
from segments.compile import compile_segments

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig, Measure, MetricSpec
    from experiment.data import Dataset
    from segments.definitions import SegmentSet

__all__ = ["ALL", "CellSums", "aggregate"]

ALL = "all"

# Private names of engine-side columns; indices, never user text, go into them.
_SEG = "__seg__{}__"
_MEASURE = "__measure__{}__"
_N = "__n__{}__"
_MEAN = "__mean__{}__{}__{}__"  # segment, metric, y|x
_VAR = "__var__{}__{}__{}__"
_COV = "__cov__{}__{}__"
_STRATUM_N = "__stratum__{}__{}__"  # segment, stratum
_Q = "__q__{}__"  # quality count name
_NCUST = "__ncust__"
_STRATUM = "__stratum__"
_COVARIATE = "__covariate__{}__"  # index into the covariate columns
_CAP = "__cap__{}__"  # metric index
_QUALITY_EVENTS = ("events_before_assignment", "invalid_revenue")


@dataclass(frozen=True)
class CellSums:
    """Sufficient statistics for every (segment, arm) cell of every metric.

    Arrays have shape ``(len(segments), len(arms))``; ``segments[0]`` is ``"all"``.
    ``strata`` names the allocation each unit was assigned under (``""``: the
    experiment's weights, else the allocation's segment); ``strata_units`` counts
    units per (segment, stratum, arm) when there is more than one stratum.
    ``timeline`` (sequential experiments only) holds, per window day (ISO date),
    the same cell sums cumulated up to the end of that day.
    """

    segments: tuple[str, ...]
    arms: tuple[str, ...]
    units: NDArray[np.float64]
    metrics: dict[str, MeanSums | JointSums]
    window_start: dt.datetime
    window_end: dt.datetime
    strata: tuple[str, ...] = ("",)
    strata_units: NDArray[np.float64] | None = None
    quality: QualityCounts = field(default_factory=QualityCounts)
    cuped: dict[str, JointSums] = field(default_factory=dict)
    caps: dict[str, float] = field(default_factory=dict)
    timeline: tuple[tuple[str, CellSums], ...] = ()


def _units(dataset: Dataset, config: ExperimentConfig) -> ir.Table:
    """One row per user of this experiment: arm, number of arms seen, first assignment.

    Users seen in several arms stay in the table (``arms_seen > 1``) so that the
    main query counts them; every aggregate excludes them.
    """
    a = dataset.assignments
    a = a.filter((a.experiment == config.name) & a.arm.isin(list(config.arms)))
    per_user = a.group_by("user_id").aggregate(
        arm=a.arm.min(), arms_seen=a.arm.nunique(), assigned_at=a.assigned_at.min()
    )
    return per_user.mutate(user_id=per_user.user_id.cast("string"))


def _window(units: ir.Table, dataset: Dataset, config: ExperimentConfig) -> tuple[Any, Any]:
    start = config.window.start
    if start is None:
        first = units.assigned_at.min(where=units.arms_seen == 1).to_pyarrow().as_py()
        if first is None:
            present = dataset.assignments.experiment.value_counts().to_pyarrow()
            names = sorted(str(v) for v in present.column(0).to_pylist())
            raise DataError(
                f"{dataset.path}: no assignments for experiment {config.name!r}; "
                f"experiments present: {', '.join(names) or 'none'}"
            )
        start = first
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=config.window.days)


def _value(events: ir.Table, measure: Measure, metric: MetricSpec) -> ir.FloatingValue:
    if measure.value not in events.columns:
        raise ConfigError(
            f"metric {metric.name!r}: events table has no column {measure.value!r} to sum; "
            f"columns are: {', '.join(events.columns)}"
        )
    value: ir.FloatingValue = events[measure.value].cast("float64")
    return value


def _selects(events: ir.Table, measure: Measure) -> ir.BooleanValue:
    """The event rows of a measure: its event, and for retention its day after assignment."""
    import ibis

    chosen: ir.BooleanValue = events.event == measure.event
    if measure.day is not None:
        begin = events.assigned_at + ibis.interval(days=measure.day)
        chosen &= (events.ts >= begin) & (events.ts < begin + ibis.interval(days=1))
    return chosen


def _invalid(value: ir.FloatingValue) -> ir.BooleanValue:
    """NaN, ±inf or negative (null is missing, not invalid)."""
    bad: ir.BooleanValue = value.isnan() | value.isinf() | (value < 0)
    return bad.fill_null(False)


def _per_user_measures(
    dataset: Dataset, units: ir.Table, metrics: list[MetricSpec], start: Any, end: Any
) -> tuple[ir.Table, dict[Measure, str], tuple[str, ...]]:
    """Per-user metric measures (post-exposure, in-window) and per-user quality counts.

    Events are grouped by (user, post-exposure flag) with plain per-event filters,
    then folded per user: measures from the post-exposure group, the count of
    events before assignment from the other. Cheaper than testing the exposure
    time inside every aggregate.
    """
    ev = dataset.events
    ev = ev.filter((ev.ts >= start) & (ev.ts < end))
    exposed = ev.inner_join(units.select("user_id", "assigned_at"), "user_id")
    exposed = exposed.mutate(__post__=exposed.ts >= exposed.assigned_at)
    names: dict[Measure, str] = {}
    aggs: dict[str, Any] = {"__events__": exposed.count()}
    invalid: list[Any] = []
    examined: list[Any] = []
    columns: list[str] = []
    for metric in metrics:
        for measure in metric.measures:
            if measure in names:
                continue
            names[measure] = _MEASURE.format(len(names))
            is_event = _selects(exposed, measure)
            if measure.value is None:
                aggs[names[measure]] = exposed.count(where=is_event)
                continue
            value = _value(exposed, measure, metric)
            bad = _invalid(value)
            aggs[names[measure]] = value.sum(where=is_event & ~bad)
            invalid.append(exposed.count(where=is_event & bad))
            examined.append(exposed.count(where=is_event & value.notnull()))
            columns += [measure.value] if measure.value not in columns else []
    aggs[_Q.format("invalid_revenue")] = sum(invalid[1:], invalid[0]) if invalid else 0
    aggs[_Q.format("revenue_values")] = sum(examined[1:], examined[0]) if examined else 0
    g = exposed.group_by(["user_id", "__post__"]).aggregate(**aggs)
    post = g.__post__
    folded = {name: g[name].sum(where=post) for name in aggs if name != "__events__"}
    folded[_Q.format("events_before_assignment")] = g["__events__"].sum(where=~post)
    return g.group_by("user_id").aggregate(**folded), names, tuple(columns)


def _table_checks(dataset: Dataset, start: Any, end: Any) -> tuple[int, int]:
    """Events outside the window and surplus customer rows (one cheap scan of each)."""
    ev, cust = dataset.events, dataset.customers
    outside = ev.count(where=(ev.ts < start) | (ev.ts >= end)).to_pyarrow().as_py()
    row = cust.aggregate(rows=cust.count(), ids=cust.user_id.nunique()).to_pyarrow().to_pylist()[0]
    return int(outside or 0), int(row["rows"] or 0) - int(row["ids"] or 0)


def _covariates(customers: ir.Table, metrics: list[MetricSpec]) -> tuple[str, ...]:
    """The customers columns used as CUPED covariates, each checked to be numeric.

    Raises:
        ConfigError: a metric's ``cuped`` column is missing or not numeric.
    """
    out: list[str] = []
    for metric in metrics:
        if metric.cuped is None:
            continue
        col = metric.cuped
        if col not in customers.columns or not customers[col].type().is_numeric():
            numeric = [c for c in customers.columns if customers[c].type().is_numeric()]
            what = "is not numeric" if col in customers.columns else "is not a column"
            raise ConfigError(
                f"metric {metric.name!r}: field 'cuped': {col!r} {what} of the customers "
                f"table; numeric columns are: {', '.join(numeric) or 'none'}"
            )
        out += [col] if col not in out else []
    return tuple(out)


def _members(
    customers: ir.Table,
    seg_exprs: dict[str, ir.BooleanValue],
    strata: tuple[str, ...],
    *,
    duplicates: bool,
    covariates: tuple[str, ...] = (),
) -> ir.Table:
    """One row per customer id: rows per id, segment flags, allocation stratum, covariates."""
    import ibis

    cols: dict[str, Any] = {_SEG.format(i + 1): e for i, e in enumerate(seg_exprs.values())}
    if len(strata) > 1:
        branches = [(seg_exprs[name], k) for k, name in enumerate(strata) if k > 0]
        cols[_STRATUM] = ibis.cases(*branches, else_=0)
    for k, col in enumerate(covariates):  # null, NaN and ±inf count as no history: 0
        value = customers[col].cast("float64")
        cols[_COVARIATE.format(k)] = ibis.ifelse(value.isnan() | value.isinf(), 0.0, value)
    m = customers.select(user_id=customers.user_id.cast("string"), **cols)
    if not duplicates:  # the common case: no GROUP BY over the customers
        return m.mutate(**{_NCUST: ibis.literal(1)})
    aggs: dict[str, Any] = {_NCUST: m.count()}
    for name in cols:
        # duplicated customers are excluded from every aggregate; any value will do
        numeric = name == _STRATUM or name.startswith("__covariate__")
        aggs[name] = m[name].max() if numeric else m[name].any()
    return m.group_by("user_id").aggregate(**aggs)


def _caps(
    t: ir.Table, config: ExperimentConfig, raw: dict[str, Any], valid: Any
) -> dict[str, float]:
    """Each capped metric's cap: the fixed value, or its quantile over the analysed users.

    Analysed users are every arm's users (not those seen in two arms or with
    duplicate customer rows), so the cap does not depend on the arm.

    All quantiles come from one scalar query (linear interpolation,
    ``quantile_cont``, as numpy's default ``np.quantile``).
    """
    caps: dict[str, float] = {}
    quantiles: dict[str, Any] = {}
    for mi, metric in enumerate(config.metrics):
        if metric.cap is None:
            continue
        if metric.cap.value is not None:
            caps[metric.name] = float(metric.cap.value)
        else:
            quantiles[_CAP.format(mi)] = raw[metric.name].quantile(metric.cap.quantile, where=valid)
    if quantiles:
        row = t.aggregate(**quantiles).to_pyarrow().to_pylist()[0]
        for mi, metric in enumerate(config.metrics):
            if _CAP.format(mi) in row:
                value = row[_CAP.format(mi)]
                caps[metric.name] = math.nan if value is None else float(value)
    return caps


def _values(
    t: ir.Table,
    metric: MetricSpec,
    measure_cols: dict[Measure, str],
    caps: dict[str, float],
    covariates: tuple[str, ...],
) -> list[ir.NumericColumn]:
    """The per-user columns of one metric: ``[y]``, ``[y, x]`` (ratio) or ``[y, covariate]``."""
    import ibis

    cols = [t[measure_cols[m]].cast("float64") for m in metric.measures]
    if metric.kind in {"proportion", "retention"}:
        cols = [(cols[0] > 0).cast("float64")]
    if metric.name in caps and math.isfinite(caps[metric.name]):
        cols = [ibis.least(cols[0], ibis.literal(caps[metric.name], type="float64"))]
    if metric.cuped is not None:  # covariate of users without a customer row: 0
        covariate = t[_COVARIATE.format(covariates.index(metric.cuped))]
        cols.append(covariate.fill_null(0.0))
    return cols


def _cell_aggs(
    t: ir.Table,
    n_segments: int,
    config: ExperimentConfig,
    *,
    measure_cols: dict[Measure, str],
    caps: dict[str, float],
    covariates: tuple[str, ...],
) -> dict[str, Any]:
    """The FILTER-ed aggregates of every (segment, metric): count, means, variances, covariance.

    ``t`` has one row per (user[, day]) with ``arms_seen``, ``_NCUST``, the segment
    flags, covariates and measure columns; the caller groups by arm (and day).
    """
    valid = (t.arms_seen == 1) & (t[_NCUST].fill_null(0) <= 1)
    aggs: dict[str, Any] = {}
    for si in range(n_segments):
        mask = valid if si == 0 else valid & t[_SEG.format(si)].fill_null(False)
        aggs[_N.format(si)] = t.count(where=mask)
        for mi, metric in enumerate(config.metrics):
            cols = _values(t, metric, measure_cols, caps, covariates)
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


def _timeline(
    dataset: Dataset,
    units: ir.Table,
    members: ir.Table,
    config: ExperimentConfig,
    *,
    columns: tuple[dict[Measure, str], dict[str, float], tuple[str, ...]],
    window: tuple[Any, Any],
    n_segments: int,
) -> Any:
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

    measure_cols, caps, covariates = columns
    start, end = window
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
            is_event = _selects(ev, measure)
            if measure.value is None:
                aggs[name] = ev.count(where=is_event)
            else:
                value = _value(ev, measure, metric)
                aggs[name] = value.sum(where=is_event & ~_invalid(value))
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
    g = g.left_join(members, g.user_id == members.user_id).drop("user_id_right")
    cell = _cell_aggs(
        g, n_segments, config, measure_cols=measure_cols, caps=caps, covariates=covariates
    )
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
        out.append((date, _to_cells(part, segments, config, start, day_end)))
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
    import ibis

    units = _units(dataset, config)
    start, end = _window(units, dataset, config)
    per_user, measure_cols, value_columns = _per_user_measures(
        dataset, units, config.metrics, start, end
    )

    seg_exprs = compile_segments(segment_set, dataset.customers, as_of=start) if segment_set else {}
    check_allocation(config, list(seg_exprs))
    strata = ("", *(s for s in seg_exprs if s in config.allocation))
    segments = (ALL, *seg_exprs)
    outside, surplus = _table_checks(dataset, start, end)
    covariates = _covariates(dataset.customers, config.metrics)
    members = _members(
        dataset.customers, seg_exprs, strata, duplicates=surplus > 0, covariates=covariates
    )
    q_cols = [_Q.format(q) for q in (*_QUALITY_EVENTS, "revenue_values")]
    t = units.left_join(per_user, units.user_id == per_user.user_id).select(
        units.user_id,
        units.arm,
        units.arms_seen,
        *[ibis.coalesce(per_user[c], 0).name(c) for c in (*measure_cols.values(), *q_cols)],
    )
    t = t.left_join(members, t.user_id == members.user_id).drop("user_id_right")
    valid = (t.arms_seen == 1) & (t[_NCUST].fill_null(0) <= 1)
    raw = {m.name: t[measure_cols[m.measures[0]]].cast("float64") for m in config.metrics}
    caps = _caps(t, config, raw, valid)

    aggs: dict[str, Any] = {
        _Q.format("multiple_arms"): t.count(where=t.arms_seen > 1),
        _Q.format("duplicate_customers"): t.count(where=(t.arms_seen == 1) & (t[_NCUST] > 1)),
        _Q.format("assignments_without_customer"): t.count(
            where=(t.arms_seen == 1) & t[_NCUST].isnull()
        ),
        **{c: t[c].sum(where=valid) for c in q_cols},
    }
    for si in range(len(segments)) if len(strata) > 1 else ():
        mask = valid if si == 0 else valid & t[_SEG.format(si)].fill_null(False)
        for k in range(1, len(strata)):
            aggs[_STRATUM_N.format(si, k)] = t.count(where=mask & (t[_STRATUM] == k))
    aggs.update(
        _cell_aggs(
            t, len(segments), config, measure_cols=measure_cols, caps=caps, covariates=covariates
        )
    )

    table = t.group_by("arm").aggregate(**aggs).to_pyarrow()
    cells = _to_cells(table, segments, config, start, end)
    if config.sequential:
        timeline = _timeline(
            dataset,
            units,
            members,
            config,
            columns=(measure_cols, caps, covariates),
            window=(start, end),
            n_segments=len(segments),
        )
        cells = replace(cells, timeline=_timeline_cells(timeline, segments, config, start, end))
    total = {
        name: int(np.nansum(table.column(name).to_numpy(zero_copy_only=False)))
        for name in table.column_names
        if name.startswith("__q__")
    }
    quality = QualityCounts(
        events_outside_window=outside,
        **{
            f: total[_Q.format(f)]
            for f in (
                "multiple_arms",
                "duplicate_customers",
                "assignments_without_customer",
                *_QUALITY_EVENTS,
                "revenue_values",
            )
        },
        value_columns=value_columns,
    )
    strata_units = _strata_units(table, cells, strata) if len(strata) > 1 else None
    return replace(cells, strata=strata, strata_units=strata_units, quality=quality, caps=caps)


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


def _to_cells(
    table: Any, segments: tuple[str, ...], config: ExperimentConfig, start: Any, end: Any
) -> CellSums:
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
        if metric.kind == "ratio" or metric.cuped is not None:
            cov = np.stack([grid(_COV, si, mi) for si in range(shape[0])])
            joint = JointSums(
                n=n,
                mean_y=stat(_MEAN, "y"),
                mean_x=stat(_MEAN, "x"),
                m2_y=m2_y,
                m2_x=np.nan_to_num(stat(_VAR, "x")) * n,
                c_xy=np.nan_to_num(cov) * n,
            )
        if metric.kind == "ratio" and joint is not None:
            metrics[metric.name] = joint
        else:  # a CUPED metric's y margin stays the metric; its joint sums go to ``cuped``
            metrics[metric.name] = MeanSums(n=n, mean=stat(_MEAN, "y"), m2=m2_y)
            if joint is not None:
                cuped[metric.name] = joint
    return CellSums(segments, arms, n, metrics, start, end, cuped=cuped)
