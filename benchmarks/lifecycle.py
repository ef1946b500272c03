"""Benchmark: calibration of the lifecycle analysis on simulated experiments (issue 19).

Three Monte-Carlo checks, each over ``--seeds`` simulated experiments of ``--users``
customers, every one analysed by the engine (``lifecycle_counts``) and the stats
(``analyze_lifecycle``) exactly as ``exp analyze`` does, against ``truth.json``:

1. ``lifecycle`` scenario (reactivation planted in at_risk and dormant customers,
   churn halved in active ones), ``--days`` days: coverage of the 95% intervals of
   every migration effect (stage at the start -> stage at the window end) and
   every survival difference, for all cells and for the planted (non-zero) ones,
   and how often each planted move is significant after Holm (also the rule
   segments of :data:`RULES` joining, followed by ``migration_segments``);
2. ``aa`` (no effect) with the same lifecycle block: the unadjusted false-positive
   rate of the migration (stages and :data:`RULES`) and of the survival tests
   (target 5 +- 1.5%; survival cells where an arm expects under 5 events are not tested);
3. ``lifecycle`` simulated ``--ltv-days`` days (90) and analysed on the first
   ``--ltv-window`` (28): the projected 90-day value per customer against the true
   90-day value (both potential outcomes): bias and 95% coverage, per arm and for the
   treatment effect, in ``all`` and each stage.

    python benchmarks/lifecycle.py                           # 200 seeds, 10k users
    python benchmarks/lifecycle.py --seeds 20 --users 5000   # a quick look
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
Z = 1.959963984540054


def _scenario_with_block(name: str, folder: Path) -> Path:
    """A copy of a built-in scenario whose experiment file has a lifecycle block."""
    import yaml

    from simulators.catalog import load_scenario

    source = load_scenario(name).folder
    target = folder / f"{name}-lifecycle"
    shutil.copytree(source, target, dirs_exist_ok=True)
    exp = yaml.safe_load((target / "experiment.yaml").read_text())
    exp.setdefault("lifecycle_analysis", {"retention_days": [7, 14], "ltv_horizons": [90]})
    (target / "experiment.yaml").write_text(yaml.safe_dump(exp))
    return target


RULES = {  # rule segments followed by migration_segments: a recency and a rolling-count rule
    "recent": "days_since_last_login < 14",
    "buyer_90d": "orders_90d >= 1",
}


def _with_rules(folder: Path, config: Any) -> tuple[Any, Any]:
    """The config following :data:`RULES` too, and the segments file with them added."""
    import yaml

    from segments import load_segments

    assert config.segments is not None
    assert config.lifecycle_analysis is not None
    spec = yaml.safe_load(Path(config.segments).read_text())
    spec["segments"] += [{"name": n, "where": w} for n, w in RULES.items()]
    path = folder / "segments-rules.yaml"
    path.write_text(yaml.safe_dump(spec))
    block = config.lifecycle_analysis.model_copy(update={"migration_segments": list(RULES)})
    config = config.model_copy(update={"lifecycle_analysis": block, "segments": path})
    return config, load_segments(path)


def _analyse(
    folder: Path, window: int | None = None, *, rules: bool = False
) -> tuple[Any, Any, dict[str, Any]]:
    from experiment.analysis.lifecycle import analyze_lifecycle
    from experiment.config import load_experiment
    from experiment.engine.dataset import open_dataset
    from experiment.engine.lifecycle import lifecycle_counts
    from segments import load_segments

    config = load_experiment(folder / "experiment.yaml")
    if window is not None:
        config = config.model_copy(
            update={"window": config.window.model_copy(update={"days": window})}
        )
    assert config.lifecycle_analysis is not None
    assert config.segments is not None
    assert config.window.start is not None
    if rules:
        config, segment_set = _with_rules(folder, config)
    else:
        segment_set = load_segments(config.segments)
    dataset = open_dataset(folder)
    try:
        counts = lifecycle_counts(dataset, config, segment_set, start=config.window.start)
    finally:
        dataset.con.disconnect()
    spec = config.lifecycle_analysis
    block = analyze_lifecycle(
        counts,
        control=config.control,
        alpha=0.05,
        correction="holm",
        retention_days=spec.retention_days,
        horizons=spec.ltv_horizons,
    )
    truth = json.loads((folder / "truth.json").read_text()).get("lifecycle") or {}
    return counts, block, truth


def _covered(low: float, high: float, truth: float) -> bool:
    return bool(low <= truth <= high)


def check_planted(args: argparse.Namespace, work: Path) -> None:
    from simulators import simulate

    tally: dict[str, list[bool]] = defaultdict(list)
    power: dict[str, list[bool]] = defaultdict(list)
    truths: dict[str, list[float]] = defaultdict(list)
    effects: dict[str, list[float]] = defaultdict(list)  # rule segments: no truth, the estimate
    started = time.perf_counter()
    for seed in range(args.seeds):
        out = work / "planted"
        simulate("lifecycle", users=args.users, days=args.days, seed=seed, out=out)
        _, block, truth = _analyse(out, rules=True)
        moves = {
            (t["segment"], t["to"]): t["effect"]
            for t in truth["migration"]
            if t["day"] == args.days
        }
        for r in block.migration:
            if r.day != args.days or not np.isfinite(r.ci_low):
                continue
            true = moves[r.segment, r.to]
            kind = "planted" if true != 0 else "zero"
            tally[f"migration, {kind}"].append(_covered(r.ci_low, r.ci_high, true))
            if r.segment in ("at_risk", "dormant", "active") and r.to in (
                "active",
                "at_risk",
                "dormant",
            ):
                power[f"{r.segment} -> {r.to}"].append(r.significant)
                truths[f"{r.segment} -> {r.to}"].append(true)
        for r in block.segment_migration:
            if r.day == args.days and r.start == "not_member" and r.to == "member":
                power[f"{r.segment}: joins"].append(r.significant)
                effects[f"{r.segment}: joins"].append(r.effect)
        curves = {(t["curve"], t["segment"], t["day"]): t["effect"] for t in truth["survival"]}
        for r in block.survival:
            if np.isfinite(r.ci_low) and r.segment not in RULES:
                true = curves[r.curve, r.segment, r.day]
                kind = "planted" if true != 0 else "zero"
                tally[f"survival {r.curve}, {kind}"].append(_covered(r.ci_low, r.ci_high, true))
        _progress("planted", seed, args.seeds, started)
    print(f"\n1. lifecycle scenario, {args.seeds} seeds x {args.users:,} users x {args.days} days")
    for name, hits in sorted(tally.items()):
        print(f"   95% coverage, {name:32} {np.mean(hits):6.1%}  ({len(hits):,} intervals)")
    for name, hits in sorted(power.items()):
        if name in truths:
            what = f"mean truth {np.mean(truths[name]):+.4f}"
        else:
            what = f"mean estimate {np.mean(effects[name]):+.4f}, rule segment"
        print(f"   significant after Holm, {name:22} {np.mean(hits):6.1%}  ({what})")


def check_aa(args: argparse.Namespace, work: Path) -> None:
    from simulators import simulate

    scenario = _scenario_with_block("aa", work)
    rejections: dict[str, list[bool]] = defaultdict(list)
    started = time.perf_counter()
    for seed in range(args.seeds):
        out = work / "aa"
        simulate(scenario, users=args.users, days=args.days, seed=seed, out=out)
        _, block, _ = _analyse(out, rules=True)
        for r in block.migration:
            if r.day == args.days and np.isfinite(r.p_value):
                rejections["migration"].append(r.p_value < 0.05)
        for r in block.segment_migration:  # one of each complementary pair: the same test
            if r.day == args.days and r.to == "member" and np.isfinite(r.p_value):
                rejections[f"segment migration {r.segment}"].append(r.p_value < 0.05)
        for r in block.survival:
            if np.isfinite(r.p_value):
                rejections[f"survival {r.curve}"].append(r.p_value < 0.05)
        _progress("aa", seed, args.seeds, started)
    print(
        f"\n2. aa + lifecycle block, {args.seeds} seeds x {args.users:,} users x {args.days} days"
    )
    for name, hits in sorted(rejections.items()):
        se = np.sqrt(0.05 * 0.95 / len(hits))
        rate = np.mean(hits)
        print(
            f"   false-positive rate, {name:22} {rate:6.2%}  ({len(hits):,} tests, MC se {se:.2%})"
        )


def check_value(args: argparse.Namespace, work: Path) -> None:
    from experiment.stats.ltv import project_value
    from simulators import simulate

    horizon = args.ltv_days
    errors: dict[str, list[float]] = defaultdict(list)
    hits: dict[str, list[bool]] = defaultdict(list)
    started = time.perf_counter()
    for seed in range(args.ltv_seeds):
        out = work / "value"
        simulate("lifecycle", users=args.users, days=horizon, seed=seed, out=out)
        counts, block, truth = _analyse(out, window=args.ltv_window)
        proj = project_value(counts.spend, window=counts.window_days, horizon=horizon)
        true = {(t["segment"]): t for t in truth["value"] if t["horizon"] == horizon}
        c = counts.arms.index("control")
        for si, segment in enumerate(counts.segments):
            t = true[segment]
            for a, arm in enumerate(counts.arms):
                key = t["mean_control"] if a == c else t["mean_treatment"]
                value, se = proj.value[si, a], np.sqrt(proj.variance[si, a])
                if np.isfinite(value) and key > 0:
                    errors[f"{segment}, {arm}"].append((value - key) / key)
                    hits[f"{segment}, {arm}"].append(_covered(value - Z * se, value + Z * se, key))
        for r in block.value:
            if r.horizon == horizon and np.isfinite(r.ci_low):
                t = true[r.segment]
                errors[f"{r.segment}, effect"].append(r.effect - t["effect"])
                hits[f"{r.segment}, effect"].append(_covered(r.ci_low, r.ci_high, t["effect"]))
        _progress("value", seed, args.ltv_seeds, started)
    print(
        f"\n3. value projection: simulate {horizon} days, analyse the first {args.ltv_window}; "
        f"{args.ltv_seeds} seeds x {args.users:,} users"
    )
    for name in sorted(hits):
        what = "mean error" if name.endswith("effect") else "mean relative bias"
        fmt = (
            f"{np.mean(errors[name]):+8.3f}"
            if name.endswith("effect")
            else f"{np.mean(errors[name]):+7.1%}"
        )
        print(f"   {name:24} coverage {np.mean(hits[name]):6.1%}   {what} {fmt}")


def _progress(what: str, seed: int, total: int, started: float) -> None:
    if (seed + 1) % 10 == 0 or seed + 1 == total:
        elapsed = time.perf_counter() - started
        print(f"  {what}: {seed + 1}/{total} seeds, {elapsed:.0f} s", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--ltv-seeds", type=int, default=100)
    parser.add_argument("--ltv-days", type=int, default=90)
    parser.add_argument("--ltv-window", type=int, default=28)
    parser.add_argument("--only", choices=["planted", "aa", "value"], action="append")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, check in (("planted", check_planted), ("aa", check_aa), ("value", check_value)):
            if args.only is None or name in args.only:
                check(args, work)
                print(f"   ({time.perf_counter() - started:.0f} s so far)", flush=True)


if __name__ == "__main__":
    main()
