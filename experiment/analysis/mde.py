"""The inputs of the one MDE, read off the cell sums: the same for analyze, power and validate.

``exp analyze`` (results.json ``mde_rel``), ``exp power`` and ``exp segments
validate --experiment`` all hand :func:`experiment.stats.mde_cell` the control
arm's per-user mean and variance (a ratio's delta-method linearisation), the
arm sizes, and the CUPED variance reduction ``ρ²`` of the metric and its
covariate measured on the control arm's sums, so the three agree on a cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from experiment.stats import cuped_variance_reduction, mde_cell
from experiment.sums import JointSums

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from experiment.config import ExperimentConfig, MetricSpec
    from experiment.stats import MdeResult
    from experiment.sums import CellSums

__all__ = ["arm_moments", "cell_mde", "cuped_reduction"]


def arm_moments(
    cells: CellSums, name: str, j: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A metric's per-user mean and sample variance in arm ``j``, per segment.

    Ratio metrics give the ratio of means and the variance of the linearisation
    ``(y - r·x) / x̄`` (delta method), so one power formula serves every kind.
    Fewer than two users give a ``nan`` variance.

    References:
        Deng, Knoblich & Lu (KDD 2018), "Applying the Delta Method in Metric
        Analytics": https://arxiv.org/abs/1803.06336
    """
    sums = cells.metrics[name]
    with np.errstate(divide="ignore", invalid="ignore"):
        if isinstance(sums, JointSums):
            mean = sums.mean_y[:, j] / sums.mean_x[:, j]
            m2 = sums.m2_y[:, j] - 2 * mean * sums.c_xy[:, j] + mean**2 * sums.m2_x[:, j]
            var = np.maximum(m2, 0.0) / (sums.n[:, j] - 1) / sums.mean_x[:, j] ** 2
        else:
            mean, var = sums.mean[:, j], sums.var[:, j]
    return mean, np.where(sums.n[:, j] >= 2, var, np.nan)


def cuped_reduction(cells: CellSums, name: str, j: int) -> NDArray[np.float64]:
    """``ρ²`` of the metric and its CUPED covariate in arm ``j`` (0 without a covariate)."""
    joint = cells.cuped.get(name)
    if joint is None:
        return np.zeros(len(cells.segments))
    return cuped_variance_reduction(joint.m2_y[:, j], joint.m2_x[:, j], joint.c_xy[:, j])


def cell_mde(
    cells: CellSums,
    metric: MetricSpec,
    config: ExperimentConfig,
    sizes: tuple[NDArray[np.float64], NDArray[np.float64]],
    *,
    power: float | None = None,
) -> MdeResult:
    """The MDE per segment of ``metric`` at arm sizes ``sizes`` = (control, treatment).

    Baseline: the control arm's mean and variance; CUPED reduction: its ``ρ²``
    when the metric has a covariate; the metric's alternative and the
    experiment's alpha; ``power`` (default: the experiment's).
    """
    c = cells.arms.index(config.control)
    mean, var = arm_moments(cells, metric.name, c)
    return mde_cell(
        mean,
        var,
        sizes[0],
        sizes[1],
        alpha=config.alpha,
        power=config.power if power is None else power,
        alternative=metric.alternative,
        variance_reduction=cuped_reduction(cells, metric.name, c),
    )
