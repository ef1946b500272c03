"""Lifecycle counts in the engine: stage migration, survival times and spend halves per user.

One per-user table (cached once; the window's logins and purchases read in one
grouped scan, :mod:`experiment.engine.lifecycle_events`), one grouped query per
output, no Python loop over users (README "Lifecycle analysis"):

* **stage at day d**: the lifecycle definition of :mod:`segments.lifecycle`, as of
  ``start + d``, with the recency column recomputed from the window's login events
  (``d - 1 - k`` for the last login on day ``k < d``, days from the window start;
  ``recency + d`` without one) and the signup age moved on by ``d`` days. The
  value column (``revenue_90d``) and the VIP threshold stay as at the start: they
  are a 90-day pre-period figure the window cannot roll forward. Counts per
  (arm, stage at the start, stage at each day).
* **lapse time** (``retained`` curve): for customers whose recency at the start is
  below ``at_risk_days``, the first ``t`` at which recency as of ``start + t``
  reaches it, from the login days' bit mask. Everyone is followed on the window's
  calendar, to ``t = days``.
* **first purchase** (``no_purchase`` curve): ``k + 1`` for the first purchase on day
  ``k`` after the user's assignment; censored at the user's whole days in the window.
* **spend halves**: the user's value in days ``[0, W/2)`` and ``[W/2, W)`` after
  assignment (``W`` = window days), for users followed the whole ``W`` days.

Survival counts are per (curve, segment, arm, time, event): all Kaplan–Meier needs.
Users are grouped by their segments' membership pattern before the counts are
spread over segments in numpy, so overlapping segments do not repeat user rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.engine.fetch import arrow
from experiment.engine.lifecycle_events import lapse_time, last_login_before, per_user_events
from experiment.engine.lifecycle_migration import member_columns, plan_segments, rolling
from experiment.engine.moments import stable_sum
from experiment.errors import ConfigError
from segments.compile import Compiler, compile_segments
from segments.lifecycle import STAGES, LifecycleConfig, lifecycle_column, vip_threshold
from segments.rules import parse_rule

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from experiment.engine.dataset import Dataset
    from experiment.engine.lifecycle_migration import MigrationSegment
    from segments.definitions import SegmentSet

__all__ = ["CURVES", "LifecycleCounts", "lifecycle_counts"]

CURVES = ("retained", "no_purchase")
_DAY_S = 86_400
_NONE = 1 << 30  # "no event" time, beyond any window


@dataclass(frozen=True, kw_only=True)
class LifecycleCounts:
    """What the engine hands to the lifecycle analysis (all counts, numpy).

    Attributes:
        arms: Arm names, the experiment's order.
        segments: ``all`` then the segments file's, in the order of the arrays.
        days: Days of the migration matrices (the window end last).
        window_days: The window's length ``W``.
        migration: ``(len(days), n_arms, 5, 5)`` users by (arm, stage at the start,
            stage at the day), stages in :data:`~segments.lifecycle.STAGES` order.
        events: Per curve, ``(n_segments, n_arms, W + 1)``: users whose event is at
            time ``t`` (``t = 1..W``).
        exits: The same for users censored at time ``t`` (their follow-up ends).
        spend: ``(6, n_segments, n_arms)``: ``n, Σy1, Σy2, Σy1², Σy2², Σy1y2`` of
            the spend in the first and second half of ``W`` days, per fully followed user.
        rule_segments: The ``migration_segments`` followed, with how their columns move.
        rule_migration: Per rule segment, ``(len(days), n_arms, 2, 2)`` users by (arm,
            state at the start, state at the day), states (member, not member).
    """

    arms: tuple[str, ...]
    segments: tuple[str, ...]
    days: tuple[int, ...]
    window_days: int
    migration: NDArray[np.float64]
    events: dict[str, NDArray[np.float64]]
    exits: dict[str, NDArray[np.float64]]
    spend: NDArray[np.float64]
    rule_segments: tuple[MigrationSegment, ...] = ()
    rule_migration: tuple[NDArray[np.float64], ...] = ()


def _units(dataset: Dataset, config: ExperimentConfig) -> ir.Table:
    """One row per user seen in a single arm of the experiment, with the first assignment."""
    a = dataset.assignments
    a = a.filter((a.experiment == config.name) & a.arm.isin(list(config.arms)))
    per = a.group_by("user_id").aggregate(
        arm=a.arm.min(), last=a.arm.max(), assigned_at=a.assigned_at.min()
    )
    per = per.filter(per.arm == per.last)
    return per.select(user_id=per.user_id.cast("string"), arm=per.arm, assigned_at=per.assigned_at)


def _check_stage_columns(
    customers: ir.Table, lc: LifecycleConfig, segment_set: SegmentSet | None
) -> None:
    """The customers columns the lifecycle stages read, before any query joins others in.

    Raises:
        ConfigError: a column is missing; names the segments file's ``lifecycle:`` field.
    """
    where = segment_set.source if segment_set is not None else "experiment"
    for field in ("signup_column", "recency_column", "value_column"):
        name = getattr(lc, field)
        if name not in customers.columns:
            raise ConfigError(
                f"{where}: lifecycle_analysis needs the customers column {name!r} "
                f"(lifecycle.{field} of the segments file); set lifecycle.{field} to one of: "
                f"{', '.join(c for c in customers.columns if c != 'user_id')}"
            )


def _stage(
    t: ir.Table,
    segment_set: SegmentSet | None,
    config: LifecycleConfig,
    *,
    as_of: dt.datetime,
    cut: float,
) -> ir.StringValue:
    """The lifecycle stage of every row of ``t`` as of ``as_of`` (its recency column as given)."""
    signals = None
    if config.at_risk_signals:
        rule = parse_rule(config.at_risk_signals)
        compiler = Compiler(t, as_of=as_of, segment_set=segment_set)
        signals = lambda: compiler.rule(rule)  # noqa: E731
    return lifecycle_column(t, config, as_of=as_of, signals=signals, vip_cut=cut)


def _user_table(
    dataset: Dataset,
    config: ExperimentConfig,
    segment_set: SegmentSet | None,
    *,
    units: ir.Table,
    start: dt.datetime,
    days: tuple[int, ...],
    plans: tuple[MigrationSegment, ...],
) -> tuple[ir.Table, tuple[str, ...]]:
    """The per-user table (one row per analysed user) and the segment names, ``all`` first."""
    import ibis

    spec = config.lifecycle_analysis
    if spec is None:  # pragma: no cover - callers check
        raise RuntimeError("No lifecycle_analysis.")
    lc = segment_set.lifecycle if segment_set is not None else LifecycleConfig()
    window = config.window.days
    end = start + dt.timedelta(days=window)
    customers = dataset.customers
    _check_stage_columns(customers, lc, segment_set)
    flags = compile_segments(segment_set, customers, as_of=start) if segment_set else {}
    cut = vip_threshold(customers, lc)
    rolled = sorted({col for p in plans for col in p.rolling})
    c = customers.mutate(
        user_id=customers.user_id.cast("string"),
        __r0__=customers[lc.recency_column].fill_null(0).cast("int64"),
        **{f"__seg{i}__": f.fill_null(False) for i, f in enumerate(flags.values())},
        **{f"__start_{col}__": customers[col] for col in rolled},
    )
    c = c.mutate(__s0__=_stage(c, segment_set, lc, as_of=start, cut=cut))
    logins, buys = per_user_events(dataset, units, spec, start=start, window=window)
    t = c.join(units, "user_id").left_join(logins, "user_id").drop("user_id_right")
    t = t.left_join(buys, "user_id").drop("user_id_right")
    t = t.mutate(**{w: t[w].fill_null(0) for w in logins.columns if w != "user_id"})
    t, names = rolling(t, dataset, plans, start=start, days=(0, *days))
    t = member_columns(t, plans, segment_set, index=0, day=0, as_of=start, names=names)
    for i, d in enumerate(days):
        last = last_login_before(t, d)
        recency = ibis.ifelse(last.isnull(), t.__r0__ + d, d - 1 - last)
        t = t.mutate(**{lc.recency_column: recency})
        as_of = start + dt.timedelta(days=d)
        t = t.mutate(**{f"__s{i + 1}__": _stage(t, segment_set, lc, as_of=as_of, cut=cut)})
        t = member_columns(t, plans, segment_set, index=i + 1, day=d, as_of=as_of, names=names)
    follow = ((end.timestamp() - t.assigned_at.epoch_seconds()) / _DAY_S).floor().cast("int64")
    out = t.select(
        "arm",
        *(f"__s{i}__" for i in range(len(days) + 1)),
        *(f"__seg{i}__" for i in range(len(flags))),
        *(f"__m{j}_{i}__" for j in range(len(plans)) for i in range(len(days) + 1)),
        eligible=t.__r0__ < lc.at_risk_days,
        lapse=lapse_time(t, t.__r0__, lc.at_risk_days, window),
        first=(t["first"] + 1).fill_null(_NONE),
        follow=follow,
        y1=t.y1.fill_null(0.0),
        y2=t.y2.fill_null(0.0),
    )
    return out, ("all", *flags)


def _rows(expr: ir.Table) -> dict[str, NDArray[Any]]:
    """Each column of ``expr``'s result as a numpy array (fetched without pandas)."""
    table = arrow(expr)
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}


