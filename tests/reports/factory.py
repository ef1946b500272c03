"""Hand-made results objects for report tests (no data, no engine)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from experiment.results import (
    AnalysisResults,
    Heterogeneity,
    ResultRow,
    SegmentInfo,
    Srm,
    TimelinePoint,
)

METRICS = (("conversion", "proportion"), ("ctr", "ratio"), ("revenue", "mean"), ("aov", "mean"))


def make_row(segment: str, metric: str, lift_rel: float, half: float, **extra) -> ResultRow:
    """A row whose CI is ``lift_rel ± half``; significant when the CI excludes zero."""
    mean_c = 0.05
    low, high = lift_rel - half, lift_rel + half
    return ResultRow(
        segment=segment,
        metric=metric,
        arm="treatment",
        n_control=5000,
        n_treatment=5000,
        mean_control=mean_c,
        mean_treatment=mean_c * (1 + lift_rel),
        lift_abs=mean_c * lift_rel,
        lift_rel=lift_rel,
        ci_low=low,
        ci_high=high,
        ci_abs_low=mean_c * low,
        ci_abs_high=mean_c * high,
        p_value=0.001 if low > 0 or high < 0 else 0.4,
        p_adjusted=0.004 if low > 0 or high < 0 else 0.8,
        significant=low > 0 or high < 0,
        method="welch-t, holm",
        metric_kind=dict(METRICS).get(metric, "mean"),
        **extra,
    )


def make_many(
    n_segments: int = 50, n_metrics: int = 4, *, seed: int = 0, timeline: bool = True
) -> AnalysisResults:
    """``n_segments`` segments (plus ``all``) × ``n_metrics`` metrics with every optional field."""
    gen = np.random.default_rng(seed)
    names = ["all", *(f"segment_{i:02d}" for i in range(n_segments))]
    rows = []
    for metric, _kind in METRICS[:n_metrics]:
        for i, name in enumerate(names):
            lift, half = float(gen.normal(0.0, 0.08)), float(gen.uniform(0.03, 0.12))
            rows.append(
                make_row(
                    name,
                    metric,
                    lift,
                    half,
                    chance_to_win=float(gen.uniform()),
                    expected_loss=0.001,
                    cuped_variance_reduction=0.3,
                    seq_p_value=0.5,
                    seq_ci_low=lift - 2 * half,
                    seq_ci_high=lift + 2 * half,
                    underpowered=i % 7 == 3,
                    mde_rel=0.05,
                )
            )
    points = []
    if timeline:
        for metric, _kind in METRICS[:n_metrics]:
            for day in range(1, 15):
                width = 0.4 / math.sqrt(day)
                for name in names[:3]:
                    points.append(
                        TimelinePoint(
                            date=f"2026-01-{day:02d}",
                            segment=name,
                            metric=metric,
                            arm="treatment",
                            lift_rel=0.05,
                            ci_low=0.05 - width,
                            ci_high=0.05 + width,
                        )
                    )
    return AnalysisResults(
        experiment="big-campaign",
        control="control",
        srm=Srm(
            p_value=0.5,
            observed={"control": 50000, "treatment": 50000},
            expected={"control": 0.5, "treatment": 0.5},
            flag=False,
        ),
        results=tuple(rows),
        arms=("control", "treatment"),
        window_start="2026-01-01",
        window_end="2026-01-14",
        segments=tuple(
            SegmentInfo(name=n, where=f"x >= {i}", description=f"segment {i}", users=2000 + i)
            for i, n in enumerate(names)
        ),
        heterogeneity=tuple(
            Heterogeneity(metric=m, q=60.0, p_value=0.02, i2=0.3) for m, _ in METRICS[:n_metrics]
        ),
        timeline=tuple(points),
        cuped_covariates={m: f"{m}_pre" for m, _ in METRICS[:n_metrics]},
    )


def with_srm(results: AnalysisResults) -> AnalysisResults:
    """The same results with the overall sample-ratio check failing."""
    return replace(results, srm=replace(results.srm, flag=True, p_value=1e-9))
