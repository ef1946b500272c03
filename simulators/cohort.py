"""The simulated cohort: customers at the start, their churn, and one day of their journeys.

:func:`simulators.simulate` (which writes a dataset) and
:func:`simulators.potential.simulate_potential` (which keeps every arm's outcomes)
run the same cohort through the same days. Both build it with :func:`build_cohort`,
move churn with :class:`Churn` and simulate a day with :func:`cohort_day`, so they
draw the same journeys from the same random streams: one independent stream per
purpose (and per day), so results do not depend on how the work is chunked or
how many days follow.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from experiment.errors import ConfigError
from simulators.arms import arm_index
from simulators.effects import Multipliers, build_multipliers, has_novelty
from simulators.history import customers_table, draw_attributes, user_ids
from simulators.journeys import simulate_day
from simulators.masks import connect, customer_masks
from simulators.population import Traits, draw_traits
from simulators.pre_counts import draw_pre_period
from simulators.pre_period import Sink, simulate_pre_period
from simulators.schema import ASSIGNMENTS_SCHEMA, to_micros

if TYPE_CHECKING:
    import ibis

    from simulators.catalog import Scenario
    from simulators.day import DayEvents
    from simulators.journeys import TimeProfile
    from simulators.lifecycle_truth import LifecycleLog
    from simulators.outcomes import PotentialOutcomes
    from simulators.pre_period import PrePeriod
    from simulators.scenario import ScenarioConfig

__all__ = ["MAX_DAYS", "Churn", "Cohort", "Save", "build_cohort", "check_int", "cohort_day"]

MAX_DAYS = 3650
"""Most days one run can simulate (the experiment file's window limit)."""
_POPULATION, _HISTORY, _EVENTS, _CHURN, _PRE, _PRE_DRAW = 0, 1, 2, 3, 4, 5  # see _stream
_US_PER_DAY = 86_400_000_000
Save = Callable[[str, pa.Table], None]
"""``save(name, table)``: queue a table of the dataset for writing (``name`` without suffix)."""


def _stream(seed: int, *key: int) -> np.random.Generator:
    """An independent generator per purpose (and per day).

    Results therefore do not depend on how the work is chunked or how many days follow.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def check_int(value: object, name: str, *, low: int, high: int | None = None) -> int:
    """A whole-number run size or seed, checked against its bounds.

    Args:
        value: The value given by the caller.
        name: Its name, for the message.
        low: Smallest valid value.
        high: Largest valid value, or None for no upper bound.

    Returns:
        The value as a Python ``int``.

    Raises:
        ConfigError: ``value`` is not a whole number (booleans included) or out of bounds.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be a whole number (got {value!r})")
    if value < low or (high is not None and value > high):
        valid = f">= {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"{name} must be {valid} (got {value})")
    return int(value)


def _assign(
    scenario: Scenario,
    ids: Future[pa.Array],
    con: Future[ibis.BaseBackend],
    save: Save | None,
) -> tuple[pa.Table, NDArray[np.intp]]:
    """The assignments table (handed to ``save``) and each user's arm, an index into the arms.

    Runs on the side thread after the ids and the connection (same thread, in order).
    """
    exp = scenario.experiment
    names = ids.result()
    index = arm_index(names, salt=exp.assignment_salt, arms=exp.arms, con=con.result())
    n = len(names)
    table = pa.table(
        {
            "user_id": names,
            "experiment": pa.repeat(pa.scalar(exp.name, pa.string()), n),
            "arm": pa.array(list(exp.arms), pa.string()).take(pa.array(index)),
            "assigned_at": pa.array(np.full(n, to_micros(scenario.config.start))).cast(
                ASSIGNMENTS_SCHEMA.field("assigned_at").type
            ),
        },
        schema=ASSIGNMENTS_SCHEMA,
    )
    if save is not None:
        save("assignments", table)
    return table, index


@dataclass(frozen=True, kw_only=True)
class Cohort:
    """The customers as they are at the start: traits, tables, arms, segments, effects.

    Attributes:
        traits: Latent traits of the customers.
        ids: User ids, aligned with ``traits``.
        customers: The customers table, as ``customers.parquet`` holds it.
        assignments: The assignments table, as ``assignments.parquet`` holds it.
        arm: Each customer's assigned arm, an index into the experiment's arms.
        members: Membership of each segment of the scenario, ``all`` first.
        multipliers: The planted effects at the start.
        where: Per effect, who matches its ``where`` rule (None: everyone).
    """

    traits: Traits
    ids: pa.Array
    customers: pa.Table
    assignments: pa.Table
    arm: NDArray[np.intp]
    members: dict[str, NDArray[np.bool_]]
    multipliers: Multipliers
    where: tuple[NDArray[np.bool_] | None, ...]

    def multipliers_on(self, scenario: Scenario, day: int) -> Multipliers:
        """The planted effects on ``day`` (they change only with a novelty part)."""
        effects = scenario.config.effects
        if not has_novelty(effects):
            return self.multipliers
        exp = scenario.experiment
        return build_multipliers(
            effects,
            self.members,
            arms=list(exp.arms),
            control=exp.control,
            n_users=self.traits.n_users,
            day=day,
            where=self.where,
        )


def _pre_period(
    traits: Traits, config: ScenarioConfig, seed: int, ids: pa.Array, sink: Sink | None
) -> PrePeriod:
    """The pre-period's counters: drawn in their law, or simulated day by day when written."""
    if sink is None:
        return draw_pre_period(traits, config, rng=lambda chunk: _stream(seed, _PRE_DRAW, chunk))
    return simulate_pre_period(
        traits,
        config,
        start_us=to_micros(config.start),
        rng=lambda day: _stream(seed, _PRE, day),
        ids=ids,
        sink=sink,
    )


def build_cohort(
    scenario: Scenario,
    users: int,
    seed: int,
    sink: Sink | None,
    *,
    save: Save | None = None,
) -> Cohort:
    """Draw the customers of a run, simulate their pre-period and assign them.

    While numpy draws the traits and the pre-period on the main thread (and its
    pool), a side thread makes the ids, opens a DuckDB connection, hashes the arms
    on it and builds the customers' columns that the pre-period does not change;
    the segments are then evaluated on the same connection. Each table goes to
    ``save`` as soon as it exists, so a caller writes it while the rest is built.

    Args:
        scenario: The loaded scenario.
        users: Number of customers (already checked).
        seed: The run's seed (already checked).
        sink: Called with each pre-period day's events table, to write them (the
            pre-period is then simulated day by day and counted); None to draw only
            its counters, in the same law (:mod:`simulators.pre_counts`).
        save: Called as ``save(name, table)`` with ``"assignments"`` (from the side
            thread) and ``"customers"``; it should return at once (queue the writing).

    Returns:
        The cohort at the start.
    """
    config, exp = scenario.config, scenario.experiment
    with ThreadPoolExecutor(1) as side:
        naming, opening = side.submit(user_ids, users), side.submit(connect)
        hashing = side.submit(_assign, scenario, naming, opening, save)
        try:
            traits = draw_traits(
                config.population, config.funnel, users, rng=_stream(seed, _POPULATION)
            )
            ids = naming.result()
            attributes = side.submit(
                draw_attributes, traits, config, ids=ids, rng=_stream(seed, _HISTORY)
            )
            pre = _pre_period(traits, config, seed, ids, sink)
            customers = customers_table(
                traits, config, ids=ids, pre=pre, attributes=attributes.result()
            )
            if save is not None:
                save("customers", customers)
            assignments, arm = hashing.result()  # the side thread is done with the connection
            masks = customer_masks(
                customers,
                scenario.segment_set,
                config.effects,
                as_of=config.start,
                con=opening.result(),
            )
        finally:
            opening.result().disconnect()
    members = {"all": np.ones(users, dtype=np.bool_), **masks.members}
    where = masks.where
    multipliers = build_multipliers(
        config.effects,
        members,
        arms=list(exp.arms),
        control=exp.control,
        n_users=users,
        where=where,
    )
    return Cohort(
        traits=traits,
        ids=ids,
        customers=customers,
        assignments=assignments,
        arm=arm,
        members=members,
        multipliers=multipliers,
        where=where,
    )


class Churn:
    """Who is lapsed, day by day (see :class:`simulators.scenario.ChurnSpec`).

    Without a planted churn or reactivation effect everyone has one state, shared
    by every arm's world. With one, the state is kept per arm, shape
    ``(n_arms, n_users)``, and every world moves on the same uniform (common random
    numbers): a customer lapses in arm ``a`` if ``u < hazard * churn[a]`` and comes
    back if ``u < reactivation * reactivation[a]``.
    """

    def __init__(
        self,
        scenario: Scenario,
        traits: Traits,
        seed: int,
        multipliers: Multipliers | None = None,
    ) -> None:
        """Start from the customers lapsed at the start, on the run's churn stream."""
        self.spec = scenario.config.funnel.churn
        self.lapsed = traits.lapsed.copy()
        self.seed = seed
        self.rates: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
        if self.spec is not None and multipliers is not None and multipliers.moves_churn:
            self.rates = (
                self.spec.hazard * multipliers.churn,
                np.minimum(self.spec.reactivation * multipliers.reactivation, 1.0),
            )
            self.lapsed = np.broadcast_to(self.lapsed, multipliers.churn.shape).copy()

    def activity(self) -> NDArray[np.float64] | None:
        """Today's factor of each customer's session rate (per arm with a churn effect)."""
        if self.spec is None or not self.lapsed.any():
            return None
        return np.where(self.lapsed, self.spec.lapsed_activity, 1.0)

    def step(self, day: int) -> None:
        """Move customers between active and lapsed at the end of ``day``."""
        if self.spec is None:
            return
        u = _stream(self.seed, _CHURN, day).random(self.lapsed.shape[-1])
        if self.rates is None:
            self.lapsed = np.where(self.lapsed, u >= self.spec.reactivation, u < self.spec.hazard)
            return
        hazard, back = self.rates
        self.lapsed = np.where(self.lapsed, u >= back, u < hazard)


def _per_arm_activity(
    multipliers: Multipliers, activity: NDArray[np.float64]
) -> tuple[Multipliers, NDArray[np.float64]]:
    """Fold a per-arm activity into the session multipliers.

    The session rate uses the largest arm's activity and each arm's sessions are
    thinned by its share of it, so arm ``a`` sees ``rate * activity[a]`` (CRN).
    """
    top = activity.max(axis=0)
    share = np.divide(activity, top, out=np.ones_like(activity), where=top > 0)
    return replace(multipliers, sessions=multipliers.sessions * share), top


def cohort_day(
    scenario: Scenario,
    cohort: Cohort,
    profile: TimeProfile,
    day: int,
    *,
    seed: int,
    outcomes: PotentialOutcomes,
    activity: NDArray[np.float64] | None,
    ordered: bool = True,
    log: LifecycleLog | None = None,
) -> DayEvents:
    """Day ``day`` of the experiment for the cohort, on that day's own random stream.

    The one place that fixes a day's inputs, so that :func:`simulators.simulate` and
    :func:`simulators.potential.simulate_potential` draw the same journeys.

    Args:
        scenario: The loaded scenario.
        cohort: The cohort at the start.
        profile: Day-of-week, hour-of-day and channel weights of the scenario.
        day: Day index from the start (0 = the first day).
        seed: The run's seed.
        outcomes: Potential outcomes, updated in place with this day's events.
        activity: Today's factor of each customer's session rate (:meth:`Churn.activity`).
        ordered: Sort the rows by time; False skips the sort (for counting only).
        log: Also record each world's logins, purchases and revenue of the day
            (the lifecycle truth); ``outcomes`` must track logins and purchases.

    Returns:
        The day's observed events, those of each customer's assigned arm.
    """
    config = scenario.config
    multipliers = cohort.multipliers_on(scenario, day)
    if activity is not None and activity.ndim == 2:
        multipliers, activity = _per_arm_activity(multipliers, activity)
    before = None if log is None else log.snapshot(outcomes)
    events = simulate_day(
        cohort.traits,
        config.funnel,
        profile,
        multipliers,
        cohort.arm,
        day_start=to_micros(config.start) + day * _US_PER_DAY,
        weekday=(config.start.weekday() + day) % 7,
        outcomes=outcomes,
        activity=activity,
        rng=_stream(seed, _EVENTS, day),
        ordered=ordered,
    )
    if log is not None and before is not None:
        log.record(day, before, outcomes)
    return events
