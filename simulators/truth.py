"""The true effects: every metric in every segment, from both potential outcomes of everyone.

Means are population quantities over *all* customers of a segment, each seen in
the control world and in the treatment world, so there is no sampling noise from
the assignment: a segment whose customers get no multiplier has a lift of
exactly 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.plan import kind_plan

if TYPE_CHECKING:
    from experiment.config import MetricSpec
    from simulators.outcomes import PotentialOutcomes

__all__ = ["Truth", "TruthEffect", "metric_value", "true_effects"]


@dataclass(frozen=True)
class TruthEffect:
    """The true effect of one treatment arm on one metric in one segment.

    Field names match the rows of ``results.json`` so the two can be joined.
    Means are ``None`` for an empty segment (or a ratio with a zero denominator);
    ``lift_rel`` is ``None`` when ``mean_control`` is 0.
    """

    segment: str
    metric: str
    arm: str
    mean_control: float | None
    mean_treatment: float | None
    lift_abs: float | None
    lift_rel: float | None


@dataclass(frozen=True)
class Truth:
    """The contents of ``truth.json``."""

    scenario: str
    seed: int
    users: int
    days: int
    effects: tuple[TruthEffect, ...]
    lifecycle: dict[str, Any] | None = None  # with the experiment's lifecycle_analysis only

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping in the DESIGN.md ``truth.json`` shape."""
        data = {
            "scenario": self.scenario,
            "seed": self.seed,
            "users": self.users,
            "days": self.days,
            "effects": [asdict(e) for e in self.effects],
        }
        if self.lifecycle is not None:
            data["lifecycle"] = self.lifecycle
        return data


def metric_value(
    metric: MetricSpec, outcomes: PotentialOutcomes, arm: int, mask: NDArray[np.bool_]
) -> float:
    """The metric over the customers in ``mask``, all seen in arm ``arm``'s world.

    A proportion averages ``1[count > 0]``, a mean averages the per-user measure,
    a ratio divides the sums of numerator and denominator. NaN when undefined.
    """
    values = [outcomes.measure(m, arm)[mask] for m in metric.measures]
    if mask.sum() == 0:
        return math.nan
    plan = kind_plan(metric.kind)
    if plan.binary:
        return float(np.mean(values[0] > 0))
    if not plan.ratio:
        return float(np.mean(values[0]))
    denom = float(values[1].sum())  # ratio
    return float(values[0].sum()) / denom if denom != 0 else math.nan


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _effect(segment: str, metric: str, arm: str, control: float, treatment: float) -> TruthEffect:
    lift = treatment - control
    rel = lift / control if math.isfinite(lift) and control != 0 else math.nan
    return TruthEffect(
        segment=segment,
        metric=metric,
        arm=arm,
        mean_control=_finite(control),
        mean_treatment=_finite(treatment),
        lift_abs=_finite(lift),
        lift_rel=_finite(rel),
    )


def true_effects(
    outcomes: PotentialOutcomes,
    metrics: Sequence[MetricSpec],
    members: Mapping[str, NDArray[np.bool_]],
    *,
    arms: Sequence[str],
    control: str,
) -> tuple[TruthEffect, ...]:
    """True effects for every (segment, metric, treatment arm), segments in the given order.

    Args:
        outcomes: Potential outcomes of every customer in every arm.
        metrics: The experiment's metrics.
        members: Membership per segment name (include ``all`` to get the whole population).
        arms: Arm names, in the order of the outcome rows.
        control: The control arm.

    Returns:
        One effect per segment, metric and treatment arm.
    """
    index = {a: i for i, a in enumerate(arms)}
    rows = []
    for segment, mask in members.items():
        for metric in metrics:
            base = metric_value(metric, outcomes, index[control], mask)
            for arm in arms:
                if arm != control:
                    treated = metric_value(metric, outcomes, index[arm], mask)
                    rows.append(_effect(segment, metric.name, arm, base, treated))
    return tuple(rows)
