"""The customers table: attributes and pre-period behaviour drawn from the latent traits.

Pre-period counts are nested so they agree with each other and with the traits:
the last login happened ``days_since_last_login`` days ago, earlier sessions of
the last 90 days are Poisson at the user's past rate and split binomially into
the last 30 and 7 days; carts come from sessions, orders from carts, revenue
from orders. So ``days_since_last_login >= 14`` really selects less active users,
and ``cart_abandons_30d >= 1 and orders_90d == 0`` users who carted but did not buy.
Impressions, clicks, carts and orders are nested the same way (binomial thinning at
the customer's own CTR, cart and purchase rates), and feature uses, premium-feature
uses and pricing-page views are Poisson per session at the rates the journeys use.

The pre-period is drawn in aggregate and is not written to ``events.parquet``: the
events table starts at the assignment, so an analysis never has to skip it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from simulators.schema import CUSTOMERS_SCHEMA, to_micros

if TYPE_CHECKING:
    from simulators.population import Traits
    from simulators.scenario import ScenarioConfig

__all__ = ["LOYALTY_TIERS", "customers_table", "user_ids"]

LOYALTY_TIERS = ("none", "bronze", "silver", "gold")
_TIER_EDGES = (0.0, 100.0, 250.0)  # revenue_90d: 0 | (0, 100) | [100, 250) | >= 250
_US_PER_DAY = 86_400_000_000


def user_ids(n_users: int) -> pa.Array:
    """Zero-padded ids ``u0000001``, ``u0000002``, ... as an Arrow string array.

    Examples:
        >>> user_ids(2).to_pylist()
        ['u0000001', 'u0000002']
    """
    width = max(7, len(str(n_users)))
    digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n_users + 1)), pa.string()), width, "0")
    return pc.binary_join_element_wise("u", digits, "")


def _days_since_last_login(
    rng: np.random.Generator,
    p_day: NDArray[np.float64],
    low: NDArray[np.int64],
    high: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Geometric with daily login probability ``p_day``, truncated to ``[low, high]``."""
    log_q = np.log1p(-np.clip(p_day, 1e-12, 1.0 - 1e-12))
    tail = -np.expm1((high - low + 1) * log_q)  # P(X <= high - low) before truncation
    k = np.floor(np.log1p(-rng.random(p_day.size) * tail) / log_q).astype(np.int64)
    days: NDArray[np.int64] = low + np.clip(k, 0, high - low)
    return days


def _window(tenure: NDArray[np.int64], dsl: NDArray[np.int64], days: int) -> NDArray[np.float64]:
    """Days of the last ``days`` before the last login on which earlier sessions fall."""
    return np.clip(np.minimum(days, tenure + 1) - dsl - 1, 0, None).astype(np.float64)


def _split(
    rng: np.random.Generator,
    n: NDArray[np.int64],
    part: NDArray[np.float64],
    whole: NDArray[np.float64],
) -> NDArray[np.int64]:
    share = np.divide(part, whole, out=np.zeros_like(part), where=whole > 0)
    return rng.binomial(n, share)


def _activity(
    rng: np.random.Generator, traits: Traits, config: ScenarioConfig
) -> dict[str, NDArray[np.int64]]:
    stages = list(config.population.stages.values())
    rec_low = np.asarray([s.recency[0] for s in stages], dtype=np.int64)[traits.stage]
    rec_high = np.asarray([s.recency[1] for s in stages], dtype=np.int64)[traits.stage]
    rec_high = np.minimum(rec_high, traits.tenure_days)
    p_day = -np.expm1(-traits.sessions_per_day)
    dsl = _days_since_last_login(rng, p_day, np.minimum(rec_low, rec_high), rec_high)

    tenure = traits.tenure_days
    w90, w30, w7 = (_window(tenure, dsl, d) for d in (90, 30, 7))
    earlier_90 = rng.poisson(traits.sessions_per_day * traits.past_activity * w90)
    earlier_30 = _split(rng, earlier_90, w30, w90)
    earlier_7 = _split(rng, earlier_30, w7, w30)
    sessions_30 = (dsl < 30) + earlier_30
    sessions_90 = (dsl < 90) + earlier_90

    funnel = config.funnel
    ctr = np.minimum(traits.ctr * _channel_factor(config, traits), 1.0)
    impressions_30 = rng.poisson(sessions_30 * funnel.impressions_per_session)
    clicks_30 = rng.binomial(impressions_30, ctr)
    carts_30 = rng.binomial(clicks_30, traits.cart_rate)
    older = rng.poisson((sessions_90 - sessions_30) * funnel.impressions_per_session * ctr)
    carts_older = rng.binomial(older, traits.cart_rate)
    orders_30 = rng.binomial(carts_30, traits.purchase_rate)
    return {
        "logins_7d": (dsl < 7) + earlier_7,
        "days_since_last_login": dsl,
        "sessions_30d": sessions_30,
        "impressions_30d": impressions_30,
        "clicks_30d": clicks_30,
        "feature_uses_30d": rng.poisson(sessions_30 * traits.feature_rate),
        "premium_feature_uses_30d": rng.poisson(sessions_30 * traits.premium_rate),
        "orders_90d": orders_30 + rng.binomial(carts_older, traits.purchase_rate),
        "cart_abandons_30d": carts_30 - orders_30,
        "pricing_page_views_30d": rng.poisson(sessions_30 * traits.pricing_rate),
    }


