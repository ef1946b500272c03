"""The pre-period: the journeys of the days before the assignment, simulated day by day.

The customers table's behavioural columns are counted from this history (see
:mod:`simulators.history`), so they agree with the events exactly: the same
journey code (:func:`simulators.journeys.simulate_day`) runs over the
:data:`HISTORY_DAYS` days before the start in the control world only (nobody is
treated before the assignment). Each day's events are folded into per-customer
counters in numpy (one ``bincount`` a day); they are turned into Arrow rows only
when the run writes them to ``events.parquet`` (``pre_period_events``). A run that
does not write them draws the counters directly in the same law
(:func:`simulators.pre_counts.draw_pre_period`, ~15x faster), so the flag changes
the draw of the history, not its distribution.

Who is active on a pre-period day ``j`` days before the start (``j`` = 1 .. 90):
a customer who has signed up (``j <= tenure_days``) and is outside the recency
floor of their lifecycle stage (``j > recency[0]``: an at-risk customer was away
the last 15 days by definition), at ``past_activity`` times their session rate.
There is no churn chain in the pre-period: ``past_activity`` stands for it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from simulators.effects import build_multipliers
from simulators.journeys import TimeProfile, simulate_day
from simulators.outcomes import PotentialOutcomes
from simulators.schema import EVENTS

if TYPE_CHECKING:
    from simulators.day import DayEvents
    from simulators.population import Traits
    from simulators.scenario import ScenarioConfig

__all__ = ["HISTORY_DAYS", "WINDOWS", "PrePeriod", "simulate_pre_period"]

HISTORY_DAYS = 90
"""Simulated days before the start: the longest window a customers column needs."""
WINDOWS = (7, 30, 90)
"""Trailing windows (days before the start) the counters are kept for."""
_US_PER_DAY = 86_400_000_000
_K = len(EVENTS)
_LOGIN, _PURCHASE = EVENTS.index("login"), EVENTS.index("purchase")

Rng = Callable[[int], np.random.Generator]
Sink = Callable[[pa.Table], None]


@dataclass(frozen=True)
class PrePeriod:
    """Per-customer counts of the simulated pre-period.

    Attributes:
        counts: ``counts[w][u, e]`` is how many ``EVENTS[e]`` events customer ``u``
            had in the last ``w`` days before the start, for ``w`` in :data:`WINDOWS`.
        revenue_90d: Purchase revenue of the last 90 days per customer.
        last_login: Days before the start of each customer's last login day
            (1 = the day before the start), 0 if none in the history.
    """

    counts: dict[int, NDArray[np.int32]]
    revenue_90d: NDArray[np.float64]
    last_login: NDArray[np.int64]

    def count(self, event: str, window: int) -> NDArray[np.int64]:
        """Per-customer count of ``event`` in the last ``window`` days."""
        column: NDArray[np.int64] = self.counts[window][:, EVENTS.index(event)].astype(np.int64)
        return column


def _active(traits: Traits, config: ScenarioConfig, days_before: int) -> NDArray[np.float64]:
    floor = np.asarray([s.recency[0] for s in config.population.stages.values()], np.int64)
    alive = (days_before <= traits.tenure_days) & (days_before > floor[traits.stage])
    factor: NDArray[np.float64] = np.where(alive, traits.past_activity, 0.0)
    return factor


def _tally(events: DayEvents, n: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Per-customer counts of each event kind, shape ``(n, len(EVENTS))``, and revenue in cents."""
    key = events.user.astype(np.int64) * _K + events.event
    counts: NDArray[np.int64] = np.bincount(key, minlength=n * _K).reshape(n, _K)
    bought = events.event == _PURCHASE
    cents = np.rint(events.revenue[bought] * 100.0)  # whole numbers: exact in any order
    revenue = np.bincount(events.user[bought], cents, minlength=n)
    return counts, revenue.astype(np.float64, copy=False)


def simulate_pre_period(
    traits: Traits,
    config: ScenarioConfig,
    *,
    start_us: int,
    rng: Rng,
    ids: pa.Array,
    sink: Sink | None = None,
) -> PrePeriod:
    """Simulate the :data:`HISTORY_DAYS` days before ``start_us`` and count them.

    Two days run at once on two threads (numpy releases the GIL); their counts are
    added in day order, and revenue is summed in whole cents (exact in any order),
    so the result is the same on every run and whether or not the rows are
    written (only written rows are sorted by time).

    Args:
        traits: Latent traits of the customers.
        config: The scenario.
        start_us: The start (the assignment), microseconds since the epoch.
        rng: ``rng(i)`` is the generator of pre-period day ``i`` (0 = the earliest).
        ids: User ids aligned with ``traits`` (for the written rows).
        sink: Called with each day's events table, in time order, to write them;
            None to only count.

    Returns:
        The counters.
    """
    n = traits.n_users
    profile = TimeProfile.from_funnel(config.funnel, traits.device_names)
    control = build_multipliers([], {}, arms=["control"], control="control", n_users=n)
    arm = np.zeros(n, dtype=np.intp)
    weekday0 = config.start.weekday()

    def one_day(i: int) -> tuple[NDArray[np.int64], NDArray[np.float64], pa.Table | None]:
        before = HISTORY_DAYS - i
        events = simulate_day(
            traits,
            config.funnel,
            profile,
            control,
            arm,
            day_start=start_us - before * _US_PER_DAY,
            weekday=(weekday0 - before) % 7,
            outcomes=PotentialOutcomes.zeros(1, n, tracked=frozenset()),
            activity=_active(traits, config, before),
            rng=rng(i),
            ordered=sink is not None,
        )
        counts, revenue = _tally(events, n)
        table = None
        if sink is not None:
            table = events.to_arrow(user_ids=ids, traits=traits, channels=profile.channel_names)
        return counts, revenue, table

    windows = {w: np.zeros((n, _K), dtype=np.int32) for w in WINDOWS}  # 120 MB at 1M users
    revenue = np.zeros(n)  # cents
    last = np.zeros(n, dtype=np.int64)
    running: deque[Future[tuple[NDArray[np.int64], NDArray[np.float64], pa.Table | None]]]
    running = deque()
    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            submitted = 0
            for i in range(HISTORY_DAYS):
                while submitted < HISTORY_DAYS and len(running) < 2:
                    running.append(pool.submit(one_day, submitted))
                    submitted += 1
                counts, day_revenue, table = running.popleft().result()
                before = HISTORY_DAYS - i
                for w in WINDOWS:
                    if before <= w:
                        windows[w] += counts
                revenue += day_revenue
                last[counts[:, _LOGIN] > 0] = before
                if sink is not None and table is not None:
                    sink(table)
        finally:
            for future in running:
                future.cancel()
    return PrePeriod(counts=windows, revenue_90d=revenue / 100.0, last_login=last)
