"""The inputs of the one MDE, read off the cell sums: the same for analyze, power and validate.

``exp analyze`` (results.json ``mde_rel``), ``exp power`` and ``exp segments
validate --experiment`` all hand :func:`experiment.stats.mde_cell` the control
arm's per-user mean and variance (a ratio's delta-method linearisation), the
arm sizes, and the CUPED variance reduction ``ρ²`` of the metric and its
covariate measured on the control arm's sums, so the three agree on a cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiment.stats import arm_moments, cuped_reduction, mde_cell, sample_size

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from experiment.config import ExperimentConfig, MetricSpec
    from experiment.stats import MdeResult
    from experiment.sums import CellSums

__all__ = ["cell_mde", "cell_users_needed"]


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


def cell_users_needed(
    cells: CellSums,
    metric: MetricSpec,
    config: ExperimentConfig,
    sizes: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> NDArray[np.float64]:
    """Users (both arms) at which :func:`cell_mde` equals the experiment's ``target_lift``.

    :func:`experiment.stats.sample_size` (the inverse of the one MDE) on the same
    inputs as :func:`cell_mde`, at each segment's current split ``n_t / n_c`` of
    ``sizes``; ``nan`` where an arm is empty or the MDE is undefined.
    """
    import numpy as np

    c = cells.arms.index(config.control)
    mean, var = arm_moments(cells, metric.name, c)
    reduction = cuped_reduction(cells, metric.name, c)
    out = np.full(len(cells.segments), np.nan)
    for s, (n_c, n_t) in enumerate(zip(sizes[0].tolist(), sizes[1].tolist(), strict=True)):
        if n_c > 0 and n_t > 0:
            size = sample_size(
                mean[s],
                var[s],
                config.target_lift,
                alpha=config.alpha,
                power=config.power,
                alternative=metric.alternative,
                variance_reduction=reduction[s],
                ratio=n_t / n_c,
            )
            out[s] = size.n_control[0] + size.n_treatment[0]
    return out
