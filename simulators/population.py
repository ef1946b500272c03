"""Latent customer traits: lifecycle stage, activity rate, click, cart and purchase propensities.

These traits drive both the pre-period attributes (:mod:`simulators.history`) and
the journeys during the experiment (:mod:`simulators.journeys`). They never reach
the dataset: an analysis sees only their consequences.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from simulators.scenario import FunnelSpec, PopulationSpec

__all__ = ["Traits", "cut_by_rank", "draw_traits"]


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
    age_names: tuple[str, ...]
    company_names: tuple[str, ...]
    plan_names: tuple[str, ...]
    interest_names: tuple[str, ...]
    stage: NDArray[np.intp]
    device: NDArray[np.intp]
    country: NDArray[np.intp]
    channel: NDArray[np.intp]
    age: NDArray[np.intp]
    company: NDArray[np.intp]
    plan: NDArray[np.intp]
    interest: NDArray[np.intp]
    lapsed: NDArray[np.bool_]
    tenure_days: NDArray[np.int64]
    price_sensitivity: NDArray[np.float64]
    sessions_per_day: NDArray[np.float64]
    past_activity: NDArray[np.float64]
    ctr: NDArray[np.float64]
    cart_rate: NDArray[np.float64]
    purchase_rate: NDArray[np.float64]
    value_log_mean: NDArray[np.float64]
    pricing_rate: NDArray[np.float64]
    feature_rate: NDArray[np.float64]
    premium_rate: NDArray[np.float64]

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


def _ranked_like(sample: NDArray[np.float64], z: NDArray[np.float64]) -> NDArray[np.float64]:
    """``sample``'s values rearranged so that their ranks follow ``z``'s.

    The marginal stays exactly that of ``sample`` while the dependence follows the
    latent normal traits (a Gaussian copula by rank matching, Iman & Conover 1982).

    References:
        Iman & Conover (1982), https://doi.org/10.1080/03610918208812265
    """
    out = np.empty_like(sample)
    out[np.argsort(z)] = np.sort(sample)  # continuous z: no ties, so any sort agrees
    return out


def _latent(
    rng: np.random.Generator, rho: tuple[float, float, float], n: int
) -> NDArray[np.float64]:
    """Engagement, price and value traits: rows of a standard trivariate normal.

    ``L @ x`` for the Cholesky factor ``L`` is written out in numpy, not BLAS: a
    3-wide matrix product gains nothing from BLAS threads, which spin for tens of
    milliseconds per call when the cores are shared.
    """
    ep, ev, pv = rho
    corr = np.array([[1.0, ep, ev], [ep, 1.0, pv], [ev, pv, 1.0]])
    low = np.linalg.cholesky(corr)
    x = rng.standard_normal((3, n))
    z = np.empty_like(x)
    for i in range(3):  # row i of L @ x, with L lower-triangular
        z[i] = low[i, 0] * x[0]
        for j in range(1, i + 1):
            z[i] += low[i, j] * x[j]
    return z


def _ranked(
    rng: np.random.Generator, shares: dict[str, float], score: NDArray[np.float64]
) -> tuple[tuple[str, ...], NDArray[np.intp]]:
    """Categories listed low to high, given to customers by the rank of a noisy ``score``."""
    return tuple(shares), cut_by_rank(score + rng.standard_normal(score.size), shares)


def cut_by_rank(values: NDArray[np.float64], shares: dict[str, float]) -> NDArray[np.intp]:
    """The category of each value when the values, ranked, are cut at the shares' edges.

    The value at position ``k`` of the ascending order has rank ``(k + 0.5) / n``
    and the category of the share edges at or below it. Only the order statistics
    at the edges are needed, so a partition (linear) finds them instead of a full
    argsort (~10x the time at 1M customers); the categories are the same (the
    values are continuous: no ties).

    Examples:
        >>> cut_by_rank(np.array([0.3, -1.0, 2.0, 0.1]), {"low": 0.5, "high": 0.5}).tolist()
        [1, 0, 1, 0]
    """
    n = values.size
    edges = np.cumsum(np.asarray(list(shares.values())) / sum(shares.values()))[:-1]
    rank = (np.arange(n) + 0.5) / n  # the rank of each position of the ascending order
    first = np.searchsorted(rank, edges, side="left")  # first position at or past each edge
    inside = np.unique(first[first < n])
    value = dict(zip(inside.tolist(), np.partition(values, inside)[inside].tolist(), strict=True))
    cuts = np.asarray([value.get(int(k), np.inf) for k in first], dtype=np.float64)
    codes: NDArray[np.intp] = np.searchsorted(cuts, values, side="right").astype(np.intp)
    return codes


@dataclass(frozen=True, kw_only=True)
class _Behaviour:
    """The traits drawn after the attributes: activity, tenure and funnel propensities.

    A part of :class:`Traits` (same field names), drawn by :func:`_draw_behaviour`.
    """

    lapsed: NDArray[np.bool_]
    tenure_days: NDArray[np.int64]
    price_sensitivity: NDArray[np.float64]
    sessions_per_day: NDArray[np.float64]
    past_activity: NDArray[np.float64]
    ctr: NDArray[np.float64]
    cart_rate: NDArray[np.float64]
    purchase_rate: NDArray[np.float64]
    value_log_mean: NDArray[np.float64]
    pricing_rate: NDArray[np.float64]
    feature_rate: NDArray[np.float64]
    premium_rate: NDArray[np.float64]


def _purchase_rate(
    rng: np.random.Generator,
    funnel: FunnelSpec,
    base: NDArray[np.float64],
    price_sensitivity: NDArray[np.float64],
    ps_centre: float,
) -> NDArray[np.float64]:
    """Purchase per cart: the device's rate tilted by price sensitivity, then Beta per user."""
    purchase = base * (1.0 + funnel.price_sensitivity_slope * (price_sensitivity - ps_centre))
    purchase = np.clip(purchase, 1e-6, 1.0 - 1e-6)
    if funnel.purchase_concentration is not None:  # Beta around the user's mean rate
        kappa = funnel.purchase_concentration
        purchase = rng.beta(purchase * kappa, (1.0 - purchase) * kappa)
    return purchase