def _channel_factor(config: ScenarioConfig, traits: Traits) -> NDArray[np.float64]:
    """Each customer's mean CTR factor over the channels their device's sessions use."""
    funnel = config.funnel
    by_device = np.asarray(
        [
            sum(
                share * funnel.channel_ctr.get(ch, 1.0)
                for ch, share in funnel.session_channels[d].items()
            )
            for d in traits.device_names
        ]
    )
    factor: NDArray[np.float64] = by_device[traits.device]
    return factor


def _revenue(
    rng: np.random.Generator, traits: Traits, orders: NDArray[np.int64], sigma: float
) -> NDArray[np.float64]:
    buyer = np.repeat(np.arange(orders.size), orders)
    values = np.round(
        np.exp(traits.value_log_mean[buyer] + sigma * rng.standard_normal(buyer.size)), 2
    )
    return np.round(np.bincount(buyer, weights=values, minlength=orders.size), 2)


def _names(names: tuple[str, ...], codes: NDArray[np.intp]) -> pa.Array:
    return pa.array(names, pa.string()).take(pa.array(codes))


def customers_table(
    traits: Traits,
    config: ScenarioConfig,
    *,
    ids: pa.Array,
    rng: int | np.random.Generator | None = None,
) -> pa.Table:
    """The customers table of the data contract, one row per customer.

    Args:
        traits: Latent traits of the customers.
        config: The scenario (funnel rates, stage recency ranges, start date).
        ids: User ids aligned with ``traits``.
        rng: Seed or generator.

    Returns:
        A table with :data:`simulators.schema.CUSTOMERS_SCHEMA`.
    """
    rng = np.random.default_rng(rng)
    activity = _activity(rng, traits, config)
    revenue = _revenue(rng, traits, activity["orders_90d"], config.funnel.order_value_sigma)
    tier = np.where(revenue > 0, np.searchsorted(_TIER_EDGES, revenue, side="right"), 0)
    start_us = to_micros(config.start)
    age_us = (traits.tenure_days + rng.random(traits.n_users)) * _US_PER_DAY
    signup = pa.array(start_us - np.ceil(age_us).astype(np.int64), pa.int64())
    columns = {
        "user_id": ids,
        "signup_at": signup.cast(CUSTOMERS_SCHEMA.field("signup_at").type),
        "country": _names(traits.country_names, traits.country),
        "age_band": _names(traits.age_names, traits.age),
        "company_size": _names(traits.company_names, traits.company),
        "plan": _names(traits.plan_names, traits.plan),
        "device": _names(traits.device_names, traits.device),
        "channel": _names(traits.channel_names, traits.channel),
        "interest": _names(traits.interest_names, traits.interest),
        "loyalty_tier": _names(LOYALTY_TIERS, tier.astype(np.intp)),
        **{k: pa.array(v.astype(np.int64)) for k, v in activity.items()},
        "revenue_90d": pa.array(revenue),
        "price_sensitivity": pa.array(traits.price_sensitivity),
    }
    return pa.table({f.name: columns[f.name] for f in CUSTOMERS_SCHEMA}, schema=CUSTOMERS_SCHEMA)
