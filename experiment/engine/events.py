"""Expressions over the events table: the rows a measure counts and the values it sums.

The per-user table, the data-quality scan and the sequential timeline read the
events the same way; these helpers are that one reading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiment.errors import ConfigError

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import Measure, MetricSpec

__all__ = ["event_value", "invalid", "selects"]


def event_value(events: ir.Table, measure: Measure, metric: MetricSpec) -> ir.FloatingValue:
    """The value column a measure sums, as float64 (a missing column is a config error)."""
    if measure.value not in events.columns:
        raise ConfigError(
            f"metric {metric.name!r}: events table has no column {measure.value!r} to sum; "
            f"columns are: {', '.join(events.columns)}"
        )
    value: ir.FloatingValue = events[measure.value].cast("float64")
    return value


def selects(events: ir.Table, measure: Measure) -> ir.BooleanValue:
    """The event rows of a measure: its event, and for retention its day after assignment."""
    import ibis

    chosen: ir.BooleanValue = events.event == measure.event
    if measure.day is not None:
        begin = events.assigned_at + ibis.interval(days=measure.day)
        chosen &= (events.ts >= begin) & (events.ts < begin + ibis.interval(days=1))
    return chosen


def invalid(value: ir.FloatingValue) -> ir.BooleanValue:
    """NaN, ±inf or negative (null is missing, not invalid)."""
    bad: ir.BooleanValue = value.isnan() | value.isinf() | (value < 0)
    return bad.fill_null(False)
