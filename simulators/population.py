"""Latent customer traits: lifecycle stage, activity rate, click, cart and purchase propensities.

These traits drive both the pre-period attributes (:mod:`simulators.history`) and
the journeys during the experiment (:mod:`simulators.journeys`). They never reach
the dataset: an analysis sees only their consequences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from simulators.scenario import FunnelSpec, PopulationSpec

__all__ = ["Traits", "draw_traits"]


@dataclass(frozen=True)
class Traits:
    """Latent traits of every simulated customer, one array element per customer.

    Categorical traits are integer codes into the matching ``*_names`` tuple.
    Rates are per day (sessions) or per funnel step (click per impression,
    add-to-cart per click, purchase per cart).
    """

    stage_names: tuple[str, ...]
    device_names: tuple[str, ...]
    country_names: tuple[str, ...]
    channel_names: tuple[str, ...]
    stage: NDArray[np.intp]
    device: NDArray[np.intp]
    country: NDArray[np.intp]
    channel: NDArray[np.intp]
    tenure_days: NDArray[np.int64]
    price_sensitivity: NDArray[np.float64]
    sessions_per_day: NDArray[np.float64]
    past_activity: NDArray[np.float64]
    ctr: NDArray[np.float64]
    cart_rate: NDArray[np.float64]
    purchase_rate: NDArray[np.float64]
    value_log_mean: NDArray[np.float64]

    @property
    def n_users(self) -> int:
        """Number of customers."""
        return int(self.stage.size)


def _categorical(
    rng: np.random.Generator, shares: dict[str, float], n: int
) -> tuple[tuple[str, ...], NDArray[np.intp]]:
    names = tuple(shares)
    probs = np.asarray(list(shares.values()), dtype=np.float64)
    codes = rng.choice(len(names), size=n, p=probs / probs.sum())
    return names, codes.astype(np.intp)


def _uniform_days(
    rng: np.random.Generator, low: NDArray[np.int64], high: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Integer days uniform on ``[low, high]`` per element."""
    return low + np.floor(rng.random(low.size) * (high - low + 1)).astype(np.int64)


def draw_traits(
    population: PopulationSpec,
    funnel: FunnelSpec,
    n_users: int,
    *,
    rng: int | np.random.Generator | None = None,
) -> Traits:
    """Draw the latent traits of ``n_users`` customers.

    The activity rate is Gamma-distributed around the stage mean (a Gamma-Poisson,
    i.e. NBD, session count); the click-through rate is Beta-distributed per user;
    order values are lognormal around a per-user log-mean.

    Args:
        population: Lifecycle mix and attribute shares.
        funnel: Funnel rates (CTR, add-to-cart, purchase, order value).
        n_users: Number of customers, >= 1.
        rng: Seed or generator.

    Returns:
        The traits, one element per customer.

    References:
        Fader, Hardie & Lee (2005), "Counting your customers the easy way",
        https://doi.org/10.1287/mksc.1040.0098 (Gamma heterogeneity of rates).
    """
    rng = np.random.default_rng(rng)
    stages = list(population.stages.values())
    stage_names, stage = _categorical(
        rng, {k: s.share for k, s in population.stages.items()}, n_users
    )
    device_names, device = _categorical(rng, population.devices, n_users)
    country_names, country = _categorical(rng, population.countries, n_users)
    channel_names, channel = _categorical(rng, population.channels, n_users)

    def per_stage(values: list[float]) -> NDArray[np.float64]:
        return np.asarray(values, dtype=np.float64)[stage]

    tenure_low = np.asarray([s.tenure[0] for s in stages], dtype=np.int64)[stage]
    tenure_high = np.asarray([s.tenure[1] for s in stages], dtype=np.int64)[stage]
    tenure = _uniform_days(rng, tenure_low, tenure_high)

    ps_a, ps_b = population.price_sensitivity
    price_sensitivity = rng.beta(ps_a, ps_b, n_users)
    shape = population.activity_shape
    weekly = rng.gamma(shape, per_stage([s.sessions_per_week for s in stages]) / shape)
    ctr_a = funnel.ctr_mean * funnel.ctr_concentration
    ctr = rng.beta(ctr_a, funnel.ctr_concentration - ctr_a, n_users)
    purchase_base = np.asarray([funnel.purchase_per_cart[d] for d in device_names])[device]
    ps_centre = ps_a / (ps_a + ps_b)
    purchase = purchase_base * (
        1.0 + funnel.price_sensitivity_slope * (price_sensitivity - ps_centre)
    )
    purchase = np.clip(purchase, 1e-6, 1.0 - 1e-6)
    if funnel.purchase_concentration is not None:  # Beta around the user's mean rate
        kappa = funnel.purchase_concentration
        purchase = rng.beta(purchase * kappa, (1.0 - purchase) * kappa)
    value_log_mean = (
        np.log(funnel.order_value_median)
        + per_stage([s.value for s in stages])
        + funnel.order_value_user_sigma * rng.standard_normal(n_users)
    )
    return Traits(
        stage_names=stage_names,
        device_names=device_names,
        country_names=country_names,
        channel_names=channel_names,
        stage=stage,
        device=device,
        country=country,
        channel=channel,
        tenure_days=tenure,
        price_sensitivity=price_sensitivity,
        sessions_per_day=weekly / 7.0,
        past_activity=per_stage([s.past_activity for s in stages]),
        ctr=ctr,
        cart_rate=np.minimum(funnel.cart_per_click * per_stage([s.intent for s in stages]), 1.0),
        purchase_rate=purchase,
        value_log_mean=value_log_mean,
    )
