"""One simulated day of customer journeys: sessions, page views, feature use and the funnel.

Each session of a customer shows ``1 + NegBin`` impressions on its channel and
emits logins, page views, pricing-page views and feature uses (Poisson around the
customer's rates). Every random number is drawn once and shared by all arms
(common random numbers): an impression is clicked in arm ``a`` if
``u < ctr * multiplier[a]``, a session or a feature use exists in arm ``a`` if its
thinning uniform is below ``multiplier[a] / max(multiplier)``. So the potential
outcomes differ only where a planted effect acts, and the observed events are the
world of the user's assigned arm.

Speed: candidates are narrowed step by step (an impression that is clicked in no
world never draws a cart uniform), so a day costs a few numpy passes over the
impressions; a *world* is a boolean array of shape ``(n_arms, n)``, or ``None``
when an event exists in every arm's world alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from simulators.day import DayRows, World

if TYPE_CHECKING:
    from simulators.day import DayEvents
    from simulators.effects import Multipliers
    from simulators.outcomes import PotentialOutcomes
    from simulators.population import Traits
    from simulators.scenario import FunnelSpec

__all__ = ["TimeProfile", "simulate_day"]

_US = 1_000_000
_US_PER_DAY = 86_400 * _US
_IMPRESSION_GAP_S = 20.0  # mean seconds between impressions of a session (judgment)
_SESSION_SPAN_S = 600.0  # logins, page views and feature uses fall in a session's first 10 min
_DELAYS_S = {"click": (2.0, 30.0), "add_to_cart": (20.0, 120.0), "purchase": (60.0, 600.0)}


@dataclass(frozen=True)
class TimeProfile:
    """Day-of-week weights (Monday first, mean 1), hour-of-day and channel distributions."""

    weekday: NDArray[np.float64]
    hour_cdf: NDArray[np.float64]
    channel_names: tuple[str, ...]
    channel_cdf: NDArray[np.float64]
    channel_ctr: NDArray[np.float64]

    @classmethod
    def from_funnel(cls, funnel: FunnelSpec, devices: tuple[str, ...]) -> TimeProfile:
        """Normalise the funnel's weights; ``devices`` orders the channel table's rows."""
        weekday = np.asarray(funnel.day_of_week, dtype=np.float64)
        hours = np.cumsum(funnel.hour_of_day, dtype=np.float64)
        rows = np.asarray([list(funnel.session_channels[d].values()) for d in devices])
        channels = tuple(funnel.session_channels[devices[0]])
        return cls(
            weekday=weekday / weekday.mean(),
            hour_cdf=hours[:-1] / hours[-1],
            channel_names=channels,
            channel_cdf=np.cumsum(rows, axis=1)[:, :-1] / rows.sum(axis=1, keepdims=True),
            channel_ctr=np.asarray([funnel.channel_ctr.get(c, 1.0) for c in channels]),
        )


def _effect(rows: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """The multiplier rows, or None when they change nothing."""
    return rows if bool(np.any(rows != 1.0)) else None


def _both(a: World, b: World) -> World:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _take(world: World, index: NDArray[np.intp]) -> World:
    return None if world is None else world[:, index]


def _thinned(
    rng: np.random.Generator,
    rate: NDArray[np.float64],
    mult: NDArray[np.float64] | None,
    owner: NDArray[np.intp],
) -> tuple[NDArray[np.intp], World]:
    """Poisson counts per unit at the largest arm's rate, thinned per arm (CRN).

    ``owner`` maps each unit (a user or a session) to its user, the column of ``mult``.
    Returns the unit of each event and the worlds it exists in.
    """
    if mult is None:
        count = rng.poisson(rate)
        return np.repeat(np.arange(rate.size), count), None
    top = mult.max(axis=0)
    count = rng.poisson(rate * top[owner])
    unit = np.repeat(np.arange(rate.size), count)
    user = owner[unit]
    keep = rng.random(unit.size) * top[user] < mult[:, user]
    return unit, keep


def _sessions(
    rng: np.random.Generator,
    traits: Traits,
    profile: TimeProfile,
    rate: NDArray[np.float64],
    *,
    mult: NDArray[np.float64] | None,
    day_start: int,
) -> tuple[NDArray[np.intp], World, NDArray[np.int64], NDArray[np.int8]]:
    everyone = np.arange(traits.n_users)
    user, world = _thinned(rng, rate, mult, everyone)
    hour = np.searchsorted(profile.hour_cdf, rng.random(user.size), side="right")
    ts = day_start + ((hour + rng.random(user.size)) * 3_600 * _US).astype(np.int64)
    u, device = rng.random(user.size), traits.device[user]
    channel = np.zeros(user.size, dtype=np.int8)
    for cdf in profile.channel_cdf.T:  # the channel is the number of cdf edges at or below u
        channel += u >= cdf[device]  # (a loop over the few edges: no (n, channels) array)
    return user, world, ts, channel


def _impressions(
    rng: np.random.Generator, funnel: FunnelSpec, n_sessions: int
) -> tuple[NDArray[np.intp], NDArray[np.int64]]:
    """Session index of each impression and its offset in microseconds from the session start."""
    extra_mean = funnel.impressions_per_session - 1.0
    size = funnel.impressions_dispersion
    per_session = 1 + rng.negative_binomial(size, size / (size + extra_mean), n_sessions)
    session = np.repeat(np.arange(n_sessions), per_session)
    gaps = rng.exponential(_IMPRESSION_GAP_S, session.size)
    elapsed = np.cumsum(gaps)
    first = np.cumsum(per_session) - per_session
    offset = elapsed - np.repeat(elapsed[first] - gaps[first], per_session)
    return session, (offset * _US).astype(np.int64)


def _step(
    rng: np.random.Generator,
    rate: NDArray[np.float64],
    mult: NDArray[np.float64] | None,
    user: NDArray[np.intp],
    world: World,
) -> tuple[NDArray[np.intp], World]:
    """One funnel step: which of the previous step's rows go on, in which worlds (CRN)."""
    u = rng.random(user.size)
    if mult is None:
        go = np.flatnonzero(u < rate)
        return go, _take(world, go)
    top = mult.max(axis=0)[user]
    go = np.flatnonzero(u < rate * top)
    g_user = user[go]
    own = u[go] < rate[go] * mult[:, g_user]
    return go, _both(_take(world, go), own)


