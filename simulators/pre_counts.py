"""The pre-period's counters drawn directly from their distribution, without its events.

:func:`simulators.pre_period.simulate_pre_period` runs the journeys day by day
over the 90 days before the start and counts them; when those events are not
written, the counters alone are needed, and they have a closed form. The days are
independent and, given a customer, so are the sessions and everything a session
emits, so over a block of days (the windows' blocks: days 1-7, 8-30 and 31-90
before the start) the counts have the same joint law as the day-by-day counts:

* sessions on channel ``c``: Poisson with the block's summed daily rate times
  the channel's share for the customer's device (Poisson thinning);
* impressions on ``c``: ``S_c + NegBin(S_c * size, p)`` (a sum of ``S_c``
  independent ``1 + NegBin(size, p)``);
* clicks ``Binomial(I_c, ctr * channel_ctr[c])``, add-to-carts
  ``Binomial(clicks, cart_rate)``, purchases ``Binomial(carts, purchase_rate)``,
  one lognormal order value per purchase (rounded to cents, as in a day);
* logins ``Binomial(S, login_per_session)``; page views, pricing-page views and
  feature uses Poisson in ``S`` times their per-session rate;
* the last login day: the earliest block with a login holds it, and it is the
  nearest of that block's ``L`` login days, each drawn independently with weight
  the day's session rate (``P(min <= j) = 1 - (1 - F(j))**L``, inverted).

It is one draw per customer and quantity instead of one per event (90 days of
events cost about six experiment weeks); the counts differ from the day-by-day
ones draw by draw, not in distribution (``tests/simulators/test_pre_counts.py``
compares the two).

References:
    Kingman (1993), *Poisson Processes*, the colouring (thinning) theorem.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from simulators.journeys import TimeProfile
from simulators.pre_period import HISTORY_DAYS, WINDOWS, PrePeriod
from simulators.schema import EVENTS

if TYPE_CHECKING:
    from simulators.population import Traits
    from simulators.scenario import ScenarioConfig

__all__ = ["CHUNK", "draw_pre_period"]

CHUNK = 1 << 16
"""Customers per chunk of the draw (each chunk has its own random stream)."""
Rng = Callable[[int], np.random.Generator]

_K = len(EVENTS)
_E = {name: i for i, name in enumerate(EVENTS)}
# days before the start of each window's own block: 1-7, 8-30, 31-90 (WINDOWS[-1] == HISTORY_DAYS)
_BLOCKS = ((1, WINDOWS[0]), (WINDOWS[0] + 1, WINDOWS[1]), (WINDOWS[1] + 1, HISTORY_DAYS))


def _binomial(
    rng: np.random.Generator, n: NDArray[np.int64], p: NDArray[np.float64]
) -> NDArray[np.int64]:
    """Binomial draws where ``n > 0`` (zero elsewhere), ``p`` clipped to [0, 1]."""
    out = np.zeros(n.size, dtype=np.int64)
    some = np.flatnonzero(n > 0)
    out[some] = rng.binomial(n[some], np.clip(p[some], 0.0, 1.0))
    return out


def _poisson(rng: np.random.Generator, mean: NDArray[np.float64]) -> NDArray[np.int64]:
    """Poisson draws where ``mean > 0`` (zero elsewhere)."""
    out = np.zeros(mean.size, dtype=np.int64)
    some = np.flatnonzero(mean > 0)
    out[some] = rng.poisson(mean[some])
    return out


def _day_weights(config: ScenarioConfig, profile: TimeProfile) -> NDArray[np.float64]:
    """``C[j]``: summed day-of-week weights of days 1..j before the start (``C[0] = 0``)."""
    weekday0 = config.start.weekday()
    days = np.arange(1, HISTORY_DAYS + 1)
    weights = profile.weekday[(weekday0 - days) % 7]
    return np.concatenate([[0.0], np.cumsum(weights)])


def _active_range(
    traits: Traits, config: ScenarioConfig
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """First and last active day before the start (as in ``pre_period._active``)."""
    floor = np.asarray([s.recency[0] for s in config.population.stages.values()], np.int64)
    first = np.minimum(floor[traits.stage] + 1, HISTORY_DAYS + 1)
    last = np.minimum(traits.tenure_days, HISTORY_DAYS)
    return first, last


def _channel_shares(traits: Traits, profile: TimeProfile) -> NDArray[np.float64]:
    """Each customer's share of sessions per channel, shape ``(n_channels, n)``."""
    cdf = profile.channel_cdf[traits.device]  # (n, n_channels - 1)
    share: NDArray[np.float64] = np.diff(cdf, axis=1, prepend=0.0, append=1.0).T
    return share


def _block_sessions(
    rng: np.random.Generator,
    traits: Traits,
    share: NDArray[np.float64],
    weight: NDArray[np.float64],
) -> NDArray[np.int64]:
    """Sessions of a block per channel, shape ``(n_channels, n)``, given the channel shares."""
    rate = traits.sessions_per_day * traits.past_activity * weight
    return np.stack([_poisson(rng, rate * s) for s in share])


