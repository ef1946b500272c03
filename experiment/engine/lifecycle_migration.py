"""Migration of rule segments: membership re-evaluated at day ``d`` from the behaviour up to ``d``.

For each segment named in ``lifecycle_analysis.migration_segments``, its rule (and
the rule segments it references) is compiled again on the per-user table with the
columns it reads rolled forward to ``start + d`` (README "Lifecycle analysis"):

* the lifecycle's recency column (``days_since_last_login``): from the window's
  logins, as the lifecycle stage (:mod:`experiment.engine.lifecycle`);
* ``lifecycle``: the stage at day ``d`` (the same column as the stage migration);
* a column with a rolling recipe (:data:`BUILTIN_FEATURES` or the block's
  ``features``), a count or sum of one event over the last ``N`` days: its value
  at the start, minus the events of the days ``[-N, d - N)`` before the start
  found in the events table (those that left the window; none without
  pre-period rows), plus the window's events of days ``[max(0, d - N), d)``; from
  ``d >= N`` on only the window's events;
* ``days_since(column)``: as of ``start + d``;
* every other column is a static attribute and stays as at the start; a column
  listed in ``dynamic`` or named like a rolling count (``*_<N>d``) without a
  recipe cannot be recomputed and is refused.

One grouped scan of the events gives every rolling sum for every day; no Python
loop over users.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from experiment.engine.moments import stable_sum
from experiment.errors import ConfigError, RuleError
from experiment.lifecyclespec import RollingFeature
from segments.compile import Compiler
from segments.lifecycle import LIFECYCLE
from segments.rules import (
    Between,
    BoolOp,
    Column,
    Compare,
    DaysSince,
    Node,
    Not,
    NullCheck,
    SegmentRef,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.engine.dataset import Dataset
    from experiment.lifecyclespec import LifecycleAnalysis
    from segments.definitions import SegmentSet
    from segments.lifecycle import LifecycleConfig

__all__ = ["BUILTIN_FEATURES", "MigrationSegment", "member_columns", "plan_segments", "rolling"]

_DAY_S = 86_400
_ROLLING_NAME = re.compile(r"_\d+d$")

BUILTIN_FEATURES: dict[str, RollingFeature] = {
    "logins_7d": RollingFeature(event="login", days=7),
    "sessions_30d": RollingFeature(event="session", days=30),
    "impressions_30d": RollingFeature(event="impression", days=30),
    "clicks_30d": RollingFeature(event="click", days=30),
    "feature_uses_30d": RollingFeature(event="feature_use", days=30),
    "premium_feature_uses_30d": RollingFeature(event="premium_feature_use", days=30),
    "pricing_page_views_30d": RollingFeature(event="pricing_view", days=30),
    "orders_90d": RollingFeature(event="purchase", days=90),
    "revenue_90d": RollingFeature(event="purchase", days=90, sum="revenue"),
}


@dataclass(frozen=True, kw_only=True)
class MigrationSegment:
    """One rule segment to follow: the columns its rule reads, by how they move.

    Attributes:
        name: The segment's name.
        recomputed: Columns recomputed at each day (recency, ``lifecycle``, rolling).
        frozen: Columns held as at the start (static attributes; timestamps, whose
            ``days_since`` moves with the day).
        rolling: The rolling recipes it needs, by column.
    """

    name: str
    recomputed: tuple[str, ...]
    frozen: tuple[str, ...]
    rolling: dict[str, RollingFeature]


def _columns(node: Node, rules: dict[str, Node], seen: set[str]) -> set[str]:
    """Every column a rule reads, through the rule segments it references."""
    if isinstance(node, BoolOp):
        return set().union(*(_columns(o, rules, seen) for o in node.operands))
    if isinstance(node, Not):
        return _columns(node.operand, rules, seen)
    if isinstance(node, SegmentRef):
        if node.name in seen or node.name not in rules:
            return set()  # cycles and unknown references are the compiler's to report
        return _columns(rules[node.name], rules, seen | {node.name})
    if isinstance(node, NullCheck):
        return {node.column.name}
    operands: list[Any] = [node.value] if isinstance(node, Between) else [node.left, node.right]
    if not isinstance(node, Between | Compare):  # pragma: no cover - Node is closed
        raise RuntimeError("Unknown rule node.")
    out: set[str] = set()
    for operand in operands:
        if isinstance(operand, DaysSince):
            out.add(operand.column.name)
        elif isinstance(operand, Column):
            out.add(operand.name)
    return out


def plan_segments(
    spec: LifecycleAnalysis,
    segment_set: SegmentSet | None,
    lifecycle: LifecycleConfig,
    columns: list[str],
) -> tuple[MigrationSegment, ...]:
    """Check the block's ``migration_segments`` and say how each one's columns move.

    Raises:
        ConfigError: an unknown or non-rule segment, or one that reads a column
            that changes with behaviour but cannot be recomputed from the events.
    """
    if not spec.migration_segments:
        return ()
    entries = {s.name: s for s in (segment_set.segments if segment_set else ())}
    rules = {n: s.rule for n, s in entries.items() if s.kind == "rule" and s.rule is not None}
    recipes = {**BUILTIN_FEATURES, **spec.features}
    out = []
    for name in dict.fromkeys(spec.migration_segments):
        if name not in rules:
            what = "is not a rule segment" if name in entries else "is not a segment"
            raise ConfigError(
                f"lifecycle_analysis.migration_segments: {name!r} {what} of the segments file; "
                f"rule segments are: {', '.join(rules) or 'none'}"
            )
        used = _columns(rules[name], rules, {name})
        recomputed, frozen, rolling = [], [], {}
        for col in sorted(used):
            if col in (lifecycle.recency_column, LIFECYCLE):
                recomputed.append(col)
            elif col in recipes and col in columns:
                recomputed.append(col)
                rolling[col] = recipes[col]
            elif col in spec.dynamic or _ROLLING_NAME.search(col):
                raise ConfigError(
                    f"lifecycle_analysis.migration_segments: segment {name!r} reads {col!r}, "
                    "which changes with behaviour but has no recipe to recompute it from the "
                    f"events; add lifecycle_analysis.features.{col} (event, days, sum) or "
                    "drop the segment"
                )
            else:
                frozen.append(col)
        out.append(
            MigrationSegment(
                name=name, recomputed=tuple(recomputed), frozen=tuple(frozen), rolling=rolling
            )
        )
    return tuple(out)


def _feature_key(feature: RollingFeature) -> tuple[str, int, str | None]:
    return (feature.event, feature.days, feature.sum)


def rolling(
    t: ir.Table,
    dataset: Dataset,
    plans: tuple[MigrationSegment, ...],
    *,
    start: dt.datetime,
    days: tuple[int, ...],
) -> tuple[ir.Table, dict[tuple[str, int, str | None], list[str]]]:
    """``t`` (per user) with the change of every rolling column from the start to each day.

    One grouped scan of the events; returns the joined table (``t`` itself when no
    segment needs a rolling column) and, per recipe, the change's column at each day.
    """
    import ibis

    recipes = {_feature_key(f): f for p in plans for f in p.rolling.values()}
    if not recipes:
        return t, {}
    e = dataset.events
    for f in recipes.values():
        if f.sum is not None and f.sum not in e.columns:
            raise ConfigError(
                f"lifecycle_analysis.features: the events table has no column {f.sum!r} to "
                f"sum; columns are: {', '.join(e.columns)}"
            )
    longest = max(f.days for f in recipes.values())
    end = start + dt.timedelta(days=max(days))
    events = sorted({f.event for f in recipes.values()})
    e = e.filter(e.event.isin(events) & (e.ts >= start - dt.timedelta(days=longest)) & (e.ts < end))
    k = ((e.ts.epoch_seconds() - start.timestamp()) / _DAY_S).floor().cast("int64")
    e = e.select(
        user_id=e.user_id.cast("string"),
        event=e.event,
        k=k,
        **{
            f"v{i}": e[s].cast("float64").fill_null(0.0)
            for i, s in enumerate(sorted({f.sum for f in recipes.values() if f.sum}))
        },
    )
    sums = sorted({f.sum for f in recipes.values() if f.sum})
    aggs: dict[str, Any] = {}
    names: dict[tuple[str, int, str | None], list[str]] = {}
    for j, (key, f) in enumerate(recipes.items()):
        value = e[f"v{sums.index(f.sum)}"] if f.sum else ibis.literal(1.0)
        names[key] = []
        for i, d in enumerate(days):
            added = (e.k >= max(0, d - f.days)) & (e.k < d)
            left = (e.k >= -f.days) & (e.k < min(0, d - f.days)) if d < f.days else None
            signed = ibis.ifelse(added, value, 0.0)
            if left is not None:
                signed = ibis.ifelse(left, -value, signed)
            aggs[f"__f{j}_{i}__"] = stable_sum(signed, where=e.event == f.event)
            names[key].append(f"__f{j}_{i}__")
    changes = e.group_by("user_id").aggregate(**aggs)
    return t.left_join(changes, "user_id").drop("user_id_right"), names


def member_columns(
    t: ir.Table,
    plans: tuple[MigrationSegment, ...],
    segment_set: SegmentSet | None,
    *,
    index: int,
    day: int,
    as_of: dt.datetime,
    names: dict[tuple[str, int, str | None], list[str]],
) -> ir.Table:
    """``t`` with ``__m{j}_{index}__``: each plan's membership as of ``start + day``.

    ``t`` holds the recency column as of the day, the stage ``__s{index}__``, each
    rolling column's start value as ``__start_COLUMN__`` and its change columns
    (``names``); the rolled columns are put back to their start values after.
    """
    if not plans:
        return t
    rolled: dict[str, Any] = {}
    for p in plans:
        for col, f in p.rolling.items():
            change = t[names[_feature_key(f)][index]].fill_null(0.0)
            base = t[f"__start_{col}__"].cast("float64") if day < f.days else 0.0
            rolled[col] = base + change
    td = t.mutate(**rolled, **{LIFECYCLE: t[f"__s{index}__"]})
    compiler = Compiler(td, as_of=as_of, segment_set=segment_set)
    members: dict[str, Any] = {}
    for j, p in enumerate(plans):
        try:
            members[f"__m{j}_{index}__"] = compiler.segment(SegmentRef(p.name, 0)).fill_null(False)
        except RuleError as exc:
            raise ConfigError(f"lifecycle_analysis.migration_segments: {p.name!r}: {exc}") from None
    td = td.mutate(**members)
    return td.mutate(**{col: td[f"__start_{col}__"] for col in rolled}).drop(LIFECYCLE)
