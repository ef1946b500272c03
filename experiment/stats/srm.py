"""Sample ratio mismatch: do the arm counts match the design weights?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import chi2

from experiment.stats._checks import check_scalar

__all__ = ["SrmResult", "srm_test"]


@dataclass(frozen=True)
class SrmResult:
    """Result of a sample-ratio-mismatch test.

    Attributes:
        statistic: Pearson's chi-square statistic (``nan`` when there are no units).
        p_value: Its upper-tail p-value on ``arms - 1`` degrees of freedom.
        flag: ``True`` when ``p_value < threshold``: the split is broken and the
            experiment's results should not be trusted until it is explained.
    """

    statistic: float
    p_value: float
    flag: bool


def srm_test(
    observed: ArrayLike, expected_weights: ArrayLike, *, threshold: float = 0.001
) -> SrmResult:
    """Chi-square goodness-of-fit test of arm counts against the design weights.

    Args:
        observed: Units counted in each arm, e.g. ``[50112, 49888]``.
        expected_weights: Design weight of each arm, same length; normalised to sum 1,
            so ``[1, 1]`` and ``[0.5, 0.5]`` mean the same.
        threshold: Flag when the p-value is below this. GrowthBook's default 0.001
            keeps false alarms rare when checking every experiment.

    Returns:
        The statistic, p-value and flag. With no units at all the statistic and
        p-value are ``nan`` and the flag is ``False``.

    Raises:
        TypeError: ``threshold`` is not a number.
        ValueError: Fewer than 2 arms, lengths differ, a count is negative or not
            finite, a weight is not positive, or ``threshold`` is not in (0, 1).

    References:
        Pearson's chi-square test:
        https://en.wikipedia.org/wiki/Pearson%27s_chi-squared_test
        GrowthBook's SRM check and its 0.001 threshold:
        https://docs.growthbook.io/kb/experiments/troubleshooting-experiments#sample-ratio-mismatch-srm

    Examples:
        >>> result = srm_test([50112, 49888], [0.5, 0.5])
        >>> round(result.statistic, 5), round(result.p_value, 4), result.flag
        (0.50176, 0.4787, False)
        >>> srm_test([505000, 495000], [1, 1]).flag
        True
    """
    counts = np.asarray(observed, dtype=np.float64)
    weights = np.asarray(expected_weights, dtype=np.float64)
    threshold = check_scalar(threshold, "threshold", gt=0, lt=1)
    if counts.ndim != 1 or counts.size < 2 or weights.shape != counts.shape:
        raise ValueError(
            "Both `observed` and `expected_weights` need one entry per arm, at least 2; "
            f"got shapes {counts.shape} and {weights.shape}."
        )
    if not np.all(np.isfinite(counts) & (counts >= 0)):
        raise ValueError(f"observed == {counts.tolist()}, must be finite and >= 0.")
    if not np.all(np.isfinite(weights) & (weights > 0)):
        raise ValueError(f"expected_weights == {weights.tolist()}, must be finite and > 0.")

    total = counts.sum()
    if total == 0:
        return SrmResult(statistic=np.nan, p_value=np.nan, flag=False)
    expected = total * weights / weights.sum()
    statistic = float(np.sum((counts - expected) ** 2 / expected))
    p_value = float(chi2.sf(statistic, counts.size - 1))
    return SrmResult(statistic=statistic, p_value=p_value, flag=p_value < threshold)
