"""The customers table: attributes drawn from the latent traits, behaviour counted from history.

The behavioural columns are counts over the simulated pre-period
(:mod:`simulators.pre_period`), the same journeys day by day before the start (or
their counters drawn in the same law when the history is not written,
:mod:`simulators.pre_counts`), so they are consistent with the events by
construction: ``orders_90d`` is the number of purchases of the last 90 days,
``revenue_90d`` their sum, ``cart_abandons_30d`` the add-to-carts minus purchases
of the last 30 days, ``logins_7d`` the logins of the last 7, and so on.
``days_since_last_login`` is ``j - 1`` for the latest pre-period day ``j`` (days
before the start) with a login; a customer with no login in the history gets the
rule of :func:`_no_login_days`.

The pre-period is written to ``events.parquet`` only with ``pre_period_events``
(rows before ``assigned_at``, which the analysis skips and reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from simulators.pre_period import HISTORY_DAYS
from simulators.schema import CUSTOMERS_SCHEMA, to_micros

if TYPE_CHECKING:
    from simulators.population import Traits
    from simulators.pre_period import PrePeriod
    from simulators.scenario import ScenarioConfig

__all__ = ["LOYALTY_TIERS", "Attributes", "customers_table", "draw_attributes", "user_ids"]

LOYALTY_TIERS = ("none", "bronze", "silver", "gold")
_TIER_EDGES = (0.0, 100.0, 250.0)  # revenue_90d: 0 | (0, 100) | [100, 250) | >= 250
_US_PER_DAY = 86_400_000_000


def user_ids(n_users: int) -> pa.Array:
    """Zero-padded ids ``u0000001``, ``u0000002``, ... as an Arrow string array.

    Every id has the same width, so the ids are one byte matrix written digit by
    digit in numpy (no Python string per customer); :func:`simulators.day.take_ids`
    relies on the fixed width to gather them fast.

    Examples:
        >>> user_ids(2).to_pylist()
        ['u0000001', 'u0000002']
    """
    digits = max(7, len(str(n_users)))
    width = digits + 1
    number = np.arange(1, n_users + 1, dtype=np.int64)
    text = np.empty((n_users, width), dtype=np.uint8)
    text[:, 0] = ord("u")
    for position in range(width - 1, 0, -1):
        number, digit = np.divmod(number, 10)
        text[:, position] = digit + ord("0")
    offsets = np.arange(0, (n_users + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n_users, pa.py_buffer(offsets), pa.py_buffer(text))


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


def _no_login_days(
    rng: np.random.Generator, traits: Traits, config: ScenarioConfig
) -> NDArray[np.int64]:
    """Days since the last login of a customer with no login in the simulated history.

    The rule (documented in the scenario files): beyond the history the last login
    is geometric in the customer's past daily login rate, truncated to the stage's
    recency range moved past the history (``[max(low, H), max(high, H)]``, ``H`` =
    :data:`~simulators.pre_period.HISTORY_DAYS`), and never earlier than the signup
    (a customer who never logged in counts from the signup: ``tenure_days``).
    """
    stages = list(config.population.stages.values())
    low = np.asarray([s.recency[0] for s in stages], dtype=np.int64)[traits.stage]
    high = np.asarray([s.recency[1] for s in stages], dtype=np.int64)[traits.stage]
    low, high = np.maximum(low, HISTORY_DAYS), np.maximum(high, HISTORY_DAYS)
    rate = traits.sessions_per_day * traits.past_activity * config.funnel.login_per_session
    days = _days_since_last_login(rng, -np.expm1(-rate), low, high)
    capped: NDArray[np.int64] = np.minimum(days, traits.tenure_days)
    return capped


def _activity(no_login_days: NDArray[np.int64], pre: PrePeriod) -> dict[str, NDArray[np.int64]]:
    """The behavioural columns, counted from the simulated pre-period."""
    dsl = np.where(pre.last_login > 0, pre.last_login - 1, no_login_days)
    carts_30, orders_30 = pre.count("add_to_cart", 30), pre.count("purchase", 30)
    return {
        "logins_7d": pre.count("login", 7),
        "days_since_last_login": dsl,
        "sessions_30d": pre.count("session", 30),
        "impressions_30d": pre.count("impression", 30),
        "clicks_30d": pre.count("click", 30),
        "feature_uses_30d": pre.count("feature_use", 30),
        "premium_feature_uses_30d": pre.count("premium_feature_use", 30),
        "orders_90d": pre.count("purchase", 90),
        "cart_abandons_30d": np.maximum(carts_30 - orders_30, 0),
        "pricing_page_views_30d": pre.count("pricing_view", 30),
    }


def _names(names: tuple[str, ...], codes: NDArray[np.intp]) -> pa.Array:
    return pa.array(names, pa.string()).take(pa.array(codes))


@dataclass(frozen=True, kw_only=True)
class Attributes:
    """What the customers table holds that the pre-period does not change.

    Drawn apart (:func:`draw_attributes`), so that a run builds it on a side
    thread while the pre-period's counters are drawn.

    Attributes:
        columns: The id, signup and demographic, firmographic, psychographic and
            contextual columns (by name).
        no_login_days: Days since the last login of each customer, were there no
            login in the simulated history (:func:`_no_login_days`).
    """

    columns: dict[str, pa.Array]
    no_login_days: NDArray[np.int64]


def draw_attributes(
    traits: Traits,
    config: ScenarioConfig,
    *,
    ids: pa.Array,
    rng: int | np.random.Generator | None = None,
) -> Attributes:
    """The customers' columns that do not depend on the pre-period.

    Args:
        traits: Latent traits of the customers.
        config: The scenario (stage recency ranges, start date).
        ids: User ids aligned with ``traits``.
        rng: Seed or generator (the no-login rule, then signup times).

    Returns:
        The columns, and the draws of the no-login rule.
    """
    rng = np.random.default_rng(rng)
    no_login_days = _no_login_days(rng, traits, config)
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
        "price_sensitivity": pa.array(traits.price_sensitivity),
    }
    return Attributes(columns=columns, no_login_days=no_login_days)


def customers_table(
    traits: Traits,
    config: ScenarioConfig,
    *,
    ids: pa.Array,
    pre: PrePeriod,
    rng: int | np.random.Generator | None = None,
    attributes: Attributes | None = None,
) -> pa.Table:
    """The customers table of the data contract, one row per customer.

    Args:
        traits: Latent traits of the customers.
        config: The scenario (funnel rates, stage recency ranges, start date).
        ids: User ids aligned with ``traits``.
        pre: The simulated pre-period the behavioural columns are counted from.
        rng: Seed or generator (signup times and the no-login rule), unless
            ``attributes`` were drawn already.
        attributes: :func:`draw_attributes` of the same traits, ids and ``rng``
            (None draws them here): the same table either way.

    Returns:
        A table with :data:`simulators.schema.CUSTOMERS_SCHEMA`.
    """
    if attributes is None:
        attributes = draw_attributes(traits, config, ids=ids, rng=rng)
    activity = _activity(attributes.no_login_days, pre)
    revenue = pre.revenue_90d
    tier = np.where(revenue > 0, np.searchsorted(_TIER_EDGES, revenue, side="right"), 0)
    columns = {
        **attributes.columns,
        "loyalty_tier": _names(LOYALTY_TIERS, tier.astype(np.intp)),
        **{k: pa.array(v.astype(np.int64, copy=False)) for k, v in activity.items()},
        "revenue_90d": pa.array(revenue),
    }
    return pa.table({f.name: columns[f.name] for f in CUSTOMERS_SCHEMA}, schema=CUSTOMERS_SCHEMA)
