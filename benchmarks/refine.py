"""Benchmark: `exp refine` finds a planted split, proposes nothing on null data, and is fast.

Three parts, each on simulated datasets (``simulators``; cached under ``--data``,
default ``$TMPDIR/seglift-bench-refine``, and reused when present):

1. ``split``: the ``split`` scenario (the effect exists only for
   ``price_sensitivity >= 0.5`` inside the ``engaged`` segment), ``--seeds``
   datasets of ``--users`` users x ``--days`` days. The planted segment,
   attribute and threshold are read from the scenario's effect ``where:`` rule.
   Per seed, the planted segment's split proposal (the best cut found on the
   discovery half) is a hit when it uses the planted attribute, and a threshold
   hit when its threshold is also within 10% of the planted one. Targets: >= 80%
   of seeds for both.
2. ``null``: the ``aa`` (no effect) and ``uniform`` (one homogeneous +15%
   purchase effect) scenarios, ``--seeds`` datasets each. The share of split and
   threshold proposals whose held-out interaction test is significant after the
   correction (target <= 10%), and the share of seeds with any. Merge proposals
   are reported apart: for a merge "significant" means "equivalent", which is
   the right answer on these scenarios, not a false discovery.
3. ``runtime``: ``refine`` on ``--big-users`` users (``split`` scenario,
   ``--days`` days) over 20 attributes: the simulated customers table's 17
   non-constant attribute columns plus three derived ones added to a copy of
   the customers table by this benchmark (``tenure_days``, ``signup_quarter``,
   ``clicks_per_session_30d``; see ``_with_derived``), timed from
   ``open_dataset`` to the returned ``Refinement`` (target < 60 s on 2 cores).
   Beside it, a bare DuckDB baseline in the same process on the same Parquet
   files: hand-written SQL that builds the per-user conversion table
   (in-window events after assignment, the four segments' flags, the
   discovery/estimation half from the same md5 hash), takes the 1st to 99th
   percentiles of every numeric attribute on the discovery half, then runs one
   ``GROUP BY arm, half, bin`` per attribute with a FILTER-ed count, mean and
   variance per segment, i.e. the engine work ``refine`` cannot avoid. The
   ratio is ``refine / baseline``.

    python benchmarks/refine.py                              # all parts, 50 seeds, 200k users
    python benchmarks/refine.py --part split --seeds 10      # a quicker look
    python benchmarks/refine.py --part runtime --big-users 1000000
"""

from __future__ import annotations

import argparse
import hashlib
import math
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from experiment.results.refinement import Proposal, Refinement

PARTS = ("split", "null", "runtime")
NULL_SCENARIOS = ("aa", "uniform")
THRESHOLD_TOLERANCE = 0.10  # relative, per issue 8
# The split scenario's segments in SQL for the baseline (constants, not user text);
# checked against the scenario's segments file before use.
SPLIT_SEGMENTS_SQL = {
    "engaged": ("sessions_30d >= 8", "sessions_30d >= 8"),
    "casual": ("sessions_30d >= 1 and sessions_30d < 8", "sessions_30d >= 1 AND sessions_30d < 8"),
    "lapsing": (
        "sessions_30d == 0 and days_since_last_login <= 90",
        "sessions_30d = 0 AND days_since_last_login <= 90",
    ),
    "dormant": ("days_since_last_login > 90", "days_since_last_login > 90"),
}
_PERCENTILES = [p / 100 for p in range(1, 100)]


@dataclass(frozen=True)
class Planted:
    """The planted split of a scenario: ``attribute >= threshold`` inside ``segment``."""

    segment: str
    attribute: str
    op: str
    threshold: float


def planted_split(scenario: str) -> Planted:
    """Read the planted split from the scenario's one effect with a ``where:`` rule."""
    from segments.rules import Column, Compare, Const, parse_rule
    from simulators import load_scenario

    effects = [e for e in load_scenario(scenario).config.effects if e.where is not None]
    if len(effects) != 1:
        raise SystemExit(f"{scenario}: expected one effect with a where rule, got {len(effects)}")
    node = parse_rule(str(effects[0].where))
    if not (
        isinstance(node, Compare)
        and isinstance(node.left, Column)
        and isinstance(node.right, Const)
        and isinstance(node.right.value, int | float)
    ):
        raise SystemExit(f"{scenario}: the where rule is not 'column <op> number'")
    return Planted(effects[0].segment, node.left.name, node.op, float(node.right.value))


