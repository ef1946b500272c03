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

from experiment.config import read_yaml
from experiment.errors import ConfigError
from simulators.catalog import EXPERIMENT_FILE, SEGMENTS_FILE, Scenario, load_scenario
from simulators.cohort import MAX_DAYS, Churn, Cohort, build_cohort, check_int, cohort_day
from simulators.day import MAX_USERS
from simulators.journeys import TimeProfile
from simulators.lifecycle_truth import LifecycleLog, new_log, tracked_events, truth_block
from simulators.outcomes import PotentialOutcomes
from simulators.output import Staging, dump_yaml, write_json, write_parquet, write_text
from simulators.truth import Truth, true_effects

__all__ = ["EVENTS_PARQUET", "SimulationSummary", "simulate"]

Progress = Callable[[int, int], None]

# Parquet settings for events, measured by writing days of 200k and 1M users: a
# dictionary for the three name columns only (user ids are nearly unique per day, so
# a dictionary costs more than it saves), delta encoding for the sorted timestamps;
# snappy, which every reader has: 35% more bytes than zstd level 1 but 40% less CPU
# to write. Min/max statistics only on ``ts``, where a reader skips a day's row group
# with them: they add ~25% to the user ids' writing and ~90% to the ``event``
# dictionary's. Batches of 64k rows instead of 1,024 make each dictionary column ~35%
# cheaper to encode (same bytes), and the columns but ``revenue`` are required
# (:data:`simulators.schema.EVENTS_SCHEMA`), so they have no definition levels to
# write: together 91 -> 71 ns a row at 1M users. store_schema=False so readers see
# plain strings, not Arrow dictionaries.
EVENTS_PARQUET: dict[str, object] = {
    "compression": "snappy",
    "write_statistics": ["ts"],
    "use_dictionary": ["event", "channel", "device"],
    "column_encoding": {"ts": "DELTA_BINARY_PACKED"},
    "write_batch_size": 1 << 16,
    "store_schema": False,
}


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


def _experiment_yaml(scenario: Scenario, start: dt.datetime, days: int) -> str:
    """The scenario's experiment file, pointed at the copied segments and the simulated window."""
    data = read_yaml(scenario.experiment_path, what="experiment")
    data["segments"] = SEGMENTS_FILE
    data["window"] = {"start": start.isoformat().replace("+00:00", "Z"), "days": days}
    return dump_yaml(data)


class _Sink:
    """The events file, opened on the first table (its schema is the tables')."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, **EVENTS_PARQUET)
        self.writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _write_truth_and_files(
    stage: Staging,
    scenario: Scenario,
    outcomes: PotentialOutcomes,
    cohort: Cohort,
    log: LifecycleLog | None,
    *,
    users: int,
    days: int,
    seed: int,
) -> None:
    """Stage ``truth.json`` and the scenario's segments and experiment files beside the tables."""
    exp, members = scenario.experiment, cohort.members
    effects = true_effects(outcomes, exp.metrics, members, arms=list(exp.arms), control=exp.control)
    lifecycle = truth_block(log, scenario, cohort.customers, members)
    truth = Truth(scenario.name, seed, users, days, effects, lifecycle)
    write_json(truth.to_dict(), stage.path("truth.json"))
    shutil.copyfile(scenario.segments_path, stage.path(SEGMENTS_FILE))
    write_text(_experiment_yaml(scenario, scenario.config.start, days), stage.path(EXPERIMENT_FILE))


def _write_events(
    sink: _Sink,
    scenario: Scenario,
    cohort: Cohort,
    outcomes: PotentialOutcomes,
    *,
    days: int,
    seed: int,
    on_day: Callable[[int], None],
    log: LifecycleLog | None = None,
    last: Callable[[], None] = lambda: None,
) -> int:
    """Simulate day by day, appending each day's events as a row group; returns the file's rows.

    Two days are simulated at once on two threads and a third thread compresses and
    writes the finished day before them (numpy and Parquet release the GIL). Day
    ``d`` adds its potential outcomes to accumulator ``d % 2``, and only consecutive
    days are in flight, so no two threads touch one accumulator and the sums are
    the same on every run. At most three days are held, so memory does not grow
    with the number of days. Once the last day is simulated the outcomes are merged
    and ``last`` runs (the truth) while that day is written.
    """
    profile = TimeProfile.from_funnel(scenario.config.funnel, cohort.traits.device_names)
    churn = Churn(scenario, cohort.traits, seed, cohort.multipliers)
    odd = PotentialOutcomes.zeros(
        outcomes.counts.shape[0], outcomes.n_users, tracked=outcomes.tracked
    )

    def one_day(day: int, activity: NDArray[np.float64] | None) -> pa.Table:
        events = cohort_day(
            scenario,
            cohort,
            profile,
            day,
            seed=seed,
            outcomes=odd if day % 2 else outcomes,
            activity=activity,
            log=log,
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
            outcomes.merge(odd)  # every day is simulated: the outcomes are final
            last()
            if pending is not None:
                pending.result()
        finally:
            for future in running:
                future.cancel()
            if pending is not None:
                pending.exception()  # let the last write finish before closing
            sink.close()
    return sink.rows


def _write_dataset(
    stage: Staging,
    loaded: Scenario,
    *,
    users: int,
    days: int,
    seed: int,
    pre_period_events: bool,
    report: Progress,
) -> tuple[int, int]:
    """Stage every file of a run; returns the events file's rows and, of them, the pre-period's.

    The customers and assignments are written on a side thread as soon as they
    exist (while the pre-period is drawn, the segments evaluated, the days simulated).
    """
    exp = loaded.experiment
    outcomes = PotentialOutcomes.zeros(len(exp.arms), users, tracked=tracked_events(exp))
    log = new_log(exp, users, days)
    sink = _Sink(stage.path("events.parquet"))
    files = {name: stage.path(f"{name}.parquet") for name in ("customers", "assignments")}
    written: list[Future[None]] = []
    with ThreadPoolExecutor(1) as side:
        try:
            cohort = build_cohort(
                loaded,
                users,
                seed,
                sink.write if pre_period_events else None,
                save=lambda name, table: written.append(
                    side.submit(write_parquet, table, files[name])
                ),
            )
            n_pre = sink.rows
            report(0, days)
            n_events = _write_events(
                sink,
                loaded,
                cohort,
                outcomes,
                days=days,
                seed=seed,
                on_day=lambda day: report(day + 1, days),
                log=log,
                last=lambda: _write_truth_and_files(
                    stage, loaded, outcomes, cohort, log, users=users, days=days, seed=seed
                ),
            )
            _ = [table.result() for table in written]  # their errors too
        finally:
            sink.close()
    return n_events, n_pre


def _sizes(users: object, days: object, seed: object) -> tuple[int, int, int]:
    """The run's users, days and seed, checked (ConfigError on a bad one)."""
    n = check_int(users, "users", low=1)
    if n > MAX_USERS:
        raise ConfigError(f"users must be at most {MAX_USERS:,} per run (got {n:,})")
    return n, check_int(days, "days", low=1, high=MAX_DAYS), check_int(seed, "seed", low=0)


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
    users, days, seed = _sizes(users, days, seed)
    report = progress if progress is not None else (lambda done, total: None)
    loaded = load_scenario(scenario)
    if pre_period_events is None:
        pre_period_events = loaded.config.pre_period_events
    with Staging(out) as stage:
        n_events, n_pre = _write_dataset(
            stage,
            loaded,
            users=users,
            days=days,
            seed=seed,
            pre_period_events=pre_period_events,
            report=report,
        )
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
