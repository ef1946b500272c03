"""The ``lifecycle`` block of results.json: migration, survival and projected value by arm.

Written when the experiment file has ``lifecycle_analysis:`` (README "Lifecycle
analysis"); files without it load with ``lifecycle: null``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from experiment.results.jsonvalue import field_value

__all__ = [
    "MEMBERSHIP",
    "Lifecycle",
    "MigrationRow",
    "MigrationSegmentRow",
    "SegmentMigrationRow",
    "SurvivalCurveRow",
    "SurvivalRow",
    "ValueRow",
    "lifecycle_from_json",
]


@dataclass(frozen=True, kw_only=True)
class MigrationRow:
    """The treatment effect on one destination share of one starting stage at one day."""

    day: int
    segment: str  # the lifecycle stage at the start
    to: str  # the stage at the day
    arm: str
    n_control: int
    n_treatment: int
    share_control: float
    share_treatment: float
    effect: float  # share_treatment - share_control
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    significant: bool
    family: str
    family_size: int


MEMBERSHIP = ("member", "not_member")  # the states of a rule segment's migration


@dataclass(frozen=True, kw_only=True)
class SegmentMigrationRow:
    """The treatment effect on one in/out share of one rule segment at one day."""

    day: int
    segment: str  # the rule segment (``migration_segments``)
    start: str  # "member" or "not_member" at the start
    to: str  # the state at the day
    arm: str
    n_control: int
    n_treatment: int
    share_control: float
    share_treatment: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    significant: bool
    family: str
    family_size: int


@dataclass(frozen=True, kw_only=True)
class MigrationSegmentRow:
    """How a followed rule segment's columns move: recomputed at each day, or frozen."""

    segment: str
    recomputed: tuple[str, ...]
    frozen: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class SurvivalRow:
    """The treatment effect on one survival curve at one day (Kaplan–Meier, Greenwood)."""

    curve: str  # "retained" (not lapsed) or "no_purchase" (no first purchase yet)
    segment: str
    arm: str
    day: int
    n_control: int  # users entering the curve
    n_treatment: int
    at_risk_control: int  # users still followed at ``day``
    at_risk_treatment: int
    survival_control: float
    survival_treatment: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    significant: bool
    family: str
    family_size: int


@dataclass(frozen=True, kw_only=True)
class SurvivalCurveRow:
    """One arm's whole curve, ``survival[t]`` for ``t = 0..window`` (for the report)."""

    curve: str
    segment: str
    arm: str
    survival: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]


@dataclass(frozen=True, kw_only=True)
class ValueRow:
    """Projected value per customer at one horizon, both arms and the effect (a projection)."""

    segment: str
    arm: str
    horizon: int
    n_control: int
    n_treatment: int
    value_control: float
    value_treatment: float
    decay_control: float  # the model's daily decay g
    decay_treatment: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float


@dataclass(frozen=True, kw_only=True)
class Lifecycle:
    """Everything the ``lifecycle_analysis`` block computed.

    ``migration_family``, ``survival_family`` say how the tests were corrected;
    ``value_model`` states the projection's model and assumptions in words.
    """

    days: tuple[int, ...]
    window_days: int
    correction: str
    migration_family: str
    survival_family: str
    value_model: str
    migration: tuple[MigrationRow, ...] = ()
    survival: tuple[SurvivalRow, ...] = ()
    curves: tuple[SurvivalCurveRow, ...] = ()
    value: tuple[ValueRow, ...] = ()
    segment_migration_family: str = ""
    migration_segments: tuple[MigrationSegmentRow, ...] = ()
    segment_migration: tuple[SegmentMigrationRow, ...] = ()


def _build(cls: Any, doc: dict[str, Any]) -> Any:
    return cls(**{f.name: field_value(doc.get(f.name), f.type) for f in fields(cls)})


def lifecycle_from_json(doc: dict[str, Any] | None) -> Lifecycle | None:
    """Rebuild the block from results.json (``null`` numbers become ``nan``); None if absent."""
    if not doc:
        return None
    return Lifecycle(
        days=tuple(int(d) for d in doc.get("days") or ()),
        window_days=int(doc.get("window_days") or 0),
        correction=str(doc.get("correction") or ""),
        migration_family=str(doc.get("migration_family") or ""),
        survival_family=str(doc.get("survival_family") or ""),
        value_model=str(doc.get("value_model") or ""),
        migration=tuple(_build(MigrationRow, r) for r in doc.get("migration") or ()),
        survival=tuple(_build(SurvivalRow, r) for r in doc.get("survival") or ()),
        curves=tuple(_build(SurvivalCurveRow, r) for r in doc.get("curves") or ()),
        value=tuple(_build(ValueRow, r) for r in doc.get("value") or ()),
        segment_migration_family=str(doc.get("segment_migration_family") or ""),
        migration_segments=tuple(
            _build(MigrationSegmentRow, r) for r in doc.get("migration_segments") or ()
        ),
        segment_migration=tuple(
            _build(SegmentMigrationRow, r) for r in doc.get("segment_migration") or ()
        ),
    )