def dataset(cache: Path, scenario: str, *, users: int, days: int, seed: int) -> Path:
    """The simulated dataset folder, simulated on first use."""
    from simulators import load_scenario, simulate

    loaded = load_scenario(scenario)
    digest = hashlib.md5(usedforsecurity=False)
    for path in (loaded.folder / "scenario.yaml", loaded.segments_path, loaded.experiment_path):
        digest.update(path.read_bytes())
    # the files' hash in the name: a changed scenario is simulated afresh
    folder = cache / f"{scenario}-{digest.hexdigest()[:8]}-{users}u-{days}d-s{seed}"
    if not (folder / "truth.json").is_file():
        simulate(scenario, users=users, days=days, seed=seed, out=folder)
    return folder


def run_refine(
    folder: Path, *, seed: int, attributes: list[str] | None = None
) -> tuple[Refinement, float]:
    """``refine`` on a dataset folder with its own experiment file; returns it and seconds."""
    from experiment.config import load_experiment
    from experiment.engine.dataset import open_dataset
    from segments import load_segments
    from segments.refine import refine

    config = load_experiment(folder / "experiment.yaml")
    segment_set = load_segments(config.segments) if config.segments is not None else None
    started = time.perf_counter()
    result = refine(open_dataset(folder), config, segment_set, seed=seed, attributes=attributes)
    return result, time.perf_counter() - started


@dataclass
class Checks:
    """Issue 18's refine checks over many results: repeated cuts, threshold moves."""

    families: int = 0
    duplicates: int = 0
    thresholds: int = 0
    not_nested: int = 0
    max_ratio: float = 1.0

    def add(self, folder: Path, result: Refinement) -> None:
        """Count repeated cuts and threshold moves that change more than their cut implies.

        A moved bound only adds or removes the users between the old and the new
        cut-off: the new segment and the old one are nested (one holds the other)
        and their sizes differ by exactly the users in one but not the other.
        """
        from segments.refine.distinct import cut_key

        self.families += 1
        keys = [cut_key(p) for p in result.proposals if p.kind != "merge"]
        self.duplicates += len(keys) - len(set(keys))
        for p in result.proposals:
            if p.kind != "threshold":
                continue
            old, new, both = _sizes(folder, p.segment, p.new_segments[0].where)
            self.thresholds += 1
            self.not_nested += both != min(old, new)
            self.max_ratio = max(self.max_ratio, max(old, new) / max(min(old, new), 1))

    def show(self) -> None:
        """Print the checks."""
        print(f"families (results) checked: {self.families}; repeated cuts: {self.duplicates}")
        print(
            f"threshold proposals: {self.thresholds}; not nested in their segment "
            f"(a change beyond the cut): {self.not_nested}; largest size ratio "
            f"new/old or old/new: {self.max_ratio:.2f} (cap 2)"
        )


def _sizes(folder: Path, segment: str, where: str) -> tuple[int, int, int]:
    """Customers in the original segment, in the moved rule, and in both (the engine's rules)."""
    from experiment.engine.dataset import open_dataset
    from segments import load_segments
    from segments.compile import Compiler
    from segments.rules import parse_rule

    seg = load_segments(folder / "segments.yaml")
    customers = open_dataset(folder).customers
    compiler = Compiler(customers, as_of=None, segment_set=seg)
    rule = next(s.rule for s in seg.segments if s.name == segment)
    old = compiler.rule(rule).fill_null(False)  # type: ignore[arg-type]
    new = compiler.rule(parse_rule(where)).fill_null(False)
    row = (
        customers.aggregate(
            old=old.cast("int64").sum(),
            new=new.cast("int64").sum(),
            both=(old & new).cast("int64").sum(),
        )
        .to_pyarrow()
        .to_pylist()[0]
    )
    return int(row["old"]), int(row["new"]), int(row["both"])


def _share(hits: int, n: int) -> str:
    """``k/n = p%`` with a Wilson 95% interval (https://doi.org/10.1080/01621459.1927.10502953)."""
    if n == 0:
        return "0/0"
    z, p = 1.959964, hits / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (
        f"{hits}/{n} = {100 * p:.0f}% [95% CI {100 * (mid - half):.0f}-{100 * (mid + half):.0f}%]"
    )


def _split_of(result: Refinement, segment: str) -> Proposal | None:
    return next((p for p in result.proposals if p.kind == "split" and p.segment == segment), None)


