"""Lifecycle stages: the built-in ``lifecycle`` column (new, dormant, at_risk, vip, active).

Stages follow practitioner RFM conventions (see ../shared/REALISM.md A5) and are
assigned first-match-wins, in this order, at the analysis start ("as of"):

1. ``new``: signed up at most ``new_days`` (default 30) days ago;
2. ``dormant``: no login for more than ``dormant_days`` (default 60) days;
3. ``at_risk``: no login for ``at_risk_days`` (default 14) days or more, or the
   optional ``at_risk_signals`` rule holds (e.g. declining engagement);
4. ``vip``: top ``vip_share`` (default 7%) of customers by ``value_column``;
5. ``active``: everyone else.

The VIP threshold is the ``1 - vip_share`` quantile of the value column (linear
interpolation, as ``numpy.quantile``), computed once in the engine. Every knob
lives under ``lifecycle:`` in the segments file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from experiment.errors import RuleError

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = [
    "LIFECYCLE",
    "STAGES",
    "LifecycleConfig",
    "days_since",
    "lifecycle_column",
    "stage_rule",
    "vip_threshold",
]

LIFECYCLE = "lifecycle"
STAGES = ("new", "dormant", "at_risk", "vip", "active")
_SECONDS_PER_DAY = 86_400


class LifecycleConfig(BaseModel):
    """The knobs of the lifecycle stages (the ``lifecycle:`` block of a segments file)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    new_days: int = Field(default=30, ge=1, le=365)
    at_risk_days: int = Field(default=14, ge=1, le=3650)
    dormant_days: int = Field(default=60, ge=2, le=3650)
    vip_share: float = Field(default=0.07, gt=0, lt=1)
    signup_column: str = "signup_at"
    recency_column: str = "days_since_last_login"
    value_column: str = "revenue_90d"
    at_risk_signals: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleConfig:
        if self.dormant_days <= self.at_risk_days:
            raise ValueError("dormant_days must be greater than at_risk_days")
        return self


def days_since(column: ir.Value, as_of: dt.datetime | None) -> ir.IntegerValue:
    """Whole days from a timestamp (or date) column to ``as_of`` (floor of the difference).

    Raises:
        RuleError: ``as_of`` is missing, or the column is not a timestamp or date.
    """
    if as_of is None:
        raise RuleError(
            "days_since() needs the analysis start; pass --as-of or an experiment window"
        )
    dtype = column.type()
    if dtype.is_date():
        column = column.cast("timestamp")
    elif not dtype.is_timestamp():
        raise RuleError(f"days_since() needs a timestamp or date column, not {dtype}")
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)
    seconds = as_of.timestamp() - column.epoch_seconds()
    result: ir.IntegerValue = (seconds / _SECONDS_PER_DAY).floor()
    return result


def _column(table: ir.Table, name: str, field: str) -> ir.Value:
    if name not in table.columns:
        raise RuleError(
            f"lifecycle.{field}: unknown column {name!r}; set lifecycle.{field} to one of: "
            f"{', '.join(table.columns)}"
        )
    return table[name]


def vip_threshold(table: ir.Table, config: LifecycleConfig) -> float:
    """The VIP cut-off: the ``1 - vip_share`` quantile of the value column."""
    value = _column(table, config.value_column, "value_column")
    threshold = value.cast("float64").quantile(1 - config.vip_share).to_pyarrow().as_py()
    return float("inf") if threshold is None else float(threshold)


def lifecycle_column(
    table: ir.Table,
    config: LifecycleConfig,
    *,
    as_of: dt.datetime | None,
    signals: Callable[[], Any] | None = None,
    vip_cut: float | None = None,
) -> ir.StringValue:
    """The stage of every customer as a string expression (never null).

    ``signals`` returns the compiled ``at_risk_signals`` rule, if any. ``vip_cut``
    is a VIP threshold already computed (:func:`vip_threshold`), e.g. on the
    customers table when ``table`` holds them joined to other rows.
    """
    import ibis

    signup = days_since(_column(table, config.signup_column, "signup_column"), as_of)
    recency = _column(table, config.recency_column, "recency_column")
    value = _column(table, config.value_column, "value_column").cast("float64")
    at_risk = recency >= config.at_risk_days
    if signals is not None:
        at_risk = at_risk | signals().fill_null(False)
    cut = vip_threshold(table, config) if vip_cut is None else vip_cut
    stage: ir.StringValue = ibis.cases(
        (signup.fill_null(config.new_days + 1) <= config.new_days, "new"),
        (recency.fill_null(0) > config.dormant_days, "dormant"),
        (at_risk.fill_null(False), "at_risk"),
        (value.fill_null(-float("inf")) >= cut, "vip"),
        else_="active",
    )
    return stage


def stage_rule(stage: str, config: LifecycleConfig) -> str:
    """The rule that puts a customer in ``stage``, in words a reader can check.

    Stages are taken first match wins, so every stage after ``new`` also says
    which earlier stages it excludes.

    Raises:
        ValueError: ``stage`` is not one of :data:`STAGES`.
    """
    if stage not in STAGES:
        raise ValueError(f"stage == {stage!r}, must be one of {', '.join(STAGES)}.")
    recency = config.recency_column
    signals = f" or {config.at_risk_signals}" if config.at_risk_signals else ""
    rules = {
        "new": f"{config.signup_column} at most {config.new_days} days before the analysis start",
        "dormant": f"{recency} > {config.dormant_days}",
        "at_risk": f"{recency} >= {config.at_risk_days}{signals}",
        "vip": f"top {config.vip_share:.0%} of customers by {config.value_column}",
    }
    earlier = STAGES[: STAGES.index(stage)]
    if stage == "active":
        return f"in no other stage (not {', '.join(earlier[:-1])} or {earlier[-1]})"
    exclude = f", and not {' or '.join(earlier)}" if earlier else ""
    return f"{rules[stage]}{exclude}"
