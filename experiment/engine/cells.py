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
table that both queries read. A sequential experiment costs one more query
(:mod:`experiment.engine.timeline`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.engine.balance import balance_aggs, read_balance
from experiment.engine.caps import CAP, cap_quantiles
from experiment.engine.fetch import rows
from experiment.engine.moments import (
    VarianceNeededError,
    count_agg,
    merged_agg,
    metric_sums,
    moment_aggs,
    read_count,
    read_regression,
    read_sums,
    regression_aggs,
)
from experiment.engine.quality import QUALITY_SUMS, quality_columns, quality_counts
from experiment.engine.regressors import REG, Regressors
from experiment.engine.timeline import timeline
from experiment.engine.users import STRATUM, UserTable, user_table
from experiment.sums import CellSums, JointSums, MeanSums

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.engine.dataset import Dataset
    from segments.definitions import SegmentSet

__all__ = ["aggregate", "cell_query", "pattern_query"]

_SI = "__si__"  # the segment index a row of the long table counts for
_AT = "__assigned__"  # a user's first assignment time, for the assignment span
_FIRST, _LAST = "__first__", "__last__"  # the first and last assignment time of a cell
_VALID = "__valid__"  # whether a user is analysed (a key of the pattern query's groups)
_MASK = "__mask{}__"  # segment bit mask number k (bits of segments 62k + 1 .. 62k + 62)
_BITS = 62  # segments per mask (int64, sign bit unused)
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
    users = user_table(dataset, config, segment_set, quantile_caps=False)
    rows, caps, cells = _cell_table(users, config)
    if config.sequential:  # the timeline caps at the final analysis's caps
        timed = timeline(dataset, replace(users, caps=caps), config, cells)
        cells = replace(cells, timeline=timed)
    totals = {c: sum(int(r[c] or 0) for r in rows if r[_SI] < 0) for c in QUALITY_SUMS}
    strata = users.strata
    strata_units = _strata_units(rows, cells, strata) if len(strata) > 1 else None
    return replace(
        cells,
        strata=strata,
        strata_units=strata_units,
        quality=quality_counts(totals, users),
        caps=caps,
    )


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
    users: UserTable, config: ExperimentConfig
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
    one-row cap query cross joined to it, and dropped.
    """
    if cap_quantiles(users, config) is None:
        return _measured(users, config)
    with users.table.drop("user_id").cache() as cached:
        caps = cap_quantiles(replace(users, table=cached), config)
        t = cached if caps is None else cached.cross_join(caps)
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


def _user_columns(
    users: UserTable, config: ExperimentConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The per-user columns the query sums, by name; and the quality columns.

    ``cap{mi}`` (the cap of metric ``mi``, where the table has ``CAP.format(mi)``),
    ``y{mi}``/``x{mi}`` (its per-user values, capped), ``balance{k}``, ``reg{k}``,
    ``stratum{k}`` (0/1); then :func:`~experiment.engine.quality.quality_columns`.
    """
    import ibis

    t, strata = users.table, users.strata
    cols: dict[str, Any] = {}
    for mi, metric in enumerate(config.metrics):
        values = users.metric_columns(metric, t)
        if CAP.format(mi) in t.columns:
            values[0] = ibis.least(values[0], t[CAP.format(mi)])
            cols[f"cap{mi}"] = t[CAP.format(mi)]
        for part, col in zip("yx", values, strict=False):
            cols[f"{part}{mi}"] = col
    for k, name in enumerate(users.balance):  # pre-exposure covariates (CUPED ones: above)
        if name not in users.covariates:
            cols[f"balance{k}"] = users.balance_value(k, t)
    for k in range(len(users.regressors.specs)):  # ``cuped: [a, b]`` lists; no row: 0
        cols[f"reg{k}"] = t[REG.format(k)].fill_null(-users.regressors.shift(k))
    one, zero = ibis.literal(1, type="int64"), ibis.literal(0, type="int64")
    for k in range(1, len(strata)):
        cols[f"stratum{k}"] = ibis.ifelse(t[STRATUM] == k, one, zero)
    return cols, quality_columns(users, t)


def _long_table(users: UserTable, config: ExperimentConfig) -> tuple[Any, dict[str, Any]]:
    """One row per (user, segment it counts for), with the per-user columns the query sums.

    Columns: ``arm``, the segment index, the assignment time and the columns of
    :func:`_user_columns`; and those columns but the quality ones, by name.
    """
    import ibis

    t = users.table
    cols, quality = _user_columns(users, config)
    valid = users.valid(t)
    member = [ibis.literal(-1, type="int16"), ibis.ifelse(valid, 0, None).cast("int16")]
    member += [
        ibis.ifelse(users.in_segment(si, t), si, None).cast("int16")
        for si in range(1, len(users.segments))
    ]
    long = t.select(
        "arm", **{_SI: ibis.array(member).unnest(), _AT: t.assigned_at}, **cols, **quality
    )
    return long.filter(long[_SI].notnull()), cols


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
            if r[_SI] < 0 and f"cap{mi}" in r:
                caps[metric.name] = math.nan if r[f"cap{mi}"] is None else float(r[f"cap{mi}"])
    return found, caps


def cell_query(users: UserTable, config: ExperimentConfig) -> Any:
    """The one-level main query as an Ibis table (one row per segment and arm).

    Each user's row is repeated once per segment it belongs to (an unnested list
    of segment indices: ``0`` for ``all``, ``-1`` for every assigned user, valid or
    not, which carries the quality counts), then one plain ``GROUP BY segment,
    arm`` computes count, means, variances and covariances: no per-segment
    ``FILTER`` re-evaluates the metric expressions. A column ``CAP.format(mi)`` of
    ``users.table``, where present, caps metric ``mi``.
    """
    long, cols = _long_table(users, config)
    return long.group_by([_SI, "arm"]).aggregate(**_aggs(long, cols, users, config))


def pattern_query(users: UserTable, config: ExperimentConfig) -> Any:
    """The main query summed per membership pattern first (one row per segment and arm).

    Analysed users with the same arm and the same segments (bit ``(si - 1) % 62`` of
    mask ``(si - 1) // 62``; other users: no bits) share a group, whose counts and
    compensated sums are one row: some thousands of rows instead of a row per
    user and segment. Each group is then repeated once per segment of its masks
    (and as ``-1``, every assigned user) and its sums summed per (segment, arm),
    as :func:`cell_query` does per user, without the variance columns. Counts and
    integer sums are exact either way; a float sum is the sum of its groups'
    compensated sums (equal to :func:`cell_query`'s within a few roundings).
    """
    import ibis

    t = users.table
    cols, quality = _user_columns(users, config)
    masks: dict[str, Any] = {}
    for si in range(1, len(users.segments)):
        k, bit = divmod(si - 1, _BITS)
        term = ibis.ifelse(
            users.in_segment(si, t),
            ibis.literal(1 << bit, type="int64"),
            ibis.literal(0, type="int64"),
        )
        name = _MASK.format(k)
        masks[name] = masks[name] + term if name in masks else term
    wide = t.select(
        "arm", **{_VALID: users.valid(t), _AT: t.assigned_at}, **masks, **cols, **quality
    )
    first = _aggs(wide, cols, users, config, welford=False)
    g = wide.group_by(["arm", _VALID, *masks]).aggregate(**first)
    segs = [ibis.literal(-1, type="int16"), ibis.ifelse(g[_VALID], 0, None).cast("int16")]
    for si in range(1, len(users.segments)):
        k, bit = divmod(si - 1, _BITS)
        has = (g[_MASK.format(k)] & ibis.literal(1 << bit, type="int64")) != 0
        segs.append(ibis.ifelse(has, si, None).cast("int16"))
    long = g.select("arm", *first, **{_SI: ibis.array(segs).unnest()})
    long = long.filter(long[_SI].notnull())
    return long.group_by([_SI, "arm"]).aggregate(**{c: _merged(c, long[c]) for c in first})


def _merged(name: str, col: Any) -> Any:
    """The aggregate of groups' partial aggregates: min, max, or an exact/compensated sum."""
    if name == _FIRST:
        return col.min()
    if name == _LAST or name.startswith("cap"):
        return col.max()
    return merged_agg(name, col)


def _aggs(
    long: Any,
    cols: dict[str, Any],
    users: UserTable,
    config: ExperimentConfig,
    *,
    welford: bool = True,
) -> dict[str, Any]:
    """Every aggregate of the main query over the rows of ``long`` (per user or group).

    ``welford=False`` leaves out the engine's variances and covariances
    (:func:`~experiment.engine.moments.moment_aggs`).
    """
    aggs: dict[str, Any] = count_agg(long, key=())
    for mi in range(len(config.metrics)):
        x = long[f"x{mi}"] if f"x{mi}" in cols else None
        aggs.update(moment_aggs(long[f"y{mi}"], x, key=(mi,), welford=welford))
    balance = {int(c[len("balance") :]): long[c] for c in cols if c.startswith("balance")}
    aggs.update(balance_aggs(balance, welford=welford))
    regs = {int(c[len("reg") :]): long[c] for c in cols if c.startswith("reg")}
    listed = {}
    for mi, m in enumerate(config.metrics):
        if m.name in users.regressors.by_metric:
            ks = users.regressors.by_metric[m.name]
            if f"x{mi}" in cols:  # a ratio: its denominator is one more regressor, last
                regs[users.regressors.denominator(mi)] = long[f"x{mi}"]
                ks = (*ks, users.regressors.denominator(mi))
            listed[mi] = (long[f"y{mi}"], ks)
    aggs.update(regression_aggs(regs, listed))
    aggs.update({c: long[c].sum() for c in QUALITY_SUMS})
    aggs.update({c: long[c].sum() for c in cols if c.startswith("stratum")})
    aggs.update({c: long[c].max() for c in cols if c.startswith("cap")})
    aggs.update({_FIRST: long[_AT].min(), _LAST: long[_AT].max()})
    return aggs


def _read_cells(rows: Rows, users: UserTable, config: ExperimentConfig) -> CellSums:
    """The (segment, arm) rows of :func:`_cell_rows` as :class:`CellSums` (no quality yet)."""
    arms = tuple(config.arms)
    shape = (len(users.segments), len(arms))
    cell_rows = [
        (r[_SI], arms.index(r["arm"]), r) for r in rows if r[_SI] >= 0 and r["arm"] in arms
    ]

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
    firsts = [r[_FIRST] for r in rows if r[_SI] == 0 and r[_FIRST] is not None]
    lasts = [r[_LAST] for r in rows if r[_SI] == 0 and r[_LAST] is not None]
    if not firsts or not lasts:
        return math.nan
    return float((max(lasts) - min(firsts)).total_seconds()) / 86_400


def _strata_units(rows: Rows, cells: CellSums, strata: tuple[str, ...]) -> NDArray[np.float64]:
    """Units per (segment, stratum, arm); stratum 0 is what the allocations leave."""
    out = np.zeros((len(cells.segments), len(strata), len(cells.arms)))
    for r in rows:
        if r[_SI] >= 0 and r["arm"] in cells.arms:
            j = cells.arms.index(r["arm"])
            for k in range(1, len(strata)):
                out[r[_SI], k, j] = r[f"stratum{k}"] or 0
    out[:, 0, :] = cells.units - out[:, 1:, :].sum(axis=1)
    return out
