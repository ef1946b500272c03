"""The scenario file: population mix, funnel rates, planted effects and start date.

A scenario folder holds ``scenario.yaml`` (this model), ``segments.yaml`` and
``experiment.yaml``. The models here only check each field on its own; checks
across the three files live in :mod:`simulators.catalog`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "EffectSpec",
    "FunnelSpec",
    "PopulationSpec",
    "ScenarioConfig",
    "StageSpec",
]

Share = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]
Relative = Annotated[float, Field(gt=-1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_shares(shares: dict[str, float], what: str) -> dict[str, float]:
    total = sum(shares.values())
    if not shares or abs(total - 1.0) > 1e-6:
        raise ValueError(f"{what} shares must sum to 1 (got {total:g})")
    return shares


def _check_range(bounds: tuple[int, int], what: str) -> tuple[int, int]:
    low, high = bounds
    if not 0 <= low <= high:
        raise ValueError(f"{what} must be [low, high] with 0 <= low <= high")
    return bounds


class StageSpec(_Frozen):
    """One lifecycle stage: its share and the latent traits of its members.

    ``sessions_per_week`` is the mean of the Gamma-distributed activity rate;
    ``past_activity`` scales that rate for the 90-day pre-period (lapsed users
    used to be more active); ``intent`` multiplies add-to-cart per click;
    ``value`` is added to the log of the order value; ``tenure`` and ``recency``
    are inclusive day ranges for days since signup and since the last login.
    """

    share: Share
    sessions_per_week: float = Field(gt=0)
    past_activity: float = Field(default=1.0, gt=0)
    intent: float = Field(default=1.0, gt=0)
    value: float = 0.0
    tenure: tuple[int, int]
    recency: tuple[int, int]

    @field_validator("tenure", "recency")
    @classmethod
    def _ranges(cls, bounds: tuple[int, int]) -> tuple[int, int]:
        return _check_range(bounds, "a day range")

    @model_validator(mode="after")
    def _recency_fits_tenure(self) -> StageSpec:
        if self.recency[0] > self.tenure[1]:
            raise ValueError("recency cannot start after the longest tenure")
        return self


class PopulationSpec(_Frozen):
    """Who the customers are: lifecycle mix and attribute distributions."""

    stages: dict[str, StageSpec]
    activity_shape: float = Field(gt=0)
    countries: dict[str, Share]
    devices: dict[str, Share]
    channels: dict[str, Share]
    price_sensitivity: tuple[float, float]

    @field_validator("countries", "devices", "channels")
    @classmethod
    def _attribute_shares(cls, shares: dict[str, float]) -> dict[str, float]:
        return _check_shares(shares, "attribute")

    @field_validator("price_sensitivity")
    @classmethod
    def _beta(cls, ab: tuple[float, float]) -> tuple[float, float]:
        if min(ab) <= 0:
            raise ValueError("price_sensitivity is Beta(a, b) with a, b > 0")
        return ab

    @model_validator(mode="after")
    def _stage_shares(self) -> PopulationSpec:
        _check_shares({k: s.share for k, s in self.stages.items()}, "stage")
        return self


class FunnelSpec(_Frozen):
    """Per-session funnel rates and the time profile of sessions.

    Per-user rates are heterogeneous: click-through is Beta with mean ``ctr_mean``
    and concentration ``ctr_concentration``; purchase per cart is Beta around the
    device rate (shifted by price sensitivity) with ``purchase_concentration``, or
    exactly that rate when it is omitted.
    """

    impressions_per_session: float = Field(ge=1)
    impressions_dispersion: float = Field(gt=0)
    ctr_mean: float = Field(gt=0, lt=1)
    ctr_concentration: float = Field(gt=0)
    cart_per_click: Probability
    purchase_per_cart: dict[str, Probability]
    purchase_concentration: float | None = Field(default=None, gt=0)
    price_sensitivity_slope: float = 0.0
    order_value_median: float = Field(gt=0)
    order_value_sigma: float = Field(ge=0)
    order_value_user_sigma: float = Field(ge=0)
    pricing_views_per_session: float = Field(ge=0)
    day_of_week: list[Share] = Field(min_length=7, max_length=7)
    hour_of_day: list[Share] = Field(min_length=24, max_length=24)
    session_channels: dict[str, dict[str, Share]]

    @field_validator("day_of_week", "hour_of_day")
    @classmethod
    def _some_weight(cls, weights: list[float]) -> list[float]:
        if sum(weights) <= 0:
            raise ValueError("needs at least one weight > 0")
        return weights

    @field_validator("session_channels")
    @classmethod
    def _channel_shares(cls, table: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for shares in table.values():
            _check_shares(shares, "session channel")
        if len({tuple(s) for s in table.values()}) > 1:
            raise ValueError("every device must list the same channels in the same order")
        return table


class EffectSpec(_Frozen):
    """A planted effect: relative changes for treated users of one segment.

    Each field is a relative change (``0.4`` means x1.4) of one stage of the
    funnel: ``ctr`` (click per impression), ``cart`` (add-to-cart per click),
    ``purchase`` (purchase per cart) and ``order_value``. ``arm`` limits the
    effect to one treatment arm; by default every treatment arm gets it.
    """

    segment: str
    arm: str | None = None
    ctr: Relative = 0.0
    cart: Relative = 0.0
    purchase: Relative = 0.0
    order_value: Relative = 0.0


class ScenarioConfig(_Frozen):
    """A parsed ``scenario.yaml``."""

    description: str = ""
    start: dt.datetime
    population: PopulationSpec
    funnel: FunnelSpec
    effects: list[EffectSpec] = Field(default_factory=list)

    @field_validator("start")
    @classmethod
    def _utc(cls, start: dt.datetime) -> dt.datetime:
        if start.tzinfo is None:
            return start.replace(tzinfo=dt.UTC)
        return start.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _devices_match(self) -> ScenarioConfig:
        devices = sorted(self.population.devices)
        for field in ("purchase_per_cart", "session_channels"):
            keys = sorted(getattr(self.funnel, field))
            if keys != devices:
                raise ValueError(f"funnel.{field} must list exactly the devices {devices}")
        return self
