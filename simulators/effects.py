"""Planted effects: per-arm, per-user multipliers of the funnel stages."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from simulators.scenario import EffectSpec

__all__ = ["Multipliers", "Stage", "build_multipliers", "has_novelty"]

Stage = Literal["sessions", "feature_use", "ctr", "cart", "purchase", "order_value"]


@dataclass(frozen=True)
class Multipliers:
    """Funnel-stage multipliers, each of shape ``(n_arms, n_users)``.

    Row ``a`` holds what each customer would experience in arm ``a``: 1 in the
    control arm and for customers outside every effect segment.
    """

    sessions: NDArray[np.float64]
    feature_use: NDArray[np.float64]
    ctr: NDArray[np.float64]
    cart: NDArray[np.float64]
    purchase: NDArray[np.float64]
    order_value: NDArray[np.float64]


def build_multipliers(
    effects: Sequence[EffectSpec],
    members: Mapping[str, NDArray[np.bool_]],
    *,
    arms: Sequence[str],
    control: str,
    n_users: int,
    day: int = 0,
) -> Multipliers:
    """Turn planted effects into multipliers; effects of overlapping segments multiply.

    Args:
        effects: Planted effects from the scenario.
        members: Segment membership per segment name, aligned with the customers;
            the name ``all`` means every customer.
        arms: Arm names in experiment order (the rows of the result).
        control: The control arm, which never gets an effect.
        n_users: Number of customers.
        day: Days since the start of the experiment, for effects with a novelty part.

    Returns:
        The multipliers.

    Raises:
        KeyError: an effect names a segment missing from ``members``.
    """
    table = {stage: np.ones((len(arms), n_users)) for stage in get_args(Stage)}
    everyone = np.ones(n_users, dtype=np.bool_)
    for effect in effects:
        decay = 1.0
        if effect.novelty is not None:
            decay += effect.novelty.boost * math.exp(-day / effect.novelty.days)
        mask = everyone if effect.segment == "all" else members[effect.segment]
        targets = [effect.arm] if effect.arm is not None else [a for a in arms if a != control]
        for arm in targets:
            row = list(arms).index(arm)
            for stage, rows in table.items():
                change = float(getattr(effect, stage)) * decay
                if change != 0.0:
                    rows[row, mask] *= max(1.0 + change, 0.0)
    return Multipliers(**table)


def has_novelty(effects: Sequence[EffectSpec]) -> bool:
    """Whether any effect changes from day to day."""
    return any(e.novelty is not None and e.novelty.boost > 0 for e in effects)
