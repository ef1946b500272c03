"""What ``exp assign`` did: users per segment and arm, and where it wrote them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from experiment.results.display import Display

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["NOT_ENTERED", "AssignmentSummary"]

NOT_ENTERED = "not entered"


@dataclass(frozen=True, kw_only=True, repr=False)
class AssignmentSummary(Display):
    """Users per segment (``all`` first) and column (arms, ``holdout``, ``not entered``).

    Attributes:
        experiment: The experiment's name.
        path: The assignments file written, or the engine table (its dotted name).
        segments: Segment names, ``all`` first.
        columns: The arms, then ``holdout`` (if any), then ``not entered``.
        counts: Users per segment and column.
    """

    experiment: str
    path: Path | str
    segments: tuple[str, ...]
    columns: tuple[str, ...]
    counts: dict[str, dict[str, int]]

    @property
    def entered(self) -> int:
        """Users who entered the experiment (an arm or the holdout)."""
        return sum(v for k, v in self.counts["all"].items() if k != NOT_ENTERED)

    def to_pandas(self) -> pd.DataFrame:
        """One row per segment, one column per arm (and holdout, not entered)."""
        import pandas as pd

        rows = [{"segment": s, **self.counts[s]} for s in self.segments]
        return pd.DataFrame(rows, columns=["segment", *self.columns])

    def _headline(self) -> str:
        return (
            f"{self.entered:,} users entered; {len(self.segments)} segments × "
            f"{len(self.columns)} columns → {self.path}"
        )
