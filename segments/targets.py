"""Event targets of predictive segments: per-user labels computed in the engine.

A label says whether the user has at least one event of a type (or, with
``absent``, none) in the ``days`` days from their reference time: the control-arm
``assigned_at`` of an experiment, or a fixed ``as_of``. Only users whose whole
window lies inside the events' date range are labelled, so a short tail of data
cannot pass for "no event". The labels are one left join of the reference times
to the event rows in their windows and one aggregate, all in the engine.
"""

from __future__ import annotations

import datetime as dt
import difflib
from typing import TYPE_CHECKING, Any

from experiment.errors import ConfigError, DataError

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from segments.definitions import EventTarget

__all__ = ["event_labels", "reference_times"]


def _distinct(column: Any) -> list[str]:
    values = column.name("v").as_table().distinct().order_by("v").to_pyarrow().column("v")
    return [str(v) for v in values.to_pylist() if v is not None]


def _hint(value: str, options: list[str], what: str) -> str:
    close = difflib.get_close_matches(value, options, n=1)
    shown = ", ".join(options[:20]) + (", …" if len(options) > 20 else "")
    return f"did you mean {close[0]!r}? ({what}: {shown})" if close else f"{what}: {shown}"


def reference_times(
    target: EventTarget, customers: ir.Table, assignments: ir.Table | None
) -> ir.Table:
    """``(user_id, ref)``: each labelled user's reference time.

    Raises:
        ConfigError: the experiment or control arm is not in the assignments, or no
            reference time can be chosen (no assignments and no ``as_of``).
    """
    import ibis

    if target.as_of is not None:
        return customers.select(customers.user_id, ref=ibis.literal(target.as_of))
    if assignments is None or assignments.count().to_pyarrow().as_py() == 0:
        raise ConfigError("target: the dataset has no assignments; give target as_of")
    experiments = _distinct(assignments.experiment)
    name = target.experiment
    if name is None:
        if len(experiments) != 1:
            raise ConfigError(
                f"target: the assignments hold {len(experiments)} experiments; "
                f"set target experiment to one of: {', '.join(experiments)}"
            )
        name = experiments[0]
    elif name not in experiments:
        raise ConfigError(
            f"target experiment {name!r} has no assignments; "
            + _hint(name, experiments, "experiments")
        )
    mine = assignments.filter(assignments.experiment == name)
    arms = _distinct(mine.arm)
    if target.control not in arms:
        raise ConfigError(
            f"target control arm {target.control!r} is not an arm of {name!r}; "
            + _hint(target.control, arms, "arms")
        )
    control = mine.filter(mine.arm == target.control)
    return control.group_by("user_id").aggregate(ref=control.assigned_at.min())


def event_labels(
    target: EventTarget, customers: ir.Table, events: ir.Table, assignments: ir.Table | None
) -> ir.Table:
    """``(user_id, y)``: the target label of every user with a fully observed window.

    The window is ``[ref, ref + days)``; the data are taken to cover whole days up
    to the day of the last event, and users whose window ends later are left out.

    Raises:
        ConfigError: the event type is not in the events table (with suggestions),
            or :func:`reference_times` cannot pick reference times.
        DataError: no user has a complete window before the data end.
    """
    import ibis

    kinds = _distinct(events.event)
    if target.event not in kinds:
        raise ConfigError(
            f"target event {target.event!r} is not in the events table; "
            + _hint(target.event, kinds, "events")
        )
    refs = reference_times(target, customers, assignments)
    last = events.ts.max().to_pyarrow().as_py()
    if last is None:  # pragma: no cover - an event type was found above
        raise DataError("the events table is empty")
    day = last.replace(hour=0, minute=0, second=0, microsecond=0)
    horizon = day + dt.timedelta(days=1)
    span = ibis.interval(days=target.days)
    refs = refs.filter(refs.ref + span <= ibis.literal(horizon))
    hits = events.filter(events.event == target.event).select(uid="user_id", ts="ts")
    joined = refs.left_join(
        hits, [refs.user_id == hits.uid, hits.ts >= refs.ref, hits.ts < refs.ref + span]
    )
    counts = joined.group_by("user_id").aggregate(n=joined.ts.count())
    has = counts.n > 0
    labels = counts.select("user_id", y=~has if target.absent else has)
    if labels.count().to_pyarrow().as_py() == 0:
        raise DataError(
            f"no labelled user has a full {target.days}-day window before the events end "
            f"({last:%Y-%m-%d})"
        )
    return labels
