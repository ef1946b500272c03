"""The sample-ratio check, overall and per segment, against each unit's allocation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from experiment.results import SegmentSrm, Srm
from experiment.stats import srm_test_many

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.sums import CellSums

__all__ = ["srm"]


def srm(cells: CellSums, config: ExperimentConfig) -> Srm:
    """SRM overall and per segment; expected shares mix the allocations by stratum size.

    A segment whose users were assigned under several allocations (a user's
    allocation is that of its highest-priority allocation segment) expects the
    mixture of their weights, weighted by the observed stratum sizes.
    """

    def shares(stratum: str) -> list[float]:
        alloc = config.allocation.get(stratum) if stratum else None
        weights = alloc.arms if alloc is not None and alloc.arms is not None else config.arms
        total = sum(weights.values())
        return [weights[a] / total for a in cells.arms]

    per_stratum = np.array([shares(s) for s in cells.strata])
    expected = np.broadcast_to(per_stratum[0], cells.units.shape).copy()
    if cells.strata_units is not None:
        mix = cells.strata_units.sum(axis=2) @ per_stratum
        total = mix.sum(axis=1, keepdims=True)
        expected = np.where(total > 0, mix / np.where(total > 0, total, 1), expected)
    res = srm_test_many(cells.units, expected, threshold=config.srm_threshold)
    observed = [dict(zip(cells.arms, n, strict=True)) for n in cells.units.astype(int).tolist()]
    p_values, flags = res.p_value.tolist(), res.flag.tolist()
    return Srm(
        p_value=p_values[0],
        observed=observed[0],
        expected={a: float(w) for a, w in zip(cells.arms, expected[0], strict=True)},
        flag=flags[0],
        threshold=config.srm_threshold,
        segments=tuple(
            SegmentSrm(segment=segment, p_value=p, observed=obs, flag=flag)
            for segment, p, obs, flag in zip(
                cells.segments[1:], p_values[1:], observed[1:], flags[1:], strict=True
            )
        ),
    )
