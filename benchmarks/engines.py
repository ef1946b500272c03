"""Benchmark: `exp analyze`'s engine half (``aggregate``) on Spark ``local[2]`` vs DuckDB.

Uses the dataset of ``benchmarks/analyze.py`` (1M users, ~10M events, 20 segments,
4 metrics with a 99th-percentile revenue cap; built once by that script into
``--data`` and reused), opens it on DuckDB (``open_dataset``) and on a local Spark
session in this process (``spark.read.parquet`` + temp views +
``ibis.pyspark.connect``), and times :func:`experiment.engine.aggregate` on each
(best of ``--repeats``). Then it says where Spark's time goes:

* per engine query: each query the engine sends (``to_pyarrow``, ``cache``) with
  its wall time and the engine function that sent it;
* per Spark stage, from Spark's event log: wall and executor run time, tasks,
  bytes and rows read from Parquet, shuffle bytes written and read.

    python benchmarks/engines.py                     # 1M users
    python benchmarks/engines.py --users 200000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TABLES = ("customers", "events", "assignments")
Query = tuple[str, float]


@contextmanager
def timed_queries(log: list[Query]) -> Iterator[None]:
    """Record each engine query (Ibis ``to_pyarrow``/``cache``) with its caller and wall time."""
    import ibis.expr.types.relations as rel
    from ibis.expr.types import core

    originals = {
        (core.Expr, "to_pyarrow"): core.Expr.to_pyarrow,
        (rel.Table, "to_pyarrow"): rel.Table.to_pyarrow,
        (rel.Table, "cache"): rel.Table.cache,
    }

    depth: list[int] = []

    def wrap(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            if depth:  # Table.to_pyarrow calls Expr.to_pyarrow: count the query once
                return func(self, *args, **kwargs)
            frames = [f for f in traceback.extract_stack()[:-1] if "/experiment/" in f.filename]
            frames += [f for f in traceback.extract_stack()[:-1] if "/segments/" in f.filename]
            where = frames[-1] if frames else None
            label = f"{Path(where.filename).stem}.{where.name}" if where else "?"
            started = time.perf_counter()
            depth.append(1)
            try:
                return func(self, *args, **kwargs)
            finally:
                depth.pop()
                log.append((f"{name:10} {label}", time.perf_counter() - started))

        return run

    for (cls, attr), func in originals.items():
        setattr(cls, attr, wrap(attr, func))
    try:
        yield
    finally:
        for (cls, attr), func in originals.items():
            setattr(cls, attr, func)


def best_of(repeats: int, func: Callable[[], object]) -> float:
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        func()
        walls.append(time.perf_counter() - started)
    return min(walls)


def spark_session(partitions: int, memory: str, event_log: Path) -> Any:
    from pyspark.sql import SparkSession

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("seglift-bench")
        .config("spark.sql.shuffle.partitions", str(partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", memory)
        .config("spark.eventLog.enabled", "true")
        .config("spark.eventLog.dir", event_log.as_uri())
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def stages(event_log: Path, since_ms: float) -> list[dict[str, Any]]:
    """The stages submitted after ``since_ms``, from Spark's event log (JSON lines)."""
    metric = {
        "internal.metrics.executorRunTime": "run_s",
        "internal.metrics.input.bytesRead": "input_mb",
        "internal.metrics.input.recordsRead": "input_rows",
        "internal.metrics.shuffle.write.bytesWritten": "shuffle_write_mb",
        "internal.metrics.shuffle.read.localBytesRead": "shuffle_read_mb",
        "internal.metrics.shuffle.read.remoteBytesRead": "shuffle_read_mb",
    }
    scale = {"run_s": 1e-3, "input_mb": 1e-6, "shuffle_write_mb": 1e-6, "shuffle_read_mb": 1e-6}
    rows = []
    import pyarrow as pa

    logs = [p for p in event_log.rglob("*") if p.is_file() and not p.name.startswith((".", "app"))]
    for path in sorted(logs):
        codec = "zstd" if path.suffix == ".zstd" else None  # Spark 4 compresses by default
        with pa.input_stream(str(path), compression=codec) as stream:
            text = stream.read().decode()
        for line in text.splitlines():
            event = json.loads(line)
            if event.get("Event") != "SparkListenerStageCompleted":
                continue
            info = event["Stage Info"]
            if info.get("Submission Time", 0) < since_ms:
                continue
            row: dict[str, Any] = {
                "stage": info["Stage ID"],
                "name": info["Stage Name"].split(" at ")[0],
                "tasks": info["Number of Tasks"],
                "wall_s": (info["Completion Time"] - info["Submission Time"]) / 1000,
                "submitted_ms": info["Submission Time"],
                **dict.fromkeys(scale, 0.0),
                "input_rows": 0,
            }
            for acc in info.get("Accumulables", []):
                key = metric.get(acc.get("Name", ""))
                if key is not None:
                    row[key] += float(acc["Value"]) * scale.get(key, 1.0)
            rows.append(row)
    return sorted(rows, key=lambda r: r["stage"])


