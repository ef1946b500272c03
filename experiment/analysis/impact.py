"""What a lift is worth, and how long until an underpowered row can decide.

**Impact.** Rolling a treatment arm out to a segment changes the metric's total
by about ``lift_abs × users``: extra converting users for a proportion or
retention metric, extra value (revenue, units) for a mean metric. For a ratio
metric (``Σnumerator / Σdenominator``) the change in the numerator's total is
approximated as ``lift_abs × x̄_c × users``, ``x̄_c`` the control arm's mean
denominator per user: the denominator is assumed unchanged by the treatment.
``users`` is the segment's assigned users in every arm (``impact_users``); over
the analysis window that is the segment itself, and per 30 days it is the
traffic ``users / assignment span`` (days, at least 1) times 30, the rate at which
users entered the experiment. When every user was assigned at one timestamp (a
fixed customer base) there is no traffic to project: only the window figure.
The interval scales ``ci_abs_low``/``ci_abs_high`` by the same factor: it carries
the sampling uncertainty of the lift, not that of the traffic, of the ratio's
denominator or of a different future population.

**Time to decision.** For a row whose ``mde_rel`` exceeds the experiment's
``target_lift`` (``underpowered``), the extra users of the two compared arms at
which the one MDE (:func:`experiment.stats.sample_size`, as ``exp power``) equals
the target, and the days they take at the arms' observed traffic.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from experiment.analysis.mde import cell_users_needed
from experiment.sums import JointSums

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from experiment.analysis.rows import Comparison
    from experiment.config import ExperimentConfig
    from experiment.results import ResultRow
    from experiment.sums import CellSums

__all__ = ["DAYS", "add_impact", "impact_columns"]

DAYS = 30.0  # the horizon of ``impact_30d``


def _traffic_days(cells: CellSums) -> float:
    """The span traffic is measured over: assignment days (at least 1), ``nan`` if fixed/unknown."""
    days = cells.assignment_days
    return max(days, 1.0) if days > 0 else np.nan


def impact_columns(
    cells: CellSums, comp: Comparison, config: ExperimentConfig
) -> dict[str, NDArray[np.float64]]:
    """The impact and time-to-decision fields of one comparison, one element per segment.

    Keys are the results.json field names (see the module docstring for their
    meaning); ``nan`` where undefined.
    """
    users = cells.units.sum(axis=1)
    sums = cells.metrics[comp.metric]
    per_user = sums.mean_x[:, comp.c] if isinstance(sums, JointSums) else np.ones(len(users))
    days = _traffic_days(cells)
    scale = per_user * users
    out = {
        "impact_users": users,
        "users_per_day": users / days,
        "impact_window": comp.lift.lift_abs * scale,
        "impact_window_low": comp.lift.ci_abs_low * scale,
        "impact_window_high": comp.lift.ci_abs_high * scale,
    }
    for key in ("", "_low", "_high"):
        out[f"impact_30d{key}"] = out[f"impact_window{key}"] / days * DAYS
    n_arms = cells.units[:, comp.c] + cells.units[:, comp.j]
    short = comp.mde_rel > config.target_lift  # nan: unknown, no figure
    metric = next(m for m in config.metrics if m.name == comp.metric)
    sizes = (cells.units[:, comp.c], cells.units[:, comp.j])
    needed = np.where(short, cell_users_needed(cells, metric, config, sizes), np.nan)
    extra = np.ceil(np.maximum(needed - n_arms, 0.0))
    out["extra_users_needed"] = extra
    out["extra_days_needed"] = extra / (n_arms / days)
    return out


def add_impact(
    rows: list[ResultRow],
    cells: CellSums,
    comparisons: list[Comparison],
    config: ExperimentConfig,
) -> list[ResultRow]:
    """``rows`` with their impact and time-to-decision fields filled in.

    Rows are matched to their comparison by (segment, metric, arm).
    """
    values: dict[tuple[str, str, str], dict[str, Any]] = {}
    for comp in comparisons:
        columns = {k: v.tolist() for k, v in impact_columns(cells, comp, config).items()}
        for s, segment in enumerate(cells.segments):
            values[segment, comp.metric, comp.arm] = {k: v[s] for k, v in columns.items()}
    return [replace(r, **values.get((r.segment, r.metric, r.arm), {})) for r in rows]
