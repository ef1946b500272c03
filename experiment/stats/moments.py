"""A cell's baseline moments read off :class:`experiment.sums.CellSums`: the MDE's inputs.

``exp analyze``, ``exp power``, ``exp segments validate --experiment`` and ``exp
refine`` (its follow-up MDE) read the control arm's per-user mean and variance, and
CUPED's variance reduction, with these functions, so the one MDE
(:func:`experiment.stats.mde_cell`) gets the same inputs on every path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from experiment.stats.power import cuped_variance_reduction
from experiment.stats.regression import ratio_linearised, regression_r2
from experiment.sums import JointSums

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from experiment.sums import CellSums, MeanSums

__all__ = ["arm_moments", "cuped_reduction", "per_user_moments"]


def arm_moments(
    cells: CellSums, name: str, j: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """A metric's per-user mean and sample variance in arm ``j``, per segment.

    :func:`per_user_moments` of the arm's column of sums.
    """
    return per_user_moments(cells.metrics[name][:, j])


def per_user_moments(
    sums: MeanSums | JointSums,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-user mean and sample variance of each cell of ``sums``.

    Ratio metrics give the ratio of means and the variance of the linearisation
    ``(y - r·x) / x̄`` (delta method), so one power formula serves every kind.
    Fewer than two users give a ``nan`` variance.

    References:
        Deng, Knoblich & Lu (KDD 2018), "Applying the Delta Method in Metric
        Analytics": https://arxiv.org/abs/1803.06336
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if isinstance(sums, JointSums):
            mean = sums.mean_y / sums.mean_x
            m2 = sums.m2_y - 2 * mean * sums.c_xy + mean**2 * sums.m2_x
            var = np.maximum(m2, 0.0) / (sums.n - 1) / sums.mean_x**2
        else:
            mean, var = sums.mean, sums.var
    return mean, np.where(sums.n >= 2, var, np.nan)


def cuped_reduction(cells: CellSums, name: str, j: int) -> NDArray[np.float64]:
    """``ρ²`` of the metric and its CUPED covariate in arm ``j`` (0 without a covariate).

    With several covariates (``cuped: [a, b]``), the ``R²`` of the metric's
    regression on them in arm ``j`` (:func:`~experiment.stats.regression_r2`); for a
    ratio metric, of its delta-method linearisation's.
    """
    if name in cells.regression:
        listed = cells.regression[name][:, j]
        if isinstance(cells.metrics[name], JointSums):  # a ratio: R² of its linearisation
            listed = ratio_linearised(listed)
        return regression_r2(listed)
    joint = cells.cuped.get(name)
    if joint is None:
        return np.zeros(len(cells.segments))
    return cuped_variance_reduction(joint.m2_y[:, j], joint.m2_x[:, j], joint.c_xy[:, j])
