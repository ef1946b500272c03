"""The drawn pre-period counters have the law of the day-by-day simulation.

The reference is :func:`simulators.pre_period.simulate_pre_period` (the journeys
run day by day and counted), on the same customers with an independent stream (paired by customer):
per event and window, the means agree within sampling error and so do the shares
of zeros, as do revenue and the distribution of the last login day.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from simulators.catalog import load_scenario
from simulators.history import user_ids
from simulators.population import draw_traits
from simulators.pre_counts import CHUNK, draw_pre_period
from simulators.pre_period import WINDOWS, PrePeriod, simulate_pre_period
from simulators.schema import EVENTS, to_micros

USERS = 12_000
Z = 4.5  # ~40 z-scores per scenario: a false alarm has probability < 1e-3


def _z(a: NDArray[np.generic], b: NDArray[np.generic]) -> float:
    """Paired z-score of ``mean(a - b)``: same customers, independent draws.

    Pairing removes the spread between customers (their traits are shared), so a
    small change of law (a channel's CTR factor, a weekday weight) shows.
    """
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    se = d.std() / np.sqrt(d.size)
    return 0.0 if se == 0 else float(d.mean() / se)


def _both(name: str) -> tuple[PrePeriod, PrePeriod]:
    scenario = load_scenario(name)
    config = scenario.config
    traits = draw_traits(config.population, config.funnel, USERS, rng=11)
    streams = np.random.SeedSequence(12).spawn(91)
    days = simulate_pre_period(
        traits,
        config,
        start_us=to_micros(config.start),
        rng=lambda day: np.random.default_rng(streams[day]),
        ids=user_ids(USERS),
    )
    drawn = draw_pre_period(
        traits,
        config,
        rng=lambda chunk: np.random.default_rng(np.random.SeedSequence(12, spawn_key=(90, chunk))),
    )

    return days, drawn


@pytest.mark.parametrize("scenario", ["ecommerce", "saas"])
def test_drawn_counts_have_the_day_by_day_law(scenario: str):
    days, drawn = _both(scenario)
    checked = 0
    for window in WINDOWS:
        for e, event in enumerate(EVENTS):
            a = days.counts[window][:, e].astype(np.float64)
            b = drawn.counts[window][:, e].astype(np.float64)
            assert (a.sum() == 0) == (b.sum() == 0), (window, event)
            if a.sum() == 0:
                continue
            assert abs(_z(a, b)) < Z, (window, event, a.mean(), b.mean())
            assert abs(_z(a == 0, b == 0)) < Z, (window, event)
            checked += 1
    assert checked >= 20
    assert abs(_z(days.revenue_90d, drawn.revenue_90d)) < Z
    for k in (0, 1, 3, 7, 15, 30, 60):
        seen_a, seen_b = days.last_login > 0, drawn.last_login > 0
        assert abs(_z(seen_a & (days.last_login <= k), seen_b & (drawn.last_login <= k))) < Z, k


def test_drawn_counts_respect_each_customers_active_days():
    scenario = load_scenario("ecommerce")
    config = scenario.config
    traits = draw_traits(config.population, config.funnel, USERS, rng=3)
    drawn = draw_pre_period(traits, config, rng=lambda chunk: np.random.default_rng([4, chunk]))
    floor = np.asarray([s.recency[0] for s in config.population.stages.values()])[traits.stage]
    seen = drawn.last_login > 0
    assert seen.mean() > 0.5
    # a login is on an active day: after the recency floor, not before the signup
    assert np.all(drawn.last_login[seen] > floor[seen])
    assert np.all(drawn.last_login[seen] <= traits.tenure_days[seen])
    sessions = drawn.counts[90][:, EVENTS.index("session")]
    assert np.all(sessions[np.minimum(traits.tenure_days, 90) <= floor] == 0)
    # nested windows: 7 <= 30 <= 90 for every customer and event
    assert np.all(drawn.counts[7] <= drawn.counts[30])
    assert np.all(drawn.counts[30] <= drawn.counts[90])


def test_drawn_counts_are_the_same_on_every_run_across_chunks():
    config = load_scenario("ecommerce").config
    n = 2 * CHUNK + 5  # three chunks, drawn two at a time on two threads
    traits = draw_traits(config.population, config.funnel, n, rng=8)
    runs = [
        draw_pre_period(traits, config, rng=lambda chunk: np.random.default_rng([9, chunk]))
        for _ in range(2)
    ]
    for window in WINDOWS:
        np.testing.assert_array_equal(runs[0].counts[window], runs[1].counts[window])
    np.testing.assert_array_equal(runs[0].revenue_90d, runs[1].revenue_90d)
    np.testing.assert_array_equal(runs[0].last_login, runs[1].last_login)
    sessions = runs[0].counts[90][:, EVENTS.index("session")]
    for c in range(3):  # every chunk drawn, each on its own stream
        assert sessions[c * CHUNK : (c + 1) * CHUNK].mean() > 1.0
    assert not np.array_equal(sessions[:5], sessions[CHUNK : CHUNK + 5])
