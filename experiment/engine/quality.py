"""Data-quality counts in the engine: what the checks of :mod:`experiment.analysis` report.

Two sources. The main (segment, arm) query sums, over every assigned user, the
per-user flags of :func:`quality_columns` (users seen in two arms, with duplicate
or no customer rows, events before assignment). One scan of the events
(:func:`table_checks`) counts the events outside the window and the invalid
metric values; kept out of the per-user aggregate, these counts do not widen its
hash table. :func:`quality_counts` puts both into :class:`QualityCounts`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from experiment.engine.events import event_value, invalid
from experiment.sums import QualityCounts

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import MetricSpec
    from experiment.engine.dataset import Dataset
    from experiment.engine.users import UserTable

__all__ = [
    "NCUST",
    "QUALITY_COLUMNS",
    "QUALITY_EVENTS",
    "QUALITY_SUMS",
    "Q",
    "quality_columns",
    "quality_counts",
    "table_checks",
]

# Column names of the per-user table (dunder names cannot clash with a user's columns).
Q = "__q__{}__"  # quality count name
NCUST = "__ncust__"  # customer rows per user id
QUALITY_EVENTS = ("events_before_assignment",)
QUALITY_COLUMNS = tuple(Q.format(q) for q in QUALITY_EVENTS)
_USER_CHECKS = ("multiple_arms", "duplicate_customers", "assignments_without_customer")
QUALITY_SUMS = (*(Q.format(c) for c in _USER_CHECKS), *QUALITY_COLUMNS)
"""The columns of :func:`quality_columns`, which the main query sums."""


def quality_columns(users: UserTable, t: ir.Table) -> dict[str, ir.IntegerValue]:
    """Per assigned user, the 0/1 flags and counts the main query sums, by column name.

    Only valid users' events before assignment count: the others are counted by
    their own flag.
    """
    import ibis

    one, zero = ibis.literal(1, type="int64"), ibis.literal(0, type="int64")
    one_arm = t.arms_seen == 1
    flags = {  # the order of _USER_CHECKS
        "multiple_arms": t.arms_seen > 1,
        "duplicate_customers": one_arm & (t[NCUST] > 1),
        "assignments_without_customer": one_arm & t[NCUST].isnull(),
    }
    valid = users.valid(t)
    return {
        **{Q.format(name): ibis.ifelse(flag, one, zero) for name, flag in flags.items()},
        **{c: ibis.ifelse(valid, t[c], 0) for c in QUALITY_COLUMNS},
    }


def quality_counts(totals: dict[str, int], users: UserTable) -> QualityCounts:
    """The counts of the main query (``totals`` of :func:`quality_columns`) and of the scan."""
    return QualityCounts(
        events_outside_window=users.outside,
        **{f: totals[Q.format(f)] for f in (*_USER_CHECKS, *QUALITY_EVENTS)},
        invalid_revenue=users.invalid_values,
        revenue_values=users.values,
        value_columns=users.value_columns,
    )


def table_checks(
    dataset: Dataset, metrics: list[MetricSpec], start: Any, end: Any
) -> tuple[int, int, int, int]:
    """Events outside the window, surplus customer rows, and the metric values checked.

    One scan of the events counts the events outside the window and, among the
    window's events of every user, the values each ``(event, value column)`` pair of
    the metrics sums: invalid ones (NaN, ±inf, negative) and non-null ones.
    """
    ev, cust = dataset.events, dataset.customers
    inside = (ev.ts >= start) & (ev.ts < end)
    aggs: dict[str, Any] = {"outside": ev.count(where=~inside)}
    pairs = {
        (m.event, m.value): (m, metric) for metric in metrics for m in metric.measures if m.value
    }
    for k, (measure, metric) in enumerate(pairs.values()):
        value = event_value(ev, measure, metric)
        is_event = inside & (ev.event == measure.event)
        aggs[f"bad{k}"] = ev.count(where=is_event & invalid(value))
        aggs[f"seen{k}"] = ev.count(where=is_event & value.notnull())
    counts = ev.aggregate(**aggs).to_pyarrow().to_pylist()[0]
    bad = sum(int(counts[f"bad{k}"] or 0) for k in range(len(pairs)))
    seen = sum(int(counts[f"seen{k}"] or 0) for k in range(len(pairs)))
    row = cust.aggregate(rows=cust.count(), ids=cust.user_id.nunique()).to_pyarrow().to_pylist()[0]
    surplus = int(row["rows"] or 0) - int(row["ids"] or 0)
    return int(counts["outside"] or 0), surplus, bad, seen