def _delay(rng: np.random.Generator, event: str, n: int) -> NDArray[np.int64]:
    low, high = _DELAYS_S[event]
    return ((low + (high - low) * rng.random(n)) * _US).astype(np.int64)


def _extras(
    rng: np.random.Generator,
    day: DayRows,
    traits: Traits,
    funnel: FunnelSpec,
    *,
    mult: Multipliers,
    session: tuple[NDArray[np.intp], World, NDArray[np.int64], NDArray[np.int8]],
) -> None:
    """Logins, page views, pricing-page views and feature uses of each session."""
    s_user, s_world, s_ts, s_channel = session
    feature = _effect(mult.feature_use)
    per_session: list[tuple[str, NDArray[np.float64], NDArray[np.float64] | None]] = []
    if funnel.login_per_session > 0:
        per_session.append(("login", np.empty(0), None))  # drawn per session below
    if funnel.pages_per_session > 0:
        per_session.append(("page_view", np.full(s_user.size, funnel.pages_per_session), None))
    if funnel.pricing_views_per_session > 0:
        per_session.append(("pricing_view", traits.pricing_rate[s_user], None))
    if funnel.features_per_session > 0:
        per_session.append(("feature_use", traits.feature_rate[s_user], feature))
    if funnel.premium_features_per_session > 0:
        per_session.append(("premium_feature_use", traits.premium_rate[s_user], feature))
    for name, rate, rows in per_session:
        if name == "login":  # at most one per session, at its start
            unit = np.flatnonzero(rng.random(s_user.size) < funnel.login_per_session)
            world, ts = _take(s_world, unit), s_ts[unit]
        else:
            unit, own = _thinned(rng, rate, rows, s_user)
            world = _both(_take(s_world, unit), own)
            ts = s_ts[unit] + (rng.random(unit.size) * _SESSION_SPAN_S * _US).astype(np.int64)
        day.add(name, s_user[unit], world, ts, s_channel[unit])


