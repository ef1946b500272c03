"""Benchmark: `exp simulate` end to end, from a scenario name to Parquet files on disk.

Runs ``simulators.simulate`` once in a fresh process and prints events per second
(end to end: population, the 90-day pre-period's counters, assignment, segment
membership, every simulated day, Parquet writing and truth.json), the time of each
phase, the CPU time and the process's peak RSS. Imports (numpy, pyarrow, pandas,
Ibis and its DuckDB backend) happen before the clock starts, as they would in a
long-lived process; their time is printed apart. On a shared machine the wall
clock depends on the other processes: compare runs by CPU time, or alternate the
runs of two versions.

    python benchmarks/simulate.py --users 1000000 --days 42
    python benchmarks/simulate.py --scenario saas --users 200000 --days 14
    python benchmarks/simulate.py --users 200000 --days 14 --pre-period-events
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

_T0 = time.perf_counter()
import ibis  # noqa: E402  (imported up front: a one-time cost, not simulation work)
import pandas  # noqa: E402, F401  (pyarrow imports it for time-zone-aware timestamps)

ibis.duckdb.connect().disconnect()  # loads the DuckDB backend (segment membership)
IMPORTS = time.perf_counter() - _T0

from simulators import simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="ecommerce")
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=42)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="keep the dataset here")
    parser.add_argument(
        "--pre-period-events", action="store_true", help="also write the 90-day pre-period"
    )
    args = parser.parse_args()

    marks: list[tuple[int, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        cpu0, t0 = time.process_time(), time.perf_counter()
        summary = simulate(
            args.scenario,
            users=args.users,
            days=args.days,
            seed=args.seed,
            out=out,
            progress=lambda done, total: marks.append(
                (done, time.perf_counter(), time.process_time())
            ),
            pre_period_events=args.pre_period_events,
        )
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        size = os.path.getsize(out / "events.parquet")
    setup, setup_cpu = marks[0][1] - t0, marks[0][2] - cpu0
    days_s, days_cpu = marks[-1][1] - marks[0][1], marks[-1][2] - marks[0][2]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"scenario {args.scenario}: {summary.users:,} users x {summary.days} days")
    print(f"events           {summary.events:,} ({size / 2**20:,.0f} MiB Parquet)")
    print(f"end to end       {wall:.1f} s  ->  {summary.events / wall / 1e6:.2f} M events/s")
    print(f"  pre-period+customers+segments   {setup:.1f} s ({setup_cpu:.1f} s CPU)")
    if summary.pre_period_events:
        print(f"  of which pre-period rows        {summary.pre_period_events:,}")
    experiment_rows = summary.events - summary.pre_period_events
    print(
        f"  days (simulate + write)         {days_s:.1f} s ({days_cpu:.1f} s CPU)"
        f"  ->  {experiment_rows / days_s / 1e6:.2f} M/s"
    )
    print(f"  truth + publish                 {wall - setup - days_s:.1f} s")
    print(f"cpu time         {cpu:.1f} s ({cpu / wall:.0%} of wall, {os.cpu_count()} cores)")
    print(f"events per cpu-s {summary.events / cpu / 1e6:.2f} M (2 cores at this rate: x2)")
    print(f"imports (apart)  {IMPORTS:.1f} s")
    print(f"peak RSS         {rss_mb:,.0f} MB")


if __name__ == "__main__":
    main()
