"""The pre-exposure balance check: covariates compared between arms in every segment.

Each (segment, covariate, treatment arm) gets Welch's t against control and a
standardised mean difference (:func:`experiment.stats.balance_test`); every test
of the analysis is one Holm family at the experiment's ``srm_threshold``
(:func:`experiment.stats.balance_flags`), so a sound randomisation is flagged
with probability at most that threshold. Segments under the privacy floor are
left out (their numbers are withheld).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from experiment.results.balance import Balance, BalanceTest, SegmentBalance
from experiment.stats import balance_flags, balance_test

if TYPE_CHECKING:
    from experiment.sums import CellSums, MeanSums

__all__ = ["METHOD", "balance_check"]

METHOD = "welch-t, holm"
_WORST = 5  # tests listed when none is flagged
_MOST = 20  # most tests listed when many are


def balance_check(
    cells: CellSums,
    *,
    control: str,
    threshold: float,
    hidden: set[str] | frozenset[str] = frozenset(),
) -> Balance:
    """The balance check of ``cells.balance`` against the ``control`` arm.

    Args:
        cells: The sums; ``cells.balance`` holds each covariate's per-cell sums.
        control: The control arm's name.
        threshold: The family-wise level (the experiment's ``srm_threshold``).
        hidden: Segments under the privacy floor, left out of the check.

    Returns:
        The flag, the flagged segments and the worst tests (lowest p first).
    """
    names = tuple(cells.balance)
    c = cells.arms.index(control)
    arms = [j for j in range(len(cells.arms)) if j != c]
    keep = np.array([s not in hidden for s in cells.segments])
    tests: list[tuple[str, int, MeanSums, np.ndarray, np.ndarray]] = []
    for name in names:
        sums = cells.balance[name]
        for j in arms:
            res = balance_test(sums[:, c], sums[:, j])
            tests.append((name, j, sums, res.smd, np.where(keep, res.p_value, np.nan)))
    p_raw = np.stack([p for *_, p in tests]) if tests else np.empty((0, len(cells.segments)))
    flags = balance_flags(p_raw, threshold=threshold)
    rows = [
        BalanceTest(
            segment=segment,
            covariate=name,
            arm=cells.arms[j],
            n_control=int(sums.n[si, c]),
            n_treatment=int(sums.n[si, j]),
            mean_control=float(sums.mean[si, c]),
            mean_treatment=float(sums.mean[si, j]),
            smd=float(smd[si]),
            p_value=float(p[si]),
            p_adjusted=float(flags.p_adjusted[k, si]),
            flag=bool(flags.flag[k, si]),
        )
        for k, (name, j, sums, smd, p) in enumerate(tests)
        for si, segment in enumerate(cells.segments)
        if not np.isnan(p[si])
    ]
    rows.sort(key=lambda r: (r.p_value, r.segment, r.covariate, r.arm))
    flagged = sum(r.flag for r in rows)
    return Balance(
        flag=flagged > 0,
        threshold=threshold,
        method=METHOD,
        covariates=names,
        tests=len(rows),
        segments=_segments(cells.segments, keep, flags.p_adjusted, flags.flag),
        worst=tuple(rows[: max(_WORST, min(flagged, _MOST))]),
    )


def _segments(
    segments: tuple[str, ...], keep: np.ndarray, p_adjusted: np.ndarray, flag: np.ndarray
) -> tuple[SegmentBalance, ...]:
    """Per analysed segment: whether any test is flagged, and the smallest adjusted p."""
    out = []
    for si, segment in enumerate(segments):
        column = p_adjusted[:, si] if p_adjusted.size else np.empty(0)
        if not keep[si] or not np.any(np.isfinite(column)):
            continue
        out.append(
            SegmentBalance(
                segment=segment,
                flag=bool(np.any(flag[:, si])),
                p_adjusted=float(np.nanmin(column)),
            )
        )
    return tuple(out)
