"""Benchmark: hash assignment of many users in the engine (Ibis on DuckDB).

Writes a customers table of N ids (cached), then times, best of --repeats:

* engine-only: the assignment expression over every id, reduced to counts per arm;
* `exp assign` end to end (read customers, segments, hash, write assignments.parquet),

for a plain 50/50 design and a full one (5% holdout, 80% traffic, three arms,
a per-segment allocation). Also prints the hash uniformity over the ids: a
chi-square test of a 1,000-bin bucket histogram and the arm shares' deviation
from the weights.

    python benchmarks/assign.py --users 10000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import ibis
import numpy as np
from scipy import stats

from experiment.assignment import AssignmentSpec, assignment_expr
from experiment.cli.assign import run_assign
from experiment.config import ExperimentConfig

PLAIN = """\
name: bench
metrics: [{name: conversion, kind: proportion, event: purchase}]
"""
FULL = """\
name: bench
arms: {control: 0.4, a: 0.3, b: 0.3}
holdout: 0.05
traffic: 0.8
segments: segments.yaml
allocation:
  vip: {arms: {control: 0.1, a: 0.45, b: 0.45}, traffic: 1.0}
metrics: [{name: conversion, kind: proportion, event: purchase}]
"""
SEGMENTS = """\
segments:
  - {name: vip, where: "orders_90d >= 5"}
  - {name: dormant, where: "days_since_last_login > 90"}
"""


def best_of(repeats: int, func: Callable[[], object]) -> tuple[float, float]:
    """Best wall time and its CPU time (all DuckDB threads; load-independent)."""
    runs = []
    for _ in range(repeats):
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        func()
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        runs.append((wall, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime))
    return min(runs)


def make_customers(folder: Path, users: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "customers.parquet"
    if not target.exists():
        duckdb.sql(
            f"COPY (SELECT 'u' || range::VARCHAR AS user_id, "
            f"(hash(range) % 10)::INT AS orders_90d, (hash(range + 1) % 200)::INT "
            f"AS days_since_last_login FROM range({users})) TO '{target}' (FORMAT parquet)"
        )
    (folder / "segments.yaml").write_text(SEGMENTS)
    (folder / "plain.yaml").write_text(PLAIN)
    (folder / "full.yaml").write_text(FULL)


def engine_counts(folder: Path, config: ExperimentConfig) -> dict[str, int]:
    con = ibis.duckdb.connect()
    t = con.read_parquet(str(folder / "customers.parquet"))
    spec = AssignmentSpec.from_config(config, priority=["vip"])
    arm = assignment_expr(t.user_id, spec, {"vip": t.orders_90d >= 5})
    rows = t.select(arm=arm).arm.value_counts().to_pyarrow().to_pylist()
    return {str(r["arm"]): int(r["arm_count"]) for r in rows}


def uniformity(folder: Path, users: int) -> None:
    con = ibis.duckdb.connect()
    t = con.read_parquet(str(folder / "customers.parquet")).limit(1_000_000)
    plain = ExperimentConfig.model_validate({"name": "u", "metrics": [
        {"name": "c", "kind": "proportion", "event": "p"}]})  # fmt: skip
    spec = AssignmentSpec.from_config(plain)
    digest = (ibis.literal("u:") + t.user_id).hexdigest("md5")
    from experiment.assignment import hex_int

    bins = (hex_int(digest, 0) * 1000 // 2**32).name("bin")
    hist = t.select(bin=bins).bin.value_counts().to_pyarrow().to_pydict()
    counts = np.zeros(1000)
    counts[np.asarray(hist["bin"])] = hist["bin_count"]
    p = stats.chisquare(counts).pvalue
    arms = t.select(arm=assignment_expr(t.user_id, spec, {})).arm.value_counts().to_pyarrow()
    share = {r["arm"]: r["arm_count"] / counts.sum() for r in arms.to_pylist()}
    print(f"uniformity over {int(counts.sum()):,} ids: 1,000-bin chi-square p = {p:.3f}")
    print("  arm shares vs 50/50: " + ", ".join(
        f"{a} {s:.4%} ({(s - 0.5) * 100:+.3f} pp)" for a, s in sorted(share.items())))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path("benchmarks/.data"))
    args = parser.parse_args()
    folder = args.data / f"assign-{args.users}"
    make_customers(folder, args.users)
    print(f"{args.users:,} customers, {os.cpu_count()} cores, duckdb {duckdb.__version__}")
    uniformity(folder, args.users)
    now = dt.datetime.now(dt.UTC)
    from experiment.config import load_experiment

    for name in ("plain", "full"):
        config = load_experiment(folder / f"{name}.yaml")
        counts = engine_counts(folder, config)
        t_engine = best_of(args.repeats, lambda c=config: engine_counts(folder, c))
        (folder / "assignments.parquet").unlink(missing_ok=True)
        t_cli = best_of(
            args.repeats, lambda n=name: run_assign(folder, folder / f"{n}.yaml", now=now)
        )
        print(
            f"{name:5s}: engine hash+count {t_engine[0]:6.2f} s wall ({t_engine[1]:6.2f} s CPU), "
            f"exp assign incl. write {t_cli[0]:6.2f} s wall ({t_cli[1]:6.2f} s CPU); "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print("  " + ", ".join(f"{a}: {n:,}" for a, n in sorted(counts.items())))


if __name__ == "__main__":
    main()
