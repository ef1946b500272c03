"""The sequential timeline's engine query (:mod:`experiment.engine.timeline` reads it).

One row per analysed user's start (grouped at once) and one per (user, day)
with a metric event, whose window per user gives the change of each shifted
power sum since the user's previous event day; grouped by (arm, day, segment
bit masks), then repeated once per segment of the masks and grouped by
(segment, arm, day). See :mod:`experiment.engine.timeline` for the why.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from experiment.engine.events import event_value, invalid, selects
from experiment.engine.exposed import UID, exposed_events
from experiment.engine.moments import fsum, stable_sum
from experiment.engine.timeline_regression import (
    regression_changes,
    regression_columns,
    regression_starts,
    regressor_values,
)
from experiment.engine.users import COVARIATE, segment_bit
from experiment.plan import kind_plan

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig, MetricSpec
    from experiment.engine.dataset import Dataset
    from experiment.engine.users import UserTable

__all__ = [
    "COL",
    "DAY",
    "SI",
    "SUMS",
    "UID",
    "N",
    "Shifts",
    "analysed",
    "columns",
    "event_rows",
    "segment_bit",
    "sum_columns",
    "timeline_query",
]

# Engine-side column names (indices only, never user text).
DAY, SI, N = "__day__", "__si__", "__n__"
_INC = "__inc{}__"  # a measure's increment on the day
SUMS = ("y", "yy", "x", "xx", "xy")  # the power sums of one metric, ``x`` where it has one
COL = "__d_{}_{}__"  # sum, metric index
Shifts = list[tuple[float, float]]  # per metric, the shifts K_y and K_x


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


def analysed(users: UserTable, config: ExperimentConfig) -> tuple[ir.Table, list[str]]:
    """One row per analysed user: arm, first counted day, segment bit masks, covariates.

    The user key ``__uid__``: the per-user table's own key where it has one (the
    units' row id, :func:`~experiment.engine.timeline.shared`; users not analysed
    hold keys too), so that the users need no temporary table of their own; else
    the rows numbered from 0, in no particular order.

    The first day is the assignment day, clipped to the window (users assigned
    after it count on its last day, as in the final analysis). Segment ``si > 0``
    is bit ``(si - 1) % 62`` of mask ``(si - 1) // 62``: users with the same
    memberships share a group before the segments are unnested.
    """
    import ibis

    if UID in users.table.columns:  # the per-user table, keyed already
        t = users.table
    else:
        u, m = users.units, users.members
        t = u.left_join(m, u.user_id == m.user_id).drop("user_id_right")
    t = t.filter(users.valid(t))
    first = _day_of(t.assigned_at, users.start, config.window.days)
    masks = users.masks(t)
    covariates = [COVARIATE.format(k) for k in range(len(users.covariates))]
    number = t[UID] if UID in t.columns else ibis.row_number()
    key = {UID: number.cast("int64"), DAY: first.cast("int64")}
    regs = regressor_values(t, users, config)
    who = t.select("user_id", "assigned_at", "arm", *covariates, **key, **masks, **regs)
    return who, list(masks)


def _joined(
    dataset: Dataset,
    users: UserTable,
    config: ExperimentConfig,
    who: ir.Table,
    *,
    every_unit: bool = False,
) -> ir.Table:
    """The analysed users' post-exposure, in-window events of a metric, with user key and day.

    Read as the per-user table reads them (:func:`~experiment.engine.exposed.exposed_events`):
    from the events it summed, where it wrote them (``users.exposed``, keyed like
    ``who``), else joined to ``who`` afresh. ``every_unit`` reads the written events
    of every unit as they are, those of units not analysed too (no join: the
    caller drops the keys ``who`` lacks).
    """
    if users.exposed is not None:
        ev = users.exposed if every_unit else users.exposed.inner_join(who.select(UID), UID)
    else:
        ev, _, _ = exposed_events(dataset, who, config.metrics, (users.start, users.end))
    ev = ev.filter(ev.ts >= ev.assigned_at)
    return ev.mutate(**{DAY: _day_of(ev.ts, users.start, config.window.days)})


def event_rows(
    dataset: Dataset, users: UserTable, config: ExperimentConfig, who: ir.Table
) -> ir.Table:
    """Per event of :func:`_joined`: user key, day, and each measure's weight on the row.

    A count measure weighs 1 on its events (int8), a value measure its valid value
    (0.0 elsewhere, and for null or invalid values), so that summing the rows per
    (user, day) gives :func:`_daily`'s columns. Where the per-user table's events
    were written (``users.exposed``), the rows of units that ``who`` does not
    analyse come too, with their own keys: the reader drops them (a join of every
    event row to ``who`` costs more, about 0.1-0.3 s of CPU at 1M users).
    """
    import ibis

    ev = _joined(dataset, users, config, who, every_unit=True)
    weights: dict[str, Any] = {}
    for name, is_event, value in _measures(ev, users, config):
        if value is None:
            weights[name] = is_event.cast("int8")
        else:
            weights[name] = ibis.ifelse(is_event & ~invalid(value), value, 0.0).fill_null(0.0)
    return ev.select(ev[UID].cast("int64").name(UID), ev[DAY].cast("int16").name(DAY), **weights)


def _daily(dataset: Dataset, users: UserTable, config: ExperimentConfig, who: ir.Table) -> ir.Table:
    """Per (user, day) with a metric event: each measure's count or value sum that day."""
    ev = _joined(dataset, users, config, who)
    aggs: dict[str, Any] = {}
    for name, is_event, value in _measures(ev, users, config):
        if value is None:
            aggs[name] = ev.count(where=is_event)
        else:
            aggs[name] = fsum(value, where=is_event & ~invalid(value)).fill_null(0.0)
    return ev.group_by([UID, DAY]).aggregate(**aggs)


