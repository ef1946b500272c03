"""Heterogeneity of each lift: every segment against the rest, and Cochran's Q, both scales.

For every (metric, treatment arm) and each scale (``absolute``, ``relative``), each
segment's lift is tested against the lift of the rest of the population: ``all``
minus the segment's users, whose sums per arm are ``all``'s minus the segment's
(:func:`experiment.stats.complement`), tested with the metric's own test
(:func:`~experiment.analysis.compare.compare`: Welch, delta method or CUPED). The
segment and its rest share no user, so the test is valid for overlapping segments.
The segment-vs-rest tests of one metric × arm × scale form their own
multiple-testing family, ``interaction:METRIC:ARM:SCALE``, corrected with the
experiment's ``correction`` (Holm by default), apart from the lift rows' families.
Exclusive segment sets also get Cochran's Q across their segments on each scale.
The relative scale compares log ratios ``log(1 + lift_rel)``
(:func:`experiment.stats.log_scale`), whose normal approximation holds on sparse
segments where one on ``lift_rel`` itself rejects too often.
Segments under the privacy floor are left out (their tests would reveal their lift).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from experiment.analysis.compare import compare
from experiment.results import HeterogeneityTests, SegmentInteraction
from experiment.stats import adjust_pvalues, cochran_q, complement, interaction_test, log_scale

if TYPE_CHECKING:
    from experiment.analysis.rows import Comparison
    from experiment.config import ExperimentConfig
    from experiment.stats import LiftResult, Scale
    from experiment.sums import CellSums

__all__ = ["heterogeneity_tests", "rest_cells"]

SCALES: tuple[Scale, ...] = ("absolute", "relative")


def rest_cells(cells: CellSums) -> CellSums:
    """The same cells for the rest of each segment: ``all`` (row 0) minus the segment.

    Row 0 (``all`` minus itself) is empty. Units, metrics, CUPED and regression sums are
    complemented; the other fields are kept (the tests read only these).
    """
    return replace(
        cells,
        units=cells.units[:1] - cells.units,
        metrics={name: complement(s[:1], s) for name, s in cells.metrics.items()},
        cuped={name: complement(s[:1], s) for name, s in cells.cuped.items()},
        regression={name: complement(s[:1], s) for name, s in cells.regression.items()},
    )


def heterogeneity_tests(
    cells: CellSums,
    comparisons: list[Comparison],
    config: ExperimentConfig,
    *,
    exclusive: bool,
    hidden: set[str],
) -> tuple[HeterogeneityTests, ...]:
    """Every comparison's segment-vs-rest tests and (exclusive sets) Cochran's Q, per scale."""
    if len(cells.segments) < 2:
        return ()
    rest = rest_cells(cells)
    keep = np.array([i > 0 and s not in hidden for i, s in enumerate(cells.segments)])
    out = []
    for comp in comparisons:
        lift_rest = compare(
            rest, comp.metric, comp.c, comp.j, config.alpha,
            relative_interval=config.relative_interval,
        )  # fmt: skip
        out += [
            _entry(
                cells, rest, comp, lift_rest, config, scale=scale, keep=keep, exclusive=exclusive
            )
            for scale in SCALES
        ]
    return tuple(out)


def _entry(
    cells: CellSums,
    rest: CellSums,
    comp: Comparison,
    lift_rest: LiftResult,
    config: ExperimentConfig,
    *,
    scale: Scale,
    keep: np.ndarray,
    exclusive: bool,
) -> HeterogeneityTests:
    """One (metric, arm, scale)'s tests, corrected together."""
    seg = comp.lift
    test = interaction_test(seg, lift_rest, scale=scale)
    p = np.where(keep, test.p_value, np.nan)
    p_adj = adjust_pvalues(p, method=config.correction)
    est_s = seg.lift_abs if scale == "absolute" else seg.lift_rel
    est_r = lift_rest.lift_abs if scale == "absolute" else lift_rest.lift_rel
    q_est, q_se = (seg.lift_abs, seg.se_abs) if scale == "absolute" else log_scale(seg)
    q = cochran_q(q_est[keep], q_se[keep]) if exclusive and keep.any() else None
    users_s = cells.units[:, comp.c] + cells.units[:, comp.j]
    users_r = rest.units[:, comp.c] + rest.units[:, comp.j]
    tests = tuple(
        SegmentInteraction(
            segment=cells.segments[i],
            lift_segment=float(est_s[i]),
            lift_rest=float(est_r[i]),
            difference=float(test.difference[i]),
            se=float(test.se[i]),
            z=float(test.z[i]),
            p_value=float(test.p_value[i]),
            p_adjusted=float(p_adj[i]),
            significant=bool(p_adj[i] < config.alpha),
            users_segment=int(users_s[i]),
            users_rest=int(users_r[i]),
            reason=str(test.reason[i]),
        )
        for i in np.flatnonzero(keep)
    )
    return HeterogeneityTests(
        metric=comp.metric,
        arm=comp.arm,
        scale=scale,
        q=float(q.q) if q is not None else float("nan"),
        q_p_value=float(q.p_value) if q is not None else float("nan"),
        i2=float(q.i2) if q is not None else float("nan"),
        q_segments=int(q.k) if q is not None else 0,
        family=f"interaction:{comp.metric}:{comp.arm}:{scale}",
        family_size=int(np.isfinite(p).sum()),
        correction=config.correction,
        tests=tests,
    )