def part_split(cache: Path, *, seeds: int, users: int, days: int, first: int = 0) -> None:
    """Part 1: does the planted segment's split proposal find the planted attribute and cut?"""
    truth = planted_split("split")
    print(
        f"\n== 1. planted split: {truth.segment}: {truth.attribute} {truth.op} {truth.threshold:g}"
        f" ({seeds} seeds x {users:,} users x {days} days) =="
    )
    attr_hits = thr_hits = significant = 0
    seconds: list[float] = []
    checks = Checks()
    for seed in range(first, first + seeds):
        folder = dataset(cache, "split", users=users, days=days, seed=seed)
        result, took = run_refine(folder, seed=seed)
        checks.add(folder, result)
        seconds.append(took)
        prop = _split_of(result, truth.segment)
        attr = prop is not None and prop.attribute == truth.attribute
        thr = (
            attr
            and prop is not None
            and prop.threshold is not None
            and abs(prop.threshold - truth.threshold) <= THRESHOLD_TOLERANCE * truth.threshold
        )
        attr_hits += attr
        thr_hits += thr
        significant += bool(attr and prop is not None and prop.significant)
        found = (
            "no split proposal"
            if prop is None
            else f"{prop.attribute} @ {prop.threshold} (z_disc {prop.discovery_z:+.2f}, "
            f"p_adj {prop.p_adjusted:.3g}{', significant' if prop.significant else ''})"
        )
        mark = "hit" if thr else ("attribute only" if attr else "miss")
        print(f"seed {seed:3d}: {found}: {mark}  [{took:.1f}s]", flush=True)
    print(f"planted attribute found:               {_share(attr_hits, seeds)}  (target >= 80%)")
    print(f"... and threshold within 10%:          {_share(thr_hits, seeds)}  (target >= 80%)")
    print(f"... and significant on estimation half: {_share(significant, seeds)}")
    print(f"refine time per run: median {sorted(seconds)[len(seconds) // 2]:.1f}s")
    checks.show()


def _null_counts(results: list[Refinement]) -> tuple[int, int, int, int, int]:
    tests = sig = seeds_any = merges = merge_sig = 0
    for result in results:
        tested = [p for p in result.proposals if p.kind in ("split", "threshold")]
        hits = sum(p.significant for p in tested)
        tests, sig, seeds_any = tests + len(tested), sig + hits, seeds_any + (hits > 0)
        merged = [p for p in result.proposals if p.kind == "merge"]
        merges, merge_sig = merges + len(merged), merge_sig + sum(p.significant for p in merged)
    return tests, sig, seeds_any, merges, merge_sig


def part_null(
    cache: Path, *, seeds: int, users: int, days: int, scenarios: tuple[str, ...] = NULL_SCENARIOS
) -> None:
    """Part 2: how often does a proposal reach significance where there is nothing to find?"""
    for scenario in scenarios:
        print(f"\n== 2. {scenario}: {seeds} seeds x {users:,} users x {days} days ==")
        results = []
        checks = Checks()
        for seed in range(seeds):
            folder = dataset(cache, scenario, users=users, days=days, seed=seed)
            result, took = run_refine(folder, seed=seed)
            checks.add(folder, result)
            results.append(result)
            shown = [
                f"{p.segment}:{p.attribute or p.kind}" + ("*" if p.significant else "")
                for p in result.proposals
                if p.kind != "merge"
            ]
            print(f"seed {seed:3d}: {' '.join(shown)}  [{took:.1f}s]", flush=True)
        tests, sig, seeds_any, merges, merge_sig = _null_counts(results)
        print(
            f"{scenario}: split/threshold proposals significant: {_share(sig, tests)}"
            "  (target <= 10%)"
        )
        print(f"{scenario}: seeds with any significant split/threshold: {_share(seeds_any, seeds)}")
        print(f"{scenario}: merges found equivalent (correct here): {_share(merge_sig, merges)}")
        checks.show()