def _measures(
    ev: ir.Table, users: UserTable, config: ExperimentConfig
) -> Iterator[tuple[str, ir.BooleanValue, ir.FloatingValue | None]]:
    """Each measure column once: its name, its rows of ``ev``, its value (None: a count)."""
    seen: set[str] = set()
    for metric in config.metrics:
        for measure in metric.measures:
            name = users.measure_cols[measure]
            if name not in seen:
                seen.add(name)
                value = None if measure.value is None else event_value(ev, measure, metric)
                yield name, selects(ev, measure), value


def _changes(
    daily: ir.Table, who: ir.Table, users: UserTable, config: ExperimentConfig, shifts: Shifts
) -> ir.Table:
    """Per (arm, day, masks): the change of each shifted power sum on the day, summed.

    A window per user (on the narrow daily table) cumulates the measures; the
    values before the day are those of the cumulative less the day's own
    increments. A CUPED covariate does not change.
    """
    import ibis

    per_user = ibis.window(group_by=daily[UID], order_by=daily[DAY], preceding=None, following=0)
    measures = list(dict.fromkeys(users.measure_cols.values()))
    t = daily.select(
        UID,
        DAY,
        **{_INC.format(k): daily[c] for k, c in enumerate(measures)},
        **{c: daily[c].sum().over(per_user) for c in measures},
    )
    plain = [metric.model_copy(update={"cuped": None}) for metric in config.metrics]
    t = t.mutate(**_metric_values(t, users, plain, ""))
    old = t.mutate(**{c: t[c] - t[_INC.format(k)] for k, c in enumerate(measures)})
    old = old.mutate(**_metric_values(old, users, plain, "_0"))
    j = old.drop(*(_INC.format(k) for k in range(len(measures))))
    j = j.inner_join(who.drop("user_id", "assigned_at"), UID)
    now = {c: j[c] for c in _metric_values(j, users, plain, "")}
    before = {c: j[c + "_0"] for c in now}
    for mi, metric in enumerate(config.metrics):
        if metric.cuped is not None:  # the covariate: the same before and after
            now[f"x{mi}"] = before[f"x{mi}"] = users.metric_columns(metric, j)[1]
    deltas = _power_sums(now, before, users, config, shifts)
    deltas.update(regression_changes(j, deltas, users, config))
    t = j.select("arm", DAY, *_masks(j), **deltas)
    g = t.group_by(["arm", DAY, *_masks(t)]).aggregate(**{c: stable_sum(t[c]) for c in deltas})
    zero, nothing = ibis.literal(0, type="int64"), ibis.literal(0.0, type="float64")
    sums = {c: g[c].cast("float64") if c in deltas else nothing for c in columns(users, config)}
    return g.select("arm", DAY, *_masks(g), **{N: zero}, **sums)


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


def _starts(who: ir.Table, users: UserTable, config: ExperimentConfig, shifts: Shifts) -> ir.Table:
    """Per (arm, first day, masks): the users starting then and their power sums at no events.

    With no event every value is a constant (a CUPED covariate aside), so a group
    carries its count times the constant's powers: no per-user float sum.
    """
    import ibis

    t = who.mutate(**{c: ibis.literal(0, type="int64") for c in users.measure_cols.values()})
    now = _metric_values(t, users, config.metrics, "")
    at_zero: dict[str, Any] = {}
    aggs: dict[str, Any] = {N: t.count(), **regression_starts(t, None, users, config)}
    for mi, metric in enumerate(config.metrics):
        k_y, k_x = shifts[mi]
        aggs[f"y{mi}"] = (now[f"y{mi}"] - k_y).max()
        if f"x{mi}" not in now:
            continue
        x = now[f"x{mi}"] - k_x
        if metric.cuped is not None:  # the covariate: a sum per group
            aggs.update({f"sx{mi}": fsum(x), f"sxx{mi}": fsum(x * x)})
        else:
            aggs[f"x{mi}"] = x.max()
    g = t.group_by(["arm", DAY, *_masks(t)]).aggregate(**aggs)
    n = g[N].cast("float64")
    for mi in range(len(config.metrics)):
        y = g[f"y{mi}"]
        at_zero[COL.format("y", mi)] = n * y
        at_zero[COL.format("yy", mi)] = n * y * y
        if f"sx{mi}" in g.columns:
            sx, sxx = g[f"sx{mi}"], g[f"sxx{mi}"]
        elif f"x{mi}" in g.columns:
            sx, sxx = n * g[f"x{mi}"], n * g[f"x{mi}"] * g[f"x{mi}"]
        else:
            continue
        at_zero.update({COL.format("x", mi): sx, COL.format("xx", mi): sxx})
        at_zero[COL.format("xy", mi)] = sx * y
    at_zero.update(regression_starts(t, g, users, config))
    sums = {c: at_zero[c].cast("float64") for c in columns(users, config)}
    return g.select("arm", DAY, *_masks(g), N, **sums)