def _draw_behaviour(
    rng: np.random.Generator,
    population: PopulationSpec,
    funnel: FunnelSpec,
    *,
    stage: NDArray[np.intp],
    purchase_base: NDArray[np.float64],
    latent: NDArray[np.float64],
) -> _Behaviour:
    """Tenure, activity, churn state and funnel rates, given stages and latent traits."""
    stages = list(population.stages.values())
    engagement, price, value = latent
    n_users = stage.size

    def per_stage(values: list[float]) -> NDArray[np.float64]:
        return np.asarray(values, dtype=np.float64)[stage]

    tenure_low = np.asarray([s.tenure[0] for s in stages], dtype=np.int64)[stage]
    tenure_high = np.asarray([s.tenure[1] for s in stages], dtype=np.int64)[stage]
    tenure = _uniform_days(rng, tenure_low, tenure_high)
    ps_a, ps_b = population.price_sensitivity
    shape = population.activity_shape
    # the rank matchings (sorts) run on two threads while the next traits are drawn;
    # the draws keep their order, so the traits do not depend on the threads
    with ThreadPoolExecutor(2) as pool:
        ranked_price = pool.submit(_ranked_like, rng.beta(ps_a, ps_b, n_users), price)
        activity = rng.gamma(shape, 1.0 / shape, n_users)  # mean 1
        gamma = pool.submit(_ranked_like, activity, engagement)
        lapsed = rng.random(n_users) < per_stage([s.lapsed for s in stages])
        ctr_a = funnel.ctr_mean * funnel.ctr_concentration
        ctr = rng.beta(ctr_a, funnel.ctr_concentration - ctr_a, n_users)
        price_sensitivity = ranked_price.result()
        ps_centre = ps_a / (ps_a + ps_b)
        purchase = _purchase_rate(rng, funnel, purchase_base, price_sensitivity, ps_centre)
        weekly = gamma.result() * per_stage([s.sessions_per_week for s in stages])
    value_log_mean = (
        np.log(funnel.order_value_median)
        + per_stage([s.value for s in stages])
        + funnel.order_value_user_sigma * value
    )
    ps_ratio = price_sensitivity / (ps_a / (ps_a + ps_b))
    return _Behaviour(
        lapsed=lapsed,
        tenure_days=tenure,
        price_sensitivity=price_sensitivity,
        sessions_per_day=weekly / 7.0,
        past_activity=per_stage([s.past_activity for s in stages]),
        ctr=ctr,
        cart_rate=np.minimum(funnel.cart_per_click * per_stage([s.intent for s in stages]), 1.0),
        purchase_rate=purchase,
        value_log_mean=value_log_mean,
        pricing_rate=funnel.pricing_views_per_session * (0.25 + 0.75 * ps_ratio),
        feature_rate=funnel.features_per_session * np.exp(0.5 * engagement - 0.125),
        premium_rate=funnel.premium_features_per_session * np.exp(0.7 * value - 0.245),
    )


def draw_traits(
    population: PopulationSpec,
    funnel: FunnelSpec,
    n_users: int,
    *,
    rng: int | np.random.Generator | None = None,
) -> Traits:
    """Draw the latent traits of ``n_users`` customers.

    Three correlated latent traits (engagement, price sensitivity, value) drive the
    attributes. The activity rate is the Gamma quantile of engagement around the
    stage mean (a Gamma-Poisson, i.e. NBD, session count); price sensitivity is the
    Beta quantile of its trait; order values are lognormal around a per-user
    log-mean shifted by value; plans and company sizes rank by value. The
    click-through rate is Beta-distributed per user.

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
    stage_names, stage = _categorical(
        rng, {k: s.share for k, s in population.stages.items()}, n_users
    )
    device_names, device = _categorical(rng, population.devices, n_users)
    country_names, country = _categorical(rng, population.countries, n_users)
    channel_names, channel = _categorical(rng, population.channels, n_users)
    age_names, age = _categorical(rng, population.age_bands, n_users)
    interest_names, interest = _categorical(rng, population.interests, n_users)
    latent = _latent(rng, population.latent_correlation, n_users)
    plan_names, plan = _ranked(rng, population.plans, latent[2])  # ranked by value
    company_names, company = _ranked(rng, population.company_sizes, latent[2])
    purchase_base = np.asarray([funnel.purchase_per_cart[d] for d in device_names])[device]
    how = _draw_behaviour(
        rng, population, funnel, stage=stage, purchase_base=purchase_base, latent=latent
    )
    return Traits(
        stage_names=stage_names,
        device_names=device_names,
        country_names=country_names,
        channel_names=channel_names,
        age_names=age_names,
        company_names=company_names,
        plan_names=plan_names,
        interest_names=interest_names,
        stage=stage,
        device=device,
        country=country,
        channel=channel,
        age=age,
        company=company,
        plan=plan,
        interest=interest,
        lapsed=how.lapsed,
        tenure_days=how.tenure_days,
        price_sensitivity=how.price_sensitivity,
        sessions_per_day=how.sessions_per_day,
        past_activity=how.past_activity,
        ctr=how.ctr,
        cart_rate=how.cart_rate,
        purchase_rate=how.purchase_rate,
        value_log_mean=how.value_log_mean,
        pricing_rate=how.pricing_rate,
        feature_rate=how.feature_rate,
        premium_rate=how.premium_rate,
    )
