"""The analysis step: sufficient statistics in, typed results out.

Runs every (segment, metric, treatment arm) comparison at once per metric,
vectorised over segments, then corrects p-values for multiplicity and checks
the sample ratio. Reads no data: its input is :class:`experiment.engine.CellSums`.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from experiment.results import AnalysisResults, ResultRow, SegmentInfo, Srm
from experiment.stats import adjust_pvalues, ratio_ttest, srm_test, welch_ttest
from experiment.sums import JointSums, MeanSums

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.engine import CellSums
    from experiment.stats import LiftResult
    from segments.definitions import SegmentSet

__all__ = ["METHOD_NAMES", "analyze_cells"]

METHOD_NAMES = {"proportion": "welch-t", "mean": "welch-t", "ratio": "delta-method z"}

S = TypeVar("S", MeanSums, JointSums)


def _arm(sums: S, j: int) -> S:
    """The column of one arm: a per-segment view of the cell sums."""
    return type(sums)(**{f.name: getattr(sums, f.name)[:, j] for f in fields(sums)})


def _test(sums: MeanSums | JointSums, c: int, j: int, alpha: float) -> LiftResult:
    if isinstance(sums, JointSums):
        return ratio_ttest(_arm(sums, c), _arm(sums, j), alpha=alpha)
    return welch_ttest(_arm(sums, c), _arm(sums, j), alpha=alpha)


def analyze_cells(
    cells: CellSums, config: ExperimentConfig, segment_set: SegmentSet | None
) -> AnalysisResults:
    """Test every treatment arm against control in every segment and metric.

    The multiple-testing family is one metric: all its segments (``all``
    included) and treatment arms, corrected with the experiment's method.
    """
    c = cells.arms.index(config.control)
    pending: list[tuple[str, str, str, int, LiftResult]] = []
    for metric in config.metrics:
        sums = cells.metrics[metric.name]
        for j, arm in enumerate(cells.arms):
            if j != c:
                pending.append((metric.name, metric.kind, arm, j, _test(sums, c, j, config.alpha)))

    p_raw = np.concatenate([res.p_value for *_, res in pending])
    groups = np.concatenate([[name] * len(res.p_value) for name, *_, res in pending])
    p_adj = adjust_pvalues(p_raw, method=config.correction, groups=groups)

    rows: list[ResultRow] = []
    offset = 0
    for name, kind, arm, j, res in pending:
        for si, segment in enumerate(cells.segments):
            k = offset + si
            rows.append(
                ResultRow(
                    segment=segment,
                    metric=name,
                    arm=arm,
                    n_control=int(cells.units[si, c]),
                    n_treatment=int(cells.units[si, j]),
                    mean_control=float(res.mean_control[si]),
                    mean_treatment=float(res.mean_treatment[si]),
                    lift_abs=float(res.lift_abs[si]),
                    lift_rel=float(res.lift_rel[si]),
                    ci_low=float(res.ci_low[si]),
                    ci_high=float(res.ci_high[si]),
                    ci_abs_low=float(res.ci_abs_low[si]),
                    ci_abs_high=float(res.ci_abs_high[si]),
                    p_value=float(p_raw[k]),
                    p_adjusted=float(p_adj[k]),
                    significant=bool(p_adj[k] < config.alpha),
                    method=f"{METHOD_NAMES[kind]}, {config.correction}",
                    metric_kind=kind,
                    reason=str(res.reason[si]),
                )
            )
        offset += len(cells.segments)

    srm = srm_test(cells.units[0], list(config.arms.values()), threshold=config.srm_threshold)
    total = sum(config.arms.values())
    defs = {s.name: s for s in segment_set.segments} if segment_set else {}
    segments = tuple(
        SegmentInfo(
            name=name,
            where=defs[name].where if name in defs else "",
            description=defs[name].description if name in defs else "all assigned users",
            users=int(cells.units[si].sum()),
        )
        for si, name in enumerate(cells.segments)
    )
    return AnalysisResults(
        experiment=config.name,
        control=config.control,
        srm=Srm(
            p_value=float(srm.p_value),
            observed={a: int(n) for a, n in zip(cells.arms, cells.units[0], strict=True)},
            expected={a: w / total for a, w in config.arms.items()},
            flag=bool(srm.flag),
            threshold=config.srm_threshold,
        ),
        results=tuple(rows),
        alpha=config.alpha,
        correction=config.correction,
        arms=cells.arms,
        window_start=cells.window_start.isoformat(),
        window_end=cells.window_end.isoformat(),
        segments=segments,
    )