def _power_sums(
    now: dict[str, Any],
    before: dict[str, Any],
    users: UserTable,
    config: ExperimentConfig,
    shifts: Shifts,
) -> dict[str, Any]:
    """The change of each metric's shifted ``y, y², x, x², x·y`` from ``before`` to ``now``.

    Integer-valued measures (:func:`_integral`) stay int64: their changes are exact
    and sum as integers, cheaper than a compensated float sum.
    """
    out: dict[str, Any] = {}
    integral = _integral(users, config)
    for mi in range(len(config.metrics)):
        k_y, k_x = shifts[mi]
        for values, sign in ((now, 1), (before, -1)):
            y = _shifted(values[f"y{mi}"], k_y, integral=integral[mi][0])
            terms = {"y": y, "yy": y * y}
            if f"x{mi}" in values:
                x = _shifted(values[f"x{mi}"], k_x, integral=integral[mi][1])
                terms.update(x=x, xx=x * x, xy=x * y)
            for name, term in terms.items():
                key = COL.format(name, mi)
                out[key] = term if sign > 0 else out[key] - term
    return out


def _shifted(value: ir.NumericValue, shift: float, *, integral: bool) -> ir.NumericValue:
    """``value - shift``: int64 where the value is an integer (the shift always is), else float."""
    if integral:
        return value.cast("int64") - int(shift)
    return value.cast("float64") - shift


def _integral(users: UserTable, config: ExperimentConfig) -> list[tuple[bool, bool]]:
    """Per metric, whether ``y`` and ``x`` are integers for every user.

    ``y`` is: a 0/1 value, or an event count capped (if at all) at an integer;
    ``x`` is a ratio's denominator count (a CUPED covariate is any float).
    """
    out = []
    for metric in config.metrics:
        cap = users.caps.get(metric.name, math.inf)
        counts = [m.value is None for m in metric.measures]
        plan = kind_plan(metric.kind)
        y = plan.binary or (counts[0] and (not math.isfinite(cap) or float(cap).is_integer()))
        out.append((y, plan.ratio and counts[-1]))
    return out


def timeline_query(
    dataset: Dataset,
    users: UserTable,
    config: ExperimentConfig,
    shifts: Shifts,
    *,
    who: ir.Table | None = None,
) -> Any:
    """The timeline's query as an Ibis table; ``who`` is the analysed users (cached or not).

    ``shifts`` gives each metric's ``(K_y, K_x)`` (zeros are valid: only precision
    depends on them).
    """
    uncached, masks = analysed(users, config)
    who = uncached if who is None else who
    sums = (N, *columns(users, config))
    daily = _daily(dataset, users, config, who)
    rows = _starts(who, users, config, shifts)
    rows = rows.union(_changes(daily, who, users, config, shifts))
    g = rows.group_by(["arm", DAY, *masks]).aggregate(**{c: stable_sum(rows[c]) for c in sums})
    return _by_segment(g, len(users.segments), sums)


def _by_segment(g: ir.Table, n_segments: int, sums: tuple[str, ...]) -> Any:
    """Each (arm, day, masks) group repeated once per segment of its masks, summed."""
    import ibis

    segs = [ibis.literal(0, type="int16")]
    for si in range(1, n_segments):
        name, bit = segment_bit(si)
        has = (g[name] & ibis.literal(1 << bit, type="int64")) != 0
        segs.append(ibis.ifelse(has, si, None).cast("int16"))
    long = g.select("arm", DAY, *sums, **{SI: ibis.array(segs).unnest()})
    long = long.filter(long[SI].notnull())
    aggs = {c: stable_sum(long[c]) for c in sums}
    return long.group_by([SI, "arm", DAY]).aggregate(**aggs)


def columns(users: UserTable, config: ExperimentConfig) -> list[str]:
    """Every summed column but the count: power sums, then regression sums."""
    return [*sum_columns(config), *regression_columns(users, config)]


def sum_columns(config: ExperimentConfig) -> list[str]:
    """The power-sum columns of the query, in metric order."""
    out = []
    for mi, metric in enumerate(config.metrics):
        joint = kind_plan(metric.kind).ratio or metric.cuped is not None
        out += [COL.format(s, mi) for s in (SUMS if joint else SUMS[:2])]
    return out
