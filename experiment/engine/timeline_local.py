"""The sequential timeline on the embedded engine: event rows cumulated in numpy.

On DuckDB the data already sits in this process, so the timeline asks the
engine only for what it does fast, scans and one hash join: the analysed
users (key, arm, first counted day, segment masks, covariates and regressors)
and, per metric event, the user's key, its window day and each measure's
weight (:func:`~experiment.engine.timeline_query.event_rows`). Numpy then
walks the days: a day's rows (placed by one radix argsort of the day column)
are summed per user over that day's users only (``bincount``), the users
with a change get their cumulative measures before and after it, and the
change of every shifted power sum (``y``, ``y²``, ``x``, ``x²``, ``x·y``, the
regression cross sums) is summed per (arm, membership pattern); each user
adds its starting values on its first day (constants, counted per group, a
CUPED covariate aside), as in the engine query. The
patterns are spread over their segments at the end. This replaces the engine
query's ``GROUP BY user, day``, its window per user and its grouping by
(arm, day, masks): about half the timeline's cost at 1M users (see README
"Benchmarks").

Same values as the engine query to the last bits of a float sum: the users are
summed in the order of a hash of their id and a day's value rows in (user,
value) order, so a run gives the same sums every time, whatever the engine's
row order. Memory: the event rows (a key, a day and a weight per measure), a
day's copies and a few arrays per user, outside DuckDB's memory limit; the
caller runs the engine query instead where they would not fit under it
(:data:`experiment.engine.timeline.ROW_BYTES`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from experiment.engine.fetch import numpy_columns
from experiment.engine.regressors import REG
from experiment.engine.timeline_query import (
    COL,
    DAY,
    UID,
    N,
    Shifts,
    analysed,
    columns,
    event_rows,
    segment_bit,
)
from experiment.engine.timeline_regression import R1, R2, RD, RY, listed
from experiment.plan import kind_plan

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

    from numpy.typing import NDArray

    from experiment.config import ExperimentConfig, MetricSpec
    from experiment.engine.dataset import Dataset
    from experiment.engine.users import UserTable

__all__ = ["fetch", "local_changes", "walk"]

_X = "__x{}__"  # the CUPED covariate of metric ``mi``, as the per-user table reads it
_HASH = "__hash__"  # a hash of the user id: the users' order in every sum
_ARM = "__arm__"  # the index of the user's arm in the experiment's arms (-1: none of them)
Columns = dict[str, "NDArray[Any]"]  # a query's result, one numpy array per column


def local_changes(
    dataset: Dataset,
    users: UserTable,
    config: ExperimentConfig,
    shifts: Shifts,
    built: Callable[[], AbstractContextManager[None]],
    *,
    fetched: Callable[[], object] = lambda: None,
) -> dict[str, NDArray[np.float64]]:
    """Per summed column (and ``N``), its change on each day, shaped (segment, arm, day).

    ``built`` is the context that keeps DuckDB hashing the users in the join;
    ``fetched`` runs once the engine's part is done (the caller's temporary tables
    can go before the walk's arrays are made).
    """
    with _small_pages():
        people, rows, masks = fetch(dataset, users, config, built)
        fetched()
        return walk(people, rows, masks=masks, users=users, config=config, shifts=shifts)


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """Numpy's arrays without transparent huge pages while the timeline fetches and walks.

    NumPy asks Linux for huge pages (``madvise``) for every array of 4 MB or more.
    The walk's arrays mostly live for one day's step, and faulting in, zeroing and
    compacting 2 MB pages for them costs more than the fewer page faults save: at
    1M users the fetch and the walk took 1.51-2.48 s (median 1.90 s) of wall time
    with huge pages, 1.48-1.96 s (median 1.65 s) without, in 6 alternating pairs.
    NumPy's own switch (also the ``NUMPY_MADVISE_HUGEPAGE`` variable, NumPy 1.20's
    release notes) is restored on exit; where it is missing, nothing changes.
    """
    try:
        from numpy._core import multiarray
    except ImportError:  # another NumPy layout: leave its setting alone
        switch = None
    else:
        switch = getattr(multiarray, "_set_madvise_hugepage", None)
    if switch is None:
        yield
        return
    before = switch(False)
    try:
        yield
    finally:
        switch(before)


def fetch(
    dataset: Dataset,
    users: UserTable,
    config: ExperimentConfig,
    built: Callable[[], AbstractContextManager[None]],
) -> tuple[Columns, Columns, list[str]]:
    """The analysed users and their event rows from the engine, and the mask columns."""
    import ibis

    who, masks = analysed(users, config)
    regs = sorted({REG.format(k) for ks in listed(users, config).values() for k in ks})
    zero = ibis.literal(0, type="int64")
    # a keyed per-user table is a temporary table already: its rows keep their keys
    users_of = contextlib.nullcontext(who) if UID in users.table.columns else who.cache()
    with users_of as cached, built():
        measured = cached.mutate(**dict.fromkeys(users.measure_cols.values(), zero))
        cuped = {
            _X.format(mi): users.metric_columns(metric, measured)[1]
            for mi, metric in enumerate(config.metrics)
            if metric.cuped is not None
        }
        arm = ibis.cases(*((measured.arm == a, i) for i, a in enumerate(config.arms)), else_=-1)
        extra = {_ARM: arm.cast("int64"), _HASH: measured.user_id.hash(), **cuped}
        people = numpy_columns(measured.select(UID, DAY, *masks, *regs, **extra))
        rows = numpy_columns(event_rows(dataset, users, config, cached))
    return people, rows, masks


def walk(
    people: Columns,
    rows: Columns,
    *,
    masks: list[str],
    users: UserTable,
    config: ExperimentConfig,
    shifts: Shifts,
) -> dict[str, NDArray[np.float64]]:
    """:func:`local_changes` from the fetched tables (in any row order, any user keys)."""
    keys = max((int(k.max()) + 1 for k in (people[UID], rows[UID]) if len(k)), default=0)
    walker = _Walk.of(people, masks, users, config, shifts, keys=keys)
    return _by_segment(walker.days(rows), walker.patterns, len(config.arms), config.window.days)


@dataclass(frozen=True, kw_only=True)
class _Walk:
    """The analysed users' arrays, by user key, and the day-by-day walk over their events.

    Users are indexed in the order of a hash of their id (``rank`` maps the
    engine's key to it), so that every sum adds them in one order every run.
    ``key`` is a user's arm x membership pattern (``-1``: an arm the experiment
    does not list), ``first`` its first counted day; ``patterns`` the segments of
    each pattern; ``per_user`` its CUPED covariates and regressors.
    """

    rank: NDArray[np.int64]
    key: NDArray[np.int64]
    first: NDArray[np.int64]
    patterns: NDArray[np.bool_]
    per_user: dict[str, NDArray[np.float64]]
    users: UserTable
    config: ExperimentConfig
    shifts: Shifts

    @classmethod
    def of(
        cls,
        people: Columns,
        masks: list[str],
        users: UserTable,
        config: ExperimentConfig,
        shifts: Shifts,
        *,
        keys: int,
    ) -> _Walk:
        """Arrays indexed by user key from the analysed users' columns.

        ``keys`` bounds every user key of ``people`` and of the event rows: keys need
        not be dense (a keyed per-user table numbers the units not analysed too, and
        their event rows may come), and ``rank`` is -1 at a key not analysed.
        """
        uid = people[UID]
        order = np.argsort(people[_HASH], kind="stable")
        rank = np.full(keys, -1, dtype=np.int64)
        rank[uid[order]] = np.arange(len(uid))

        def by_key(values: NDArray[Any]) -> NDArray[Any]:
            out = np.zeros(len(uid), dtype=values.dtype)
            out[rank[uid]] = values
            return out

        arm = people[_ARM]
        bits = [people[m] for m in masks]
        stacked = np.stack(bits, axis=1) if bits else np.zeros((len(uid), 1), dtype=np.int64)
        if stacked.shape[1] == 1:  # up to 62 segments: one mask, a plain (fast) unique
            flat, pattern = np.unique(stacked[:, 0], return_inverse=True)
            unique = flat.reshape(-1, 1)
        else:
            unique, pattern = np.unique(stacked, axis=0, return_inverse=True)
        member = np.ones((len(unique), len(users.segments)), dtype=bool)
        for si in range(1, len(users.segments)):
            name, bit = segment_bit(si)
            member[:, si] = (unique[:, masks.index(name)] >> bit) & 1 == 1
        key = np.where(arm >= 0, arm * len(unique) + pattern.reshape(-1), -1)
        per_user = {
            c: by_key(np.nan_to_num(values.astype(np.float64)))
            for c, values in people.items()
            if c.startswith(("__x", "__reg"))
        }
        return cls(
            rank=rank,
            key=by_key(key.astype(np.int64)),
            first=by_key(people[DAY].astype(np.int64)),
            patterns=member,
            per_user=per_user,
            users=users,
            config=config,
            shifts=shifts,
        )

    @property
    def cells(self) -> int:
        return len(self.config.arms) * len(self.patterns)

    def days(self, rows: Columns) -> dict[str, NDArray[np.float64]]:
        """The change of every column per (arm x pattern, day): starts, then each day's events."""
        size, days = len(self.key), self.config.window.days
        measures = list(dict.fromkeys(self.users.measure_cols.values()))
        out = {c: np.zeros((self.cells, days)) for c in (N, *columns(self.users, self.config))}
        counted = self.key >= 0
        everyone = np.flatnonzero(counted)
        zeros = {m: np.zeros(1) for m in measures}  # broadcast: one value for everyone
        at_start = self.constants(everyone)
        for mi in range(len(self.config.metrics)):
            at_start.update(self.terms(mi, zeros, everyone))
        start_bin = self.key[everyone] * days + self.first[everyone]
        starts = np.bincount(start_bin, minlength=self.cells * days).astype(np.float64)
        for c in out:
            value = at_start.get(c)
            if value is None:  # the count
                summed = starts
            elif value.size == 1:  # the same for every user (no covariate): counted
                summed = starts * value[0]
            else:
                weighted = np.bincount(start_bin, weights=value, minlength=self.cells * days)
                summed = weighted.astype(np.float64, copy=False)  # float already: no copy
            out[c] += summed.reshape(self.cells, days)
        cum = {m: np.zeros(size) for m in measures}
        owned = [{self.users.measure_cols[x] for x in m.measures} for m in self.config.metrics]
        seen = np.zeros(size, dtype=bool)  # scratch: the users with a row on the day
        place = np.zeros(size, dtype=np.int64)  # scratch: their places among those users
        by_day = np.argsort(rows[DAY], kind="stable")  # a radix sort; a day's rows keep their order
        # each day's rows in by_day: from counts (a search with ``sorter`` checks every index)
        bounds = np.concatenate([[0], np.cumsum(np.bincount(rows[DAY], minlength=days))])
        for d in range(days):
            rows_of = _day_rows(rows, by_day[bounds[d] : bounds[d + 1]], self.rank, measures)
            for u, _ in rows_of.values():
                seen[u] = True
            today = np.flatnonzero(seen)  # in hash order: the order of every sum
            seen[today] = False
            place[today] = np.arange(len(today))
            incs = {
                m: np.bincount(place[u], weights=w, minlength=len(today))
                for m, (u, w) in rows_of.items()
            }
            held = {m: cum[m][today] for m in measures}
            for mi, own in enumerate(owned):
                changed = [incs[m] != 0 for m in own if m in incs]
                if not changed:
                    continue
                idx = np.flatnonzero(np.logical_or.reduce(changed) & counted[today])
                moved = today[idx]
                before = {m: held[m][idx] for m in own}
                after = {m: before[m] + incs[m][idx] if m in incs else before[m] for m in own}
                now, then = self.terms(mi, after, moved), self.terms(mi, before, moved)
                cell = self.key[moved]
                for c, value in now.items():
                    change = value - then[c]
                    out[c][:, d] += np.bincount(cell, weights=change, minlength=self.cells)
            for m, inc in incs.items():
                cum[m][today] = held[m] + inc
        return out

    def constants(self, who: NDArray[np.int64]) -> dict[str, NDArray[np.float64]]:
        """The regressors' own terms (``x_k``, ``x_k x_l``), counted on a user's first day."""
        out: dict[str, NDArray[np.float64]] = {}
        for ks in listed(self.users, self.config).values():
            for k in ks:
                r = self.per_user[REG.format(k)][who]
                out[R1.format(k)] = r
                for l_ in ks:
                    lo, hi = min(k, l_), max(k, l_)
                    out[R2.format(lo, hi)] = r * self.per_user[REG.format(l_)][who]
        return out

    def terms(
        self, mi: int, measures: dict[str, NDArray[np.float64]], who: NDArray[np.int64]
    ) -> dict[str, NDArray[np.float64]]:
        """Metric ``mi``'s summed columns: each user's shifted power terms at these measures.

        ``measures`` are cumulative, of the users ``who`` (their keys: covariates and
        regressors are read there). The regressors' own sums never change
        (:meth:`constants`).
        """
        metric = self.config.metrics[mi]
        values = _metric_values(metric, measures, self.users)
        if metric.cuped is not None:
            values.append(self.per_user[_X.format(mi)][who])
        k_y, k_x = self.shifts[mi]
        y = values[0] - k_y
        out = {COL.format("y", mi): y, COL.format("yy", mi): y * y}
        x = values[1] - k_x if len(values) > 1 else None
        if x is not None:
            out[COL.format("x", mi)] = x
            out[COL.format("xx", mi)], out[COL.format("xy", mi)] = x * x, x * y
        for k in listed(self.users, self.config).get(mi, ()):
            r = self.per_user[REG.format(k)][who]
            out[RY.format(mi, k)] = r * y
            if x is not None and kind_plan(metric.kind).ratio:
                out[RD.format(mi, k)] = r * x
        return out


