"""The analysis window of an experiment, and the assignments' ids and times checked.

The window starts at the experiment file's ``window.start`` or, without one, at
the first assignment of a user seen in one arm, and lasts ``window.days``. Every
assignment row needs a user id and a time: a user without a time would be
analysed with no events at all.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from experiment.engine.fetch import arrow, rows, scalar
from experiment.errors import DataError

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from experiment.engine.dataset import Dataset

__all__ = ["analysis_window"]


def analysis_window(units: ir.Table, dataset: Dataset, config: ExperimentConfig) -> tuple[Any, Any]:
    """The analysis window: from the experiment file, or from the first assignment.

    Raises:
        DataError: a user without an ``assigned_at``, a row without a ``user_id``, or
            (without a start in the file) no assignments for the experiment.
    """
    fixed = config.window.start
    if fixed is not None and _complete(dataset, config):  # no GROUP BY over the assignments
        return _span(fixed, config.window.days)
    found = rows(
        units.aggregate(
            first=units.assigned_at.min(where=units.arms_seen == 1),
            no_time=units.assigned_at.isnull().sum(),
            no_id=units.user_id.isnull().sum(),
        )
    )[0]
    first, no_time, no_id = (found[k] for k in ("first", "no_time", "no_id"))
    if no_time or no_id:  # a user without a time would be analysed with no events at all
        raise DataError(
            f"{dataset.path}: assignments of experiment {config.name!r}: "
            f"{no_time or 0:,} users with a null assigned_at, {no_id or 0:,} rows with a null "
            "user_id; every assignment needs a user_id and an assigned_at"
        )
    start = config.window.start
    if start is None:
        if first is None:
            present = arrow(dataset.assignments.experiment.value_counts())
            names = sorted(str(v) for v in present.column(0).to_pylist())
            shown = ", ".join(map(_name, names))
            if config.name in names:  # rows exist, but none in an arm of the file
                raise DataError(
                    f"{dataset.path}: assignments: no row of experiment {config.name!r} has "
                    f"an arm of the experiment file ({', '.join(map(repr, config.arms))}) "
                    "and a single arm per user; check the arm column (nulls, other names)"
                )
            raise DataError(
                f"{dataset.path}: no assignments for experiment {config.name!r}; "
                f"experiments present: {shown or 'none'}"
            )
        start = first
    try:
        return _span(start, config.window.days)
    except OverflowError:  # an assigned_at in the year 9999 leaves no room for the window
        raise DataError(
            f"{dataset.path}: assignments of experiment {config.name!r}: the first assigned_at "
            f"({start:%Y-%m-%d}) plus the {config.window.days}-day window ends after the year "
            "9999; check the assigned_at column, or set window.start in the experiment file"
        ) from None


def _name(name: str) -> str:
    """An experiment name as data holds it: quoted when spaces at its ends would hide."""
    plain = name and name == name.strip() and name.isprintable() and "," not in name
    return name if plain else repr(name)


def _span(start: dt.datetime, days: int) -> tuple[dt.datetime, dt.datetime]:
    """``days`` from ``start`` (a time without a zone is UTC)."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=days)


def _complete(dataset: Dataset, config: ExperimentConfig) -> bool:
    """No assignment row of the experiment's arms lacks a ``user_id`` or an ``assigned_at``.

    One scan without the per-user ``GROUP BY``; if it finds one, :func:`analysis_window`
    runs its per-user query, which counts them for the message.
    """
    a = dataset.assignments
    a = a.filter((a.experiment == config.name) & a.arm.isin(list(config.arms)))
    return not scalar((a.user_id.isnull() | a.assigned_at.isnull()).sum())
