"""Both potential outcomes of every customer of a scenario, without writing a dataset.

:func:`simulators.simulate` writes the world of each customer's assigned arm and
keeps every arm's world only to compute ``truth.json``. Calibration needs that
table itself: re-randomising the assignment many times over one fixed set of
potential outcomes (ExP's A/A re-randomisation) gives thousands of experiments
whose true effect is known exactly, because the outcomes do not depend on the
assignment (common random numbers, see :mod:`simulators.journeys`).
:func:`simulate_potential` runs the same streams as :func:`simulators.simulate`
for the same scenario, users, days and seed, so its truths equal ``truth.json``'s
(up to floating-point summation order), optionally keeping the cumulative
outcomes after every day for sequential looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.plan import kind_plan
from simulators.catalog import Scenario, load_scenario
from simulators.cohort import MAX_DAYS, Churn, build_cohort, check_int, cohort_day
from simulators.day import MAX_USERS
from simulators.journeys import TimeProfile
from simulators.lifecycle_truth import new_log, tracked_events, truth_block
from simulators.outcomes import PotentialOutcomes
from simulators.truth import TruthEffect, true_effects

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

    from experiment.config import MetricSpec

__all__ = ["PotentialRun", "simulate_potential"]

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class PotentialRun:
    """A scenario's customers with their outcomes in every arm's world.

    Attributes:
        scenario: The loaded scenario (its experiment file names arms and metrics).
        customers: The customers table, as ``customers.parquet`` would hold it.
        members: Membership of each segment of the scenario, ``all`` first.
        arms: The experiment's arm names, in the order of the outcome rows.
        daily: Cumulative potential outcomes after each simulated day (only the
            last day's unless the run kept every day).
        lifecycle: The lifecycle truth (``truth.json``'s ``lifecycle``), when the
            experiment has a ``lifecycle_analysis`` block.
    """

    scenario: Scenario
    customers: pa.Table
    members: dict[str, NDArray[np.bool_]]
    arms: tuple[str, ...]
    daily: tuple[PotentialOutcomes, ...]
    lifecycle: dict[str, Any] | None = None

    @property
    def outcomes(self) -> PotentialOutcomes:
        """The potential outcomes over the whole run."""
        return self.daily[-1]

    @property
    def control(self) -> str:
        """The control arm."""
        return self.scenario.experiment.control

    def metric(self, name: str) -> MetricSpec:
        """The experiment's metric called ``name``.

        Raises:
            KeyError: the experiment has no such metric.
        """
        for metric in self.scenario.experiment.metrics:
            if metric.name == name:
                return metric
        raise KeyError(name)

    def values(self, metric: str, arm: str, *, day: int = -1) -> tuple[Floats, ...]:
        """Per-user values of a metric in one arm's world, cumulative up to ``day``.

        A proportion gives ``(1[count > 0],)``, a mean ``(value,)`` and a ratio
        ``(numerator, denominator)``, each of shape ``(n_users,)``, uncapped, as
        :func:`simulators.truth.metric_value` averages them.
        """
        spec = self.metric(metric)
        outcomes = self.daily[day]
        a = self.arms.index(arm)
        parts = tuple(outcomes.measure(m, a) for m in spec.measures)
        if kind_plan(spec.kind).binary:
            return ((parts[0] > 0).astype(np.float64),)
        return parts

    def covariate(self, column: str) -> Floats:
        """A numeric customers column as floats, nulls as 0 (the engine's CUPED rule)."""
        values = self.customers.column(column).to_numpy(zero_copy_only=False)
        return np.nan_to_num(np.asarray(values, dtype=np.float64))

    def truth(self) -> tuple[TruthEffect, ...]:
        """The true effects over the whole run, as ``truth.json`` lists them."""
        exp = self.scenario.experiment
        return true_effects(
            self.outcomes, exp.metrics, self.members, arms=list(self.arms), control=exp.control
        )


def simulate_potential(
    scenario: str | Path,
    *,
    users: int,
    days: int,
    seed: int,
    daily: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> PotentialRun:
    """Simulate a scenario's customers in every arm's world and return the outcomes.

    Runs the customers, pre-period and daily journeys of :func:`simulators.simulate`
    with the same random streams, but writes nothing and builds no event rows.

    Args:
        scenario: A built-in scenario name or a scenario folder.
        users: Number of customers, >= 1.
        days: Number of days from the scenario's start, 1 to 3650.
        seed: Seed, >= 0.
        daily: Keep the cumulative outcomes after every day (memory grows with
            ``days``), e.g. for daily sequential looks.
        progress: Called as ``progress(done_days, days)`` after each day.

    Returns:
        The customers, segment membership and potential outcomes.

    Raises:
        ConfigError: an unknown or invalid scenario, or a bad size or seed.
        RuleError: a segment rule of the scenario is invalid.

    Examples:
        >>> run = simulate_potential("ecommerce", users=300, days=2, seed=1)
        >>> conversion = run.values("conversion", "control")[0]
        >>> conversion.shape, list(run.members)[0]
        ((300,), 'all')
    """
    users = check_int(users, "users", low=1, high=MAX_USERS)
    days = check_int(days, "days", low=1, high=MAX_DAYS)
    seed = check_int(seed, "seed", low=0)
    loaded = load_scenario(scenario)
    exp, config = loaded.experiment, loaded.config
    tracked = tracked_events(exp)
    outcomes = PotentialOutcomes.zeros(len(exp.arms), users, tracked=tracked)
    log = new_log(exp, users, days)
    cohort = build_cohort(loaded, users, seed, None)
    profile = TimeProfile.from_funnel(config.funnel, cohort.traits.device_names)
    churn = Churn(loaded, cohort.traits, seed, cohort.multipliers)
    snapshots: list[PotentialOutcomes] = []
    for day in range(days):
        cohort_day(
            loaded,
            cohort,
            profile,
            day,
            seed=seed,
            outcomes=outcomes,
            activity=churn.activity(),
            ordered=False,
            log=log,
        )
        churn.step(day)
        if daily and day < days - 1:
            snapshots.append(
                PotentialOutcomes(outcomes.counts.copy(), outcomes.revenue.copy(), tracked)
            )
        if progress is not None:
            progress(day + 1, days)
    snapshots.append(outcomes)
    return PotentialRun(
        scenario=loaded,
        customers=cohort.customers,
        members=cohort.members,
        arms=tuple(exp.arms),
        daily=tuple(snapshots),
        lifecycle=truth_block(log, loaded, cohort.customers, cohort.members),
    )
