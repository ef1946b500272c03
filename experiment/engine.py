"""Data access: reduce a dataset to sufficient statistics per (segment, arm, metric).

Everything heavy happens in the query engine. Segment rules and metric
definitions compile to Ibis expressions; one ``group_by(arm).aggregate(...)`` with
filtered aggregates per segment scans the per-user table once and returns a
handful of numbers per cell: the count, the mean and the population variance
(and, for ratio metrics, the covariance) of each per-user metric. Those become
centred moments in :mod:`experiment.sums`; no Python loop touches a user or an
event.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.errors import ConfigError, DataError
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


@dataclass(frozen=True)
class CellSums:
    """Sufficient statistics for every (segment, arm) cell of every metric.

    Arrays have shape ``(len(segments), len(arms))``; ``segments[0]`` is ``"all"``.
    """

    segments: tuple[str, ...]
    arms: tuple[str, ...]
    units: NDArray[np.float64]
    metrics: dict[str, MeanSums | JointSums]
    window_start: dt.datetime
    window_end: dt.datetime


def _units(dataset: Dataset, config: ExperimentConfig) -> ir.Table:
    """One row per user assigned to exactly one known arm of this experiment."""
    a = dataset.assignments
    a = a.filter((a.experiment == config.name) & a.arm.isin(list(config.arms)))
    per_user = a.group_by("user_id").aggregate(
        arm=a.arm.min(), arms_seen=a.arm.nunique(), assigned_at=a.assigned_at.min()
    )
    return per_user.filter(per_user.arms_seen == 1).drop("arms_seen")


def _window(units: ir.Table, dataset: Dataset, config: ExperimentConfig) -> tuple[Any, Any]:
    start = config.window.start
    if start is None:
        first = units.assigned_at.min().to_pyarrow().as_py()
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


def _measure_expr(events: ir.Table, measure: Measure, metric: MetricSpec) -> ir.Scalar:
    is_event = events.event == measure.event
    if measure.value is None:
        return events.count(where=is_event)
    if measure.value not in events.columns:
        raise ConfigError(
            f"metric {metric.name!r}: events table has no column {measure.value!r} to sum; "
            f"columns are: {', '.join(events.columns)}"
        )
    return events[measure.value].cast("float64").sum(where=is_event)


def _per_user_measures(
    dataset: Dataset, units: ir.Table, metrics: list[MetricSpec], start: Any, end: Any
) -> tuple[ir.Table, dict[Measure, str]]:
    ev = dataset.events
    ev = ev.filter((ev.ts >= start) & (ev.ts < end))
    exposed = ev.inner_join(units.select("user_id", "assigned_at"), "user_id")
    exposed = exposed.filter(exposed.ts >= exposed.assigned_at)  # post-exposure only
    names: dict[Measure, str] = {}
    aggs = {}
    for metric in metrics:
        for measure in metric.measures:
            if measure not in names:
                names[measure] = _MEASURE.format(len(names))
                aggs[names[measure]] = _measure_expr(exposed, measure, metric)
    return exposed.group_by("user_id").aggregate(**aggs), names


def aggregate(
    dataset: Dataset, config: ExperimentConfig, segment_set: SegmentSet | None
) -> CellSums:
    """Reduce the dataset to :class:`CellSums` in the engine.

    Raises:
        DataError: no assignments for the experiment.
        RuleError: a segment rule does not fit the customers table.
        ConfigError: a metric names a column the events table lacks.
    """
    import ibis

    units = _units(dataset, config)
    start, end = _window(units, dataset, config)
    per_user, measure_cols = _per_user_measures(dataset, units, config.metrics, start, end)

    seg_exprs = compile_segments(segment_set, dataset.customers) if segment_set else {}
    segments = (ALL, *seg_exprs)
    members = dataset.customers.select(
        "user_id", **{_SEG.format(i + 1): e for i, e in enumerate(seg_exprs.values())}
    )
    t = units.left_join(per_user, units.user_id == per_user.user_id).select(
        units.user_id,
        units.arm,
        *[ibis.coalesce(per_user[c], 0).name(c) for c in measure_cols.values()],
    )
    if seg_exprs:
        t = t.left_join(members, t.user_id == members.user_id).drop("user_id_right")

    def values(metric: MetricSpec) -> list[ir.NumericColumn]:
        cols = [t[measure_cols[m]].cast("float64") for m in metric.measures]
        if metric.kind == "proportion":
            return [(cols[0] > 0).cast("float64")]
        return cols

    aggs: dict[str, Any] = {}
    for si in range(len(segments)):
        mask = None if si == 0 else t[_SEG.format(si)].fill_null(False)
        aggs[_N.format(si)] = t.count(where=mask)
        for mi, metric in enumerate(config.metrics):
            cols = values(metric)
            for part, col in zip("yx", cols, strict=False):
                aggs[_MEAN.format(si, mi, part)] = col.mean(where=mask)
                aggs[_VAR.format(si, mi, part)] = col.var(how="pop", where=mask)
            if len(cols) == 2:
                aggs[_COV.format(si, mi)] = cols[0].cov(cols[1], how="pop", where=mask)

    table = t.group_by("arm").aggregate(**aggs).to_pyarrow()
    return _to_cells(table, segments, config, start, end)


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
    for mi, metric in enumerate(config.metrics):

        def stat(template: str, part: str, mi: int = mi) -> NDArray[np.float64]:
            return np.stack([grid(template, si, mi, part) for si in range(shape[0])])

        m2_y = np.nan_to_num(stat(_VAR, "y")) * n
        if metric.kind == "ratio":
            cov = np.stack([grid(_COV, si, mi) for si in range(shape[0])])
            metrics[metric.name] = JointSums(
                n=n,
                mean_y=stat(_MEAN, "y"),
                mean_x=stat(_MEAN, "x"),
                m2_y=m2_y,
                m2_x=np.nan_to_num(stat(_VAR, "x")) * n,
                c_xy=np.nan_to_num(cov) * n,
            )
        else:
            metrics[metric.name] = MeanSums(n=n, mean=stat(_MEAN, "y"), m2=m2_y)
    return CellSums(segments, arms, n, metrics, start, end)