def simulate_day(
    traits: Traits,
    funnel: FunnelSpec,
    profile: TimeProfile,
    multipliers: Multipliers,
    arm: NDArray[np.intp],
    *,
    day_start: int,
    weekday: int,
    outcomes: PotentialOutcomes,
    activity: NDArray[np.float64] | None = None,
    rng: int | np.random.Generator | None = None,
    ordered: bool = True,
) -> DayEvents:
    """Simulate one day for every customer in every arm's world.

    Args:
        traits: Latent traits of the customers.
        funnel: Funnel rates of the scenario.
        profile: Day-of-week, hour-of-day and channel weights.
        multipliers: Planted effects per arm and customer (for this day).
        arm: Index of each customer's assigned arm (a row of ``multipliers``).
        day_start: Midnight UTC of the day, in microseconds since the epoch.
        weekday: 0 for Monday to 6 for Sunday.
        outcomes: Potential outcomes, updated in place with this day's events.
        activity: Per-customer factor of the session rate (churned customers), or None.
        rng: Seed or generator for this day.
        ordered: Sort the rows by time; False skips the sort (for counting only).

    Returns:
        The day's observed events, those of each user's assigned arm.
    """
    rng = np.random.default_rng(rng)
    day = DayRows(arm=arm, outcomes=outcomes, parts=[])
    rate = traits.sessions_per_day * profile.weekday[weekday]
    if activity is not None:
        rate = rate * activity
    session = _sessions(
        rng, traits, profile, rate, mult=_effect(multipliers.sessions), day_start=day_start
    )
    s_user, s_world, s_ts, s_channel = session
    day.add("session", s_user, s_world, s_ts, s_channel)
    _extras(rng, day, traits, funnel, mult=multipliers, session=session)

    i_session, i_offset = _impressions(rng, funnel, s_user.size)
    user, world = s_user[i_session], _take(s_world, i_session)
    ts, channel = s_ts[i_session] + i_offset, s_channel[i_session]
    day.add("impression", user, world, ts, channel)
    ctr = traits.ctr[user] * profile.channel_ctr[channel]
    steps = (
        ("click", ctr, multipliers.ctr),
        ("add_to_cart", traits.cart_rate, multipliers.cart),
        ("purchase", traits.purchase_rate, multipliers.purchase),
    )
    for name, rates, rows in steps:
        step_rate = rates if name == "click" else rates[user]
        go, world = _step(rng, step_rate, _effect(rows), user, world)
        user, channel = user[go], channel[go]
        ts = ts[go] + _delay(rng, name, go.size)
        if name == "purchase":
            value = _order_values(rng, traits, funnel, multipliers, user)
            day.add_purchases(user, world, ts, channel, value)
        else:
            day.add(name, user, world, ts, channel)
    return day.concat(day_start + _US_PER_DAY, ordered=ordered)


def _order_values(
    rng: np.random.Generator,
    traits: Traits,
    funnel: FunnelSpec,
    multipliers: Multipliers,
    user: NDArray[np.intp],
) -> NDArray[np.float64]:
    """Order value of each purchase in every arm's world, shape ``(n_arms, n)``."""
    base = np.exp(
        traits.value_log_mean[user] + funnel.order_value_sigma * rng.standard_normal(user.size)
    )
    value: NDArray[np.float64] = np.round(base * multipliers.order_value[:, user], 2)
    return value
