"""The pre-exposure balance check's results: results.json's ``balance`` block.

Read by the decision (a failed check blocks shipping, like a sample ratio
mismatch), the terminal's balance line and the report's banner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["Balance", "BalanceTest", "SegmentBalance", "balance_from_json"]


@dataclass(frozen=True, kw_only=True)
class BalanceTest:
    """One (segment, covariate, treatment arm) comparison with control.

    ``smd`` is the standardised mean difference, ``p_value`` Welch's two-sided
    p-value and ``p_adjusted`` its Holm adjustment over every balance test;
    ``flag`` is ``p_adjusted < threshold``.
    """

    segment: str
    covariate: str
    arm: str
    n_control: int
    n_treatment: int
    mean_control: float
    mean_treatment: float
    smd: float
    p_value: float
    p_adjusted: float
    flag: bool


@dataclass(frozen=True, kw_only=True)
class SegmentBalance:
    """A segment's balance: flagged when any of its tests is; its smallest adjusted p."""

    segment: str
    flag: bool
    p_adjusted: float


@dataclass(frozen=True, kw_only=True)
class Balance:
    """The pre-exposure covariate balance check of an analysis.

    The default (no covariates, ``tests == 0``) means the check did not run: no
    covariate to compare, sums saved before the check existed, or an older file.
    """

    flag: bool = False
    threshold: float = 0.001
    method: str = ""
    covariates: tuple[str, ...] = ()
    tests: int = 0
    segments: tuple[SegmentBalance, ...] = ()
    worst: tuple[BalanceTest, ...] = ()

    @property
    def ran(self) -> bool:
        """Whether any test had a p-value."""
        return self.tests > 0

    def flagged_segments(self) -> set[str]:
        """The segments with a flagged test (``all`` among them when it is)."""
        return {s.segment for s in self.segments if s.flag}


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _typed(cls: Any, doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise TypeError(f"'balance' entries must be objects, not {type(doc).__name__}")
    out: dict[str, Any] = {}
    for f in fields(cls):
        value = doc.get(f.name)
        if f.type in ("float", float):
            out[f.name] = _float(value)
        elif f.type in ("int", int):
            out[f.name] = 0 if value is None else int(value)
        elif f.type in ("bool", bool):
            out[f.name] = bool(value)
        else:
            out[f.name] = "" if value is None else str(value)
    return out


def balance_from_json(doc: Any) -> Balance:
    """The ``balance`` block of a parsed results.json; a missing block is a check not run.

    Raises:
        TypeError, ValueError: the block is not an object or a field has a wrong type.
    """
    if doc is None:
        return Balance()
    if not isinstance(doc, dict):
        raise TypeError("'balance' must be an object")
    for key in ("covariates", "segments", "worst"):
        if not isinstance(doc.get(key) or [], list):
            raise TypeError(f"'balance.{key}' must be a list")
    return Balance(
        flag=bool(doc.get("flag", False)),
        threshold=_float(doc.get("threshold", 0.001)),
        method=str(doc.get("method") or ""),
        covariates=tuple(str(c) for c in doc.get("covariates") or ()),
        tests=int(doc.get("tests") or 0),
        segments=tuple(
            SegmentBalance(**_typed(SegmentBalance, s)) for s in doc.get("segments") or ()
        ),
        worst=tuple(BalanceTest(**_typed(BalanceTest, t)) for t in doc.get("worst") or ()),
    )
