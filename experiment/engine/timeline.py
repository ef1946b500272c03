"""The sequential timeline: the cell sums per window day, cumulated up to each day's end.

A sequential experiment costs one query beyond the main one, and no users × days
grid. Only the (user, day) pairs with a metric event exist: a window per user
over them gives the user's cumulative measures, hence its (capped) metric values,
at each of its event days, and the change of every per-user quantity a cell sum
needs (``y``, ``y²``, and ``x``, ``x²``, ``x·y`` for a ratio metric or a CUPED
covariate) since the user's previous event day (its assignment, where every
value is 0). Each analysed user adds one more row on its first day (its
assignment day; the window's first day for users assigned before it, its last
day for users assigned after it, so the last day is the final analysis): a
count of 1 and its starting values. Those rows are grouped by (arm, day, the
user's segment memberships as bit masks), and each group is repeated once per
segment of its masks and grouped by (segment, arm, day), as in
:mod:`experiment.engine.cells` (users sharing memberships are summed before the
repetition: about 10 times fewer rows). Numpy then cumulates the small result
over the days into power sums and centres them into one
:class:`~experiment.sums.CellSums` per day. Quantile caps are the final
analysis's caps. The analysed users go to a temporary table once, keyed by row
number, so that the window and the joins use an integer key.

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

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from experiment.engine.events import event_value, invalid, selects
from experiment.engine.moments import fsum, metric_sums
from experiment.engine.users import COVARIATE
from experiment.plan import kind_plan
from experiment.sums import CellSums, JointSums, MeanSums

if TYPE_CHECKING:
    from collections.abc import Sequence

    import ibis.expr.types as ir
    from numpy.typing import NDArray

    from experiment.config import ExperimentConfig, MetricSpec
    from experiment.engine.dataset import Dataset
    from experiment.engine.users import UserTable

__all__ = ["timeline", "timeline_query"]

# Engine-side column names (indices only, never user text).
_DAY, _SI, _N, _UID = "__day__", "__si__", "__n__", "__uid__"
_MASK = "__mask{}__"  # segment bit mask number k
_BITS = 62  # segments per mask (int64, sign bit unused)
_INC = "__inc{}__"  # a measure's increment on the day
_SUMS = ("y", "yy", "x", "xx", "xy")  # the power sums of one metric, ``x`` where it has one
_COL = "__d_{}_{}__"  # sum, metric index
_Shifts = list[tuple[float, float]]  # per metric, the shifts K_y and K_x


def timeline(
    dataset: Dataset, users: UserTable, config: ExperimentConfig, final: CellSums
) -> tuple[tuple[str, CellSums], ...]:
    """Per window day (ISO date), the cell sums cumulated up to that day's end.

    ``users.caps`` must hold every cap (the final analysis's); ``final`` is the
    final analysis's sums (their means give the shifts).
    """
    shifts = _shifts(final, config)
    table = _query(dataset, users, config, shifts)
    return _days(table, users, config, shifts)


def _shifts(final: CellSums, config: ExperimentConfig) -> _Shifts:
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


def _day_of(ts: ir.TimestampValue, start: Any, days: int) -> ir.IntegerValue:
    """The window day of ``ts``, clipped to ``[0, days - 1]`` (exact to the microsecond).

    A search of the day bounds (comparisons with constants) rather than a date
    difference, which DuckDB computes an order of magnitude slower.
    """
    import ibis

    bounds = [start + dt.timedelta(days=d + 1) for d in range(days - 1)]
    if not bounds:  # a one-day window
        return ibis.literal(0, type="int64")
    day: ir.IntegerValue = ibis.cases(
        *((ts < bound, d) for d, bound in enumerate(bounds)), else_=days - 1
    )
    return day.cast("int64")


def _analysed(users: UserTable, config: ExperimentConfig) -> tuple[ir.Table, list[str]]:
    """One row per analysed user: arm, first counted day, segment bit masks, covariates.

    The first day is the assignment day, clipped to the window (users assigned
    after it count on its last day, as in the final analysis). Segment ``si > 0``
    is bit ``(si - 1) % 62`` of mask ``(si - 1) // 62``: users with the same
    memberships share a group before the segments are unnested.
    """
    import ibis

    u, m = users.units, users.members
    t = u.left_join(m, u.user_id == m.user_id).drop("user_id_right")
    t = t.filter(users.valid(t))
    first = _day_of(t.assigned_at, users.start, config.window.days)
    masks: dict[str, Any] = {}
    for si in range(1, len(users.segments)):
        k, bit = divmod(si - 1, _BITS)
        one = ibis.literal(1 << bit, type="int64")
        term = ibis.ifelse(users.member(si, t), one, ibis.literal(0, type="int64"))
        name = _MASK.format(k)
        masks[name] = masks[name] + term if name in masks else term
    covariates = [COVARIATE.format(k) for k in range(len(users.covariates))]
    key = {_UID: ibis.row_number().cast("int64"), _DAY: first.cast("int64")}
    who = t.select("user_id", "assigned_at", "arm", *covariates, **key, **masks)
    return who, list(masks)


def _daily(dataset: Dataset, users: UserTable, config: ExperimentConfig, who: ir.Table) -> ir.Table:
    """Per (user, day) with a metric event: each measure's count or value sum that day.

    Post-exposure, in-window events only, read as the per-user table reads them.
    """
    ev = dataset.events
    kinds = sorted({measure.event for metric in config.metrics for measure in metric.measures})
    ev = ev.filter((ev.ts >= users.start) & (ev.ts < users.end) & ev.event.isin(kinds))
    ev = ev.inner_join(who.select("user_id", "assigned_at", _UID), "user_id")
    ev = ev.filter(ev.ts >= ev.assigned_at)
    ev = ev.mutate(**{_DAY: _day_of(ev.ts, users.start, config.window.days)})
    aggs: dict[str, Any] = {}
    for metric in config.metrics:
        for measure in metric.measures:
            name = users.measure_cols[measure]
            if name in aggs:
                continue
            is_event = selects(ev, measure)
            if measure.value is None:
                aggs[name] = ev.count(where=is_event)
            else:
                value = event_value(ev, measure, metric)
                aggs[name] = fsum(value, where=is_event & ~invalid(value)).fill_null(0.0)
    return ev.group_by([_UID, _DAY]).aggregate(**aggs)


def _changes(
    daily: ir.Table, who: ir.Table, users: UserTable, config: ExperimentConfig, shifts: _Shifts
) -> ir.Table:
    """Per analysed user's event day: the change of each shifted power sum since its last.

    A window per user (on the narrow daily table) cumulates the measures; the
    values before the day are those of the cumulative less the day's own
    increments. A CUPED covariate does not change.
    """
    import ibis

    per_user = ibis.window(group_by=daily[_UID], order_by=daily[_DAY], preceding=None, following=0)
    measures = list(dict.fromkeys(users.measure_cols.values()))
    t = daily.select(
        _UID,
        _DAY,
        **{_INC.format(k): daily[c] for k, c in enumerate(measures)},
        **{c: daily[c].sum().over(per_user) for c in measures},
    )
    plain = [metric.model_copy(update={"cuped": None}) for metric in config.metrics]
    t = t.mutate(**_metric_values(t, users, plain, ""))
    old = t.mutate(**{c: t[c] - t[_INC.format(k)] for k, c in enumerate(measures)})
    old = old.mutate(**_metric_values(old, users, plain, "_0"))
    j = old.drop(*(_INC.format(k) for k in range(len(measures))))
    j = j.inner_join(who.drop("user_id", "assigned_at"), _UID)
    now = {c: j[c] for c in _metric_values(j, users, plain, "")}
    before = {c: j[c + "_0"] for c in now}
    for mi, metric in enumerate(config.metrics):
        if metric.cuped is not None:  # the covariate: the same before and after
            now[f"x{mi}"] = before[f"x{mi}"] = users.metric_columns(metric, j)[1]
    zero = ibis.literal(0, type="int64")
    deltas = _power_sums(now, config, shifts, before)
    return j.select("arm", _DAY, *_masks(j), **{_N: zero}, **deltas)


def _metric_values(
    t: ir.Table, users: UserTable, metrics: Sequence[MetricSpec], suffix: str
) -> dict[str, Any]:
    """``y{mi}`` and ``x{mi}`` (ratio or CUPED) of each metric on ``t``, names suffixed."""
    out: dict[str, Any] = {}
    for mi, metric in enumerate(metrics):
        for part, col in zip("yx", users.metric_columns(metric, t), strict=False):
            out[f"{part}{mi}{suffix}"] = col
    return out


def _masks(t: ir.Table) -> list[str]:
    return [c for c in t.columns if c.startswith("__mask")]


def _starts(who: ir.Table, users: UserTable, config: ExperimentConfig, shifts: _Shifts) -> ir.Table:
    """Per analysed user, on its first day: a count of 1 and its power sums at no events."""
    import ibis

    t = who.mutate(**{c: ibis.literal(0, type="int64") for c in users.measure_cols.values()})
    now = _metric_values(t, users, config.metrics, "")
    one = ibis.literal(1, type="int64")
    return t.select("arm", _DAY, *_masks(t), **{_N: one}, **_power_sums(now, config, shifts))


def _power_sums(
    now: dict[str, Any],
    config: ExperimentConfig,
    shifts: _Shifts,
    before: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Shifted ``y, y², x, x², x·y`` of each metric: now, less ``before`` where given."""
    out: dict[str, Any] = {}
    for mi in range(len(config.metrics)):
        k_y, k_x = shifts[mi]
        pairs = [(now, 1.0)] + ([(before, -1.0)] if before is not None else [])
        for values, sign in pairs:
            y = values[f"y{mi}"] - k_y
            terms = {"y": y, "yy": y * y}
            if f"x{mi}" in values:
                x = values[f"x{mi}"] - k_x
                terms.update(x=x, xx=x * x, xy=x * y)
            for name, term in terms.items():
                key = _COL.format(name, mi)
                out[key] = term if sign > 0 else out[key] - term
    return {k: v.cast("float64") for k, v in out.items()}


def _query(dataset: Dataset, users: UserTable, config: ExperimentConfig, shifts: _Shifts) -> Any:
    """One query: the changes of the power sums per (segment, arm, day), as Arrow.

    Rows: one per analysed user (its start) and one per (user, day) with a metric
    event; grouped by (arm, day, segment masks) first (:func:`_by_segment` then
    spreads the groups over their segments). The analysed users are written once
    to a temporary table: the query reads them thrice, keyed by row number.
    """
    uncached, _ = _analysed(users, config)
    with uncached.cache() as who:
        return timeline_query(dataset, users, config, shifts, who=who).to_pyarrow()


def timeline_query(
    dataset: Dataset,
    users: UserTable,
    config: ExperimentConfig,
    shifts: _Shifts,
    *,
    who: ir.Table | None = None,
) -> Any:
    """The timeline's query as an Ibis table; ``who`` is the analysed users (cached or not).

    ``shifts`` gives each metric's ``(K_y, K_x)`` (zeros are valid: only precision
    depends on them).
    """
    uncached, masks = _analysed(users, config)
    who = uncached if who is None else who
    sums = (_N, *_sum_columns(config))
    daily = _daily(dataset, users, config, who)
    rows = _starts(who, users, config, shifts)
    rows = rows.union(_changes(daily, who, users, config, shifts))
    g = rows.group_by(["arm", _DAY, *masks]).aggregate(**{c: _sum(rows[c]) for c in sums})
    return _by_segment(g, len(users.segments), sums)


def _by_segment(g: ir.Table, n_segments: int, sums: tuple[str, ...]) -> Any:
    """Each (arm, day, masks) group repeated once per segment of its masks, summed."""
    import ibis

    segs = [ibis.literal(0, type="int16")]
    for si in range(1, n_segments):
        k, bit = divmod(si - 1, _BITS)
        has = (g[_MASK.format(k)] & ibis.literal(1 << bit, type="int64")) != 0
        segs.append(ibis.ifelse(has, si, None).cast("int16"))
    long = g.select("arm", _DAY, *sums, **{_SI: ibis.array(segs).unnest()})
    long = long.filter(long[_SI].notnull())
    aggs = {c: _sum(long[c]) for c in sums}
    return long.group_by([_SI, "arm", _DAY]).aggregate(**aggs)


def _sum(col: ir.NumericColumn) -> ir.NumericScalar:
    """A count's exact sum; a float power sum's compensated one (the same bits every run)."""
    return col.sum() if col.get_name() == _N else fsum(col)


def _sum_columns(config: ExperimentConfig) -> list[str]:
    """The power-sum columns of the query, in metric order."""
    out = []
    for mi, metric in enumerate(config.metrics):
        joint = kind_plan(metric.kind).ratio or metric.cuped is not None
        out += [_COL.format(s, mi) for s in (_SUMS if joint else _SUMS[:2])]
    return out


def _days(
    table: Any, users: UserTable, config: ExperimentConfig, shifts: _Shifts
) -> tuple[tuple[str, CellSums], ...]:
    """Cumulate the per-(segment, arm, day) changes over the days; one CellSums per day."""
    arms, days = tuple(config.arms), config.window.days
    arm = np.array([arms.index(a) for a in table.column("arm").to_pylist()], dtype=np.int64)
    index = (table.column(_SI).to_numpy().astype(np.int64), arm, table.column(_DAY).to_numpy())

    def cube(name: str) -> NDArray[np.float64]:
        out = np.zeros((len(users.segments), len(arms), days))
        out[index] = table.column(name).to_numpy(zero_copy_only=False)
        return np.cumsum(out, axis=2)

    n = cube(_N)
    sums = {c: cube(c) for c in _sum_columns(config)}
    out = []
    for d in range(days):
        day_end = min(users.start + dt.timedelta(days=d + 1), users.end)

        def read(mi: int, joint: bool, d: int = d) -> MeanSums | JointSums:
            return _centred(
                n[..., d],
                {s: sums[_COL.format(s, mi)][..., d] for s in _SUMS if _COL.format(s, mi) in sums},
                shifts[mi],
                joint=joint,
            )

        metrics, cuped = metric_sums(config, read)
        cells = CellSums(
            segments=users.segments,
            arms=arms,
            units=n[..., d],
            metrics=metrics,
            window_start=users.start,
            window_end=day_end,
            cuped=cuped,
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
