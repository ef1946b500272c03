"""The scenario file: population mix, funnel rates, planted effects and start date.

A scenario folder holds ``scenario.yaml`` (this model), ``segments.yaml`` and
``experiment.yaml``. The models here only check each field on its own; checks
across the three files live in :mod:`simulators.catalog`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from experiment.filemodel import FileModel
from simulators.day import MAX_CHANNELS

__all__ = [
    "ChurnSpec",
    "EffectSpec",
    "FunnelSpec",
    "NoveltySpec",
    "PopulationSpec",
    "ScenarioConfig",
    "StageSpec",
]

# Upper bounds keep every rate far from float overflow in the simulator's draws.
Share = Annotated[float, Field(ge=0, le=1e6)]
Probability = Annotated[float, Field(ge=0, le=1)]
Relative = Annotated[float, Field(gt=-1, le=100)]
Rate = Annotated[float, Field(ge=0, le=1000)]  # events per session or per week
Spread = Annotated[float, Field(gt=0, le=1e6)]  # shapes and concentrations
Days = Annotated[int, Field(ge=0, le=36_500)]


class _Frozen(FileModel):
    """Frozen, no unknown field, finite numbers (:class:`experiment.filemodel.FileModel`)."""


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
    are inclusive day ranges for days since signup and since the last login (the
    pre-period simulates a member only on days after signup and more than
    ``recency[0]`` days before the start; see :mod:`simulators.pre_period`);
    ``lapsed`` is the probability of starting the experiment churned (see :class:`ChurnSpec`).
    """

    share: Share
    lapsed: Probability = 0.0
    sessions_per_week: float = Field(gt=0, le=1000)
    past_activity: float = Field(default=1.0, gt=0, le=100)
    intent: float = Field(default=1.0, gt=0, le=100)
    value: float = Field(default=0.0, ge=-20, le=20)
    tenure: tuple[Days, Days]
    recency: tuple[Days, Days]

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
    """Who the customers are: lifecycle mix, latent traits and attribute distributions.

    Three latent traits per customer, standard normal with the given correlations
    (``latent_correlation`` = engagement-price, engagement-value, price-value),
    drive the attributes: engagement sets the activity rate (a Gamma quantile) and
    feature use, price sensitivity is a Beta quantile of its trait, value shifts the
    order value and ranks customers into ``plans`` and ``company_sizes`` (listed from
    low to high value). ``age_bands`` and ``interests`` are drawn independently.
    """

    stages: dict[str, StageSpec]
    activity_shape: Spread
    latent_correlation: tuple[float, float, float] = (-0.2, 0.3, -0.3)
    countries: dict[str, Share]
    devices: dict[str, Share]
    channels: dict[str, Share]
    age_bands: dict[str, Share] = Field(
        default_factory=lambda: {
            "18-24": 0.15,
            "25-34": 0.3,
            "35-44": 0.25,
            "45-54": 0.17,
            "55+": 0.13,
        }
    )
    company_sizes: dict[str, Share] = Field(default_factory=lambda: {"consumer": 1.0})
    plans: dict[str, Share] = Field(default_factory=lambda: {"none": 1.0})
    interests: dict[str, Share] = Field(default_factory=lambda: {"general": 1.0})
    price_sensitivity: tuple[Spread, Spread]

    @field_validator(
        "countries", "devices", "channels", "age_bands", "company_sizes", "plans", "interests"
    )
    @classmethod
    def _attribute_shares(cls, shares: dict[str, float]) -> dict[str, float]:
        return _check_shares(shares, "attribute")

    @field_validator("price_sensitivity")
    @classmethod
    def _beta(cls, ab: tuple[float, float]) -> tuple[float, float]:
        if min(ab) <= 0:
            raise ValueError("price_sensitivity is Beta(a, b) with a, b > 0")
        return ab

    @field_validator("latent_correlation")
    @classmethod
    def _positive_definite(cls, rho: tuple[float, float, float]) -> tuple[float, float, float]:
        if not _is_correlation(rho):
            raise ValueError("latent_correlation must form a positive definite correlation matrix")
        return rho

    @model_validator(mode="after")
    def _stage_shares(self) -> PopulationSpec:
        _check_shares({k: s.share for k, s in self.stages.items()}, "stage")
        return self


def _is_correlation(rho: tuple[float, float, float]) -> bool:
    """Whether the 3x3 matrix with off-diagonals ``rho`` is positive definite (Sylvester)."""
    ep, ev, pv = rho
    det = 1 + 2 * ep * ev * pv - ep**2 - ev**2 - pv**2
    return all(abs(r) < 1 for r in rho) and det > 0


class ChurnSpec(_Frozen):
    """Churn and reactivation, a two-state daily Markov chain per customer.

    An active customer lapses with probability ``hazard`` a day; a lapsed one comes
    back with probability ``reactivation``; while lapsed, the activity rate is
    multiplied by ``lapsed_activity``. Lifecycle stages (new, active, at-risk,
    dormant) then follow from recency as customers lapse and come back.
    """

    hazard: Probability
    reactivation: Probability
    lapsed_activity: float = Field(ge=0, le=1)


