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
    python benchmarks/simulate.py --users 200000 --days 14 --floor --json

``--floor`` also times, in the same process and after the run, the floor of
issue 21: writing as many random rows of the events schema with pyarrow (numpy
draws, one row group per million rows, the simulator's schema and Parquet settings), and
prints simulate's time as a ratio of it (CPU and wall). ``--json`` prints one JSON
line of the figures last (for ``benchmarks/suite.py``).
"""

from __future__ import annotations

import argparse
import json
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

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from simulators import simulate  # noqa: E402
from simulators.history import user_ids  # noqa: E402
from simulators.run import EVENTS_PARQUET  # noqa: E402
from simulators.schema import EVENTS, TIMESTAMP, events_schema  # noqa: E402

_FLOOR_CHUNK = 1_000_000


def floor(rows: int, users: int, path: Path) -> tuple[float, float]:
    """Wall and CPU seconds to write ``rows`` random event rows with pyarrow (the floor)."""
    rng = np.random.default_rng(0)
    ids = user_ids(users)
    cpu0, t0 = time.process_time(), time.perf_counter()
    writer: pq.ParquetWriter | None = None
    for start in range(0, rows, _FLOOR_CHUNK):
        n = min(_FLOOR_CHUNK, rows - start)
        revenue = np.where(rng.random(n) < 0.01, rng.lognormal(3.7, 0.8, n), np.nan)
        columns = [
            ids.take(pa.array(rng.integers(0, users, n))),
            pa.array(np.sort(rng.integers(0, 86_400_000_000, n))).cast(TIMESTAMP),
            pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, len(EVENTS), n, dtype=np.int8)), EVENTS
            ),
            pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, 4, n, dtype=np.int8)), ["web", "app", "email", "ads"]
            ),
            pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, 3, n, dtype=np.int8)), ["mobile", "desktop", "tablet"]
            ),
            pa.array(revenue, from_pandas=True),
        ]
        table = pa.Table.from_arrays(columns, schema=events_schema(c.type for c in columns))
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, **EVENTS_PARQUET)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    return time.perf_counter() - t0, time.process_time() - cpu0


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
    parser.add_argument("--floor", action="store_true", help="also time the pyarrow floor")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
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
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the floor
        floor_wall, floor_cpu = (
            floor(summary.events, summary.users, Path(tmp) / "floor.parquet")
            if args.floor
            else (float("nan"), float("nan"))
        )
    setup, setup_cpu = marks[0][1] - t0, marks[0][2] - cpu0
    days_s, days_cpu = marks[-1][1] - marks[0][1], marks[-1][2] - marks[0][2]
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
    if args.floor:
        print(
            f"floor            {floor_wall:.1f} s ({floor_cpu:.1f} s CPU) -> "
            f"{summary.events / floor_wall / 1e6:.2f} M random rows/s written with pyarrow"
        )
        print(f"simulate / floor {wall / floor_wall:.2f}x wall, {cpu / floor_cpu:.2f}x CPU")
    if args.json:
        figures = {
            "scenario": args.scenario,
            "users": summary.users,
            "days": summary.days,
            "events": summary.events,
            "wall_s": wall,
            "cpu_s": cpu,
            "events_per_s": summary.events / wall,
            "events_per_cpu_s": summary.events / cpu,
            "setup_s": setup,
            "setup_cpu_s": setup_cpu,
            "days_s": days_s,
            "days_cpu_s": days_cpu,
            "peak_rss_mb": rss_mb,
            "parquet_mib": size / 2**20,
            "floor_wall_s": floor_wall if args.floor else None,
            "floor_cpu_s": floor_cpu if args.floor else None,
        }
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
