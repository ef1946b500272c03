from __future__ import annotations

import numpy as np

from simulators import load_scenario
from simulators.effects import build_multipliers
from simulators.journeys import TimeProfile, simulate_day
from simulators.outcomes import PotentialOutcomes
from simulators.population import draw_traits
from simulators.scenario import EffectSpec
from simulators.schema import EVENTS

N = 3000


def _day(effects: list[EffectSpec], arm: np.ndarray):
    scenario = load_scenario("ecommerce")
    config = scenario.config
    traits = draw_traits(config.population, config.funnel, N, rng=1)
    members = {"half": np.arange(N) % 2 == 0}
    mult = build_multipliers(
        effects, members, arms=["control", "treatment"], control="control", n_users=N
    )
    outcomes = PotentialOutcomes.zeros(2, N)
    events = simulate_day(
        traits,
        config.funnel,
        TimeProfile.from_funnel(config.funnel, traits.device_names),
        mult,
        arm,
        day_start=0,
        weekday=0,
        outcomes=outcomes,
        rng=2,
    )
    return events, outcomes


def test_simulate_day_observes_the_assigned_world():
    arm = np.random.default_rng(0).integers(0, 2, N).astype(np.intp)
    events, outcomes = _day([EffectSpec(segment="half", ctr=1.0, purchase=1.0)], arm)
    for code, name in enumerate(EVENTS):
        observed = np.bincount(events.user[events.event == code], minlength=N)
        assert np.array_equal(observed, outcomes.counts[arm, code, np.arange(N)]), name
    purchases = events.event == EVENTS.index("purchase")
    observed_revenue = np.bincount(events.user[purchases], events.revenue[purchases], minlength=N)
    assert np.allclose(observed_revenue, outcomes.revenue[arm, np.arange(N)])


def test_simulate_day_worlds_differ_only_where_the_effect_acts():
    arm = np.zeros(N, dtype=np.intp)
    _, outcomes = _day([EffectSpec(segment="half", ctr=0.5)], arm)
    control, treatment = outcomes.counts
    untouched = np.arange(N) % 2 == 1
    assert np.array_equal(control[:, untouched], treatment[:, untouched])
    # common random numbers: a raised CTR only adds clicks
    click = EVENTS.index("click")
    assert np.all(treatment[click] >= control[click])
    assert treatment[click].sum() > control[click].sum()


def test_simulate_day_events_are_sorted_in_the_day():
    arm = np.zeros(N, dtype=np.intp)
    events, _ = _day([], arm)
    assert np.all(np.diff(events.ts) >= 0)
    assert events.ts.min() >= 0
    assert events.ts.max() < 86_400_000_000


def test_build_multipliers_multiply_overlapping_effects():
    members = {"a": np.array([True, True, False]), "b": np.array([False, True, True])}
    mult = build_multipliers(
        [EffectSpec(segment="a", purchase=0.5), EffectSpec(segment="b", purchase=1.0)],
        members,
        arms=["control", "treatment"],
        control="control",
        n_users=3,
    )
    assert mult.purchase.tolist() == [[1.0, 1.0, 1.0], [1.5, 3.0, 2.0]]
    assert np.all(mult.ctr == 1.0)
