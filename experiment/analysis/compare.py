"""One comparison of a treatment arm with control, per metric, vectorised over segments.

The test follows the metric's sums: Welch's t on a mean or proportion, the delta
method on a ratio, CUPED when the metric has a covariate, the regression adjustment
when it has a list of them (a ratio's on its linearisation). The guardrail check
reads the same comparison; the minimum detectable effect is
:mod:`~experiment.analysis.mde`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from experiment.stats import (
    cuped_ttest,
    ratio_regression_ttest,
    ratio_ttest,
    regression_ttest,
    welch_ttest,
)
from experiment.sums import JointSums

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from experiment.config import MetricSpec
    from experiment.stats import Alternative, LiftResult, RelativeInterval
    from experiment.sums import CellSums

__all__ = ["compare", "guardrail_breached"]


def compare(
    cells: CellSums,
    name: str,
    c: int,
    j: int,
    alpha: float,
    *,
    alternative: Alternative = "two-sided",
    relative_interval: RelativeInterval = "fieller",
) -> LiftResult:
    """The lift of arm ``j`` over control ``c``: CUPED-adjusted when the metric has a covariate.

    ``relative_interval`` names the construction of the relative interval (the
    experiment file's ``relative_interval``).
    """
    listed = cells.regression.get(name)
    if listed is not None:  # ``cuped: [a, b]``: adjusted by every covariate at once
        ratio = isinstance(cells.metrics[name], JointSums)  # its denominator is last
        return (ratio_regression_ttest if ratio else regression_ttest)(
            listed[:, c],
            listed[:, j],
            alpha=alpha,
            alternative=alternative,
            relative_interval=relative_interval,
        )
    joint = cells.cuped.get(name)
    if joint is not None:
        return cuped_ttest(
            joint[:, c],
            joint[:, j],
            alpha=alpha,
            alternative=alternative,
            relative_interval=relative_interval,
        )
    sums = cells.metrics[name]
    if isinstance(sums, JointSums):
        return ratio_ttest(
            sums[:, c],
            sums[:, j],
            alpha=alpha,
            alternative=alternative,
            relative_interval=relative_interval,
        )
    return welch_ttest(
        sums[:, c],
        sums[:, j],
        alpha=alpha,
        alternative=alternative,
        relative_interval=relative_interval,
    )


def guardrail_breached(
    cells: CellSums,
    metric: MetricSpec,
    c: int,
    j: int,
    alpha: float,
    *,
    relative_interval: RelativeInterval = "fieller",
) -> NDArray[np.bool_]:
    """Per segment: is the metric significantly worse by more than ``max_drop`` (one-sided)?

    Higher is better: breached when the one-sided ``1 - alpha`` upper bound of
    ``lift_rel`` (the ``"less"`` test's ``ci_high``) is below ``-max_drop``. Lower
    is better (``higher_is_better: false``): the mirror, the ``"greater"`` test's
    lower bound above ``+max_drop``. ``nan`` is not breached (an unbounded Fieller
    bound says the data cannot tell).
    """
    if metric.guardrail is None:
        return np.zeros(len(cells.segments), dtype=bool)
    max_drop = metric.guardrail.max_drop
    if not metric.higher_is_better:
        lower = compare(
            cells,
            metric.name,
            c,
            j,
            alpha,
            alternative="greater",
            relative_interval=relative_interval,
        ).ci_low
        return np.nan_to_num(lower, nan=-np.inf) > max_drop
    upper = compare(
        cells, metric.name, c, j, alpha, alternative="less", relative_interval=relative_interval
    ).ci_high
    return np.nan_to_num(upper, nan=np.inf) < -max_drop
