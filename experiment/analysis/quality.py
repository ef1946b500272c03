"""Data-quality checks before analysis: what was excluded or counted, and why.

The engine counts everything in the same aggregate query that computes the sums
(:func:`experiment.engine.aggregate`); this module turns the counts into one
clear message per check, with the action taken and a severity, and stops the
analysis when too many revenue values are invalid.
"""

from __future__ import annotations

from typing import Literal

from experiment.errors import DataError
from experiment.results import DataQuality, DataQualityCheck
from experiment.sums import QualityCounts

__all__ = ["Action", "CheckName", "Severity", "quality_checks"]

CheckName = Literal[
    "multiple_arms",
    "duplicate_customers",
    "assignments_without_customer",
    "events_before_assignment",
    "events_outside_window",
    "invalid_revenue",
]
Action = Literal["excluded", "counted", "error"]
Severity = Literal["info", "warning", "error"]


def _check(name: CheckName, count: int, action: Action, message: str) -> DataQualityCheck:
    severity: Severity = "info" if count == 0 else "warning"
    if action == "error":
        severity = "error"
    elif name in ("events_before_assignment", "events_outside_window"):
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
        ),
        _check(
            "events_outside_window",
            c.events_outside_window,
            "excluded",
            f"{c.events_outside_window:,} events outside the analysis window: excluded",
        ),
        _check(
            "invalid_revenue",
            c.invalid_revenue,
            "excluded",
            f"{invalid_msg}: excluded from sums (the events still count)",
        ),
    )
    return DataQuality(checks=checks)