def _baseline(folder: Path, attributes: list[str], seed: int, *, verbose: bool = True) -> float:
    """Seconds of the bare DuckDB equivalent of refine's engine work (see the module doc)."""
    import duckdb

    from experiment.config import load_experiment
    from segments import load_segments

    config = load_experiment(folder / "experiment.yaml")
    segments = load_segments(folder / "segments.yaml")
    rules = {s.name: s.where for s in segments.segments}
    if rules != {k: v[0] for k, v in SPLIT_SEGMENTS_SQL.items()}:
        raise SystemExit("the split scenario's segments changed; update SPLIT_SEGMENTS_SQL")
    start = _start(folder)
    salt = config.assignment_salt.replace("'", "''")
    flags = ", ".join(f"({sql})::BOOLEAN AS seg_{k}" for k, (_, sql) in SPLIT_SEGMENTS_SQL.items())
    groups = ["all", *SPLIT_SEGMENTS_SQL]
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    lap = started
    con.execute(f"""
    CREATE TEMP TABLE s AS
    WITH a AS (SELECT user_id, arm, assigned_at FROM read_parquet('{folder}/assignments.parquet')
               WHERE experiment = '{config.name}'),
    pu AS (SELECT e.user_id, count(*) AS purchases
           FROM read_parquet('{folder}/events.parquet') e JOIN a USING (user_id)
           WHERE e.event = 'purchase' AND e.ts >= a.assigned_at
             AND e.ts >= TIMESTAMPTZ '{start}'
             AND e.ts < TIMESTAMPTZ '{start}' + INTERVAL {config.window.days} DAY
           GROUP BY e.user_id)
    SELECT (a.arm = 'treatment')::TINYINT AS arm,
           (substr(md5('refine:{salt}:{seed}:' || a.user_id), 1, 1) >= '8')::TINYINT AS half,
           (coalesce(pu.purchases, 0) > 0)::DOUBLE AS y, TRUE AS seg_all, {flags},
           {", ".join(f"c.{name}" for name in attributes)}
    FROM a LEFT JOIN pu USING (user_id)
           LEFT JOIN read_parquet('{folder}/customers.parquet') c USING (user_id)""")
    if verbose:
        print(f"  baseline per-user table: {time.perf_counter() - lap:.2f}s")
        lap = time.perf_counter()
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE s)").fetchall())
    numeric = [a for a in attributes if types[a] not in ("VARCHAR", "BOOLEAN")]
    quantiles = ", ".join(
        f"quantile_cont({a}::DOUBLE, {_PERCENTILES}) FILTER (WHERE half = 0)" for a in numeric
    )
    edges = dict(
        zip(numeric, con.execute(f"SELECT {quantiles} FROM s").fetchone() or (), strict=True)
    )
    if verbose:
        print(f"  baseline percentiles: {time.perf_counter() - lap:.2f}s")
        lap = time.perf_counter()
    aggs = ", ".join(
        f"count(*) FILTER (WHERE seg_{g}), avg(y) FILTER (WHERE seg_{g}), "
        f"var_pop(y) FILTER (WHERE seg_{g})"
        for g in groups
    )
    for name in attributes:
        if name in edges:
            cuts = sorted(set(edges[name]))
            bin_sql = (
                "CASE "
                + " ".join(f"WHEN {name} < {c!r} THEN {i}" for i, c in enumerate(cuts))
                + f" ELSE {len(cuts)} END"
            )
        else:
            bin_sql = name
        con.execute(
            f"SELECT arm, half, {bin_sql} AS bin, {aggs} FROM s WHERE {name} IS NOT NULL "
            "GROUP BY ALL"
        ).fetchall()
    if verbose:
        print(f"  baseline {len(attributes)} GROUP BYs: {time.perf_counter() - lap:.2f}s")
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def _with_derived(folder: Path) -> Path:
    """A copy of the dataset whose customers have three derived attribute columns.

    The simulated customers have 20 attribute columns, but three are constant in
    the e-commerce population (``company_size``, ``feature_uses_30d``,
    ``premium_feature_uses_30d``: nothing to cut), so three columns derived from
    the others make 20 usable attributes: ``tenure_days`` (days since signup),
    ``signup_quarter`` (categorical, e.g. ``2025Q3``) and
    ``clicks_per_session_30d`` (null without a session). The other files are links.
    """
    import duckdb

    out = folder.with_name(folder.name + "-derived")
    if (out / "customers.parquet").is_file():
        return out
    out.mkdir(exist_ok=True)
    for name in ("events.parquet", "assignments.parquet", "segments.yaml", "truth.json"):
        if not (out / name).exists():
            (out / name).symlink_to(folder / name)
    (out / "experiment.yaml").write_text((folder / "experiment.yaml").read_text())
    con = duckdb.connect()
    con.execute(f"""COPY (
        SELECT *, date_diff('second', signup_at, TIMESTAMPTZ '{_start(folder)}') / 86400.0
                  AS tenure_days,
               strftime(signup_at, '%Y') || 'Q' || quarter(signup_at) AS signup_quarter,
               clicks_30d / nullif(sessions_30d, 0) AS clicks_per_session_30d
        FROM read_parquet('{folder}/customers.parquet')
    ) TO '{out}/customers.parquet' (FORMAT parquet, COMPRESSION zstd)""")
    con.close()
    return out


