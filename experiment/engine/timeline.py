"""The sequential timeline: the cell sums per window day, cumulated up to each day's end.

On DuckDB (where the event rows fit under its memory bound) the timeline is a
numpy walk over the analysed users' metric events
(:mod:`experiment.engine.timeline_local`), read from the tables the main query
wrote and summed (:func:`shared`): the events are scanned and joined once per
run. Elsewhere it costs one engine query beyond the main one, and no users × days
grid. Only the (user, day) pairs with a metric event exist: a window per user
over them gives the user's cumulative measures, hence its (capped) metric values,
at each of its event days, and the change of every per-user quantity a cell sum
needs (``y``, ``y²``, and ``x``, ``x²``, ``x·y`` for a ratio metric or a CUPED
covariate) since the user's previous event day (its assignment, where every
value is 0). Each analysed user adds one more row on its first day (its
assignment day; the window's first day for users assigned before it, its last
day for users assigned after it, so the last day is the final analysis): a
count of 1 and its starting values, which are constants (a CUPED covariate
aside), so the starts are counted per group rather than summed per user. Both
are grouped by (arm, day, the user's segment memberships as bit masks); the
changes of integer-valued measures (counts, 0/1, integer caps: the shifts are
integers) are summed as int64, exact and cheaper than a compensated float sum.
Each group is repeated once per
segment of its masks and grouped by (segment, arm, day), as in
:mod:`experiment.engine.cells` (users sharing memberships are summed before the
repetition: about 10 times fewer rows). Numpy then cumulates the small result
over the days into power sums and centres them into one
:class:`~experiment.sums.CellSums` per day. Quantile caps are the final
analysis's caps. The analysed users go to a temporary table once, keyed by row
number, so that the window and the joins use an integer key. The query is
built in :mod:`experiment.engine.timeline_query`. A metric with a list of
covariates (``cuped: [a, b]``) also gets its regression sums on every day
(:mod:`experiment.engine.timeline_regression`).

Power sums cancel when a mean is large relative to the spread (``Σy² - (Σy)²/n``),
so every value is shifted first by a per-metric constant ``K``: the final
analysis's mean over all analysed users, rounded to an integer. The shift keeps
integer data (counts, 0/1, integer covariates) exact (every sum is an integer
below 2⁵³, so a cell with no spread gets exactly ``m2 = 0``, as the engine's
``var_pop`` gives) and leaves ``|ȳ - K|`` of the order of the spread for values
far from 0.

References:
    Chan, Golub & LeVeque (1983), "Algorithms for computing the sample variance:
    analysis and recommendations" (shifted data):
    https://en.wikipedia.org/wiki/Algorithms_for_calculating_variance#Computing_shifted_data
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from experiment.engine.fetch import arrow, scalar
from experiment.engine.moments import metric_sums
from experiment.engine.timeline_local import local_changes
from experiment.engine.timeline_query import (
    COL,
    DAY,
    SI,
    SUMS,
    N,
    Shifts,
    analysed,
    columns,
    timeline_query,
)
from experiment.engine.timeline_regression import regression_sums
from experiment.sums import CellSums, JointSums, MeanSums

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from numpy.typing import NDArray

    from experiment.config import ExperimentConfig
    from experiment.engine.dataset import Dataset
    from experiment.engine.users import UserTable

__all__ = [
    "LOCAL",
    "ROW_BYTES",
    "final_shifts",
    "shared",
    "timeline",
    "timeline_query",
    "users_built",
]

# Engines whose data is in this process: the timeline cumulates their event rows in
# numpy (:mod:`experiment.engine.timeline_local`); the others run the engine query.
LOCAL = frozenset({"duckdb"})
ROW_BYTES = 64  # per metric event: the walk's columns and a day's copies, the events written


def timeline(
    dataset: Dataset,
    users: UserTable,
    config: ExperimentConfig,
    final: CellSums,
    *,
    fetched: Callable[[], object] = lambda: None,
) -> tuple[tuple[str, CellSums], ...]:
    """Per window day (ISO date), the cell sums cumulated up to that day's end.

    ``users.caps`` must hold every cap (the final analysis's); ``final`` is the
    final analysis's sums (their means give the shifts). ``fetched`` runs once the
    engine has done its part: the caller may drop the tables it wrote then.
    """
    shifts = final_shifts(final, config)
    if dataset.con.name in LOCAL and _fits(dataset):
        built = lambda: users_built(dataset)  # noqa: E731
        changes = local_changes(dataset, users, config, shifts, built, fetched=fetched)
    else:
        changes = _scattered(_query(dataset, users, config, shifts), users, config)
        fetched()
    return _days(changes, users, config, shifts)


def shared(dataset: Dataset, config: ExperimentConfig) -> bool:
    """Whether the per-user table and its events are written once for the timeline too.

    Where the numpy walk runs (a sequential experiment on an in-process engine whose
    memory bound holds the event rows), the units and their in-window events are
    written to temporary tables (``user_table(written=...)``), and so is the
    per-user table: the main query and the timeline then read the same tables, and
    the timeline neither scans and joins the events nor joins the assignments and
    the customers a second time.
    """
    return config.sequential and dataset.con.name in LOCAL and _fits(dataset)


def _fits(dataset: Dataset) -> bool:
    """Whether the numpy walk's event rows fit in the engine's memory bound.

    The walk holds every metric event of the window in this process (about
    :data:`ROW_BYTES` each, counting its copies), outside DuckDB's memory limit; past
    that bound the engine query, which spills to disk, runs instead. The events
    table's row count (Parquet metadata) bounds the rows from above.
    """
    found = dataset.con.raw_sql("SELECT current_setting('memory_limit')").fetchall()
    limit = _bytes(str(found[0][0])) if found else None
    if limit is None:
        return True
    return int(scalar(dataset.events.count())) * ROW_BYTES <= limit


def _bytes(size: str) -> float | None:
    """DuckDB's memory setting (``1.5 GiB``, ``800.0 MiB``, ``4GB``) in bytes; None if unbounded."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?)B\s*", size, re.IGNORECASE)
    if found is None:
        return None
    number, prefix, binary = found.groups()
    base = 1024 if binary else 1000
    return float(number) * float(base ** "_KMGTP".index(prefix.upper() or "_"))


def final_shifts(final: CellSums, config: ExperimentConfig) -> Shifts:
    """Per metric, ``(K_y, K_x)``: the final means over all analysed users, rounded.

    Integers keep integer data exact; 0 where ``all`` is empty.
    """
    n = final.units[0]
    total = float(n.sum())
    out = []
    for metric in config.metrics:
        sums = final.cuped.get(metric.name, final.metrics[metric.name])
        if isinstance(sums, JointSums):
            means = (sums.mean_y[0], sums.mean_x[0])
        else:
            means = (sums.mean[0], np.zeros_like(n))
        pooled = [float(np.nansum(n * m)) / total if total > 0 else 0.0 for m in means]
        out.append((float(np.rint(pooled[0])), float(np.rint(pooled[1]))))
    return out


def _query(dataset: Dataset, users: UserTable, config: ExperimentConfig, shifts: Shifts) -> Any:
    """One query: the changes of the power sums per (segment, arm, day), as Arrow.

    Rows: one per analysed user (its start) and one per (user, day) with a metric
    event; grouped by (arm, day, segment masks) first (:func:`_by_segment` then
    spreads the groups over their segments). The analysed users are written once
    to a temporary table: the query reads them thrice, keyed by row number.
    """
    uncached, _ = analysed(users, config)
    with uncached.cache() as who, users_built(dataset):
        return arrow(timeline_query(dataset, users, config, shifts, who=who))


@contextlib.contextmanager
def users_built(dataset: Dataset) -> Iterator[None]:
    """On DuckDB, hash joins keep the side the query names last as their build side.

    DuckDB picks a join's build side from estimated sizes, and a filtered Parquet
    scan's estimate (a fixed selectivity) is often below the users table's exact
    count: it would then hash the events (millions of rows) instead of the users,
    several times slower. The setting is restored afterwards.
    """
    if dataset.con.name != "duckdb":
        yield
        return
    con = dataset.con
    row = con.raw_sql("SELECT current_setting('disabled_optimizers')").fetchone()
    old = str(row[0] or "") if row else ""
    off = ",".join(x for x in (old, "build_side_probe_side") if x)
    con.raw_sql(f"SET disabled_optimizers = '{off}'").fetchall()
    try:
        yield
    finally:
        con.raw_sql(f"SET disabled_optimizers = '{old}'").fetchall()


def _scattered(
    table: Any, users: UserTable, config: ExperimentConfig
) -> dict[str, NDArray[np.float64]]:
    """The engine query's (segment, arm, day) rows as one (segment, arm, day) array per column."""
    arms, days = tuple(config.arms), config.window.days
    arm = np.array([arms.index(a) for a in table.column("arm").to_pylist()], dtype=np.int64)
    index = (table.column(SI).to_numpy().astype(np.int64), arm, table.column(DAY).to_numpy())
    out = {}
    for name in (N, *columns(users, config)):
        out[name] = np.zeros((len(users.segments), len(arms), days))
        out[name][index] = table.column(name).to_numpy(zero_copy_only=False)
    return out


def _days(
    changes: dict[str, NDArray[np.float64]],
    users: UserTable,
    config: ExperimentConfig,
    shifts: Shifts,
) -> tuple[tuple[str, CellSums], ...]:
    """Cumulate the per-(segment, arm, day) changes over the days; one CellSums per day."""
    arms, days = tuple(config.arms), config.window.days
    n = np.cumsum(changes[N], axis=2)
    sums = {c: np.cumsum(changes[c], axis=2) for c in columns(users, config)}
    names = {
        m: tuple(users.regressors.names[k] for k in ks)
        for m, ks in users.regressors.by_metric.items()
    }
    out = []
    for d in range(days):
        day_end = min(users.start + dt.timedelta(days=d + 1), users.end)

        def read(mi: int, joint: bool, d: int = d) -> MeanSums | JointSums:
            return _centred(
                n[..., d],
                {s: sums[COL.format(s, mi)][..., d] for s in SUMS if COL.format(s, mi) in sums},
                shifts[mi],
                joint=joint,
            )

        metrics, cuped = metric_sums(config, read)

        def column(name: str, d: int = d) -> NDArray[np.float64]:
            return sums[name][..., d]

        cells = CellSums(
            segments=users.segments,
            arms=arms,
            units=n[..., d],
            metrics=metrics,
            window_start=users.start,
            window_end=day_end,
            cuped=cuped,
            regression=regression_sums(column, n[..., d], metrics, users, config),
            regression_names=names,
        )
        out.append(((users.start + dt.timedelta(days=d)).date().isoformat(), cells))
    return tuple(out)


def _centred(
    n: NDArray[np.float64],
    sums: dict[str, NDArray[np.float64]],
    shift: tuple[float, float],
    *,
    joint: bool,
) -> MeanSums | JointSums:
    """Centred moments from shifted power sums: ``m2 = Σỹ² - (Σỹ)²/n``, ``ȳ = K + Σỹ/n``.

    An empty cell has a ``nan`` mean and zero moments, as the engine's cells.
    """
    some = n > 0
    safe = np.where(some, n, 1.0)
    d_y = sums["y"] / safe
    mean_y = np.where(some, shift[0] + d_y, np.nan)
    m2_y = np.where(some, np.maximum(sums["yy"] - sums["y"] * d_y, 0.0), 0.0)
    if not joint:
        return MeanSums(n=n, mean=mean_y, m2=m2_y)
    d_x = sums["x"] / safe
    return JointSums(
        n=n,
        mean_y=mean_y,
        mean_x=np.where(some, shift[1] + d_x, np.nan),
        m2_y=m2_y,
        m2_x=np.where(some, np.maximum(sums["xx"] - sums["x"] * d_x, 0.0), 0.0),
        c_xy=np.where(some, sums["xy"] - sums["x"] * d_y, 0.0),
    )
