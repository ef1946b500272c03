"""The units' in-window metric events, and the per-user measures summed from them.

The per-user table (:mod:`experiment.engine.users`) reads the events through
these two steps: the events of the metrics' types inside the window, joined to
the units (their assignment time), then one ``GROUP BY`` user. Where the caller
writes tables once (``written``: a sequential experiment on DuckDB), the joined
events are written to a temporary table, keyed by the units' row id, and the
sequential timeline reads its event rows from there
(:func:`~experiment.engine.timeline_query.event_rows`) instead of scanning and
joining the events a second time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from experiment.engine.events import event_value, invalid, selects
from experiment.engine.moments import fsum
from experiment.engine.quality import Q

if TYPE_CHECKING:
    from collections.abc import Callable

    import ibis.expr.types as ir

    from experiment.config import Measure, MetricSpec
    from experiment.engine.dataset import Dataset

__all__ = ["MEASURE", "UID", "exposed_events", "key_of", "per_user_measures"]

MEASURE = "__measure__{}__"  # a measure's column in the per-user table
UID = "__uid__"  # a user's key: the row id of the units' temporary table (``written`` only)


def key_of(table: ir.Table) -> str:
    """The column that identifies a user: the units' integer key where there is one."""
    return UID if UID in table.columns else "user_id"


def exposed_events(
    dataset: Dataset,
    units: ir.Table,
    metrics: list[MetricSpec],
    window: tuple[Any, Any],
    written: Callable[[ir.Table], ir.Table] | None = None,
) -> tuple[ir.Table, dict[Measure, str], tuple[str, ...]]:
    """The units' in-window events of the metrics' types, with their assignment time.

    An INNER JOIN: users without such events have no row. Only the columns the
    measures read are kept (the user's key, the assignment and event times, the
    event type, the values). Also each measure's column name in the per-user
    table and the value columns read. ``written`` writes the result once.
    """
    start, end = window
    ev = dataset.events
    # Only the metrics' event types are read: the rest (page views, ...) cannot change a
    # metric, and skipping them spares the join a third of its rows on typical data.
    kinds = sorted({measure.event for metric in metrics for measure in metric.measures})
    ev = ev.filter((ev.ts >= start) & (ev.ts < end) & ev.event.isin(kinds))
    names: dict[Measure, str] = {}
    columns: list[str] = []
    for metric in metrics:
        for measure in metric.measures:
            if measure in names:
                continue
            names[measure] = MEASURE.format(len(names))
            if measure.value is not None:
                event_value(ev, measure, metric)  # the column must be the events table's
                columns += [measure.value] if measure.value not in columns else []
    key = key_of(units)
    who = units.select(*dict.fromkeys(("user_id", "assigned_at", key)))
    exposed = ev.inner_join(who, "user_id")
    exposed = exposed.select(key, "assigned_at", "ts", "event", *columns)
    return (exposed if written is None else written(exposed)), names, tuple(columns)


def per_user_measures(
    exposed: ir.Table, names: dict[Measure, str], metrics: list[MetricSpec]
) -> ir.Table:
    """Per-user metric measures (post-exposure, in-window) and events before assignment.

    One ``GROUP BY`` user over :func:`exposed_events`: users without events have
    no row here, and the per-user table LEFT JOINs this table to the units. The
    exposure test sits in each aggregate's filter, so events before assignment
    are counted, not dropped. Arm and ``arms_seen`` stay out of this hash table:
    keeping it narrow (a key and a few counts) is what lets DuckDB run it under a
    tight memory limit without spilling much; as grouping keys or ``any_value``
    columns they cost much more time (see README "Benchmarks").
    """
    post = exposed.ts >= exposed.assigned_at
    aggs: dict[str, Any] = {}
    for metric in metrics:
        for measure in metric.measures:
            if names[measure] in aggs:
                continue
            is_event = selects(exposed, measure) & post
            if measure.value is None:
                aggs[names[measure]] = exposed.count(where=is_event)
                continue
            value = event_value(exposed, measure, metric)
            bad = invalid(value)
            aggs[names[measure]] = fsum(value, where=is_event & ~bad)  # same bits every run
    aggs[Q.format("events_before_assignment")] = exposed.count(where=~post)
    return exposed.group_by(key_of(exposed)).aggregate(**aggs)
