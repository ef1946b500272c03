"""The sequential timeline: the cumulative lift and its confidence sequence per window day."""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiment.analysis.compare import compare
from experiment.results import TimelinePoint
from experiment.stats import sequential_interval

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.sums import CellSums

__all__ = ["timeline_points"]


def timeline_points(
    cells: CellSums, config: ExperimentConfig, hidden: set[str]
) -> tuple[TimelinePoint, ...]:
    """Cumulative relative lift and its confidence sequence per window day (sequential only).

    Each day runs the final analysis's test on the sums up to that day's end, so
    the last day's point is the final row's ``lift_rel``, ``seq_ci_low``,
    ``seq_ci_high``. Segments under the privacy floor are left out.
    """
    c = cells.arms.index(config.control)
    points = []
    for date, day in cells.timeline:
        for metric in config.metrics:
            for j, arm in enumerate(day.arms):
                if j == c:
                    continue
                res = compare(
                    day, metric.name, c, j, config.alpha, relative_interval=config.relative_interval
                )
                n_total = day.units[:, c] + day.units[:, j]
                seq = sequential_interval(
                    res, n_total, alpha=config.alpha, tuning=config.sequential_tuning
                )
                points += [
                    TimelinePoint(
                        date=date,
                        segment=segment,
                        metric=metric.name,
                        arm=arm,
                        lift_rel=float(res.lift_rel[si]),
                        ci_low=float(seq.seq_ci_low[si]),
                        ci_high=float(seq.seq_ci_high[si]),
                    )
                    for si, segment in enumerate(day.segments)
                    if segment not in hidden
                ]
    return tuple(points)
