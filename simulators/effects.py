"""Planted effects: per-arm, per-user multipliers of the funnel stages.

An effect applies to the treated customers of its segment; a ``where:`` rule (the
segments rule language) restricts it further to the customers matching the rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from segments.rules import parse_rule

if TYPE_CHECKING:
    import datetime as dt

    import ibis.expr.types as ir
    import pyarrow as pa

    from segments.definitions import SegmentSet
    from simulators.scenario import EffectSpec

__all__ = [
    "Multipliers",
    "Stage",
    "build_multipliers",
    "check_where",
    "has_novelty",
    "where_rule",
]

Stage = Literal[
    "sessions", "feature_use", "ctr", "cart", "purchase", "order_value", "churn", "reactivation"
]


_CHAIN = ("churn", "reactivation")  # churn-chain changes act from the start, no novelty part


@dataclass(frozen=True)
class Multipliers:
    """Funnel-stage multipliers, each of shape ``(n_arms, n_users)``.

    Row ``a`` holds what each customer would experience in arm ``a``: 1 in the
    control arm and for customers outside every effect segment. ``churn`` and
    ``reactivation`` multiply the daily lapse and come-back probabilities of the
    churn chain (:class:`simulators.cohort.Churn`), not a funnel stage.
    """

    sessions: NDArray[np.float64]
    feature_use: NDArray[np.float64]
    ctr: NDArray[np.float64]
    cart: NDArray[np.float64]
    purchase: NDArray[np.float64]
    order_value: NDArray[np.float64]
    churn: NDArray[np.float64]
    reactivation: NDArray[np.float64]

    @property
    def moves_churn(self) -> bool:
        """Whether an effect changes the daily lapse or reactivation probability."""
        return bool(np.any(self.churn != 1.0) or np.any(self.reactivation != 1.0))


def build_multipliers(
    effects: Sequence[EffectSpec],
    members: Mapping[str, NDArray[np.bool_]],
    *,
    arms: Sequence[str],
    control: str,
    n_users: int,
    day: int = 0,
    where: Sequence[NDArray[np.bool_] | None] | None = None,
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
        where: Per effect, the customers matching its ``where:`` rule (None: no rule);
            see :func:`simulators.masks.customer_masks`. Omitted: no effect has a rule.

    Returns:
        The multipliers.

    Raises:
        KeyError: an effect names a segment missing from ``members``.
        ValueError: an effect has a ``where:`` rule but no mask in ``where``.
    """
    # stages no effect changes share one read-only array of ones: a fresh array per
    # stage costs more (page faults) than every effect's update together
    ones = np.ones((len(arms), n_users))
    ones.flags.writeable = False
    table = dict.fromkeys(get_args(Stage), ones)
    everyone = np.ones(n_users, dtype=np.bool_)
    for i, effect in enumerate(effects):
        decay = 1.0
        if effect.novelty is not None:
            decay += effect.novelty.boost * math.exp(-day / effect.novelty.days)
        mask = everyone if effect.segment == "all" else members[effect.segment]
        if effect.where is not None:
            rule = where[i] if where is not None else None
            if rule is None:
                raise ValueError(f"Effect {i} has a where rule but no mask was given.")
            mask = mask & rule
        targets = [effect.arm] if effect.arm is not None else [a for a in arms if a != control]
        for arm in targets:
            row = list(arms).index(arm)
            for stage in table:
                change = float(getattr(effect, stage)) * (decay if stage not in _CHAIN else 1.0)
                if change != 0.0:
                    if table[stage] is ones:
                        table[stage] = np.ones((len(arms), n_users))
                    rows = table[stage][row]
                    np.multiply(rows, max(1.0 + change, 0.0), out=rows, where=mask)
    return Multipliers(**table)


def has_novelty(effects: Sequence[EffectSpec]) -> bool:
    """Whether any effect changes from day to day."""
    return any(e.novelty is not None and e.novelty.boost > 0 for e in effects)


def where_rule(
    effect: EffectSpec, table: ir.Table, segment_set: SegmentSet, as_of: dt.datetime | None
) -> ir.BooleanValue:
    """The effect's ``where:`` rule compiled on ``table``, nulls as no match (a boolean column)."""
    from segments.compile import Compiler

    if effect.where is None:  # pragma: no cover - callers pass effects with a rule only
        raise RuntimeError("Effect without a where rule.")
    compiler = Compiler(table, as_of=as_of, segment_set=segment_set)
    return compiler.rule(parse_rule(effect.where)).fill_null(False)


def check_where(
    effect: EffectSpec, schema: pa.Schema, segment_set: SegmentSet, *, as_of: dt.datetime
) -> None:
    """Parse and compile an effect's ``where:`` rule against the customers' columns.

    Args:
        effect: A planted effect (nothing is checked without a rule).
        schema: The customers table's schema.
        segment_set: The scenario's segments, for ``segment("name")`` references.
        as_of: The simulation start, the reference time of ``days_since()``.

    Raises:
        RuleError: the rule does not parse, names an unknown column or segment, or
            compares a column with a constant of another type.
    """
    if effect.where is None:
        return
    import ibis

    where_rule(
        effect, ibis.table(ibis.Schema.from_pyarrow(schema), name="customers"), segment_set, as_of
    )
