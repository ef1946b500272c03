"""Benchmark: the cost of the sequential timeline, ``sequential: true`` against ``false``.

Reuses ``benchmarks/analyze.py``'s synthetic dataset (built once and cached in
``--data``: ``--users`` users, about 10 events each over a 14-day window, users
assigned over the first 7 days; 20 overlapping segments plus ``all`` x 4 metrics:
conversion, CTR (ratio), revenue per user capped at its 99th percentile,
sessions per user), then times, in one process and round-robin (so that a slow
spell of the shared machine hits both), ``open_dataset`` + ``aggregate`` +
``analyze_cells`` with the experiment file as is and with ``sequential: true``;
it prints the best of ``--repeats`` of each (wall clock, and the process's CPU
time, DuckDB's threads included: steadier on a shared machine) and their ratios
(the issue's target: at most 1.5x), and the median of each repeat's ratio (the
two runs of a repeat are back to back).

    python benchmarks/sequential.py                   # 1M users
    python benchmarks/sequential.py --users 200000
"""

from __future__ import annotations

import resource
import statistics
import time
from pathlib import Path
from typing import Any


def main() -> None:
    from analyze import run_on_cached  # the cache's owner, beside this script

    run_on_cached(__doc__ or "", measure)


def measure(folder: Path, repeats: int) -> None:
    """Time the analysis with and without the timeline, round-robin; print both and the ratio."""
    from experiment.analysis import analyze_cells
    from experiment.config import load_experiment
    from experiment.engine import aggregate
    from experiment.engine.dataset import open_dataset
    from segments import load_segments

    plain = load_experiment(folder / "experiment.yaml")
    sequential = plain.model_copy(update={"sequential": True})
    assert plain.segments is not None
    segment_set = load_segments(plain.segments)
    times: dict[str, list[float]] = {"sequential: false": [], "sequential: true": []}
    cpus: dict[str, list[float]] = {name: [] for name in times}
    box: dict[str, Any] = {}
    for _ in range(repeats):
        for name, config in zip(times, (plain, sequential), strict=True):
            started, cpu = time.perf_counter(), _cpu()
            cells = aggregate(open_dataset(folder), config, segment_set)
            box[name] = analyze_cells(cells, config, segment_set)
            times[name].append(time.perf_counter() - started)
            cpus[name].append(_cpu() - cpu)
            print(f"  {name:18} {times[name][-1]:7.2f} s  cpu {cpus[name][-1]:7.2f} s", flush=True)
    best = {name: min(t) for name, t in times.items()}
    best_cpu = {name: min(t) for name, t in cpus.items()}
    points = len(box["sequential: true"].timeline)
    print(f"{folder.name}: best of {repeats}, {points:,} timeline points")
    for name, wall in best.items():
        print(f"{name:18} {wall:7.2f} s  cpu {best_cpu[name]:7.2f} s")
    ratio = best["sequential: true"] / best["sequential: false"]
    cpu_ratio = best_cpu["sequential: true"] / best_cpu["sequential: false"]
    verdict = "met" if ratio <= 1.5 else "MISSED"
    print(f"ratio {ratio:.2f}x, cpu {cpu_ratio:.2f}x (target <= 1.5x: {verdict})")
    # each repeat's pair ran back to back: their ratios' median shrugs off one slow spell
    paired = statistics.median(
        t / f for t, f in zip(times["sequential: true"], times["sequential: false"], strict=True)
    )
    paired_cpu = statistics.median(
        t / f for t, f in zip(cpus["sequential: true"], cpus["sequential: false"], strict=True)
    )
    print(f"median of the {repeats} paired ratios: {paired:.2f}x wall, {paired_cpu:.2f}x cpu")


def _cpu() -> float:
    """User + system CPU seconds of this process (DuckDB's threads included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