def report_queries(title: str, log: list[Query]) -> None:
    print(f"\n{title}: {len(log)} queries, {sum(t for _, t in log):.2f} s")
    for label, wall in sorted(log, key=lambda q: -q[1])[:10]:
        print(f"  {wall:8.2f} s  {label}")


def report_stages(rows: list[dict[str, Any]]) -> None:
    run = sum(r["run_s"] for r in rows)
    wall = sum(r["wall_s"] for r in rows)
    print(
        f"\nSpark stages of the timed runs: {len(rows)}, {wall:.1f} s stage wall time, "
        f"{run:.1f} s executor run time (2 task slots)"
    )
    head = f"  {'stage':>5} {'tasks':>5} {'wall s':>7} {'run s':>7} {'in MB':>8} {'in rows':>11}"
    print(f"{head} {'shuf w MB':>9} {'shuf r MB':>9}  name")
    for r in sorted(rows, key=lambda r: -r["wall_s"])[:15]:
        print(
            f"  {r['stage']:5d} {r['tasks']:5d} {r['wall_s']:7.2f} {r['run_s']:7.2f} "
            f"{r['input_mb']:8.1f} "
            f"{int(r['input_rows']):11,d} {r['shuffle_write_mb']:9.1f} {r['shuffle_read_mb']:9.1f}"
            f"  {r['name']}"
        )
    totals = {k: sum(r[k] for r in rows) for k in ("input_mb", "input_rows", "shuffle_write_mb")}
    print(
        f"  total: {totals['input_mb']:.1f} MB / {int(totals['input_rows']):,} rows read, "
        f"{totals['shuffle_write_mb']:.1f} MB shuffled"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=4, help="spark.sql.shuffle.partitions")
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "seglift-bench")
    args = parser.parse_args()
    folder = args.data / f"users-{args.users}"
    if not (folder / "done").exists():
        print(f"building {args.users:,} users into {folder} (benchmarks/analyze.py) ...")
        script = Path(__file__).with_name("analyze.py")
        argv = [sys.executable, str(script), "--build-only", "--users", str(args.users)]
        subprocess.run([*argv, "--data", str(args.data)], check=True)  # noqa: S603

    import ibis

    from experiment.config import load_experiment
    from experiment.engine import aggregate
    from experiment.engine.dataset import Dataset, open_dataset
    from segments import load_segments

    config = load_experiment(folder / "experiment.yaml")
    segment_set = load_segments(folder / "segments.yaml")

    duck_log: list[Query] = []
    duck = best_of(args.repeats, lambda: aggregate(open_dataset(folder), config, segment_set))
    with timed_queries(duck_log):
        aggregate(open_dataset(folder), config, segment_set)

    event_log = Path(tempfile.mkdtemp(prefix="seglift-spark-events-"))
    spark = spark_session(args.partitions, args.driver_memory, event_log)
    for name in TABLES:
        spark.read.parquet(str(folder / f"{name}.parquet")).createOrReplaceTempView(name)
    con = ibis.pyspark.connect(spark)
    dataset = Dataset(path=folder, con=con, **{n: con.table(n) for n in TABLES})
    aggregate(dataset, config, segment_set)  # warm-up: JIT, file listing, Parquet footers
    since_ms = time.time() * 1000
    spark_log: list[Query] = []
    with timed_queries(spark_log):
        spark_s = best_of(args.repeats, lambda: aggregate(dataset, config, segment_set))
    spark.stop()

    events = folder / "events.parquet"
    print(f"{args.users:,} users, {events.stat().st_size / 1e6:.0f} MB of events Parquet")
    print(f"aggregate on DuckDB          {duck:8.2f} s")
    print(f"aggregate on Spark local[2]  {spark_s:8.2f} s  ({spark_s / duck:.1f}x DuckDB)")
    report_queries("DuckDB queries (one run)", duck_log)
    report_queries(f"Spark queries ({args.repeats} runs)", spark_log)
    report_stages(stages(event_log, since_ms))


if __name__ == "__main__":
    main()
