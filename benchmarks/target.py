"""Benchmark: `exp target` learns an honest rollout policy (issue 18's must-show figures).

Per scenario, ``--seeds`` simulated datasets of ``--users`` users x ``--days`` days
(cached under ``--data``, default ``$TMPDIR/seglift-bench-target``, with the same
names as ``benchmarks/refine.py``'s cache). On each, ``segments.target.target``
learns a policy on the discovery half (seed = the dataset's seed) over the
attributes ``--attributes`` (default: six customer columns, the planted one among
them; every column costs one more GROUP BY), and values it on the held-out half.

The *true* value of the learned policy is computed from both potential outcomes of
every simulated customer (:func:`simulators.potential.simulate_potential`, the same
streams as the dataset, so exactly the simulated world): ``1000 x Σ_i τ_i 1[i
treated] / N`` with ``τ_i`` the user's conversion in the treatment world minus in
the control world, over all ``N`` customers. (``aa``: every ``τ_i`` is 0.)

* ``split``: the oracle treats exactly the planted responders (``engaged`` with
  ``price_sensitivity >= 0.5``; everyone else has ``τ_i = 0``), so its value is
  ``1000 x share(engaged) x lift_abs(engaged)`` from ``truth.json``. Reported:
  the share of seeds whose policy treats the planted region (all of its users),
  the mean held-out value and mean true value over the oracle's, and how often the
  held-out CI covers the policy's true value.
* ``uniform``: the share of seeds whose policy is treat-all.
* ``aa``: the share of seeds whose held-out CI covers 0, and that recommend no change.

    python benchmarks/target.py                          # 50 seeds x 3 scenarios, 50k users
    python benchmarks/target.py --scenarios split --seeds 5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from refine import dataset

if TYPE_CHECKING:
    from experiment.results.targeting import Targeting

SCENARIOS = ("split", "uniform", "aa")
ATTRIBUTES = "price_sensitivity,device,plan,interest,age_band,orders_90d"
METRIC = "conversion"


def run_target(folder: Path, *, seed: int, attributes: list[str]) -> tuple[Targeting, float]:
    """``target`` on a dataset folder with its own experiment file; returns it and seconds."""
    from experiment.config import load_experiment
    from experiment.engine.dataset import open_dataset
    from segments import load_segments
    from segments.target import target

    config = load_experiment(folder / "experiment.yaml")
    segment_set = load_segments(config.segments) if config.segments is not None else None
    started = time.perf_counter()
    result = target(
        open_dataset(folder), config, segment_set, seed=seed, attributes=attributes, metric=METRIC
    )
    return result, time.perf_counter() - started


def treated_users(folder: Path, result: Targeting) -> dict[str, bool]:
    """Per customer: does the policy treat them (the cells' rules on the customers table)?"""
    from experiment.config import load_experiment
    from experiment.engine.dataset import open_dataset
    from segments import load_segments
    from segments.target.cells import Cell, cell_exprs

    config = load_experiment(folder / "experiment.yaml")
    segment_set = load_segments(config.segments) if config.segments is not None else None
    customers = open_dataset(folder).customers
    cells = tuple(Cell(c.name, c.rule, c.parent) for c in result.cells)
    start = config.window.start
    if start is None:
        raise SystemExit(f"{folder}: the experiment file has no window start")
    exprs = cell_exprs(cells, customers, segment_set, start)
    table = customers.select(
        user_id=customers.user_id, **{f"c{k}": e for k, e in enumerate(exprs)}
    ).to_pyarrow()
    ids = table.column("user_id").to_pylist()
    treated = np.zeros(len(ids), dtype=bool)
    member = np.zeros(len(ids), dtype=bool)
    for k, cell in enumerate(result.cells):
        flags = np.asarray(table.column(f"c{k}").to_pylist(), dtype=bool) & ~member
        member |= flags
        treated |= flags & bool(cell.arm)
    return dict(zip(ids, treated.tolist(), strict=True))


def true_effects(
    cache: Path, scenario: str, *, users: int, days: int, seed: int
) -> dict[str, float]:
    """Per customer, the true effect on conversion (potential outcomes; cached as .npz)."""
    path = cache / f"tau-{scenario}-{users}u-{days}d-s{seed}.npz"
    if not path.is_file():
        from simulators.potential import simulate_potential

        run = simulate_potential(scenario, users=users, days=days, seed=seed)
        (y_c,) = run.values(METRIC, run.control)
        (y_t,) = run.values(METRIC, next(a for a in run.arms if a != run.control))
        ids = np.asarray(run.customers.column("user_id").to_pylist())
        np.savez(path, ids=ids, tau=y_t - y_c)
    data = np.load(path)
    return dict(zip(data["ids"].tolist(), data["tau"].tolist(), strict=True))


def _truth(folder: Path, segment: str) -> float:
    doc = json.loads((folder / "truth.json").read_text())
    return float(
        next(
            e["lift_abs"]
            for e in doc["effects"]
            if e["segment"] == segment and e["metric"] == METRIC and e["arm"] == "treatment"
        )
    )


def _share(hits: int, n: int) -> str:
    return f"{hits}/{n} = {100 * hits / max(n, 1):.0f}%"


def one_seed(
    cache: Path, scenario: str, *, seed: int, users: int, days: int, attributes: list[str]
) -> dict[str, float]:
    """Run one seed; the figures of that seed."""
    folder = dataset(cache, scenario, users=users, days=days, seed=seed)
    result, took = run_target(folder, seed=seed, attributes=attributes)
    value = result.value_of("learned")
    treated = treated_users(folder, result)
    n = len(treated)
    if scenario == "aa":
        true_value = 0.0
    else:
        tau = true_effects(cache, scenario, users=users, days=days, seed=seed)
        true_value = 1000.0 * sum(t for u, t in tau.items() if treated.get(u, False)) / n
    out = {
        "seconds": took,
        "value": value.value,
        "ci_low": value.ci_low,
        "ci_high": value.ci_high,
        "true": true_value,
        "covers": float(value.ci_low <= true_value <= value.ci_high),
        "treat_all": float(all(c.arm for c in result.cells if c.users > 0)),
        "no_change": float(result.recommendation == "no_change"),
        "covers_0": float(value.ci_low <= 0 <= value.ci_high),
    }
    if scenario == "split":
        import pyarrow.parquet as pq

        cust = pq.read_table(
            folder / "customers.parquet", columns=["user_id", "sessions_30d", "price_sensitivity"]
        )
        ids = cust.column("user_id").to_pylist()
        region = (np.asarray(cust.column("sessions_30d").to_pylist()) >= 8) & (
            np.asarray(cust.column("price_sensitivity").to_pylist(), dtype=float) >= 0.5
        )
        engaged = np.asarray(cust.column("sessions_30d").to_pylist()) >= 8
        out["oracle"] = 1000.0 * float(engaged.mean()) * _truth(folder, "engaged")
        out["treats_region"] = float(all(treated[u] for u, r in zip(ids, region, strict=True) if r))
        out["refined"] = float(any(c.parent for c in result.cells))
    cells = " ".join(f"{c.name}{'*' if c.arm else ''}" for c in result.cells if c.users > 0)
    print(
        f"{scenario} seed {seed:3d}: value {value.value:+.2f} "
        f"[{value.ci_low:+.2f}, {value.ci_high:+.2f}]"
        f" true {true_value:+.2f}{_oracle(out)}"
        f" {result.recommendation}; {cells}  [{took:.1f}s]",
        flush=True,
    )
    return out


def _oracle(out: dict[str, float]) -> str:
    return f" oracle {out['oracle']:+.2f}" if "oracle" in out else ""


def summarise(scenario: str, rows: list[dict[str, float]]) -> None:
    """Print one scenario's figures."""
    n = len(rows)

    def total(key: str) -> int:
        return int(sum(r[key] for r in rows))

    print(f"\n== {scenario}: {n} seeds ==")
    print(f"held-out CI covers the true policy value: {_share(total('covers'), n)}")
    if scenario == "split":
        oracle = np.array([r["oracle"] for r in rows])
        held = np.array([r["value"] for r in rows])
        true = np.array([r["true"] for r in rows])
        print(f"policy treats every planted responder: {_share(total('treats_region'), n)}")
        print(f"policy uses a refined cell: {_share(total('refined'), n)}")
        print(f"mean held-out value / mean oracle value: {held.mean() / oracle.mean():.3f}")
        print(f"mean true value / mean oracle value: {true.mean() / oracle.mean():.3f}")
        print(
            "seeds whose true value >= 90% of the oracle: "
            f"{_share(int((true >= 0.9 * oracle).sum()), n)}"
        )
        print(f"mean oracle value per 1,000: {oracle.mean():.3f}")
    if scenario == "uniform":
        print(f"policy is treat-all: {_share(total('treat_all'), n)}")
    if scenario == "aa":
        print(f"held-out CI covers 0: {_share(total('covers_0'), n)}")
        print(f"recommends no change: {_share(total('no_change'), n)}")
    secs = sorted(r["seconds"] for r in rows)
    print(f"target time per run: median {secs[len(secs) // 2]:.1f}s")


def main(argv: list[str] | None = None) -> None:
    """Run the chosen scenarios and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--attributes", default=ATTRIBUTES)
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "seglift-bench-target"
    )
    args = parser.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    attributes = [a for a in args.attributes.split(",") if a]
    started = time.perf_counter()
    for scenario in args.scenarios.split(","):
        rows = [
            one_seed(
                args.data, scenario, seed=s, users=args.users, days=args.days, attributes=attributes
            )
            for s in range(args.first_seed, args.first_seed + args.seeds)
        ]
        summarise(scenario, rows)
    print(f"\n(total {time.perf_counter() - started:.0f}s)")


if __name__ == "__main__":
    main()
