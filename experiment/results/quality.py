"""The data-quality checks of one analysis: what the engine found and what was done.

Part of the results.json contract (``data_quality.checks``): each check names what
it counted, what the analysis did with it and how much it changes the reading of
the results.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DataQuality", "DataQualityCheck"]


@dataclass(frozen=True, kw_only=True)
class DataQualityCheck:
    """One data-quality check run before analysis.

    ``name`` is one of ``multiple_arms``, ``duplicate_customers``,
    ``assignments_without_customer``, ``events_before_assignment``,
    ``events_outside_window``, ``invalid_revenue``, ``metric_without_events``,
    ``empty_segments``, ``segment_definitions``; ``action`` one of ``excluded``,
    ``counted``, ``error``; ``severity`` one of ``info`` (expected, handled),
    ``warning`` (changes the reading of the results), ``error``.
    """

    name: str
    count: int
    action: str
    message: str
    severity: str


@dataclass(frozen=True, kw_only=True)
class DataQuality:
    """Every data-quality check of an analysis, in a fixed order."""

    checks: tuple[DataQualityCheck, ...] = ()

    @property
    def warnings(self) -> tuple[DataQualityCheck, ...]:
        """The checks whose findings change the reading of the results (not ``info``)."""
        return tuple(c for c in self.checks if c.count > 0 and c.severity != "info")
