"""A simulation run: from a scenario to a dataset folder with its ``truth.json``."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from experiment.assignment import assign_many
from experiment.config import read_yaml
from experiment.errors import ConfigError
from segments import membership
from simulators.catalog import EXPERIMENT_FILE, SEGMENTS_FILE, Scenario, load_scenario
from simulators.effects import Multipliers, build_multipliers, has_novelty, where_masks
from simulators.history import customers_table, user_ids
from simulators.journeys import MAX_USERS, DayEvents, TimeProfile, simulate_day
from simulators.outcomes import PotentialOutcomes
from simulators.output import Staging, dump_yaml, write_json, write_parquet, write_text
from simulators.population import Traits, draw_traits
from simulators.pre_period import simulate_pre_period
from simulators.schema import ASSIGNMENTS_SCHEMA, to_micros
from simulators.truth import Truth, true_effects

__all__ = ["SimulationSummary", "simulate"]

Progress = Callable[[int, int], None]

_MAX_DAYS = 3650  # the experiment file's window limit
_POPULATION, _HISTORY, _EVENTS, _CHURN, _PRE = 0, 1, 2, 3, 4  # independent streams, see _stream
# Parquet settings for events, measured on a 430k-row day (benchmarks/simulate.py): a
# dictionary for the three name columns only (user ids are nearly unique per day, so a
# dictionary costs more than it saves), delta encoding for the sorted timestamps, zstd
# level 1; store_schema=False so readers see plain strings, not Arrow dictionaries.
_PARQUET: dict[str, object] = {
    "compression": "zstd",
    "compression_level": 1,
    "use_dictionary": ["event", "channel", "device"],
    "column_encoding": {"ts": "DELTA_BINARY_PACKED"},
    "store_schema": False,
}
_US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class SimulationSummary:
    """What a simulation run wrote.

    Attributes:
        scenario: Scenario name (a built-in name or the scenario folder's name).
        users: Number of customers.
        days: Number of simulated days.
        seed: The seed of the run.
        start: Simulation start (the scenario's start, UTC); everyone is assigned then.
        events: Number of rows in ``events.parquet``.
        paths: Files written, in writing order.
        seconds: Wall-clock duration of the run.
        pre_period_events: Of ``events``, the rows before the start (the pre-period,
            written only with ``pre_period_events``).
    """

    scenario: str
    users: int
    days: int
    seed: int
    start: dt.datetime
    events: int
    paths: tuple[Path, ...]
    seconds: float
    pre_period_events: int = 0


def _stream(seed: int, *key: int) -> np.random.Generator:
    """An independent generator per purpose (and per day).

    Results therefore do not depend on how the work is chunked or how many days follow.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _check_int(value: object, name: str, *, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be a whole number (got {value!r})")
    if value < low or (high is not None and value > high):
        valid = f">= {low}" if high is None else f"between {low} and {high}"
        raise ConfigError(f"{name} must be {valid} (got {value})")
    return int(value)


def _experiment_yaml(scenario: Scenario, start: dt.datetime, days: int) -> str:
    """The scenario's experiment file, pointed at the copied segments and the simulated window."""
    data = read_yaml(scenario.experiment_path, what="experiment")
    data["segments"] = SEGMENTS_FILE
    data["window"] = {"start": start.isoformat().replace("+00:00", "Z"), "days": days}
    return dump_yaml(data)


def _assignments(
    scenario: Scenario, ids: pa.Array, start: dt.datetime
) -> tuple[pa.Table, NDArray[np.intp]]:
    """The assignments table and each user's arm as an index into the experiment's arms."""
    exp = scenario.experiment
    arms = assign_many(ids.to_pylist(), salt=exp.assignment_salt, arms=exp.arms)
    names = np.asarray(list(exp.arms))
    order = np.argsort(names)
    index = order[np.searchsorted(names[order], arms)].astype(np.intp)
    n = len(ids)
    table = pa.table(
        {
            "user_id": ids,
            "experiment": pa.array([exp.name] * n, pa.string()),
            "arm": pa.array(arms.tolist(), pa.string()),
            "assigned_at": pa.array(np.full(n, to_micros(start))).cast(
                ASSIGNMENTS_SCHEMA.field("assigned_at").type
            ),
        },
        schema=ASSIGNMENTS_SCHEMA,
    )
    return table, index


@dataclass(frozen=True)
class _Cohort:
    """The customers as they are at the start: traits, tables, arms, segments, effects."""

    traits: Traits
    ids: pa.Array
    customers: pa.Table
    assignments: pa.Table
    arm: NDArray[np.intp]
    members: dict[str, NDArray[np.bool_]]
    multipliers: Multipliers
    where: tuple[NDArray[np.bool_] | None, ...]  # per effect, who matches its where rule

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


class _Sink:
    """The events file, opened on the first table (its schema is the tables')."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, **_PARQUET)
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _cohort(scenario: Scenario, users: int, seed: int, sink: _Sink | None) -> _Cohort:
    config, exp = scenario.config, scenario.experiment
    traits = draw_traits(config.population, config.funnel, users, rng=_stream(seed, _POPULATION))
    ids = user_ids(users)
    pre = simulate_pre_period(
        traits,
        config,
        start_us=to_micros(config.start),
        rng=lambda day: _stream(seed, _PRE, day),
        ids=ids,
        sink=None if sink is None else sink.write,
    )
    customers = customers_table(traits, config, ids=ids, pre=pre, rng=_stream(seed, _HISTORY))
    assignments, arm = _assignments(scenario, ids, config.start)
    members = {"all": np.ones(users, dtype=np.bool_)}
    members.update(membership(customers, scenario.segment_set, as_of=config.start))
    where = where_masks(config.effects, customers, scenario.segment_set, as_of=config.start)
    multipliers = build_multipliers(
        config.effects,
        members,
        arms=list(exp.arms),
        control=exp.control,
        n_users=users,
        where=where,
    )
    return _Cohort(traits, ids, customers, assignments, arm, members, multipliers, where)


class _Churn:
    """Who is lapsed, day by day (see :class:`simulators.scenario.ChurnSpec`)."""

    def __init__(self, scenario: Scenario, traits: Traits, seed: int) -> None:
        self.spec = scenario.config.funnel.churn
        self.lapsed = traits.lapsed.copy()
        self.seed = seed

    def activity(self) -> NDArray[np.float64] | None:
        """Today's factor of each customer's session rate."""
        if self.spec is None or not self.lapsed.any():
            return None
        return np.where(self.lapsed, self.spec.lapsed_activity, 1.0)

    def step(self, day: int) -> None:
        """Move customers between active and lapsed at the end of ``day``."""
        if self.spec is None:
            return
        u = _stream(self.seed, _CHURN, day).random(self.lapsed.size)
        self.lapsed = np.where(self.lapsed, u >= self.spec.reactivation, u < self.spec.hazard)


def _cohort_day(
    scenario: Scenario,
    cohort: _Cohort,
    profile: TimeProfile,
    day: int,
    *,
    seed: int,
    outcomes: PotentialOutcomes,
    activity: NDArray[np.float64] | None,
    ordered: bool = True,
) -> DayEvents:
    """Day ``day`` of the experiment for the cohort, on that day's own random stream.

    The one place that fixes a day's inputs, so that :func:`simulate` and
    :func:`simulators.potential.simulate_potential` draw the same journeys.
    """
    config = scenario.config
    return simulate_day(
        cohort.traits,
        config.funnel,
        profile,
        cohort.multipliers_on(scenario, day),
        cohort.arm,
        day_start=to_micros(config.start) + day * _US_PER_DAY,
        weekday=(config.start.weekday() + day) % 7,
        outcomes=outcomes,
        activity=activity,
        rng=_stream(seed, _EVENTS, day),
        ordered=ordered,
    )


def _write_events(
    sink: _Sink,
    scenario: Scenario,
    cohort: _Cohort,
    outcomes: PotentialOutcomes,
    *,
    days: int,
    seed: int,
    on_day: Callable[[int], None],
) -> int:
    """Simulate day by day, appending each day's events as a row group; returns the file's rows.

    Two days are simulated at once on two threads and a third thread compresses and
    writes the finished day before them (numpy and Parquet release the GIL). Day
    ``d`` adds its potential outcomes to accumulator ``d % 2``, and only consecutive
    days are in flight, so no two threads touch one accumulator and the sums are
    the same on every run. At most three days are held, so memory does not grow
    with the number of days.
    """
    profile = TimeProfile.from_funnel(scenario.config.funnel, cohort.traits.device_names)
    churn = _Churn(scenario, cohort.traits, seed)
    odd = PotentialOutcomes.zeros(
        outcomes.counts.shape[0], outcomes.n_users, tracked=outcomes.tracked
    )

    def one_day(day: int, activity: NDArray[np.float64] | None) -> pa.Table:
        events = _cohort_day(
            scenario,
            cohort,
            profile,
            day,
            seed=seed,
            outcomes=odd if day % 2 else outcomes,
            activity=activity,
        )
        return events.to_arrow(
            user_ids=cohort.ids, traits=cohort.traits, channels=profile.channel_names
        )

    pending: Future[None] | None = None
    running: deque[Future[pa.Table]] = deque()
    with ThreadPoolExecutor(max_workers=2) as days_pool, ThreadPoolExecutor(1) as write_pool:
        try:
            submitted = 0
            for day in range(days):
                while submitted < days and len(running) < 2:
                    running.append(days_pool.submit(one_day, submitted, churn.activity()))
                    churn.step(submitted)
                    submitted += 1
                table = running.popleft().result()  # day order is kept
                if pending is not None:
                    pending.result()
                pending = write_pool.submit(sink.write, table)
                on_day(day)
            if pending is not None:
                pending.result()
        finally:
            for future in running:
                future.cancel()
            if pending is not None:
                pending.exception()  # let the last write finish before closing
            sink.close()
    outcomes.merge(odd)
    return sink.rows


def simulate(
    scenario: str | Path,
    *,
    users: int,
    days: int,
    seed: int,
    out: Path,
    progress: Progress | None = None,
    pre_period_events: bool | None = None,
) -> SimulationSummary:
    """Simulate a scenario and write a dataset folder ready for ``exp analyze``.

    Writes ``customers.parquet``, ``events.parquet``, ``assignments.parquet``,
    ``truth.json`` and copies of the scenario's ``segments.yaml`` and
    ``experiment.yaml`` (the latter with the simulated window). All files appear
    together at the end; a failed run leaves none of them behind. The customers'
    behavioural columns are counted from a simulated 90-day pre-period (see
    :mod:`simulators.pre_period`); events start at the assignment unless
    ``pre_period_events`` also writes that pre-period. Each day is one Parquet row
    group, so memory does not grow with ``days``.

    Args:
        scenario: A built-in scenario name (e.g. ``"ecommerce"``) or a scenario folder.
        users: Number of customers, >= 1.
        days: Number of days to simulate from the scenario's start, 1 to 3650.
        seed: Seed, >= 0; the same scenario, seed and sizes give byte-identical files.
        out: Output folder, created if needed; existing files of the same names are replaced.
        progress: Called as ``progress(done_days, days)``: once with 0 when the customers
            are ready, then after each simulated day.
        pre_period_events: Also write the pre-period's events (``ts < assigned_at``);
            None takes the scenario's ``pre_period_events``.

    Returns:
        A summary of the run.

    Raises:
        ConfigError: an unknown scenario, an invalid scenario file or a bad size or seed.
        RuleError: a segment rule of the scenario is invalid.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     summary = simulate("ecommerce", users=500, days=2, seed=1, out=Path(tmp))
        ...     sorted(p.name for p in summary.paths)  # doctest: +NORMALIZE_WHITESPACE
        ['assignments.parquet', 'customers.parquet', 'events.parquet', 'experiment.yaml',
         'segments.yaml', 'truth.json']
    """
    started = time.perf_counter()
    users = _check_int(users, "users", low=1)
    if users > MAX_USERS:
        raise ConfigError(f"users must be at most {MAX_USERS:,} per run (got {users:,})")
    days = _check_int(days, "days", low=1, high=_MAX_DAYS)
    seed = _check_int(seed, "seed", low=0)
    report = progress if progress is not None else (lambda done, total: None)
    loaded = load_scenario(scenario)
    exp = loaded.experiment
    if pre_period_events is None:
        pre_period_events = loaded.config.pre_period_events
    tracked = frozenset(m.event for metric in exp.metrics for m in metric.measures)
    outcomes = PotentialOutcomes.zeros(len(exp.arms), users, tracked=tracked)
    with Staging(out) as stage:
        sink = _Sink(stage.path("events.parquet"))
        try:
            cohort = _cohort(loaded, users, seed, sink if pre_period_events else None)
            n_pre = sink.rows
            report(0, days)
            write_parquet(cohort.customers, stage.path("customers.parquet"))
            write_parquet(cohort.assignments, stage.path("assignments.parquet"))
            n_events = _write_events(
                sink,
                loaded,
                cohort,
                outcomes,
                days=days,
                seed=seed,
                on_day=lambda day: report(day + 1, days),
            )
        finally:
            sink.close()
        effects = true_effects(
            outcomes, exp.metrics, cohort.members, arms=list(exp.arms), control=exp.control
        )
        truth = Truth(loaded.name, seed, users, days, effects)
        write_json(truth.to_dict(), stage.path("truth.json"))
        shutil.copyfile(loaded.segments_path, stage.path(SEGMENTS_FILE))
        write_text(_experiment_yaml(loaded, loaded.config.start, days), stage.path(EXPERIMENT_FILE))
        paths = stage.commit()
    return SimulationSummary(
        scenario=loaded.name,
        users=users,
        days=days,
        seed=seed,
        start=loaded.config.start,
        events=n_events,
        paths=paths,
        seconds=time.perf_counter() - started,
        pre_period_events=n_pre,
    )
