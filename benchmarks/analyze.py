"""Benchmark: `exp analyze`'s engine + stats path against a bare DuckDB query.

Builds a synthetic dataset once (``--users`` users, about 10 events each; cached in
``--data``, reused when present), then times, in one process and on the same
Parquet files:

* baseline: hand-written DuckDB SQL computing the same sums: per-user measures
  (post-exposure, in-window), the revenue cap (99th percentile), then count, mean,
  variance (and the clicks/impressions covariance) per segment and arm. Two
  forms, ``GROUP BY arm`` with a ``FILTER`` per segment and ``GROUP BY segment,
  arm`` over the unnested memberships; the faster one is the baseline;
* seglift: ``open_dataset`` + ``aggregate`` (Ibis -> DuckDB, with the data-quality
  counts) + ``analyze_cells`` (every test, Holm, Bayes, MDE, SRM), i.e. what
  ``exp analyze`` computes before writing its files.

20 overlapping segments (plus ``all``; ``--segments N`` for up to 100, in
``DATA/users-N-segments-S``) x 4 metrics: conversion (proportion), CTR (clicks /
impressions, ratio), revenue per user (mean, capped at its 99th percentile) and
sessions per user (mean).

The dataset is not simulated (``simulators`` would take long and much memory at
10M users): DuckDB SQL writes it straight to Parquet from hash-based uniforms
(deterministic). Customers get a latent activity level that drives their
pre-period columns and their event mix; events are 45% impressions, 20% sessions,
~4% clicks, ~1.5% purchases (log-normal revenue), the rest page views and carts,
spread over the window and a little outside it and before assignment; treatment
users click and buy a few percent more. The build runs in a child process, so it
counts neither in the timings nor in the peak RSS.

Peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of this process (Linux:
KiB). seglift runs first (after a warm-up scan of the files that holds little
memory), so the peak read right after it is seglift's own (plus the interpreter
and the imports); the baseline runs after and its peak is read last.

    python benchmarks/analyze.py                       # 1M users, ~10M events
    python benchmarks/analyze.py --users 10000000      # 10M users, ~100M events
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXPERIMENT = "bench"
START = "2026-03-02 00:00:00+00"
DAYS = 14
EVENTS_PER_USER = 10

# (name, rule in the segment language, the same rule in SQL): constants, not user text.
SEGMENTS: tuple[tuple[str, str], ...] = (
    ("mobile", "device == 'mobile'"),
    ("desktop", "device == 'desktop'"),
    ("tablet", "device == 'tablet'"),
    ("us", "country == 'US'"),
    ("europe", "country in ['DE', 'FR', 'GB']"),
    ("paid_plan", "plan in ['pro', 'team']"),
    ("free_plan", "plan == 'free'"),
    ("frequent_shoppers", "orders_90d >= 3"),
    ("first_time_buyers", "orders_90d == 1"),
    ("never_ordered", "orders_90d == 0"),
    ("cart_abandoners", "cart_abandons_30d >= 1 and orders_90d == 0"),
    ("vip", "revenue_90d >= 150 and orders_90d >= 2"),
    ("dormant", "days_since_last_login > 90"),
    ("recently_active", "days_since_last_login <= 7"),
    ("heavy_sessions", "sessions_30d >= 20"),
    ("light_sessions", "sessions_30d < 3"),
    ("search", "channel == 'search'"),
    ("social", "channel == 'social'"),
    ("email", "channel == 'email'"),
    ("mobile_us", "device == 'mobile' and country == 'US'"),
)

# Values of the customers' categorical columns (as ``build`` writes them) and
# thresholds of their numeric ones, from which ``segment_rules`` makes more segments.
_VALUES = {
    "device": ("mobile", "desktop", "tablet"),
    "country": ("US", "DE", "FR", "GB", "BR", "IN", "JP"),
    "channel": ("search", "social", "email", "direct"),
    "plan": ("free", "pro", "team"),
}
_CROSSES = (("device", "country"), ("plan", "channel"), ("device", "plan"), ("country", "channel"))
_THRESHOLDS = (
    ("days_since_last_login", ">", (14, 30, 60, 180)),
    ("sessions_30d", ">=", (5, 10, 40)),
    ("orders_90d", ">=", (2, 5)),
    ("revenue_90d", ">=", (50, 300)),
)
MAX_SEGMENTS = 100


def segment_rules(count: int = len(SEGMENTS)) -> tuple[tuple[str, str], ...]:
    """``count`` overlapping segments: the 20 of ``SEGMENTS``, then generated ones.

    The generated ones cross two categorical columns (``device == 'desktop' and
    country == 'DE'``), then put thresholds on numeric ones (``sessions_30d >= 10``):
    69 + 11, so at most 100 in all. Constants, not user text, like ``SEGMENTS``.
    """
    if not 1 <= count <= MAX_SEGMENTS:
        raise ValueError(f"segments: 1 to {MAX_SEGMENTS}, not {count}")
    rules = dict(SEGMENTS)
    for a, b in _CROSSES:
        for va in _VALUES[a]:
            for vb in _VALUES[b]:
                rules.setdefault(f"{va}_{vb}".lower(), f"{a} == '{va}' and {b} == '{vb}'")
    for column, op, cuts in _THRESHOLDS:
        for cut in cuts:
            rules[f"{column}_{'gt' if op == '>' else 'ge'}_{cut}"] = f"{column} {op} {cut}"
    return tuple(rules.items())[:count]


def folder_name(users: int, segments: int = len(SEGMENTS)) -> str:
    """The dataset folder of ``users`` users with ``segments`` segments (20: ``users-N``)."""
    tail = "" if segments == len(SEGMENTS) else f"-segments-{segments}"
    return f"users-{users}{tail}"


EXPERIMENT_YAML = f"""\
name: {EXPERIMENT}
control: control
arms: {{control: 0.5, treatment: 0.5}}
segments: segments.yaml
window: {{start: "{START.replace(" ", "T").replace("+00", "Z")}", days: {DAYS}}}
metrics:
  - {{name: conversion, kind: proportion, event: purchase}}
  - {{name: ctr, kind: ratio, numerator: {{event: click}}, denominator: {{event: impression}}}}
  - {{name: revenue, kind: mean, event: purchase, value: revenue, cap: {{quantile: 0.99}}}}
  - {{name: sessions, kind: mean, event: session}}