def _migration(
    t: ir.Table, arms: tuple[str, ...], n_days: int, n_rules: int
) -> tuple[NDArray[np.float64], tuple[NDArray[np.float64], ...]]:
    """Users by (arm, start, day) of the stages and of each rule segment's membership.

    One query: grouped by the arm, the stage and every membership at each day.
    """
    stages = [f"__s{i}__" for i in range(n_days + 1)]
    member = [[f"__m{j}_{i}__" for i in range(n_days + 1)] for j in range(n_rules)]
    keys = ["arm", *stages, *(m for cols in member for m in cols)]
    rows = _rows(t.group_by(keys).aggregate(n=t.count()))
    out = np.zeros((n_days, len(arms), len(STAGES), len(STAGES)))
    arm = np.asarray([arms.index(a) for a in rows["arm"]], dtype=np.intp)
    code = {s: np.asarray([STAGES.index(v) for v in rows[s]], dtype=np.intp) for s in stages}
    code |= {m: 1 - np.asarray(rows[m], dtype=np.intp) for cols in member for m in cols}
    rules = tuple(np.zeros((n_days, len(arms), 2, 2)) for _ in range(n_rules))
    for i in range(n_days):
        np.add.at(out[i], (arm, code[stages[0]], code[stages[i + 1]]), rows["n"])
        for j, cols in enumerate(member):
            np.add.at(rules[j][i], (arm, code[cols[0]], code[cols[i + 1]]), rows["n"])
    return out, rules


