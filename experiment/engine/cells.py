"""Data access: reduce a dataset to sufficient statistics per (segment, arm, metric).

Everything heavy happens in the query engine. Segment rules and metric
definitions compile to Ibis expressions; one query scans the per-user table
once, sums the users of each membership pattern (the same arm and the same
segments: some thousands of groups), repeats each group once per segment it
belongs to and groups by (segment, arm), and returns a handful of numbers per
cell: the moment columns of :mod:`experiment.engine.moments` (counts and
compensated power sums of each per-user metric, and of a ratio's two parts).
Those become centred moments in :mod:`experiment.sums`; no Python loop touches a
user or an event. Where power sums cancel (a mean a million times its spread),
the engine's own variances are needed, which groups' sums cannot give: the
one-level query (each user's row repeated per segment) then runs instead.
The same query counts what the data-quality checks report per user
(:mod:`experiment.engine.quality`) and the units per allocation stratum for the
per-segment SRM.

A metric with a CUPED covariate (``cuped: revenue_90d``) also gets, in the same
aggregate, the covariate's mean and variance and its covariance with the metric
(:class:`JointSums` in ``CellSums.cuped``); the covariate is a customers column,
joined beside the segment flags. A metric with a list of covariates
(``cuped: [revenue_90d, channel]``, :mod:`experiment.engine.regressors`) gets the
regressors' sums, their pairwise cross sums and their cross sums with the metric
(:class:`CovariateSums` in ``CellSums.regression``), in the same aggregate. The
pre-exposure balance covariates (:mod:`experiment.engine.balance`) get their mean
and variance in the same aggregate (``CellSums.balance``). A metric with a
quantile ``cap`` gets its cap
(the quantile over all analysed users) from a one-row query over the per-user
table (:mod:`experiment.engine.caps`), which is then written once to a temporary
table that both queries read. A sequential experiment adds the timeline
(:mod:`experiment.engine.timeline`); on DuckDB its units, their events and the
per-user table are then written once, for both (:func:`~experiment.engine.timeline.shared`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.engine.balance import read_balance
from experiment.engine.caps import cap_quantiles
from experiment.engine.cellquery import FIRST, LAST, SI, cell_query, pattern_query
from experiment.engine.fetch import rows
from experiment.engine.moments import (
    VarianceNeededError,
    metric_sums,
    read_count,
    read_regression,
    read_sums,
)
from experiment.engine.quality import QUALITY_SUMS, quality_counts, segment_twins
from experiment.engine.regressors import Regressors
from experiment.engine.timeline import shared, timeline
from experiment.engine.users import UserTable, user_table
from experiment.sums import CellSums, JointSums, MeanSums

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from experiment.engine.dataset import Dataset
    from segments.definitions import SegmentSet

__all__ = ["aggregate", "cell_query", "pattern_query"]


Rows = list[dict[str, Any]]


def aggregate(
    dataset: Dataset, config: ExperimentConfig, segment_set: SegmentSet | None
) -> CellSums:
    """Reduce the dataset to :class:`CellSums` in the engine.

    Raises:
        DataError: no assignments for the experiment.
        RuleError: a segment rule does not fit the customers table.
        ConfigError: a metric names a column the events table lacks, a CUPED
            covariate that is not a numeric customers column, or an allocation
            names a segment the segments file lacks.
    """
    _tune(dataset)
    with contextlib.ExitStack() as written:
        once = shared(dataset, config)  # tables written once, dropped on exit

        def write(table: ir.Table) -> ir.Table:
            return written.enter_context(table.cache())

        users = user_table(
            dataset, config, segment_set, quantile_caps=False, written=write if once else None
        )
        if once:
            users = replace(users, table=write(users.table))
        rows, caps, cells = _cell_table(users, config, cached=once)
        if config.sequential:  # the timeline caps at the final analysis's caps
            # the written tables go once the timeline has its rows (less peak memory)
            timed = timeline(
                dataset, replace(users, caps=caps), config, cells, fetched=written.close
            )
            cells = replace(cells, timeline=timed)
    totals = {c: sum(int(r[c] or 0) for r in rows if r[SI] < 0) for c in QUALITY_SUMS}
    strata = users.strata
    strata_units = _strata_units(rows, cells, strata) if len(strata) > 1 else None
    quality = quality_counts(totals, users)
    if segment_set is not None:  # segment twins first, then the rule values nobody has
        twins = segment_twins(((r[SI], r) for r in rows), users.segments, segment_set.source)
        quality = replace(quality, segment_warnings=(*twins, *quality.segment_warnings))
    return replace(cells, strata=strata, strata_units=strata_units, quality=quality, caps=caps)


def _tune(dataset: Dataset) -> None:
    """DuckDB settings for one big aggregate: no row order to keep (less memory).

    The memory limit stays the connection's (a bound chosen from the machine,
    :func:`~experiment.engine.connection.default_memory_limit`, or the caller's
    ``memory_limit``); DuckDB spills beyond it at some cost in time (see README
    "Benchmarks").
    """
    if dataset.con.name == "duckdb":
        dataset.con.raw_sql("SET preserve_insertion_order = false").fetchall()


def _cell_table(
    users: UserTable, config: ExperimentConfig, *, cached: bool = False
) -> tuple[Rows, dict[str, float], CellSums]:
    """The main query: every cell's sums, quality and stratum counts; and the caps.

    Users are summed per membership pattern first, then each pattern's sums are
    repeated once per segment it belongs to and summed per (segment, arm)
    (:func:`pattern_query`); where the power sums of a cell cancel, the one-level
    query (:func:`cell_query`) runs instead, for the engine's own variances.

    A quantile cap needs every user's value before any capped sum. Inlined, it is
    a window over the whole per-user query (DuckDB then holds every row and column
    in memory) and Ibis repeats that query rather than share it; so with quantile
    caps the per-user table is written once to a temporary table, read by a
    one-row cap query cross joined to it, and dropped (``cached``: the per-user
    table is a temporary table already, :func:`~experiment.engine.timeline.shared`).
    """
    if cap_quantiles(users, config) is None:
        return _measured(users, config)
    written = contextlib.nullcontext(users.table) if cached else users.table.drop("user_id").cache()
    with written as table:
        caps = cap_quantiles(replace(users, table=table), config)
        t = table if caps is None else table.cross_join(caps)
        return _measured(replace(users, table=t), config)


def _measured(
    users: UserTable, config: ExperimentConfig
) -> tuple[Rows, dict[str, float], CellSums]:
    """The rows, caps and cells of :func:`pattern_query`, or of :func:`cell_query` if needed.

    The pattern query has no variance columns (variances of groups cannot be
    merged into one); :func:`~experiment.engine.moments.read_sums` needs them only
    where the power sums cancel (a mean a million times its spread) in a cell
    whose values are not all equal, and then the one-level query, which has them,
    runs instead.
    """
    try:
        rows, caps = _cell_rows(pattern_query(users, config), users, config)
        return rows, caps, _read_cells(rows, users, config)
    except VarianceNeededError:
        rows, caps = _cell_rows(cell_query(users, config), users, config)
        return rows, caps, _read_cells(rows, users, config)


def _cell_rows(
    query: Any, users: UserTable, config: ExperimentConfig
) -> tuple[Rows, dict[str, float]]:
    """The rows of :func:`cell_query` or :func:`pattern_query`, and the caps.

    A column ``CAP.format(mi)`` of the table, where present, caps metric ``mi``.
    """
    found = rows(query)
    caps = dict(users.caps)
    for r in found:
        for mi, metric in enumerate(config.metrics):
            if r[SI] < 0 and f"cap{mi}" in r:
                caps[metric.name] = math.nan if r[f"cap{mi}"] is None else float(r[f"cap{mi}"])
    return found, caps


def _read_cells(rows: Rows, users: UserTable, config: ExperimentConfig) -> CellSums:
    """The (segment, arm) rows of :func:`_cell_rows` as :class:`CellSums` (no quality yet)."""
    arms = tuple(config.arms)
    shape = (len(users.segments), len(arms))
    cell_rows = [(r[SI], arms.index(r["arm"]), r) for r in rows if r[SI] >= 0 and r["arm"] in arms]

    def column(name: str) -> NDArray[np.float64]:
        out = np.full(shape, np.nan)
        for si, j, r in cell_rows:
            if r[name] is not None:
                out[si, j] = r[name]
        return out

    n = read_count(column, key=())

    def read(mi: int, joint: bool) -> MeanSums | JointSums:
        return read_sums(column, key=(mi,), n=n, joint=joint)

    metrics, cuped = metric_sums(config, read)
    balance = read_balance(column, n=n, names=users.balance, cuped=cuped, config=config)
    regs = users.regressors
    regression = {
        m.name: read_regression(
            column,
            metric=mi,
            regressors=_listed(regs, mi, m.name, metrics[m.name]),
            y=_mean(metrics[m.name]),
            shifts=tuple(regs.shift(k) for k in _listed(regs, mi, m.name, metrics[m.name])),
        )
        for mi, m in enumerate(config.metrics)
        if m.name in regs.by_metric
    }
    return CellSums(
        segments=users.segments,
        arms=arms,
        units=n,
        metrics=metrics,
        window_start=users.start,
        window_end=users.end,
        cuped=cuped,
        assignment_days=_assignment_days(rows),
        balance=balance,
        regression=regression,
        regression_names={
            name: tuple(regs.names[k] for k in ks) for name, ks in regs.by_metric.items()
        },
    )


def _mean(sums: MeanSums | JointSums) -> MeanSums:
    """A metric's :class:`MeanSums`: a ratio's numerator."""
    return sums.y if isinstance(sums, JointSums) else sums


def _listed(regs: Regressors, mi: int, name: str, sums: MeanSums | JointSums) -> tuple[int, ...]:
    """Metric ``mi``'s regressors, then a ratio's denominator (:meth:`Regressors.denominator`)."""
    ks = regs.by_metric[name]
    return (*ks, regs.denominator(mi)) if isinstance(sums, JointSums) else ks


def _assignment_days(rows: Rows) -> float:
    """Days from the first to the last assignment of the analysed users (``all``, every arm).

    0 when they share one timestamp (a customer base assigned at once); ``nan``
    without users. Read off the main query's ``all`` rows: no extra query.
    """
    firsts = [r[FIRST] for r in rows if r[SI] == 0 and r[FIRST] is not None]
    lasts = [r[LAST] for r in rows if r[SI] == 0 and r[LAST] is not None]
    if not firsts or not lasts:
        return math.nan
    return float((max(lasts) - min(firsts)).total_seconds()) / 86_400


def _strata_units(rows: Rows, cells: CellSums, strata: tuple[str, ...]) -> NDArray[np.float64]:
    """Units per (segment, stratum, arm); stratum 0 is what the allocations leave."""
    out = np.zeros((len(cells.segments), len(strata), len(cells.arms)))
    for r in rows:
        if r[SI] >= 0 and r["arm"] in cells.arms:
            j = cells.arms.index(r["arm"])
            for k in range(1, len(strata)):
                out[r[SI], k, j] = r[f"stratum{k}"] or 0
    out[:, 0, :] = cells.units - out[:, 1:, :].sum(axis=1)
    return out
