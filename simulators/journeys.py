"""One simulated day of customer journeys: sessions, impressions and the purchase funnel.

Each session shows ``1 + NegBin`` impressions; each impression carries its own
uniforms for click, add-to-cart and purchase and a normal draw for the order
value. Every arm's world is decided from the same numbers (common random
numbers): an impression is clicked in arm ``a`` if ``u < ctr * multiplier[a]``.
So the potential outcomes differ only where the planted effect acts, and the
observed events are simply the world of the user's assigned arm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from simulators.schema import EVENTS, EVENTS_SCHEMA

if TYPE_CHECKING:
    from simulators.effects import Multipliers
    from simulators.outcomes import PotentialOutcomes
    from simulators.population import Traits
    from simulators.scenario import FunnelSpec

__all__ = ["DayEvents", "TimeProfile", "simulate_day"]

_US = 1_000_000
_US_PER_DAY = 86_400 * _US
_IMPRESSION_GAP_S = 20.0  # mean seconds between impressions of a session (judgment)
_DELAYS_S = {"click": (2.0, 30.0), "add_to_cart": (20.0, 120.0), "purchase": (60.0, 600.0)}


@dataclass(frozen=True)
class TimeProfile:
    """Day-of-week weights (Monday first, mean 1) and the hour-of-day distribution."""

    weekday: NDArray[np.float64]
    hour_cdf: NDArray[np.float64]
    channel_names: tuple[str, ...]
    channel_cdf: NDArray[np.float64]

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
        )


@dataclass(frozen=True)
class DayEvents:
    """The observed events of one day, sorted by time; ``revenue`` is NaN off purchases."""

    user: NDArray[np.intp]
    ts: NDArray[np.int64]
    event: NDArray[np.intp]
    channel: NDArray[np.intp]
    revenue: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.user.size)

    def to_arrow(
        self, *, user_ids: pa.Array, traits: Traits, channels: tuple[str, ...]
    ) -> pa.Table:
        """The events table rows of the data contract."""
        users = pa.array(self.user)
        columns = {
            "user_id": user_ids.take(users),
            "ts": pa.array(self.ts, pa.int64()).cast(EVENTS_SCHEMA.field("ts").type),
            "event": pa.array(EVENTS, pa.string()).take(pa.array(self.event)),
            "channel": pa.array(channels, pa.string()).take(pa.array(self.channel)),
            "device": pa.array(traits.device_names, pa.string()).take(
                pa.array(traits.device[self.user])
            ),
            "revenue": pa.array(self.revenue, pa.float64(), mask=np.isnan(self.revenue)),
        }
        return pa.table(columns, schema=EVENTS_SCHEMA)


def _sessions(
    rng: np.random.Generator, traits: Traits, profile: TimeProfile, weekday: int, day_start: int
) -> tuple[NDArray[np.intp], NDArray[np.int64], NDArray[np.intp]]:
    per_user = rng.poisson(traits.sessions_per_day * profile.weekday[weekday])
    user = np.repeat(np.arange(traits.n_users), per_user)
    hour = np.searchsorted(profile.hour_cdf, rng.random(user.size), side="right")
    ts = day_start + ((hour + rng.random(user.size)) * 3_600 * _US).astype(np.int64)
    cdf = profile.channel_cdf[traits.device[user]]
    channel = (rng.random(user.size)[:, None] >= cdf).sum(axis=1)
    return user, ts, channel.astype(np.intp)


def _impressions(
    rng: np.random.Generator, funnel: FunnelSpec, n_sessions: int
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Session index of each impression and its offset in seconds from the session start."""
    extra_mean = funnel.impressions_per_session - 1.0
    size = funnel.impressions_dispersion
    per_session = 1 + rng.negative_binomial(size, size / (size + extra_mean), n_sessions)
    session = np.repeat(np.arange(n_sessions), per_session)
    gaps = rng.exponential(_IMPRESSION_GAP_S, session.size)
    elapsed = np.cumsum(gaps)
    first = np.cumsum(per_session) - per_session
    return session, elapsed - np.repeat(elapsed[first] - gaps[first], per_session)


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
    rng: int | np.random.Generator | None = None,
) -> DayEvents:
    """Simulate one day for every customer in every arm's world.

    Args:
        traits: Latent traits of the customers.
        funnel: Funnel rates of the scenario.
        profile: Day-of-week, hour-of-day and channel weights.
        multipliers: Planted effects per arm and customer.
        arm: Index of each customer's assigned arm (a row of ``multipliers``).
        day_start: Midnight UTC of the day, in microseconds since the epoch.
        weekday: 0 for Monday to 6 for Sunday.
        outcomes: Potential outcomes, updated in place with this day's events.
        rng: Seed or generator for this day.

    Returns:
        The day's observed events, those of each user's assigned arm.
    """
    rng = np.random.default_rng(rng)
    s_user, s_ts, s_channel = _sessions(rng, traits, profile, weekday, day_start)
    i_session, i_offset = _impressions(rng, funnel, s_user.size)
    user = s_user[i_session]
    worlds, u_delay = _worlds(rng, traits, funnel, multipliers, user)

    outcomes.add_events("session", s_user)
    outcomes.add_events("impression", user)
    for a in range(worlds.click.shape[0]):
        outcomes.add_events("click", user[worlds.click[a]], arm=a)
        outcomes.add_events("add_to_cart", user[worlds.cart[a]], arm=a)
        outcomes.add_events("purchase", user[worlds.purchase[a]], arm=a)
        outcomes.add_revenue(a, user[worlds.purchase[a]], worlds.value[a, worlds.purchase[a]])

    seen = (arm[user], np.arange(user.size))  # each impression in its user's assigned world
    i_ts = s_ts[i_session] + (i_offset * _US).astype(np.int64)
    i_channel = s_channel[i_session]
    parts = [
        _Part(s_user, s_ts, EVENTS.index("session"), s_channel, _no_revenue(s_user.size)),
        _Part(user, i_ts, EVENTS.index("impression"), i_channel, _no_revenue(user.size)),
    ]
    delay = np.zeros(user.size)
    for name, happened in (("click", worlds.click), ("add_to_cart", worlds.cart)):
        mask = happened[seen]
        delay += _delay(name, u_delay)
        ts = i_ts[mask] + (delay[mask] * _US).astype(np.int64)
        parts.append(
            _Part(user[mask], ts, EVENTS.index(name), i_channel[mask], _no_revenue(ts.size))
        )
    mask = worlds.purchase[seen]
    delay += _delay("purchase", u_delay)
    ts = i_ts[mask] + (delay[mask] * _US).astype(np.int64)
    revenue = worlds.value[seen][mask]
    parts.append(_Part(user[mask], ts, EVENTS.index("purchase"), i_channel[mask], revenue))
    return _concat(parts, day_end=day_start + _US_PER_DAY)