def _day_rows(
    rows: Columns, at: NDArray[np.int64], rank: NDArray[np.int64], measures: list[str]
) -> dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]]:
    """Per measure with a nonzero row among a day's rows ``at``: their users and weights.

    ``at`` is in increasing order; users are their hash places (rows of a user
    not analysed, place -1, are dropped). Only the day's rows are gathered (no copy
    of every row in day order: those random gathers cost more). Values (not
    counts, which add exactly) are sorted by (user, value), so that a user's
    values on a day are added in one order every run.
    """
    users = rank[rows[UID][at]]
    analysed = users >= 0
    out = {}
    for m in measures:
        column = rows[m][at]
        keep = np.flatnonzero((column != 0) & analysed)
        if not len(keep):
            continue
        u, w = users[keep], column[keep].astype(np.float64)
        if not np.issubdtype(column.dtype, np.integer):
            order = np.lexsort((w, u))
            u, w = u[order], w[order]
        out[m] = (u, w)
    return out


def _metric_values(
    metric: MetricSpec, measures: dict[str, NDArray[np.float64]], users: UserTable
) -> list[NDArray[np.float64]]:
    """``[y]`` or ``[y, x]`` (ratio) from cumulative measures, as the per-user table's values.

    The numpy twin of :meth:`UserTable.metric_columns` (without the CUPED covariate):
    a 0/1 metric is ``y > 0``, a cap is ``min(y, cap)``.
    """
    cols = [measures[users.measure_cols[m]] for m in metric.measures]
    if kind_plan(metric.kind).binary:
        cols = [(cols[0] > 0).astype(np.float64)]
    cap = users.caps.get(metric.name, math.inf)
    if math.isfinite(cap):
        cols = [np.minimum(cols[0], cap), *cols[1:]]
    return cols


def _by_segment(
    changes: dict[str, NDArray[np.float64]], patterns: NDArray[np.bool_], arms: int, days: int
) -> dict[str, NDArray[np.float64]]:
    """(arm x pattern, day) changes summed over each segment's patterns: (segment, arm, day)."""
    out = {}
    for c, values in changes.items():
        by_pattern = values.reshape(arms, len(patterns), days)
        out[c] = np.stack(
            [by_pattern[:, patterns[:, si], :].sum(axis=1) for si in range(patterns.shape[1])]
        )
    return out
