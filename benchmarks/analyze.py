"""Benchmark: `exp analyze`'s engine + stats path against a bare DuckDB query.

Simulates the ecommerce scenario once (cached in a folder), then times, in one
process and on the same Parquet files:

* baseline: one hand-written DuckDB SQL query computing the same sums
  (per-user measures, then count/mean/var/cov per segment and arm);
* seglift: open_dataset + aggregate (Ibis -> DuckDB) + analyze_cells (stats).

It prints each as seconds and as a ratio of the baseline, plus the stats step on
its own and the process's peak RSS.

    python benchmarks/analyze.py --users 1000000 --days 14
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from experiment.analysis import analyze_cells
from experiment.config import load_experiment
from experiment.data import open_dataset
from experiment.engine import aggregate
from segments import load_segments
from simulators import simulate

# The ecommerce segments, written as SQL by hand for the baseline (constants, not user text).
SEGMENT_SQL = {
    "all": "TRUE",
    "frequent_shoppers": "orders_90d >= 3",
    "first_time_buyers": "orders_90d = 1",
    "cart_abandoners": "cart_abandons_30d >= 1 AND orders_90d = 0",
    "vip": "revenue_90d >= 150 AND orders_90d >= 2",
    "dormant": "days_since_last_login > 90",
}


def baseline_sql(folder: Path) -> str:
    aggs = []
    for i, rule in enumerate(SEGMENT_SQL.values()):
        f = f"FILTER (WHERE {rule})"
        aggs += [
            f"count(*) {f} AS n{i}",
            f"avg(conv) {f} AS conv_mean{i}",
            f"var_pop(conv) {f} AS conv_var{i}",
            f"avg(rev) {f} AS rev_mean{i}",
            f"var_pop(rev) {f} AS rev_var{i}",
            f"avg(clicks) {f} AS c_mean{i}",
            f"var_pop(clicks) {f} AS c_var{i}",
            f"avg(imps) {f} AS i_mean{i}",
            f"var_pop(imps) {f} AS i_var{i}",
            f"covar_pop(clicks, imps) {f} AS ci_cov{i}",
        ]
    return f"""
    WITH u AS (SELECT user_id, arm, assigned_at FROM read_parquet('{folder}/assignments.parquet')),
    w AS (SELECT min(assigned_at) AS s, min(assigned_at) + INTERVAL 14 DAY AS e FROM u),
    pu AS (
      SELECT ev.user_id,
             count(*) FILTER (WHERE event = 'purchase') AS purchases,
             count(*) FILTER (WHERE event = 'click') AS clicks,
             count(*) FILTER (WHERE event = 'impression') AS imps,
             sum(revenue) FILTER (WHERE event = 'purchase') AS rev
      FROM read_parquet('{folder}/events.parquet') ev JOIN u USING (user_id), w
      WHERE ev.ts >= w.s AND ev.ts < w.e AND ev.ts >= u.assigned_at
      GROUP BY ev.user_id),
    t AS (
      SELECT u.arm, c.*, (coalesce(pu.purchases, 0) > 0)::DOUBLE AS conv,
             coalesce(pu.rev, 0) AS rev, coalesce(pu.clicks, 0)::DOUBLE AS clicks,
             coalesce(pu.imps, 0)::DOUBLE AS imps
      FROM u LEFT JOIN pu USING (user_id)
             LEFT JOIN read_parquet('{folder}/customers.parquet') c USING (user_id))
    SELECT arm, {", ".join(aggs)} FROM t GROUP BY arm
    """


def best_of(repeats: int, func: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--users", type=int, default=500_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path("benchmarks/.data"))
    args = parser.parse_args()

    folder = args.data / f"ecommerce-{args.users}-{args.days}"
    if not (folder / "truth.json").exists():
        print(f"simulating {args.users:,} users x {args.days} days into {folder} ...")
        summary = simulate("ecommerce", users=args.users, days=args.days, seed=1, out=folder)
        print(
            f"  {summary.events:,} events in {summary.seconds:.1f}s "
            f"({summary.events / summary.seconds / 1e6:.2f}M events/s)"
        )
    n_events = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{folder}/events.parquet')"
    ).fetchall()[0][0]
    config = load_experiment(folder / "experiment.yaml")
    assert config.segments is not None
    segment_set = load_segments(config.segments)

    sql = baseline_sql(folder)
    con = duckdb.connect()
    con.execute(sql).fetchall()  # warm the OS cache
    t_base = best_of(args.repeats, lambda: con.execute(sql).fetchall())

    cells_box = {}

    def engine() -> None:
        cells_box["cells"] = aggregate(open_dataset(folder), config, segment_set)
        analyze_cells(cells_box["cells"], config, segment_set)

    t_ours = best_of(args.repeats, engine)
    t_stats = best_of(20, lambda: analyze_cells(cells_box["cells"], config, segment_set))
    cells = len(segment_set.segments) + 1
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"dataset: {args.users:,} users, {n_events:,} events, "
        f"{cells} segments x {len(config.metrics)} metrics"
    )
    print(f"baseline bare DuckDB SQL      : {t_base:7.3f} s   1.00x")
    print(f"seglift aggregate + stats     : {t_ours:7.3f} s   {t_ours / t_base:.2f}x baseline")
    print(f"stats step alone ({cells * len(config.metrics)} cells)   : {t_stats * 1000:7.2f} ms")
    print(f"peak RSS                      : {rss_mb:7.0f} MB")


if __name__ == "__main__":
    main()