"""


def sql_rule(rule: str) -> str:
    """The SQL twin of one of the constant rules above."""
    for a, b in ((" == ", " = "), (" and ", " AND "), ("[", "("), ("]", ")")):
        rule = rule.replace(a, b)
    return rule


def build(folder: Path, users: int, segments: int = len(SEGMENTS)) -> None:
    """Write customers, assignments and events Parquet files and the YAML files."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    # u(k, s): a deterministic uniform in [0, 1) from a key and a stream number.
    con.execute("CREATE MACRO u(k, s) AS (hash(k, s) % 1000000007)::DOUBLE / 1000000007")
    con.execute(
        "CREATE MACRO activity(k) AS -ln(1 - u(k, 5))"  # exponential, mean 1
    )
    start = f"TIMESTAMPTZ '{START}'"
    con.execute(f"""
    COPY (
      SELECT 'u' || lpad(k::VARCHAR, 9, '0') AS user_id,
             {start} - to_days((u(k, 11) * 700)::INTEGER) AS signup_at,
             ['US', 'DE', 'FR', 'GB', 'BR', 'IN', 'JP'][1 + floor(u(k, 2) * 7)::INTEGER]
               AS country,
             CASE WHEN u(k, 1) < 0.55 THEN 'mobile' WHEN u(k, 1) < 0.9 THEN 'desktop'
                  ELSE 'tablet' END AS device,
             ['search', 'social', 'email', 'direct'][1 + floor(u(k, 3) * 4)::INTEGER]
               AS channel,
             CASE WHEN u(k, 4) < 0.6 THEN 'free' WHEN u(k, 4) < 0.9 THEN 'pro'
                  ELSE 'team' END AS plan,
             floor(-ln(1 - u(k, 6)) * activity(k))::BIGINT AS orders_90d,
             round(floor(-ln(1 - u(k, 6)) * activity(k)) * (20 + 80 * u(k, 7)), 2)
               AS revenue_90d,
             floor(activity(k) * 20 * u(k, 8))::BIGINT AS sessions_30d,
             least(floor(-ln(1 - u(k, 9)) * 40 / (activity(k) + 0.1)), 365)::BIGINT
               AS days_since_last_login,
             floor(-ln(1 - u(k, 10)) * 0.5 * activity(k))::BIGINT AS cart_abandons_30d
      FROM range({users}) r(k)
    ) TO '{folder}/customers.parquet' (FORMAT parquet, COMPRESSION zstd)""")
    con.execute(f"""
    COPY (
      SELECT 'u' || lpad(k::VARCHAR, 9, '0') AS user_id, '{EXPERIMENT}' AS experiment,
             CASE WHEN u(k, 20) < 0.5 THEN 'control' ELSE 'treatment' END AS arm,
             {start} + to_microseconds((u(k, 21) * 7 * 86400e6)::BIGINT) AS assigned_at
      FROM range({users}) r(k)
    ) TO '{folder}/assignments.parquet' (FORMAT parquet, COMPRESSION zstd)""")
    # Each event picks a user uniformly (Poisson(10) events per user); the user's
    # activity and arm shift its event mix. Revenue: log-normal via Box-Muller.
    con.execute(f"""
    COPY (
      WITH e AS (
        SELECT i, floor(u(i, 1) * {users})::BIGINT AS k, u(i, 2) AS r FROM range({
        users * EVENTS_PER_USER
    }) t(i)),
      p AS (
        SELECT i, k, r,
               0.04 * (1 + 0.05 * (u(k, 20) >= 0.5)::INTEGER) AS p_click,
               0.01 * (0.5 + least(activity(k), 3)) * (1 + 0.03 * (u(k, 20) >= 0.5)::INTEGER)
                 AS p_buy
        FROM e)
      SELECT 'u' || lpad(k::VARCHAR, 9, '0') AS user_id,
             {start} + to_microseconds(((u(i, 5) * 14.5 - 0.25) * 86400e6)::BIGINT) AS ts,
             CASE WHEN r < 0.45 THEN 'impression'
                  WHEN r < 0.45 + p_click THEN 'click'
                  WHEN r < 0.65 + p_click THEN 'session'
                  WHEN r < 0.68 + p_click THEN 'add_to_cart'
                  WHEN r < 0.68 + p_click + p_buy THEN 'purchase'
                  ELSE 'page_view' END AS event,
             CASE WHEN r >= 0.68 + p_click AND r < 0.68 + p_click + p_buy
                  THEN round(exp(3.2 + 0.9 * sqrt(-2 * ln(1 - u(i, 3)))
                                 * cos(2 * pi() * u(i, 4))), 2) END AS revenue
      FROM p
    ) TO '{folder}/events.parquet' (FORMAT parquet, COMPRESSION zstd)""")
    lines = ["segments:"]
    lines += [f'  - {{name: {name}, where: "{rule}"}}' for name, rule in segment_rules(segments)]
    (folder / "segments.yaml").write_text("\n".join(lines) + "\n")
    (folder / "experiment.yaml").write_text(EXPERIMENT_YAML)
    (folder / "done").write_text("ok\n")


