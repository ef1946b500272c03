"""Typed results of the heterogeneity tests: each segment against the rest, and Cochran's Q.

The top-level ``heterogeneity_tests`` block of results.json (README "results.json"):
one entry per (metric, treatment arm, scale), holding every segment's interaction
test against the rest of the population and, for exclusive segment sets, Cochran's Q
across the segments on the same scale. The older ``heterogeneity`` block (relative
scale, exclusive sets only) keeps its meaning beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from experiment.results.jsonvalue import field_value

__all__ = ["HeterogeneityTests", "SegmentInteraction", "heterogeneity_tests_from_json"]


@dataclass(frozen=True, kw_only=True)
class SegmentInteraction:
    """One segment's lift against the lift of everyone else (``all`` minus its users).

    ``difference = lift_segment - lift_rest`` on the entry's scale, ``se`` its standard
    error, ``z`` and the two-sided ``p_value``; ``p_adjusted`` within the entry's
    family; ``significant`` = ``p_adjusted < alpha``; ``users_segment``/``users_rest``
    the users of the two compared arms; ``reason`` why the test is ``null``.
    """

    segment: str
    lift_segment: float
    lift_rest: float
    difference: float
    se: float
    z: float
    p_value: float
    p_adjusted: float
    significant: bool
    users_segment: int
    users_rest: int
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class HeterogeneityTests:
    """The heterogeneity of one metric's lift of one treatment arm, on one scale.

    ``scale`` is ``absolute`` (``lift_abs``) or ``relative`` (``lift_rel``). ``q``,
    ``q_p_value``, ``i2`` and ``q_segments``: Cochran's Q across the segments (exclusive
    sets only; ``null`` and 0 otherwise). ``family`` (``interaction:METRIC:ARM:SCALE``)
    and ``family_size``: the segment-vs-rest tests of the entry are corrected together
    with ``correction``, apart from every other test. ``tests``: one per segment.
    """

    metric: str
    arm: str
    scale: str
    q: float
    q_p_value: float
    i2: float
    q_segments: int
    family: str
    family_size: int
    correction: str
    tests: tuple[SegmentInteraction, ...] = ()


def _flat(cls: Any, doc: dict[str, Any]) -> dict[str, Any]:
    return {f.name: field_value(doc.get(f.name), f.type) for f in fields(cls) if f.name != "tests"}


def heterogeneity_tests_from_json(docs: Any) -> tuple[HeterogeneityTests, ...]:
    """The ``heterogeneity_tests`` block of a parsed results.json (absent: none)."""
    return tuple(
        HeterogeneityTests(
            **_flat(HeterogeneityTests, doc),
            tests=tuple(
                SegmentInteraction(**_flat(SegmentInteraction, t)) for t in doc.get("tests") or ()
            ),
        )
        for doc in docs or ()
    )
