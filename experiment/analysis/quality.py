"""Data-quality checks before analysis: what was excluded or counted, and why.

The engine counts everything in the same aggregate query that computes the sums
(:func:`experiment.engine.aggregate`); this module turns the counts into one
clear message per check, with the action taken and a severity, and stops the
analysis when too many revenue values are invalid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from experiment.errors import DataError
from experiment.results import DataQuality, DataQualityCheck
from experiment.sums import JointSums, QualityCounts

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.sums import CellSums

__all__ = ["OUTSIDE_WARNING", "Action", "CheckName", "Severity", "data_quality", "quality_checks"]

OUTSIDE_WARNING = 0.5
"""Share of the events outside the window above which that count is a warning."""

CheckName = Literal[
    "multiple_arms",
    "duplicate_customers",
    "assignments_without_customer",
    "events_before_assignment",
    "events_outside_window",
    "invalid_revenue",
    "metric_without_events",
    "empty_segments",
    "segment_definitions",
]
Action = Literal["excluded", "counted", "error"]
Severity = Literal["info", "warning", "error"]


def _check(
    name: CheckName, count: int, action: Action, message: str, *, expected: bool = False
) -> DataQualityCheck:
    severity: Severity = "info" if count == 0 else "warning"
    if action == "error":
        severity = "error"
    elif expected:
        severity = "info"  # expected in real data: only post-exposure behaviour counts
    return DataQualityCheck(
        name=name, count=count, action=action, message=message, severity=severity
    )


def quality_checks(
    counts: QualityCounts, *, invalid_threshold: float, source: str = "events"
) -> DataQuality:
    """The data-quality section of results.json.

    Args:
        counts: Counts from the engine.
        invalid_threshold: Largest tolerated share of invalid metric values; above it
            the analysis stops (``invalid_revenue_threshold`` in the experiment file).
        source: Where the events come from, for the error message.

    Raises:
        DataError: the share of invalid metric values exceeds ``invalid_threshold``.

    Examples:
        >>> dq = quality_checks(QualityCounts(multiple_arms=3), invalid_threshold=0.01)
        >>> dq.checks[0].message
        '3 users assigned to more than one arm: excluded from the analysis'
    """
    c = counts
    share = c.invalid_revenue / c.revenue_values if c.revenue_values else 0.0
    columns = ", ".join(c.value_columns) or "revenue"
    invalid_msg = (
        f"{c.invalid_revenue:,} {columns} values NaN, infinite or negative "
        f"({share:.2%} of {c.revenue_values:,})"
    )
    if share > invalid_threshold:
        raise DataError(
            f"{source}: {invalid_msg}, over the limit {invalid_threshold:.2%} "
            "(invalid_revenue_threshold in the experiment file); fix the data or raise the limit"
        )
    checks = (
        _check(
            "multiple_arms",
            c.multiple_arms,
            "excluded",
            f"{c.multiple_arms:,} users assigned to more than one arm: excluded from the analysis",
        ),
        _check(
            "duplicate_customers",
            c.duplicate_customers,
            "excluded",
            f"{c.duplicate_customers:,} assigned users with duplicate customer rows: excluded "
            "(their segment membership is ambiguous)",
        ),
        _check(
            "assignments_without_customer",
            c.assignments_without_customer,
            "counted",
            f"{c.assignments_without_customer:,} assigned users with no customer row: counted "
            "in 'all', in no segment",
        ),
        _check(
            "events_before_assignment",
            c.events_before_assignment,
            "excluded",
            f"{c.events_before_assignment:,} metric events before the user's assignment: excluded "
            "(only post-exposure behaviour counts)",
            expected=True,
        ),
        _outside(c),
        _check(
            "invalid_revenue",
            c.invalid_revenue,
            "excluded",
            f"{invalid_msg}: excluded from sums (the events still count)",
        ),
    )
    return DataQuality(checks=checks)


def _outside(c: QualityCounts) -> DataQualityCheck:
    """Events outside the window: expected, unless most of them are (re-assigned users?)."""
    share = c.events_outside_window / c.events_total if c.events_total else 0.0
    message = f"{c.events_outside_window:,} events outside the analysis window: excluded"
    if share > OUTSIDE_WARNING:
        message = (
            f"{c.events_outside_window:,} of {c.events_total:,} events ({share:.0%}) fall "
            f"outside the analysis window ({c.events_before_window:,} before it): excluded; "
            "the window starts at the first assignment (or window.start): check assigned_at"
        )
    return _check(
        "events_outside_window",
        c.events_outside_window,
        "excluded",
        message,
        expected=share <= OUTSIDE_WARNING,
    )


def _totals(sums: object) -> tuple[np.float64, np.float64]:
    """A metric's total of ``y`` (and ``x``, a ratio's denominator) over every cell."""
    if isinstance(sums, JointSums):
        return np.nansum(sums.n * sums.mean_y), np.nansum(sums.n * sums.mean_x)
    n, mean = sums.n, sums.mean  # type: ignore[attr-defined]
    total = np.nansum(n * mean)
    return total, total


def _finite(cells: CellSums, config: ExperimentConfig) -> None:
    """Sums that overflowed (values near 1e308) or are NaN make every number meaningless."""
    for spec in config.metrics:
        sums = cells.metrics.get(spec.name)
        if sums is None:
            continue
        arrays = [np.asarray(v, dtype=np.float64) for v in vars(sums).values()]
        if all(np.isfinite(a[np.isfinite(sums.n) & (sums.n > 0)]).all() for a in arrays):
            continue
        columns = sorted({m.value for m in spec.measures if m.value}) or ["its events"]
        raise DataError(
            f"events: column {', '.join(map(repr, columns))} (metric {spec.name!r}): the sums "
            "are not finite (values too large to add up, e.g. 1e308, overflow); values must "
            "be finite numbers in a summable range"
        )


def _arms(cells: CellSums, config: ExperimentConfig) -> None:
    """Every arm of the experiment file must have assigned users."""
    users = np.asarray(cells.units[0], dtype=np.float64)
    empty = [arm for j, arm in enumerate(cells.arms) if not users[j] > 0]
    if empty:
        present = [arm for j, arm in enumerate(cells.arms) if users[j] > 0]
        q = cells.quality
        excluded = [
            f"{n:,} {what}"
            for n, what in (
                (q.duplicate_customers, "with more than one customers row"),
                (q.multiple_arms, "assigned to more than one arm"),
            )
            if n > 0
        ]
        why = f" (users excluded: {'; '.join(excluded)})" if excluded else ""
        raise DataError(
            f"assignments: arm(s) {', '.join(map(repr, empty))} of experiment "
            f"{config.name!r} have no analysable users{why}; arms with users: "
            f"{', '.join(present) or 'none'}"
        )


def _no_events(c: QualityCounts, cells: CellSums) -> DataError:
    window = f"{cells.window_start:%Y-%m-%d %H:%M} → {cells.window_end:%Y-%m-%d %H:%M} UTC"
    after = c.events_outside_window - c.events_before_window
    return DataError(
        f"events: no metric event of an assigned user falls in the analysis window {window} "
        f"after the user's assignment: {c.events_outside_window:,} of {c.events_total:,} "
        f"events are outside the window ({c.events_before_window:,} before it, {after:,} "
        f"after it) and {c.events_before_assignment:,} before their user's assignment; the "
        "window starts at the first assigned_at (were users re-assigned?) unless window.start "
        "is set"
    )


def data_quality(cells: CellSums, config: ExperimentConfig) -> DataQuality:
    """The data-quality section, after the checks that stop an analysis of untrusted data.

    Raises:
        DataError: an arm has no users, a metric's sums are not finite, no metric
            event is usable (every one outside the window or before assignment), or
            too many metric values are invalid (:func:`quality_checks`).
    """
    dq = quality_checks(cells.quality, invalid_threshold=config.invalid_revenue_threshold)
    _arms(cells, config)
    _finite(cells, config)
    totals = {m.name: _totals(cells.metrics[m.name]) for m in config.metrics}
    silent = [name for name, (y, x) in totals.items() if y == 0 and x == 0]
    if len(silent) == len(totals):
        raise _no_events(cells.quality, cells)
    q = cells.quality
    if q.value_columns and q.revenue_values == 0 and q.events_total > 0:
        raise DataError(
            f"events: column(s) {', '.join(map(repr, q.value_columns))}: every value of the "
            "metrics' events is null, so every value metric would read 0; fill the column "
            "(amounts as numbers) or drop the metric"
        )
    empty = [s for i, s in enumerate(cells.segments) if i > 0 and not np.sum(cells.units[i]) > 0]
    extra = (
        _check(
            "metric_without_events",
            len(silent),
            "counted",
            f"metric(s) {', '.join(map(repr, silent))}: no event in the window after assignment "
            "(every row reads 0 or no data)"
            if silent
            else "every metric has events in the window after assignment",
        ),
        _check(
            "empty_segments",
            len(empty),
            "counted",
            f"segment(s) {', '.join(map(repr, empty))} have no assigned users (their rows "
            "read no data): a rule that matches no one? (exp segments validate)"
            if empty
            else "every segment has assigned users",
        ),
    )
    rules = tuple(
        _check("segment_definitions", 1, "counted", message)
        for message in cells.quality.segment_warnings
    )
    return DataQuality(checks=(*dq.checks, *extra, *rules))
