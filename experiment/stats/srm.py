"""Sample ratio mismatch: do the arm counts match the design weights?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from experiment.stats._checks import check_scalar
from experiment.stats._dist import chi2_sf

__all__ = ["SrmManyResult", "SrmResult", "srm_test", "srm_test_many"]


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
    p_value = float(chi2_sf(statistic, counts.size - 1))
    return SrmResult(statistic=statistic, p_value=p_value, flag=p_value < threshold)


@dataclass(frozen=True)
class SrmManyResult:
    """Per-row results of :func:`srm_test_many` (one element per segment)."""

    statistic: NDArray[np.float64]
    p_value: NDArray[np.float64]
    flag: NDArray[np.bool_]


def srm_test_many(
    observed: ArrayLike, expected_shares: ArrayLike, *, threshold: float = 0.001
) -> SrmManyResult:
    """Chi-square goodness-of-fit SRM tests for many segments at once.

    Args:
        observed: Units per (segment, arm), shape ``(segments, arms)``.
        expected_shares: Expected share of each arm per segment, same shape; each row
            is normalised to sum 1. An arm with share 0 must have no units; if it has
            some, the p-value is 0.
        threshold: Flag rows whose p-value is below this.

    Returns:
        Statistic, p-value and flag per row; rows without units get ``nan`` and no flag.
        Degrees of freedom are the arms with a positive share, minus 1.

    Raises:
        ValueError: Shapes differ or are not 2-D with at least 2 arms, a count is
            negative or not finite, or a row's shares are not >= 0 with a positive sum.

    References:
        Pearson's chi-square test:
        https://en.wikipedia.org/wiki/Pearson%27s_chi-squared_test

    Examples:
        >>> res = srm_test_many([[50112, 49888], [5200, 4800]], [[1, 1], [1, 1]])
        >>> res.flag.tolist()
        [False, True]
    """
    counts = np.asarray(observed, dtype=np.float64)
    shares = np.asarray(expected_shares, dtype=np.float64)
    threshold = check_scalar(threshold, "threshold", gt=0, lt=1)
    if counts.ndim != 2 or counts.shape[1] < 2 or shares.shape != counts.shape:
        raise ValueError(
            "Both `observed` and `expected_shares` need shape (segments, arms >= 2); "
            f"got {counts.shape} and {shares.shape}."
        )
    if not np.all(np.isfinite(counts) & (counts >= 0)):
        raise ValueError("observed must be finite and >= 0.")
    row_sum = shares.sum(axis=1, keepdims=True)
    if not np.all(np.isfinite(shares) & (shares >= 0)) or np.any(row_sum <= 0):
        raise ValueError("expected_shares must be >= 0 with a positive sum in every row.")
    total = counts.sum(axis=1, keepdims=True)
    expected = total * shares / row_sum
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, (counts - expected) ** 2 / expected, 0.0)
    statistic = terms.sum(axis=1)
    dof = np.maximum((shares > 0).sum(axis=1) - 1, 1)
    p_value = chi2_sf(statistic, dof)
    impossible = np.any((expected == 0) & (counts > 0), axis=1)
    p_value = np.where(impossible, 0.0, p_value)
    empty = total[:, 0] == 0
    statistic = np.where(empty, np.nan, statistic)
    p_value = np.where(empty, np.nan, p_value)
    return SrmManyResult(statistic=statistic, p_value=p_value, flag=p_value < threshold)
