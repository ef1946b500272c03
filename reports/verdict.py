"""The verdict on one result row, shared by every view so they never disagree."""

from __future__ import annotations

import math
from typing import Literal

from experiment.results import ResultRow

__all__ = ["Verdict", "verdict"]

Verdict = Literal["win", "loss", "inconclusive", "no data"]


def verdict(row: ResultRow) -> Verdict:
    """``win``/``loss`` when the adjusted test is significant, else ``inconclusive``.

    Examples:
        >>> from dataclasses import replace
        >>> row = ResultRow("all", "conversion", "treatment", 10, 10, 0.1, 0.2, 0.1, 1.0,
        ...                 0.5, 1.5, 0.05, 0.15, 0.001, 0.002, True, "welch-t, holm")
        >>> verdict(row), verdict(replace(row, significant=False))
        ('win', 'inconclusive')
    """
    if math.isnan(row.p_value):
        return "no data"
    if not row.significant:
        return "inconclusive"
    return "win" if row.lift_abs > 0 else "loss"