class FunnelSpec(_Frozen):
    """Per-session funnel rates and the time profile of sessions.

    Per-user rates are heterogeneous: click-through is Beta with mean ``ctr_mean``
    and concentration ``ctr_concentration``; purchase per cart is Beta around the
    device rate (shifted by price sensitivity) with ``purchase_concentration``, or
    exactly that rate when it is omitted. ``channel_ctr`` multiplies the CTR of
    impressions on a channel (a missing channel: 1). Besides the funnel, each
    session emits a ``login`` with probability ``login_per_session`` and Poisson
    numbers of ``page_view``, ``pricing_view``, ``feature_use`` and
    ``premium_feature_use`` events around the ``*_per_session`` means (scaled per
    customer by engagement, price sensitivity and value).
    """

    login_per_session: Probability = 0.0
    pages_per_session: Rate = 0.0
    features_per_session: Rate = 0.0
    premium_features_per_session: Rate = 0.0
    impressions_per_session: float = Field(ge=1, le=1000)
    impressions_dispersion: Spread
    ctr_mean: float = Field(gt=0, lt=1)
    ctr_concentration: Spread
    cart_per_click: Probability
    purchase_per_cart: dict[str, Probability]
    purchase_concentration: Spread | None = None
    price_sensitivity_slope: float = Field(default=0.0, ge=-100, le=100)
    order_value_median: float = Field(gt=0, le=1e9)
    order_value_sigma: float = Field(ge=0, le=10)
    order_value_user_sigma: float = Field(ge=0, le=10)
    pricing_views_per_session: Rate
    day_of_week: list[Share] = Field(min_length=7, max_length=7)
    hour_of_day: list[Share] = Field(min_length=24, max_length=24)
    session_channels: dict[str, dict[str, Share]]
    channel_ctr: dict[str, Annotated[float, Field(le=1000)]] = Field(default_factory=dict)
    churn: ChurnSpec | None = None

    @field_validator("channel_ctr")
    @classmethod
    def _positive_factors(cls, factors: dict[str, float]) -> dict[str, float]:
        if any(f <= 0 for f in factors.values()):
            raise ValueError("channel CTR factors must be > 0")
        return factors

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
        if any(len(s) > MAX_CHANNELS for s in table.values()):
            raise ValueError(f"at most {MAX_CHANNELS} session channels")
        return table


class NoveltySpec(_Frozen):
    """A novelty effect: the change on day ``t`` is ``change * (1 + boost * exp(-t / days))``.

    References:
        Sadeghi et al. (2021), novelty and primacy in online experiments,
        https://arxiv.org/abs/2102.12893 (REALISM.md A6: boost 1, days 3 to 7).
    """

    boost: float = Field(ge=0, le=100)
    days: float = Field(gt=0, le=3650)


class EffectSpec(_Frozen):
    """A planted effect: relative changes for treated users of one segment.

    Each field is a relative change (``0.4`` means x1.4) of one stage of the
    journey: ``sessions`` (visits, logins and everything in them), ``feature_use``
    (feature and premium-feature uses per session), ``ctr`` (click per
    impression), ``cart`` (add-to-cart per click), ``purchase`` (purchase per cart)
    and ``order_value``. ``arm`` limits the effect to one treatment arm; by default
    every treatment arm gets it. ``where`` restricts it to the segment's customers
    matching a rule of the segments rule language (``"price_sensitivity >= 0.5"``),
    checked against the customers' columns when the scenario loads.
    ``novelty`` makes the change start larger and decay. ``churn`` and
    ``reactivation`` change the churn chain (:class:`ChurnSpec`): the daily
    probability that an active customer lapses (``-0.5``: halved) and that a
    lapsed one comes back (``1.0``: doubled, capped at 1); they act from the
    start, without the novelty part, and need ``funnel.churn``.
    """

    segment: str
    where: str | None = Field(default=None, min_length=1)
    arm: str | None = None
    novelty: NoveltySpec | None = None
    sessions: Relative = 0.0
    feature_use: Relative = 0.0
    ctr: Relative = 0.0
    cart: Relative = 0.0
    purchase: Relative = 0.0
    order_value: Relative = 0.0
    churn: Relative = 0.0
    reactivation: Relative = 0.0


class ScenarioConfig(_Frozen):
    """A parsed ``scenario.yaml``.

    ``pre_period_events`` also writes the simulated pre-period (the 90 days before
    ``start`` the customers' behavioural columns are counted from) to
    ``events.parquet``, with timestamps before the assignment; off by default
    because it multiplies the file's size.
    """

    description: str = ""
    start: dt.datetime
    pre_period_events: bool = False
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
        channels = next(iter(self.funnel.session_channels.values()))
        unknown = sorted(set(self.funnel.channel_ctr) - set(channels))
        if unknown:
            raise ValueError(
                f"funnel.channel_ctr: unknown channel {unknown[0]!r}; valid: {', '.join(channels)}"
            )
        if self.funnel.churn is None and any(e.churn or e.reactivation for e in self.effects):
            raise ValueError("effects with churn or reactivation need funnel.churn")
        return self
