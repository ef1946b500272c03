"""Power planning from baseline sums: MDE, sample size and time per (segment, metric).

The MDE is :func:`experiment.stats.mde_cell` on the control arm's mean, variance
and CUPED reduction (:mod:`~experiment.analysis.mde`, as ``exp analyze``), at the
metric's alternative; the sample size is its inverse. Sizes split users by the
arm weights, control against the smallest treatment arm.

Two traffic models, named in the plan (``traffic``):

* ``base``: a fixed customer base, everyone eligible at once. The MDE is at the
  share of the base that enters (assigned now, or ``traffic × (1 − holdout)`` of
  the customers before launch); the plan says what share of the base detecting
  ``lift`` takes (``base_share_needed``; above 1, the base is too small). No days.
* ``daily``: users arrive over time, ``users_per_day`` (given, or the assigned
  users over the span of ``assigned_at``); ``days_needed`` is the enrolment time.

Default: ``daily`` when ``users_per_day`` is given or the assignments span more
than one timestamp, else ``base`` (no assignments, or everyone assigned at once).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from experiment.analysis.mde import cell_mde
from experiment.errors import ConfigError, DataError
from experiment.results.power import PowerPlan, PowerRow
from experiment.stats import arm_moments, cuped_reduction, sample_size

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from experiment.config import ExperimentConfig, MetricSpec
    from experiment.engine.baseline import BaselineSums

__all__ = ["Traffic", "power_plan", "traffic_model"]

Traffic = Literal["base", "daily"]


def _num(value: Any) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def _ceil(value: Any) -> int | None:
    v = float(value)
    return math.ceil(v) if math.isfinite(v) else None


def _sizes(
    base: BaselineSums, config: ExperimentConfig
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float, float]:
    """Users per segment (every arm), control and treatment sizes, and the arm shares."""
    cells = base.cells
    total = sum(config.arms.values())
    w_c = config.arms[config.control] / total
    w_t = min(w for a, w in config.arms.items() if a != config.control) / total
    users = cells.units.sum(axis=1)
    c = cells.arms.index(config.control)
    if base.assigned:  # the current split: control against the smallest treatment arm
        n_c, n_t = cells.units[:, c], np.delete(cells.units, c, axis=1).min(axis=1)
    else:  # the share of the base that enters: traffic × (1 − holdout), split by weight
        entering = users * config.traffic * (1 - config.holdout)
        n_c, n_t = entering * w_c, entering * w_t
    return users, n_c, n_t, w_c, w_t


_LONGEST_SPAN_DAYS = 3653.0  # ten years of assignments: beyond it, an outlier, not an inflow


def traffic_model(
    base: BaselineSums, traffic: Traffic | None, users_per_day: float | None
) -> tuple[Traffic, float | None]:
    """The traffic model (explicit, else the data's) and users per day for ``daily``.

    Raises:
        ConfigError: ``daily`` without a rate (no assignments, or one timestamp,
            and no ``users_per_day``).
        DataError: ``daily`` from assignments that span more than ten years (an
            outlying ``assigned_at``: the rate would be a few users a century).
    """
    if traffic is None:
        spread = base.assigned and not base.one_timestamp
        traffic = "daily" if users_per_day is not None or spread else "base"
    if traffic == "base":
        return "base", None
    if users_per_day is not None:
        return "daily", users_per_day
    if not base.assigned or base.one_timestamp or base.span_days is None:
        why = "no assignments" if not base.assigned else "every assignment has one timestamp"
        raise ConfigError(
            f"--traffic daily: {why}, so users per day cannot be measured; "
            "give --users-per-day N or use --traffic base"
        )
    if base.span_days > _LONGEST_SPAN_DAYS:
        raise DataError(
            f"assignments: the experiment's assigned_at values span {base.span_days:,.0f} days "
            "(more than ten years), so they give no daily arrival rate; correct the outlying "
            "assigned_at, give --users-per-day N or use --traffic base"
        )
    return "daily", float(base.cells.units[0].sum()) / base.span_days


def _rows(
    base: BaselineSums,
    config: ExperimentConfig,
    metric: MetricSpec,
    *,
    lift: float,
    power: float,
    rate: float | None,
) -> list[PowerRow]:
    cells = base.cells
    users, n_c, n_t, w_c, w_t = _sizes(base, config)
    c = cells.arms.index(config.control)
    mean, var = arm_moments(cells, metric.name, c)
    reduction = cuped_reduction(cells, metric.name, c)
    mde = cell_mde(cells, metric, config, (n_c, n_t), power=power)
    size = sample_size(
        mean,
        var,
        lift,
        alpha=config.alpha,
        power=power,
        alternative=metric.alternative,
        variance_reduction=reduction,
        ratio=w_t / w_c,
    )
    needed = size.n_control / w_c  # segment users entering the experiment
    with np.errstate(divide="ignore", invalid="ignore"):
        share = needed / users
        days = (
            needed / (rate * users / users[0]) if rate is not None else np.full_like(users, np.nan)
        )
    return [
        PowerRow(
            segment=segment,
            metric=metric.name,
            kind=metric.kind,
            users=int(users[si]),
            mean=_num(mean[si]),
            sd=_num(np.sqrt(var[si])),
            mde_abs=_num(mde.mde_abs[si]),
            mde_rel=_num(mde.mde_rel[si]),
            n_control_needed=_ceil(size.n_control[si]),
            n_treatment_needed=_ceil(size.n_treatment[si]),
            users_needed=_ceil(needed[si]),
            days_needed=_num(days[si]),
            base_share_needed=_num(share[si]),
            cuped_variance_reduction=(
                _num(reduction[si]) if metric.name in {*cells.cuped, *cells.regression} else None
            ),
        )
        for si, segment in enumerate(cells.segments)
    ]


def power_plan(
    base: BaselineSums,
    config: ExperimentConfig,
    *,
    lift: float,
    power: float,
    users_per_day: float | None,
    traffic: Traffic | None = None,
) -> PowerPlan:
    """Per (segment, metric) MDE at the current size, and users (and days) to detect ``lift``.

    ``traffic`` picks the model (module docstring); ``None`` lets the data decide.
    A measurement window (``config.window.days``) longer than the data's is kept
    and flagged ``extrapolated``: the baseline measured on the data's days stands in
    for the longer window.

    Raises:
        ConfigError: ``daily`` traffic that cannot be measured (see :func:`traffic_model`).
    """
    model, rate = traffic_model(base, traffic, users_per_day)
    rows = [
        row
        for metric in config.metrics
        for row in _rows(base, config, metric, lift=lift, power=power, rate=rate)
    ]
    window = config.window.days
    return PowerPlan(
        experiment=config.name,
        baseline="control arm" if base.assigned else "all customers",
        alpha=config.alpha,
        power=power,
        lift=lift,
        window_days=window,
        users_per_day=rate,
        rows=tuple(rows),
        traffic=model,
        data_days=base.data_days,
        extrapolated=base.data_days is not None and window > base.data_days,
    )