def _funnel(
    rng: np.random.Generator,
    traits: Traits,
    config: ScenarioConfig,
    profile: TimeProfile,
    sessions: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """One block's counts per customer and event, shape ``(n, K)``, and its logins."""
    funnel = config.funnel
    n = traits.n_users
    counts = np.zeros((n, _K), dtype=np.int64)
    total = sessions.sum(axis=0)
    counts[:, _E["session"]] = total
    if funnel.login_per_session > 0:
        counts[:, _E["login"]] = _binomial(rng, total, np.full(n, funnel.login_per_session))
    perks = (
        ("page_view", funnel.pages_per_session, np.full(n, funnel.pages_per_session)),
        ("pricing_view", funnel.pricing_views_per_session, traits.pricing_rate),
        ("feature_use", funnel.features_per_session, traits.feature_rate),
        ("premium_feature_use", funnel.premium_features_per_session, traits.premium_rate),
    )
    for name, on, rate in perks:
        if on > 0:
            counts[:, _E[name]] = _poisson(rng, total * rate)
    size = funnel.impressions_dispersion
    p = size / (size + funnel.impressions_per_session - 1.0)
    clicks = np.zeros(n, dtype=np.int64)
    for c, s_c in enumerate(sessions):
        extra = np.zeros(n, dtype=np.int64)
        some = np.flatnonzero(s_c > 0)
        extra[some] = rng.negative_binomial(s_c[some] * size, p)
        shown = s_c + extra
        counts[:, _E["impression"]] += shown
        clicks += _binomial(rng, shown, traits.ctr * profile.channel_ctr[c])
    carts = _binomial(rng, clicks, traits.cart_rate)
    counts[:, _E["click"]], counts[:, _E["add_to_cart"]] = clicks, carts
    counts[:, _E["purchase"]] = _binomial(rng, carts, traits.purchase_rate)
    return counts, counts[:, _E["login"]]


def _revenue_cents(
    rng: np.random.Generator, traits: Traits, config: ScenarioConfig, purchases: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Summed order values in cents, one lognormal per purchase (as in a day)."""
    buyer = np.repeat(np.arange(traits.n_users), purchases)
    sigma = config.funnel.order_value_sigma
    value = np.round(
        np.exp(traits.value_log_mean[buyer] + sigma * rng.standard_normal(buyer.size)), 2
    )
    cents = np.bincount(buyer, np.rint(value * 100.0), minlength=traits.n_users)
    return cents.astype(np.float64, copy=False)


def _nearest_login(
    rng: np.random.Generator,
    logins: NDArray[np.int64],
    cum: NDArray[np.float64],
    first: NDArray[np.int64],
    last: NDArray[np.int64],
) -> NDArray[np.int64]:
    """The nearest of ``logins`` independent days in ``[first, last]``, weighted as ``cum``."""
    u = rng.random(logins.size)
    q = -np.expm1(np.log1p(-u) / np.maximum(logins, 1))  # F(min) quantile: 1 - (1 - u)**(1/L)
    low, high = cum[first - 1], cum[last]
    day = np.searchsorted(cum, low + q * (high - low), side="left")
    return np.clip(day, first, last).astype(np.int64)


def _draw_chunk(
    traits: Traits,
    config: ScenarioConfig,
    profile: TimeProfile,
    rng: np.random.Generator,
    out: PrePeriod,
) -> None:
    """Draw the counters of a slice of the customers into ``out`` (views of that slice)."""
    cum = _day_weights(config, profile)
    active_first, active_last = _active_range(traits, config)
    share = _channel_shares(traits, profile)  # the same in every block
    running = np.zeros((traits.n_users, _K), dtype=np.int64)
    revenue = np.zeros(traits.n_users)
    for (start, end), window in zip(_BLOCKS, WINDOWS, strict=True):
        first, last = np.maximum(active_first, start), np.minimum(active_last, end)
        weight = np.where(first <= last, cum[np.maximum(last, first - 1)] - cum[first - 1], 0.0)
        sessions = _block_sessions(rng, traits, share, weight)
        counts, logins = _funnel(rng, traits, config, profile, sessions)
        revenue += _revenue_cents(rng, traits, config, counts[:, _E["purchase"]])
        seen = np.flatnonzero((out.last_login == 0) & (logins > 0))
        out.last_login[seen] = _nearest_login(rng, logins[seen], cum, first[seen], last[seen])
        running += counts
        out.counts[window][:] = running
    out.revenue_90d[:] = revenue / 100.0


def _slice(traits: Traits, rows: slice) -> Traits:
    """The traits of the customers in ``rows``."""
    arrays = {
        f.name: getattr(traits, f.name)[rows]
        for f in fields(traits)
        if isinstance(getattr(traits, f.name), np.ndarray)
    }
    return replace(traits, **arrays)


def draw_pre_period(traits: Traits, config: ScenarioConfig, *, rng: Rng) -> PrePeriod:
    """The pre-period's counters in the law of :func:`~simulators.pre_period.simulate_pre_period`.

    Customers are drawn in fixed chunks of :data:`CHUNK`, chunk ``c`` on generator
    ``rng(c)``, two chunks at a time on two threads (numpy's random draws release
    the GIL): the result depends on the seed only, not on the threads, and a
    chunk's arrays stay in the CPU caches.

    Args:
        traits: Latent traits of the customers.
        config: The scenario.
        rng: ``rng(c)`` is the generator of chunk ``c``.

    Returns:
        The counters (all events, the three windows, revenue and the last login day).
    """
    n = traits.n_users
    profile = TimeProfile.from_funnel(config.funnel, traits.device_names)
    out = PrePeriod(
        counts={w: np.zeros((n, _K), dtype=np.int32) for w in WINDOWS},
        revenue_90d=np.zeros(n),
        last_login=np.zeros(n, dtype=np.int64),
    )

    def chunk(c: int) -> None:
        rows = slice(c * CHUNK, min(n, (c + 1) * CHUNK))
        part = PrePeriod(
            counts={w: v[rows] for w, v in out.counts.items()},
            revenue_90d=out.revenue_90d[rows],
            last_login=out.last_login[rows],
        )
        _draw_chunk(_slice(traits, rows), config, profile, rng(c), part)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(chunk, range(-(-n // CHUNK))))
    return out