def _flags(rows: dict[str, NDArray[Any]], n_segments: int) -> list[NDArray[np.bool_]]:
    """Per segment (``all`` first), which result rows count for it."""
    n = len(rows["arm"])
    return [np.ones(n, dtype=np.bool_)] + [
        np.asarray(rows[f"__seg{i}__"], dtype=np.bool_) for i in range(n_segments - 1)
    ]


def _survival(
    t: ir.Table, curve: str, arms: tuple[str, ...], shape: tuple[int, int, int]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Events and exits per (segment, arm, time) of one curve.

    Users are grouped by their segment flags, not repeated per segment: the result
    has one row per (arm, time, event, membership pattern), and numpy adds each row
    to every segment of its pattern.
    """
    import ibis

    window = shape[2] - 1
    if curve == "retained":
        who = t.filter(t.eligible)
        limit: Any = ibis.literal(window)
        time = who.lapse
    else:
        who = t.filter(t.follow > 0)
        limit = ibis.least(who.follow, window)
        time = who["first"]
    flags = [f"__seg{i}__" for i in range(shape[0] - 1)]
    g = who.select("arm", *flags, time=ibis.least(time, limit), event=time <= limit)
    rows = _rows(g.group_by(["arm", "time", "event", *flags]).aggregate(n=g.count()))
    events, exits = np.zeros(shape), np.zeros(shape)
    arm = np.asarray([arms.index(a) for a in rows["arm"]], dtype=np.intp)
    time_ = np.asarray(rows["time"], dtype=np.intp)
    happened = np.asarray(rows["event"], dtype=np.bool_)
    n = np.asarray(rows["n"], dtype=np.float64)
    for si, member in enumerate(_flags(rows, shape[0])):  # a loop over segments, not users
        index = (arm[member], time_[member])
        np.add.at(events[si], index, np.where(happened, n, 0.0)[member])
        np.add.at(exits[si], index, np.where(happened, 0.0, n)[member])
    return events, exits


def _spend(t: ir.Table, arms: tuple[str, ...], window: int, n_segments: int) -> NDArray[np.float64]:
    """``n, Σy1, Σy2, Σy1², Σy2², Σy1y2`` per (segment, arm), by membership pattern."""
    full = t.filter(t.follow >= window)
    y1, y2 = full.y1, full.y2
    flags = [f"__seg{i}__" for i in range(n_segments - 1)]
    names = ("n", "s1", "s2", "s11", "s22", "s12")
    rows = _rows(  # ordered: numpy adds the patterns' float sums in the same order every run
        full.group_by(["arm", *flags])
        .aggregate(
            n=full.count(),
            s1=stable_sum(y1),
            s2=stable_sum(y2),
            s11=stable_sum(y1 * y1),
            s22=stable_sum(y2 * y2),
            s12=stable_sum(y1 * y2),
        )
        .order_by(["arm", *flags])
    )
    out = np.zeros((6, n_segments, len(arms)))
    arm = np.asarray([arms.index(a) for a in rows["arm"]], dtype=np.intp)
    values = np.stack([np.asarray(rows[k], dtype=np.float64) for k in names])
    for si, member in enumerate(_flags(rows, n_segments)):
        for k in range(len(names)):
            np.add.at(out[k, si], arm[member], values[k, member])
    return out


def lifecycle_counts(
    dataset: Dataset,
    config: ExperimentConfig,
    segment_set: SegmentSet | None,
    *,
    start: dt.datetime,
) -> LifecycleCounts:
    """Count migration, survival and spend for the experiment's ``lifecycle_analysis``.

    Args:
        dataset: The opened dataset.
        config: The experiment (its ``lifecycle_analysis`` block is set).
        segment_set: The segments file (its ``lifecycle:`` knobs and segments).
        start: The window start (the lifecycle's "as of").

    Returns:
        The counts (see :class:`LifecycleCounts`).
    """
    spec = config.lifecycle_analysis
    if spec is None:
        raise RuntimeError("The experiment has no lifecycle_analysis block.")
    window = config.window.days
    days = tuple(sorted({*spec.days, window}))
    arms = tuple(config.arms)
    lc = segment_set.lifecycle if segment_set is not None else LifecycleConfig()
    plans = plan_segments(spec, segment_set, lc, list(dataset.customers.columns))
    # units are read twice (the per-user table and the purchases): materialise them once
    with _units(dataset, config).cache() as units:
        t, segments = _user_table(
            dataset, config, segment_set, units=units, start=start, days=days, plans=plans
        )
        shape = (len(segments), len(arms), window + 1)
        cached = t.cache()
    with cached:
        migration, rule_migration = _migration(cached, arms, len(days), len(plans))
        survival = {curve: _survival(cached, curve, arms, shape) for curve in CURVES}
        spend = _spend(cached, arms, window, len(segments))
    return LifecycleCounts(
        arms=arms,
        segments=segments,
        days=days,
        window_days=window,
        migration=migration,
        events={c: s[0] for c, s in survival.items()},
        exits={c: s[1] for c, s in survival.items()},
        spend=spend,
        rule_segments=plans,
        rule_migration=rule_migration,
    )
