"""The validation report of a segments file before rollout: sizes, overlaps, MDEs, flags.

``exp segments validate --json`` prints :meth:`ValidationReport.to_dict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from experiment.results.display import Display

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SegmentCheck", "ValidationReport"]


@dataclass(frozen=True, kw_only=True)
class SegmentCheck:
    """One segment's row; numbers are ``None`` when the segment is under the floor.

    ``cuped_variance_reduction``: per metric with a CUPED covariate, the share of
    variance the covariate removes (``ρ²``), which ``mde_rel``/``mde_abs`` include.
    """

    name: str
    size: int | None
    share: float | None
    suppressed: bool
    flags: tuple[str, ...]
    mde_rel: dict[str, float | None] = field(default_factory=dict)
    mde_abs: dict[str, float | None] = field(default_factory=dict)
    baseline: dict[str, float | None] = field(default_factory=dict)
    cuped_variance_reduction: dict[str, float | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the segment passes every check."""
        return not self.flags


@dataclass(frozen=True, kw_only=True, repr=False)
class ValidationReport(Display):
    """Everything ``exp segments validate`` shows, as plain data."""

    source: str
    exclusive: bool
    min_size: int
    population: int
    coverage: float
    segments: tuple[SegmentCheck, ...]
    overlap: tuple[tuple[int | None, ...], ...] | None
    metrics: tuple[str, ...]
    alpha: float
    power: float
    target_lift: float
    users_per_arm_share: float
    # Findings that change the reading of the table: duplicate or shadowed segments,
    # rule values no customer has (with a close match). Shown first, in yellow.
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every segment passes."""
        return all(s.ok for s in self.segments)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``None`` for suppressed or undefined numbers)."""

        def clean(v: Any) -> Any:
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v

        return {
            "source": self.source,
            "set": "exclusive" if self.exclusive else "overlapping",
            "min_size": self.min_size,
            "population": self.population,
            "coverage": clean(self.coverage),
            "alpha": self.alpha,
            "power": self.power,
            "target_lift": self.target_lift,
            "users_per_arm_share": self.users_per_arm_share,
            "metrics": list(self.metrics),
            "ok": self.ok,
            "segments": [
                {
                    "name": s.name,
                    "size": s.size,
                    "share": clean(s.share),
                    "suppressed": s.suppressed,
                    "flags": list(s.flags),
                    "baseline": clean(s.baseline),
                    "mde_abs": clean(s.mde_abs),
                    "mde_rel": clean(s.mde_rel),
                    "cuped_variance_reduction": clean(s.cuped_variance_reduction),
                }
                for s in self.segments
            ],
            "overlap": [list(r) for r in self.overlap] if self.overlap is not None else None,
            "warnings": list(self.warnings),
        }

    def to_pandas(self) -> pd.DataFrame:
        """One row per segment: size, share, flags and each metric's relative MDE."""
        import pandas as pd

        rows = [
            {
                "segment": s.name,
                "size": s.size,
                "share": s.share,
                "suppressed": s.suppressed,
                "ok": s.ok,
                "flags": ", ".join(s.flags),
                **{f"mde_rel_{m}": s.mde_rel.get(m) for m in self.metrics},
            }
            for s in self.segments
        ]
        return pd.DataFrame(rows)

    def _headline(self) -> str:
        failed = sum(not s.ok for s in self.segments)
        verdict = "all pass" if not failed else f"{failed} fail a check"
        return f"{len(self.segments)} segments of {self.population:,} customers; {verdict}"
