"""The experiment file's ``lifecycle_analysis:`` block: migration, survival and lifetime value.

Opt-in, because it costs one more engine query over the login and metric events
(README "Lifecycle analysis"). Read by :mod:`experiment.engine.lifecycle`, tested
by :mod:`experiment.stats.survival`, carried by :mod:`experiment.results.lifecycle`.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from experiment.filemodel import FileModel

__all__ = ["LifecycleAnalysis", "RollingFeature"]


class RollingFeature(FileModel):
    """How a customers column rolls forward from the events (migration of rule segments).

    The column at day ``d`` is its value at the start, minus the events that left
    its ``days``-day window, plus those of the window's days ``[max(0, d - days), d)``.

    Attributes:
        event: The event counted (or whose ``sum`` column is summed).
        days: The column's window in days (``orders_90d``: 90).
        sum: An events column summed instead of counting rows (``revenue_90d``:
            ``revenue``).
    """

    event: str = Field(min_length=1, max_length=200)
    days: int = Field(ge=1, le=3650)
    sum: str | None = Field(default=None, min_length=1, max_length=200)


class LifecycleAnalysis(FileModel):
    """What to measure beyond the window's lifts.

    Attributes:
        days: Days after the window start at which the lifecycle stage is
            re-evaluated for the migration matrix (the window end is always
            added); each at most ``window.days``.
        login_event: The event that resets ``days_since_last_login`` (the
            lifecycle's recency column) when it happens in the window.
        purchase_event: The event of the time-to-first-purchase curve.
        value: The events column summed as value (the lifetime value's spend).
        retention_days: Days at which the survival curves' treatment effect is tested.
        ltv_horizons: Horizons (days) of the projected value per customer.
        migration_segments: Rule segments of the segments file whose membership is
            re-evaluated at ``days`` from the behaviour up to each day.
        features: Recipes of behavioural columns (added to, or replacing, the
            built-in ones of the customers table's convention, README "Lifecycle
            analysis").
        dynamic: Columns that change with behaviour but have no recipe: a migration
            segment that uses one is refused (other columns stay as at the start).
    """

    days: list[int] = Field(default_factory=list, max_length=20)
    login_event: str = Field(default="login", min_length=1, max_length=200)
    purchase_event: str = Field(default="purchase", min_length=1, max_length=200)
    value: str = Field(default="revenue", min_length=1, max_length=200)
    retention_days: list[int] = Field(default_factory=lambda: [7, 14], max_length=20)
    ltv_horizons: list[int] = Field(default_factory=lambda: [90, 365], max_length=10)
    migration_segments: list[str] = Field(default_factory=list, max_length=20)
    features: dict[str, RollingFeature] = Field(default_factory=dict, max_length=100)
    dynamic: list[str] = Field(default_factory=lambda: ["loyalty_tier"], max_length=100)

    @model_validator(mode="after")
    def _positive(self) -> LifecycleAnalysis:
        for name in ("days", "retention_days", "ltv_horizons"):
            values = getattr(self, name)
            if any(v < 1 or v > 3650 for v in values):
                raise ValueError(f"{name}: every day must be between 1 and 3650")
        return self
