"""Power planning from baseline sums: MDE, sample size and days per (segment, metric).

Two-sided z test, as statsmodels' NormalIndPower. Sizes split users by the arm
weights, control against the smallest treatment arm.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from experiment.analysis.lift import arm_baselines
from experiment.plan import kind_plan
from experiment.results.power import PowerPlan, PowerRow
from experiment.stats import mde_mean, mde_proportion, sample_size_mean, sample_size_proportion

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from experiment.config import ExperimentConfig
    from experiment.engine.baseline import BaselineSums

__all__ = ["power_plan"]


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
    else:
        n_c, n_t = users * w_c, users * w_t
    return users, n_c, n_t, w_c, w_t


def _rates(
    base: BaselineSums, users: NDArray[np.float64], users_per_day: float | None
) -> tuple[float | None, NDArray[np.float64]]:
    """Users per day (given, else assigned users over the span) and its share per segment."""
    rate = users_per_day
    if rate is None and base.span_days is not None:
        rate = float(users[0]) / base.span_days
    if rate is None or users[0] <= 0:
        return rate, np.full_like(users, np.nan)
    return rate, rate * users / users[0]


def power_plan(
    base: BaselineSums,
    config: ExperimentConfig,
    *,
    lift: float,
    power: float,
    users_per_day: float | None,
) -> PowerPlan:
    """Per (segment, metric) MDE at the current size, users and days to detect ``lift``.

    Traffic is ``users_per_day`` when given, else the assigned users over the
    assignments' span (unknown before launch: days are then ``None``).
    """
    cells = base.cells
    base_stats = arm_baselines(cells, config.control)
    users, n_c, n_t, w_c, w_t = _sizes(base, config)
    rate, seg_rate = _rates(base, users, users_per_day)
    rows = []
    for metric in config.metrics:
        mean, sd = base_stats[metric.name]
        if kind_plan(metric.kind).binary:  # a proportion's power formula
            mde = mde_proportion(mean, n_c, n_t, alpha=config.alpha, power=power)
            size = sample_size_proportion(
                mean, lift, alpha=config.alpha, power=power, ratio=w_t / w_c
            )
        else:
            mde = mde_mean(mean, sd, n_c, n_t, alpha=config.alpha, power=power)
            size = sample_size_mean(
                mean, sd, lift, alpha=config.alpha, power=power, ratio=w_t / w_c
            )
        needed = size.n_control / w_c  # segment users entering the experiment
        with np.errstate(divide="ignore", invalid="ignore"):
            days = needed / seg_rate
        rows += [
            PowerRow(
                segment=segment,
                metric=metric.name,
                kind=metric.kind,
                users=int(users[si]),
                mean=_num(mean[si]),
                sd=_num(sd[si]),
                mde_abs=_num(mde.mde_abs[si]),
                mde_rel=_num(mde.mde_rel[si]),
                n_control_needed=_ceil(size.n_control[si]),
                n_treatment_needed=_ceil(size.n_treatment[si]),
                users_needed=_ceil(needed[si]),
                days_needed=_num(days[si]),
            )
            for si, segment in enumerate(cells.segments)
        ]
    return PowerPlan(
        experiment=config.name,
        baseline="control arm" if base.assigned else "all customers",
        alpha=config.alpha,
        power=power,
        lift=lift,
        window_days=config.window.days,
        users_per_day=rate,
        rows=tuple(rows),
    )