def _start(folder: Path) -> str:
    from experiment.config import load_experiment

    start = load_experiment(folder / "experiment.yaml").window.start
    if start is None:
        raise SystemExit(f"{folder}: the experiment file has no window start")
    return start.isoformat()


def _customer_attributes(folder: Path) -> list[str]:
    """Every customers column but the id and timestamps, and but constant ones."""
    import duckdb

    con = duckdb.connect()
    table = f"read_parquet('{folder}/customers.parquet')"
    rows = con.execute(f"DESCRIBE SELECT * FROM {table}").fetchall()
    names = [r[0] for r in rows if r[0] != "user_id" and not r[1].startswith("TIMESTAMP")]
    counts = con.execute(
        "SELECT " + ", ".join(f"approx_count_distinct({n})" for n in names) + f" FROM {table}"
    ).fetchone()
    con.close()
    return [n for n, k in zip(names, counts or (), strict=True) if k > 1]


def part_runtime(cache: Path, *, users: int, days: int) -> None:
    """Part 3: refine on ``users`` users and 20 attributes, against a bare DuckDB baseline."""
    print(f"\n== 3. runtime: split scenario, {users:,} users x {days} days ==")
    folder = _with_derived(dataset(cache, "split", users=users, days=days, seed=0))
    attributes = _customer_attributes(folder)
    print(
        f"attributes ({len(attributes)}; 3 derived columns added, see _with_derived): "
        f"{', '.join(attributes)}"
    )
    base = _baseline(folder, attributes, seed=0)
    result, took = run_refine(folder, seed=0, attributes=attributes)
    print(f"bare DuckDB baseline: {base:.1f}s")
    print(f"refine:               {took:.1f}s  (target < 60 s; {took / base:.1f}x the baseline)")
    print(f"  {result.candidates:,} candidates, {len(result.proposals)} proposals")
    for prop in result.proposals:
        print(f"  {prop.summary}")


def _prepare(
    cache: Path, parts: list[str], *, seeds: int, users: int, days: int, big_users: int
) -> None:
    """Simulate every dataset the chosen parts need (refine is not run)."""
    if "runtime" in parts:
        print(dataset(cache, "split", users=big_users, days=days, seed=0), flush=True)
    scenarios = (["split"] if "split" in parts else []) + (
        list(NULL_SCENARIOS) if "null" in parts else []
    )
    for seed in range(seeds):
        for scenario in scenarios:
            print(dataset(cache, scenario, users=users, days=days, seed=seed), flush=True)


def _parts(value: str) -> Iterator[str]:
    for part in value.split(","):
        if part not in PARTS:
            raise argparse.ArgumentTypeError(f"unknown part {part!r}; parts: {', '.join(PARTS)}")
        yield part


def main(argv: list[str] | None = None) -> None:
    """Run the chosen parts and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", default=",".join(PARTS), help=f"comma list of {PARTS}")
    parser.add_argument("--seeds", type=int, default=50, help="datasets per scenario")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed of part 1")
    parser.add_argument("--users", type=int, default=200_000, help="users per dataset (parts 1-2)")
    parser.add_argument("--days", type=int, default=14, help="simulated days")
    parser.add_argument(
        "--null-scenarios", default=",".join(NULL_SCENARIOS), help="scenarios of part 2"
    )
    parser.add_argument("--big-users", type=int, default=1_000_000, help="users of part 3")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(tempfile.gettempdir()) / "seglift-bench-refine",
        help="cache of simulated datasets (reused when present)",
    )
    parser.add_argument(
        "--prepare", action="store_true", help="only simulate the datasets the parts need"
    )
    args = parser.parse_args(argv)
    parts: list[str] = list(_parts(args.part))
    args.data.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.prepare:
        _prepare(
            args.data,
            parts,
            seeds=args.seeds,
            users=args.users,
            days=args.days,
            big_users=args.big_users,
        )
        return
    if "split" in parts:
        part_split(
            args.data, seeds=args.seeds, users=args.users, days=args.days, first=args.first_seed
        )
    if "null" in parts:
        part_null(
            args.data,
            seeds=args.seeds,
            users=args.users,
            days=args.days,
            scenarios=tuple(args.null_scenarios.split(",")),
        )
    if "runtime" in parts:
        part_runtime(args.data, users=args.big_users, days=args.days)
    print(f"\n(total {time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