def _per_user(folder: Path) -> str:
    """CTEs shared by both baselines: per-user measures joined to the customers, capped."""
    return f"""
    u AS (SELECT user_id, arm, assigned_at FROM read_parquet('{folder}/assignments.parquet')
          WHERE experiment = '{EXPERIMENT}'),
    pu AS (
      SELECT ev.user_id,
             count(*) FILTER (WHERE event = 'purchase') AS purchases,
             count(*) FILTER (WHERE event = 'click') AS clicks,
             count(*) FILTER (WHERE event = 'impression') AS imps,
             count(*) FILTER (WHERE event = 'session') AS sessions,
             sum(revenue) FILTER (WHERE event = 'purchase') AS rev
      FROM read_parquet('{folder}/events.parquet') ev JOIN u USING (user_id)
      WHERE ev.ts >= TIMESTAMPTZ '{START}' AND ev.ts < TIMESTAMPTZ '{START}' + INTERVAL {DAYS} DAY
        AND ev.ts >= u.assigned_at
      GROUP BY ev.user_id),
    t0 AS (
      SELECT u.arm, c.*, (coalesce(pu.purchases, 0) > 0)::DOUBLE AS conv,
             coalesce(pu.rev, 0)::DOUBLE AS rev, coalesce(pu.clicks, 0)::DOUBLE AS clicks,
             coalesce(pu.imps, 0)::DOUBLE AS imps, coalesce(pu.sessions, 0)::DOUBLE AS sess
      FROM u LEFT JOIN pu USING (user_id)
             LEFT JOIN read_parquet('{folder}/customers.parquet') c USING (user_id)),
    cap AS (SELECT quantile_cont(rev, 0.99) AS cap FROM t0),
    t AS (SELECT t0.* REPLACE (least(t0.rev, cap.cap) AS rev) FROM t0, cap)"""


