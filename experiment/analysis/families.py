"""Multiple-testing families: which tests the experiment's correction adjusts together.

The experiment file's ``correction_scope`` names the families:

- ``primary_and_segments`` (default): the ``all`` population is the primary analysis,
  one family ``primary`` over every metric × treatment arm; each metric and treatment
  arm's segments form their own family ``segments:METRIC:ARM``. The headline result
  does not depend on how many segments the file has.
- ``per_metric``: one family per metric, ``metric:METRIC``, over ``all``, every
  segment and every treatment arm (seglift's behaviour before the scope existed).
- ``experiment``: one family ``experiment`` over every test.

``correction_suppressed`` says what happens to the tests of segments withheld by
the privacy floor: ``excluded`` (default) leaves them out of every family (their
``family`` is ``""`` and ``family_size`` 0), ``counted`` keeps them in it. Withholding
depends on segment sizes only, never on outcomes, so leaving those tests out keeps
the error control of the tests a reader sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from experiment.stats import adjust_pvalues

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

    from experiment.config import CorrectionScope, SuppressedTests
    from experiment.stats import Correction

__all__ = ["PRIMARY", "Families", "correct_families", "family_name"]

PRIMARY = "primary"


def family_name(scope: CorrectionScope, *, primary: bool, metric: str, arm: str) -> str:
    """The stable name of a test's family under ``scope``.

    Args:
        scope: The experiment's ``correction_scope``.
        primary: The test is on the ``all`` population (the first segment).
        metric: The test's metric.
        arm: The test's treatment arm.

    Examples:
        >>> family_name("primary_and_segments", primary=False, metric="conversion", arm="b")
        'segments:conversion:b'
        >>> family_name("per_metric", primary=True, metric="conversion", arm="b")
        'metric:conversion'
    """
    if scope == "experiment":
        return "experiment"
    if scope == "per_metric":
        return f"metric:{metric}"
    return PRIMARY if primary else f"segments:{metric}:{arm}"


@dataclass(frozen=True, kw_only=True)
class Families:
    """Every test's family, its size and the adjusted p-value, in the input's order.

    Attributes:
        family: Each test's family name; ``""`` for an excluded withheld test.
        family_size: How many tests (``nan`` p-values excluded) were corrected together.
        p_adjusted: The p-value adjusted within the family; ``nan`` when excluded.
    """

    family: tuple[str, ...]
    family_size: NDArray[np.int64]
    p_adjusted: NDArray[np.float64]


def correct_families(
    p_values: NDArray[np.float64],
    *,
    segments: Sequence[str],
    tests: Sequence[tuple[str, str]],
    method: Correction,
    scope: CorrectionScope,
    suppressed: SuppressedTests,
    hidden: set[str],
) -> Families:
    """Adjust p-values within the families of ``scope``.

    Args:
        p_values: Raw p-values, one block of ``len(segments)`` per (metric, arm) of
            ``tests``, blocks in that order, ``all`` first within each block.
        segments: The segments, ``all`` first.
        tests: The (metric, treatment arm) of each block.
        method: The correction (``holm``, ``bh``, ``none``).
        scope: The experiment's ``correction_scope``.
        suppressed: ``counted`` or ``excluded``: the privacy floor's withheld tests.
        hidden: The withheld segments.

    Returns:
        The families, their sizes and the adjusted p-values, one per test.
    """
    drop = suppressed == "excluded"
    family = tuple(
        ""
        if drop and segment in hidden
        else family_name(scope, primary=i == 0, metric=metric, arm=arm)
        for metric, arm in tests
        for i, segment in enumerate(segments)
    )
    labels = np.asarray(family, dtype=object)
    p = np.where(labels == "", np.nan, np.asarray(p_values, dtype=np.float64))
    adjusted = adjust_pvalues(p, method=method, groups=labels.astype(str))
    names, inverse = np.unique(labels.astype(str), return_inverse=True)
    counts = np.bincount(inverse, weights=~np.isnan(p), minlength=names.size).astype(np.int64)
    size = np.where(labels == "", 0, counts[inverse]).astype(np.int64)
    return Families(family=family, family_size=size, p_adjusted=adjusted)
