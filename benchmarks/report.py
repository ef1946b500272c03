"""Benchmark: rendering the HTML report of a large analysis.

Builds hand-made results for ``--segments`` segments (plus ``all``) x 4 metrics
with every optional field (Bayes, CUPED, sequential, MDE, a 14-day timeline for
three segments), then times, in one process:

* ``render_html``: the whole self-contained page (tables, forest plots, timeline
  charts, decisions), what ``exp report`` writes;
* a baseline: ``AnalysisResults.to_json()`` of the same results, the least any
  presentation of every row must do (visit and format each field once).

Prints the best-of-``--repeats`` time of each, the ratio, the page size, and
whether the page meets the report's targets (under 2 MB; rendered in under 3 s
for 50 segments x 4 metrics). This replaces a wall-clock assertion that used to
live in the unit tests, where a loaded machine made it flaky.

    python benchmarks/report.py                 # 50 segments x 4 metrics
    python benchmarks/report.py --segments 200
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np

from experiment.results import (
    AnalysisResults,
    ResultRow,
    SegmentInfo,
    Srm,
    TimelinePoint,
)
from reports.html import render_html

METRICS = (("conversion", "proportion"), ("ctr", "ratio"), ("revenue", "mean"), ("aov", "mean"))
TARGET_SECONDS = 3.0
TARGET_BYTES = 2_000_000


def make_row(segment: str, metric: str, kind: str, lift: float, half: float) -> ResultRow:
    """A row whose relative CI is ``lift ± half`` with every method's field set."""
    mean_c, low, high = 0.05, lift - half, lift + half
    significant = low > 0 or high < 0
    return ResultRow(
        segment=segment, metric=metric, arm="treatment", n_control=5000, n_treatment=5000,
        mean_control=mean_c, mean_treatment=mean_c * (1 + lift), lift_abs=mean_c * lift,
        lift_rel=lift, ci_low=low, ci_high=high, ci_abs_low=mean_c * low,
        ci_abs_high=mean_c * high, p_value=0.001 if significant else 0.4,
        p_adjusted=0.004 if significant else 0.8, significant=significant,
        method="welch-t, holm", metric_kind=kind, chance_to_win=0.6, expected_loss=0.001,
        cuped_variance_reduction=0.3, seq_p_value=0.5, seq_ci_low=lift - 2 * half,
        seq_ci_high=lift + 2 * half, mde_rel=0.05,
    )  # fmt: skip


def make_results(n_segments: int, *, seed: int = 0) -> AnalysisResults:
    """``n_segments`` segments (plus ``all``) x 4 metrics and a timeline."""
    gen = np.random.default_rng(seed)
    names = ["all", *(f"segment_{i:02d}" for i in range(n_segments))]
    rows = tuple(
        make_row(name, metric, kind, float(gen.normal(0, 0.08)), float(gen.uniform(0.03, 0.12)))
        for metric, kind in METRICS
        for name in names
    )
    points = tuple(
        TimelinePoint(
            date=f"2026-01-{day:02d}",
            segment=name,
            metric=metric,
            arm="treatment",
            lift_rel=0.05,
            ci_low=0.05 - 0.4 / math.sqrt(day),
            ci_high=0.05 + 0.4 / math.sqrt(day),
        )
        for metric, _ in METRICS
        for day in range(1, 15)
        for name in names[:3]
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
        results=rows,
        arms=("control", "treatment"),
        window_start="2026-01-01",
        window_end="2026-01-14",
        segments=tuple(
            SegmentInfo(name=n, where=f"x >= {i}", description=f"segment {i}", users=2000 + i)
            for i, n in enumerate(names)
        ),
        timeline=points,
    )


def best_of(repeats: int, run: Callable[[], object]) -> float:
    """The fastest of ``repeats`` wall-clock timings of ``run()``, in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    """Parse the options, time both, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    results = make_results(args.segments)
    render_html(make_results(2))  # warm the imports and font cache
    page = render_html(results)
    html = best_of(args.repeats, lambda: render_html(results))
    baseline = best_of(args.repeats, results.to_json)
    size = len(page.encode())
    print(f"{args.segments} segments x {len(METRICS)} metrics: {len(results.results)} rows")
    print(f"render_html: {html:.3f} s   to_json baseline: {baseline:.3f} s")
    print(f"ratio: {html / baseline:.1f}x   page: {size / 1e6:.2f} MB")
    print(f"targets (< {TARGET_SECONDS:.0f} s, < {TARGET_BYTES / 1e6:.0f} MB): "
          f"{'met' if html < TARGET_SECONDS and size < TARGET_BYTES else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