def _stats(f: str, suffix: str) -> list[str]:
    return [
        f"count(*) {f} AS n{suffix}",
        *(
            f"avg({c}) {f} AS {c}_mean{suffix}, var_pop({c}) {f} AS {c}_var{suffix}"
            for c in ("conv", "rev", "clicks", "imps", "sess")
        ),
        f"covar_pop(clicks, imps) {f} AS ci_cov{suffix}",
    ]


def baseline_filter_sql(folder: Path, segments: int = len(SEGMENTS)) -> str:
    """``GROUP BY arm`` with one ``FILTER`` per segment (one pass over the users)."""
    aggs = _stats("", "_all")
    for i, (_, rule) in enumerate(segment_rules(segments)):
        aggs += _stats(f"FILTER (WHERE {sql_rule(rule)})", str(i))
    return f"WITH {_per_user(folder)} SELECT arm, {', '.join(aggs)} FROM t GROUP BY arm"


def baseline_group_sql(folder: Path, segments: int = len(SEGMENTS)) -> str:
    """``GROUP BY segment, arm`` over each user's unnested memberships of ``segments`` segments."""
    rules = segment_rules(segments)
    flags = ", ".join(["'all'"] + [f"CASE WHEN {sql_rule(r)} THEN '{n}' END" for n, r in rules])
    return f"""WITH {_per_user(folder)},
    m AS (SELECT t.*, unnest(list_filter([{flags}], lambda x: x IS NOT NULL)) AS segment FROM t)
    SELECT segment, arm, {", ".join(_stats("", ""))} FROM m GROUP BY segment, arm"""


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (DuckDB's threads included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def best_of(repeats: int, func: Callable[[], object]) -> tuple[float, float]:
    """The fastest wall-clock and the least CPU time of ``repeats`` runs of ``func``.

    CPU time is reported beside wall time because it hardly moves when other
    processes compete for the cores, which wall time does.
    """
    walls, cpus = [], []
    for _ in range(repeats):
        started, cpu = time.perf_counter(), cpu_seconds()
        func()
        walls.append(time.perf_counter() - started)
        cpus.append(cpu_seconds() - cpu)
    return min(walls), min(cpus)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cached_dataset(users: int, data: Path, segments: int = len(SEGMENTS)) -> Path:
    """``DATA/folder_name(...)``, built once by a child ``analyze.py --build-only``."""
    folder = data / folder_name(users, segments)
    if not (folder / "done").exists():
        print(f"building {users:,} users into {folder} (child process) ...", flush=True)
        started = time.perf_counter()
        child = [sys.executable, __file__, "--build-only", "--users", str(users)]
        child += ["--segments", str(segments)]
        subprocess.run([*child, "--data", str(data)], check=True)  # noqa: S603 (this script)
        size = sum(p.stat().st_size for p in folder.glob("*.parquet")) / 1e9
        print(f"  built in {time.perf_counter() - started:.1f} s ({size:.2f} GB of Parquet)")
    return folder


def cached_parser(doc: str) -> argparse.ArgumentParser:
    """``--users``, ``--repeats`` and ``--data`` (the dataset cache) for the scripts using it."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--segments",
        type=int,
        default=len(SEGMENTS),
        help=f"overlapping segments besides 'all', 1 to {MAX_SEGMENTS} (default: 20)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(tempfile.gettempdir()) / "seglift-bench",
        help="cache folder; the dataset lives in DATA/users-N (default: TMPDIR/seglift-bench)",
    )
    return parser


def run_on_cached(doc: str, measure: Callable[[Path, int], None]) -> None:
    """The command line of a script that times ``measure(folder, repeats)`` on the cached data."""
    args = cached_parser(doc).parse_args()
    measure(cached_dataset(args.users, args.data, args.segments), args.repeats)


def main() -> None:
    parser = cached_parser(__doc__ or "")
    parser.add_argument(
        "--filter-baseline",
        action="store_true",
        help="also time the GROUP BY arm + FILTER form of the baseline (slower)",
    )
    parser.add_argument(
        "--memory-limit",
        help="DuckDB memory_limit for seglift's connection, e.g. 1.5GiB (default: seglift's bound)",
    )
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    folder = args.data / folder_name(args.users, args.segments)
    if args.build_only:
        build(folder, args.users, args.segments)
        return
    cached_dataset(args.users, args.data, args.segments)
    measure(
        folder,
        args.repeats,
        filter_baseline=args.filter_baseline,
        memory_limit=args.memory_limit,
        segments=args.segments,
    )


def measure(
    folder: Path,
    repeats: int,
    *,
    filter_baseline: bool,
    memory_limit: str | None,
    segments: int = len(SEGMENTS),
) -> None:
    """Time seglift, then the baseline(s), in this process; print times, ratios, peak RSS."""
    import duckdb

    from experiment.analysis import analyze_cells
    from experiment.config import load_experiment
    from experiment.engine import aggregate
    from experiment.engine.dataset import open_dataset
    from segments import load_segments

    con = duckdb.connect()
    n_users, n_events = (
        con.execute(f"SELECT count(*) FROM read_parquet('{folder}/{name}.parquet')").fetchall()[0][
            0
        ]
        for name in ("customers", "events")
    )
    config = load_experiment(folder / "experiment.yaml")
    assert config.segments is not None
    segment_set = load_segments(config.segments)

    rss_start = peak_rss_mb()
    box: dict[str, Any] = {}

    def seglift() -> None:
        dataset = open_dataset(folder, memory_limit=memory_limit)
        cells = aggregate(dataset, config, segment_set)
        box["results"] = analyze_cells(cells, config, segment_set)
        box["cells"] = cells

    for name in ("assignments", "customers", "events"):  # warm the OS cache, in little memory
        con.execute(
            f"SELECT count(*) FROM read_parquet('{folder}/{name}.parquet') t "
            "WHERE hash(COLUMNS(*)) = 0"
        ).fetchall()
    rss_warm = peak_rss_mb()
    t_ours, c_ours = best_of(repeats, seglift)
    t_stats, _ = best_of(5, lambda: analyze_cells(box["cells"], config, segment_set))
    rss_ours = peak_rss_mb()

    sql_group = baseline_group_sql(folder, segments)
    base = {"GROUP BY segment, arm (unnest)": best_of(repeats, lambda: run(con, sql_group))}
    if filter_baseline:
        sql_filter = baseline_filter_sql(folder, segments)
        base["GROUP BY arm + FILTER/segment"] = best_of(repeats, lambda: run(con, sql_filter))
    con.close()
    t_base = min(w for w, _ in base.values())
    c_base = min(c for _, c in base.values())
    rss_base = peak_rss_mb()
    print(
        f"dataset: {n_users:,} users, {n_events:,} events, {segments + 1} segments (all "
        f"included) x {len(config.metrics)} metrics; best of {repeats}; seglift's DuckDB "
        f"memory_limit: {memory_limit or 'default (40% of RAM, at most 1.5 GiB)'}"
    )
    print(f"{'':38} {'wall':>8} {'ratio':>6} {'cpu':>8} {'ratio':>6}")
    for name, (wall, cpu) in base.items():
        print(
            f"bare DuckDB, {name:25} {wall:7.2f}s {wall / t_base:5.2f}x {cpu:7.2f}s "
            f"{cpu / c_base:5.2f}x"
        )
    print(
        f"{'seglift aggregate + analyze_cells':38} {t_ours:7.2f}s {t_ours / t_base:5.2f}x "
        f"{c_ours:7.2f}s {c_ours / c_base:5.2f}x"
    )
    print(f"  of which analyze_cells alone       {t_stats:8.3f}s")
    print(
        f"peak RSS (ru_maxrss): {rss_start:.0f} MB at start, {rss_warm:.0f} MB after the "
        f"warm-up scan, {rss_ours:.0f} MB after seglift, {rss_base:.0f} MB after the baseline"
    )
    ok = t_ours / t_base <= 1.5 and rss_ours <= 2048
    print(f"targets (wall ratio <= 1.5x, seglift peak RSS <= 2048 MB): {'met' if ok else 'MISSED'}")


def run(con: Any, sql: str) -> None:
    """Run a query to the end, fetching its (small) result."""
    con.execute(sql).fetchall()


if __name__ == "__main__":
    main()
