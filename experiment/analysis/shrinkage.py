"""Empirical-Bayes shrunken segment lifts beside the raw ones (issue 17, winner's curse).

One shrinkage family per (metric, treatment arm): its segments, never ``all`` and
never a segment under the privacy floor (its numbers are withheld, so no published
number may depend on them). An exclusive segment set is a partition of the users:
its segments are independent, ``τ²`` comes from Paule–Mandel and the prior mean is
estimated. An overlapping set shares users: each segment is shrunk toward the
``all`` estimate with a moment estimator of ``τ²`` that does not assume
independence (:func:`experiment.stats.shrink_lifts`). The work is on the absolute
lift, whose sampling error is close to normal with a known variance; the relative
figures divide by the row's raw control mean (as ``lift_rel`` does), treated as fixed.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from experiment.stats import shrink_lifts

if TYPE_CHECKING:
    from experiment.analysis.rows import Comparison
    from experiment.results import ResultRow
    from experiment.sums import CellSums

__all__ = ["add_shrinkage"]


def add_shrinkage(
    rows: list[ResultRow],
    comparisons: list[Comparison],
    cells: CellSums,
    *,
    exclusive: bool,
    hidden: set[str],
    alpha: float,
) -> list[ResultRow]:
    """The rows with ``lift_abs_shrunk`` … ``shrinkage`` filled in, segment rows only.

    ``rows`` hold one block of ``len(cells.segments)`` rows per comparison, in the
    comparisons' order, ``all`` first in each block (as :func:`analyze_cells` builds
    them). ``all``, withheld segments and families of fewer than 4 usable segments
    keep ``nan`` (``null``).
    """
    size = len(cells.segments)
    if size < 2:  # only ``all``: nothing to shrink
        return rows
    keep = np.array([s not in hidden for s in cells.segments[1:]])
    out = list(rows)
    for k, comp in enumerate(comparisons):
        block = slice(k * size + 1, (k + 1) * size)
        res = comp.lift
        units = cells.units[:, comp.c] + cells.units[:, comp.j]
        y = np.where(keep, res.lift_abs[1:], np.nan)
        fit = shrink_lifts(
            y,
            res.se_abs[1:],
            alpha=alpha,
            overall=None if exclusive else (float(res.lift_abs[0]), float(res.se_abs[0])),
            shares=None if exclusive else units[1:] / units[0],
        )
        columns = zip(
            out[block], fit.lift.tolist(), fit.low.tolist(), fit.high.tolist(),
            fit.shrinkage.tolist(), strict=True,
        )  # fmt: skip
        out[block] = [_filled(row, lift, low, high, b) for row, lift, low, high, b in columns]
    return out


def _filled(row: ResultRow, lift: float, low: float, high: float, weight: float) -> ResultRow:
    """One row's shrunken fields; relative ones on the raw control mean (``nan`` if not > 0)."""
    if math.isnan(lift):
        return row
    base = row.mean_control if row.mean_control > 0 else math.nan
    return replace(
        row,
        lift_abs_shrunk=lift,
        ci_abs_shrunk_low=low,
        ci_abs_shrunk_high=high,
        lift_rel_shrunk=lift / base,
        ci_shrunk_low=low / base,
        ci_shrunk_high=high / base,
        shrinkage=weight,
    )
