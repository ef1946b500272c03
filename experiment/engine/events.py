"""Expressions over the events table: the rows a measure counts and the values it sums.

The per-user table, the data-quality scan and the sequential timeline read the
events the same way; these helpers are that one reading.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiment.errors import ConfigError, DataError

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import Measure, MetricSpec

__all__ = ["event_value", "invalid", "selects"]


def event_value(events: ir.Table, measure: Measure, metric: MetricSpec) -> ir.FloatingValue:
    """The value column a measure sums, as float64.

    Integers and decimals are cast; text, booleans or timestamps are not numbers.

    Raises:
        ConfigError: the events table has no such column (the metric names a wrong one).
        DataError: the column is not numeric (revenue written as ``'$12.50'`` text).
    """
    if measure.value not in events.columns:
        raise ConfigError(
            f"metric {metric.name!r}: events table has no column {measure.value!r} to sum; "
            f"columns are: {', '.join(events.columns)}"
        )
    dtype = events[measure.value].type()
    if not dtype.is_numeric() or dtype.is_boolean():
        raise DataError(
            f"events: column {measure.value!r} (the value metric {metric.name!r} sums): "
            f"found {_shown(dtype)}, expected a number (integer, float or decimal); write amounts "
            "as numbers, without currency signs"
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


def _shown(dtype: object) -> str:
    """A column type for a message (an all-null Parquet column has no usable name)."""
    text = str(dtype)
    return "null (no value at all)" if "NULL" in text or text == "null" else text
