"""The pre-launch baseline: the engine's side of ``exp power`` and ``exp segments``.

Power planning needs each metric's mean and spread per segment before (or
while) an experiment runs: from the control arm when the dataset has
assignments for the experiment, else from every customer as if all were in
control, exposed at the window start; and the analysis start a segment check
evaluates its rules at.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from experiment.engine import Dataset, aggregate
from experiment.engine.connection import release
from experiment.engine.fetch import rows, scalar
from experiment.engine.source import DataSource, first_assignment, open_source_pre_launch
from experiment.errors import DataError

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.sums import CellSums
    from segments.definitions import SegmentSet

__all__ = [
    "BaselineSums",
    "analysis_start",
    "baseline_sums",
]


@dataclass(frozen=True, kw_only=True)
class BaselineSums:
    """The sums a power plan starts from.

    Attributes:
        cells: Sums per (segment, arm, metric).
        assigned: Whether they come from the experiment's assignments (else every
            customer counts as control).
        span_days: Days between the first and last assignment (at least 1), when assigned.
        one_timestamp: Every assignment has the same ``assigned_at`` (a customer base
            assigned at once), when assigned.
        data_days: Whole days from the first exposure to the last event (rounded up):
            the longest per-user window the data can measure; ``None`` without events.
    """

    cells: CellSums
    assigned: bool
    span_days: float | None = None
    one_timestamp: bool = False
    data_days: float | None = None


def _has_assignments(dataset: Dataset, config: ExperimentConfig) -> bool:
    a = dataset.assignments
    count = scalar(a.count(where=a.experiment == config.name))
    return bool(count)


def _all_users(dataset: Dataset, config: ExperimentConfig) -> Dataset:
    """Every customer in control, exposed at the window start, for a pre-launch baseline.

    Without ``window.start`` the window is the last ``days`` of the events table.
    """
    import ibis

    start = config.window.start
    if start is None:
        last = scalar(dataset.events.ts.max())
        if last is None:
            raise DataError(f"{dataset.path}: events table is empty; no baseline to estimate")
        start = last - dt.timedelta(days=config.window.days)
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    cust = dataset.customers
    fake = cust.select(
        user_id=cust.user_id.cast("string"),
        experiment=ibis.literal(config.name),
        arm=ibis.literal(config.control),
        assigned_at=ibis.literal(start, type="timestamp('UTC')"),
    )
    return replace(dataset, assignments=fake)


def _assigned_span(dataset: Dataset, config: ExperimentConfig) -> tuple[dt.datetime, dt.datetime]:
    """The first and last ``assigned_at`` of the experiment's assignments."""
    a = dataset.assignments
    a = a.filter(a.experiment == config.name)
    row = rows(a.aggregate(first=a.assigned_at.min(), last=a.assigned_at.max()))[0]
    return row["first"], row["last"]


def _utc(ts: dt.datetime) -> dt.datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=dt.UTC)


def _data_days(dataset: Dataset, exposed: dt.datetime) -> float | None:
    """Whole days (rounded up) from the first exposure (or the first event) to the last event."""
    ts = dataset.events.ts
    row = rows(dataset.events.aggregate(first=ts.min(), last=ts.max()))[0]
    if row["last"] is None:
        return None
    start = max(_utc(exposed), _utc(row["first"]))
    return float(max(math.ceil((_utc(row["last"]) - start).total_seconds() / 86_400), 0))


def baseline_sums(
    dataset: Path | str | Dataset | DataSource,
    config: ExperimentConfig,
    segment_set: SegmentSet | None,
) -> BaselineSums:
    """Sums of the control arm (if assigned) or of every customer, for a power plan.

    Raises:
        DataError: the dataset, a table or a column is missing, or events are empty.
    """
    if isinstance(dataset, Dataset):
        return _baseline(dataset, True, config, segment_set)
    data, has_table = open_source_pre_launch(dataset)
    try:
        return _baseline(data, has_table, config, segment_set)
    finally:
        release(data.con)


def _baseline(
    data: Dataset, has_table: bool, config: ExperimentConfig, segment_set: SegmentSet | None
) -> BaselineSums:
    assigned = has_table and _has_assignments(data, config)
    source = data if assigned else _all_users(data, config)
    cells = aggregate(source, config, segment_set)
    if not assigned:
        start = scalar(source.assignments.assigned_at.min())
        return BaselineSums(cells=cells, assigned=False, data_days=_data_days(data, start))
    first, last = _assigned_span(data, config)
    exposed = first if config.window.start is None else max(_utc(first), _utc(config.window.start))
    return BaselineSums(
        cells=cells,
        assigned=True,
        span_days=max((last - first).total_seconds() / 86_400, 1.0),
        one_timestamp=first == last,
        data_days=_data_days(data, exposed),
    )


def analysis_start(
    source: str | Path | DataSource, as_of: dt.datetime | None, config: ExperimentConfig | None
) -> dt.datetime | None:
    """``as_of``, else the experiment's window start, else the first assignment (UTC)."""
    if as_of is None and config is not None:
        as_of = config.window.start
    if as_of is None:
        as_of = first_assignment(source)
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)
    return as_of
