"""Benchmark: what ``lifecycle_analysis`` adds to ``exp analyze`` (issue 19's target: <= 1.5x).

Reuses ``benchmarks/analyze.py``'s synthetic dataset (built once and cached in
``--data``: ``--users`` users, about 10 events each over a 14-day window, users
assigned over the first 7 days; 20 overlapping segments plus ``all`` x 4 metrics),
whose customers carry ``days_since_last_login``, ``signup_at`` and ``revenue_90d``.
Its events have no ``login`` rows, so the lifecycle block reads ``session`` as the
login event (the same work: one more scan of one event type). In one process and
round-robin (a slow spell of the shared machine hits both), it times
:func:`experiment.analyze` (open, aggregate, statistics) with the experiment file as
is and with ``lifecycle_analysis: {login_event: session}``, prints the best of
``--repeats`` of each and their ratio, in CPU time (all threads of the process,
``time.process_time``: what the shared machine's other sessions disturb least) and
in wall time.

    python benchmarks/lifecycle_cost.py                   # 1M users
    python benchmarks/lifecycle_cost.py --users 200000
"""

from __future__ import annotations

import time
from pathlib import Path


def main() -> None:
    from analyze import run_on_cached  # the cache's owner, beside this script

    run_on_cached(__doc__ or "", measure)


def measure(folder: Path, repeats: int) -> None:
    """Time the analysis with and without the lifecycle block, round-robin; print the ratio."""
    from experiment import analyze
    from experiment.config import load_experiment
    from experiment.lifecyclespec import LifecycleAnalysis
    from segments import load_segments

    plain = load_experiment(folder / "experiment.yaml")
    block = LifecycleAnalysis(login_event="session", days=[7], retention_days=[7, 14])
    lifecycle = plain.model_copy(update={"lifecycle_analysis": block})
    assert plain.segments is not None
    segment_set = load_segments(plain.segments)
    times: dict[str, list[float]] = {"exp analyze": [], "+ lifecycle_analysis": []}
    cpu: dict[str, list[float]] = {name: [] for name in times}
    for _ in range(repeats):
        for name, config in zip(times, (plain, lifecycle), strict=True):
            started, cpu_started = time.perf_counter(), time.process_time()
            results = analyze(folder, config, segments=segment_set)
            times[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - cpu_started)
            extra = (
                ""
                if results.lifecycle is None
                else f", {len(results.lifecycle.migration)} migration rows"
            )
            print(
                f"  {name:22} {times[name][-1]:7.2f} s wall {cpu[name][-1]:7.2f} s CPU{extra}",
                flush=True,
            )
    print(f"{folder.name}: best of {repeats}")
    for label, got in (("CPU", cpu), ("wall", times)):
        best = {name: min(t) for name, t in got.items()}
        for name, value in best.items():
            print(f"{name:22} {value:7.2f} s {label}")
        ratio = best["+ lifecycle_analysis"] / best["exp analyze"]
        verdict = "met" if ratio <= 1.5 else "MISSED"
        print(f"ratio ({label}) {ratio:.2f}x (target <= 1.5x: {verdict})")


if __name__ == "__main__":
    main()
