"""The power plan: per (segment, metric) baseline, MDE, sample size and days needed.

``to_json_dict()`` is the ``exp power --json`` document; its field names are
stable, because scripts read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from experiment.results.display import Display

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PowerPlan", "PowerRow"]


@dataclass(frozen=True, kw_only=True)
class PowerRow:
    """One (segment, metric): baseline, MDE at the current size, size and time for ``lift``.

    Numbers that cannot be computed (no users, zero variance) are ``None``.
    ``days_needed`` is set under the ``daily`` traffic model only;
    ``base_share_needed`` is ``users_needed / users`` (above 1: the segment's base
    is too small to detect ``lift``); ``cuped_variance_reduction`` is the control
    arm's ``ρ²`` of the metric and its covariate (``None`` without CUPED), which
    the MDE and sizes already include.
    """

    segment: str
    metric: str
    kind: str
    users: int
    mean: float | None
    sd: float | None
    mde_abs: float | None
    mde_rel: float | None
    n_control_needed: int | None
    n_treatment_needed: int | None
    users_needed: int | None
    days_needed: float | None
    base_share_needed: float | None = None
    cuped_variance_reduction: float | None = None


@dataclass(frozen=True, kw_only=True, repr=False)
class PowerPlan(Display):
    """Everything ``exp power`` concludes.

    Attributes:
        experiment: The experiment's name.
        baseline: ``"control arm"`` or ``"all customers"`` (pre-launch data).
        alpha: The experiment's significance level.
        power: The probability of detecting ``lift``.
        lift: The relative lift to detect.
        window_days: The per-user measurement window.
        users_per_day: Users entering per day under the ``daily`` model, else ``None``.
        rows: One row per (segment, metric), metrics in the experiment's order.
        traffic: ``"base"`` (a fixed customer base, everyone eligible at once: no
            days) or ``"daily"`` (arrivals per day: ``days_needed``).
        data_days: Days of events after the first exposure (rounded up), ``None``
            when unknown: the longest window the baseline is measured on.
        extrapolated: ``window_days`` exceeds ``data_days``: the baseline measured on
            ``data_days`` stands in for the longer window.
    """

    experiment: str
    baseline: str
    alpha: float
    power: float
    lift: float
    window_days: int
    users_per_day: float | None
    rows: tuple[PowerRow, ...]
    traffic: str = "base"
    data_days: float | None = None
    extrapolated: bool = False

    def to_json_dict(self) -> dict[str, Any]:
        """The ``exp power --json`` document."""
        doc = asdict(self)
        doc["rows"] = [asdict(r) for r in self.rows]
        return doc

    def to_pandas(self) -> pd.DataFrame:
        """One DataFrame row per (segment, metric)."""
        import pandas as pd

        return pd.DataFrame([asdict(r) for r in self.rows], columns=list(PowerRow.__annotations__))

    def _headline(self) -> str:
        rate = "" if self.users_per_day is None else f" {self.users_per_day:,.0f}/day"
        extra = f"; window extrapolated from {self.data_days:g} days" if self.extrapolated else ""
        return (
            f"{len(self.rows)} rows; baseline from the {self.baseline}; "
            f"lift {self.lift:g} at power {self.power:g}, alpha {self.alpha:g}; "
            f"traffic {self.traffic}{rate}{extra}"
        )