@dataclass(frozen=True)
class _Worlds:
    """Funnel outcome of each impression in every arm's world, shape ``(n_arms, n_impressions)``."""

    click: NDArray[np.bool_]
    cart: NDArray[np.bool_]
    purchase: NDArray[np.bool_]
    value: NDArray[np.float64]


def _worlds(
    rng: np.random.Generator,
    traits: Traits,
    funnel: FunnelSpec,
    multipliers: Multipliers,
    user: NDArray[np.intp],
) -> tuple[_Worlds, NDArray[np.float64]]:
    """Decide each impression's funnel in every world from one set of uniforms (CRN).

    Returns the worlds and a uniform per impression for the event delays.
    """
    u_click, u_cart, u_buy, u_delay = rng.random((4, user.size))
    z_value = rng.standard_normal(user.size)
    m = multipliers
    click = u_click < np.minimum(traits.ctr[user] * m.ctr[:, user], 1.0)
    cart = click & (u_cart < np.minimum(traits.cart_rate[user] * m.cart[:, user], 1.0))
    buy = cart & (u_buy < np.minimum(traits.purchase_rate[user] * m.purchase[:, user], 1.0))
    base_value = np.exp(traits.value_log_mean[user] + funnel.order_value_sigma * z_value)
    value = np.round(base_value * m.order_value[:, user], 2)
    return _Worlds(click, cart, buy, value), u_delay


def _delay(event: str, uniform: NDArray[np.float64]) -> NDArray[np.float64]:
    """Seconds from the previous funnel step to ``event``."""
    low, high = _DELAYS_S[event]
    delay: NDArray[np.float64] = low + (high - low) * uniform
    return delay


def _no_revenue(n: int) -> NDArray[np.float64]:
    return np.full(n, np.nan)


@dataclass(frozen=True)
class _Part:
    """Observed rows of one event type."""

    user: NDArray[np.intp]
    ts: NDArray[np.int64]
    event: int
    channel: NDArray[np.intp]
    revenue: NDArray[np.float64]


def _concat(parts: list[_Part], *, day_end: int) -> DayEvents:
    # a session late in the day may run past midnight: keep its events in the day
    ts = np.minimum(np.concatenate([p.ts for p in parts]), day_end - 1)
    order = np.argsort(ts, kind="stable")
    return DayEvents(
        user=np.concatenate([p.user for p in parts])[order],
        ts=ts[order],
        event=np.concatenate([np.full(p.user.size, p.event, dtype=np.intp) for p in parts])[order],
        channel=np.concatenate([p.channel for p in parts])[order],
        revenue=np.concatenate([p.revenue for p in parts])[order],
    )
