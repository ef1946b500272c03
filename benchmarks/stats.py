"""Benchmark: the stats step alone (`analyze_cells`) on synthetic cell sums.

Builds :class:`experiment.engine.CellSums` for ``--segments`` segments (``all``
included) x 2 arms x 4 metrics (conversion: proportion; ctr: clicks/impressions,
ratio; revenue: mean, capped in the engine; sessions: mean) straight from random
numbers (no data, no query), then times, in one process:

* ``analyze_cells``: every test, Holm, Bayesian chance to win, MDE, SRM and
  the typed ``ResultRow`` objects ``exp analyze`` writes to results.json;
* a baseline: the bare vectorised ``welch_ttest`` over the same arrays (one call
  per metric), the least any analysis of these cells must do;
* ``bayes_beta_binomial`` alone on the conversion cells, on one thread: the
  costliest part of the step (Beta quantiles and incomplete beta functions), and
  a steadier number than the whole step when other work shares the machine.

Prints the best-of-``--repeats`` time of each, the ratio, and whether the step meets
the issue's target (< 0.5 s for 10,000 segment x metric cells).

    python benchmarks/stats.py                      # 2,500 segments x 4 metrics
    python benchmarks/stats.py --segments 250 --sequential --cuped
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable

import numpy as np

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig
from experiment.engine import CellSums
from experiment.stats import bayes_beta_binomial, welch_ttest
from experiment.sums import JointSums, MeanSums

TARGET_SECONDS = 0.5


def make_config(*, sequential: bool, cuped: bool) -> ExperimentConfig:
    """The benchmark's experiment: two arms, the four metrics."""
    metrics: list[dict[str, object]] = [
        {"name": "conversion", "kind": "proportion", "event": "purchase"},
        {
            "name": "ctr",
            "kind": "ratio",
            "numerator": {"event": "click"},
            "denominator": {"event": "impression"},
        },
        {
            "name": "revenue",
            "kind": "mean",
            "event": "purchase",
            "value": "revenue",
            "cap": {"quantile": 0.99},
        },
        {"name": "sessions", "kind": "mean", "event": "session_start"},
    ]
    if cuped:
        metrics[2]["cuped"] = "revenue_90d"
    return ExperimentConfig.model_validate(
        {"name": "bench", "metrics": metrics, "sequential": sequential}
    )


def make_cells(segments: int, config: ExperimentConfig, seed: int = 1) -> CellSums:
    """Plausible sums of a 10M-user experiment: `all` 5M per arm, segments 2k-200k per arm.

    True lifts are small (sd 2%), spreads Poisson-like; CTR's clicks and
    impressions are correlated (rho 0.5).
    """
    rng = np.random.default_rng(seed)
    shape = (segments, 2)
    n = np.round(rng.uniform(2_000, 200_000, segments))[:, None] * rng.uniform(0.99, 1.01, shape)
    n = np.round(n)
    n[0] = 5_000_000  # `all`: an experiment of 10M users
    lift = 1 + rng.normal(0, 0.02, shape) * np.array([0, 1])

    def mean_sums(mean: np.ndarray, var: np.ndarray) -> MeanSums:
        return MeanSums(n=n, mean=mean, m2=var * n)

    p = rng.uniform(0.02, 0.2, segments)[:, None] * lift
    rev = rng.uniform(5, 50, segments)[:, None] * lift
    sess = rng.uniform(1, 6, segments)[:, None] * lift
    imps = rng.uniform(20, 80, segments)[:, None] * np.ones(shape)
    clicks = imps * rng.uniform(0.01, 0.1, segments)[:, None] * lift
    metrics: dict[str, MeanSums | JointSums] = {
        "conversion": mean_sums(p, p * (1 - p)),
        "ctr": JointSums(
            n=n,
            mean_y=clicks,
            mean_x=imps,
            m2_y=clicks * 2 * n,
            m2_x=imps * 3 * n,
            c_xy=0.5 * np.sqrt(clicks * 2 * imps * 3) * n,
        ),
        "revenue": mean_sums(rev, (3 * rev) ** 2),
        "sessions": mean_sums(sess, sess * 1.5),
    }
    cuped = {}
    if any(m.cuped for m in config.metrics):
        pre = rev * rng.uniform(0.8, 1.2, shape)
        cuped["revenue"] = JointSums(
            n=n,
            mean_y=rev,
            mean_x=pre,
            m2_y=(3 * rev) ** 2 * n,
            m2_x=(3 * pre) ** 2 * n,
            c_xy=0.6 * (3 * rev) * (3 * pre) * n,
        )
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=config.window.days)
    names = ("all", *(f"segment_{i}" for i in range(1, segments)))
    return CellSums(
        segments=names,
        arms=tuple(config.arms),
        units=n,
        metrics=metrics,
        window_start=start,
        window_end=end,
        cuped=cuped,
    )


def baseline(cells: CellSums) -> None:
    """One vectorised Welch test per metric on the same arrays (ratios on their y margin)."""
    for sums in cells.metrics.values():
        y = sums.y if isinstance(sums, JointSums) else sums
        welch_ttest(
            MeanSums(n=y.n[:, 0], mean=y.mean[:, 0], m2=y.m2[:, 0]),
            MeanSums(n=y.n[:, 1], mean=y.mean[:, 1], m2=y.m2[:, 1]),
        )


def beta_binomial(cells: CellSums) -> None:
    """The Bayesian read-out of the conversion metric, all segments in one call."""
    sums = cells.metrics["conversion"]
    assert isinstance(sums, MeanSums)
    bayes_beta_binomial(sums[:, 0], sums[:, 1])


def best_of(repeats: int, func: Callable[[], object]) -> float:
    """The fastest of ``repeats`` wall-clock timings of ``func``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--segments", type=int, default=2_500, help="segments, `all` included")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sequential", action="store_true", help="add confidence sequences")
    parser.add_argument("--cuped", action="store_true", help="CUPED on the revenue metric")
    args = parser.parse_args()

    config = make_config(sequential=args.sequential, cuped=args.cuped)
    cells = make_cells(args.segments, config)
    n_cells = args.segments * len(config.metrics)
    results = analyze_cells(cells, config, None)  # warm-up (imports, scipy caches)
    assert len(results.results) == n_cells
    t_base = best_of(args.repeats, lambda: baseline(cells))
    t_stats = best_of(args.repeats, lambda: analyze_cells(cells, config, None))
    t_beta = best_of(args.repeats, lambda: beta_binomial(cells))
    verdict = "meets" if t_stats < TARGET_SECONDS else "MISSES"
    print(
        f"cells: {args.segments:,} segments x {len(config.metrics)} metrics = {n_cells:,} "
        f"(2 arms; sequential={args.sequential}, cuped={args.cuped})"
    )
    print(f"baseline welch_ttest per metric : {t_base:7.3f} s   1.00x")
    print(f"analyze_cells                   : {t_stats:7.3f} s   {t_stats / t_base:.1f}x baseline")
    print(f"bayes_beta_binomial alone       : {t_beta:7.3f} s   {args.segments:,} cells, 1 thread")
    print(f"target < {TARGET_SECONDS} s: {verdict} ({t_stats / TARGET_SECONDS:.0%} of budget)")


if __name__ == "__main__":
    main()
