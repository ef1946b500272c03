"""The pre-exposure balance check: false flags on clean A/A data, detection of broken ones.

Issue 15's must-show: over many simulated experiments the balance check
(:func:`experiment.analysis.balance.balance_check`, what ``exp analyze`` runs on
the engine's sums) flags a sound randomisation at most 1% of the time, and
flags a planted imbalance:

* **clean A/A**: each user's arm is a fair coin; nothing differs but chance;
* **shift**: one covariate (``sessions_30d``) is raised by ``d`` of its standard
  deviation in the treatment arm (a covariate that moved before exposure, or a
  treatment arm drawn from another population);
* **wrong key**: a share ``w`` of the control arm's assignment rows were joined on
  a legacy id (issued in signup order to customers of the old system), so they
  land on the wrong customers: early signups, with their longer tenure and
  history, instead of the users actually assigned;
* **sort order**: a share ``s`` of the users got their arm from their position in
  a list sorted by signup date (the earlier half to treatment), the rest by coin.

Neither of the last two changes the arm counts, so the sample-ratio check cannot
see them; its flag rate is printed beside the balance check's.

Each experiment draws ``--users`` customers with six pre-period covariates
(tenure, orders, revenue with a heavy tail, sessions, days since the last login,
a mobile 0/1 flag) that share a latent activity level, and 9 overlapping segments
from 0.4% to 60% of the users (rules on those covariates, as a segments file would
hold). Their per-(segment, arm) sums are computed in numpy (what the engine's
query returns) and checked at the SRM threshold, 0.001: 6 covariates x 10
segments (``all`` included) = 60 tests per experiment, one Holm family.

    python benchmarks/balance.py                    # 1,000 A/A + 1,200 planted runs, ~5 min
    python benchmarks/balance.py --runs 200 --users 20000
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from experiment.analysis.balance import balance_check
from experiment.stats import srm_test_many
from experiment.sums import CellSums, MeanSums

THRESHOLD = 0.001
ARMS = ("control", "treatment")
START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
COVARIATES = (
    "tenure_days",
    "orders_90d",
    "revenue_90d",
    "sessions_30d",
    "days_since_last_login",
    "is_mobile",
)
Floats = NDArray[np.float64]
Arms = NDArray[np.int64]


@dataclass(frozen=True, kw_only=True)
class Customers:
    """One simulated customer base: covariates by name, segment masks by name."""

    covariates: dict[str, Floats]
    segments: dict[str, NDArray[np.bool_]]


def customers(users: int, rng: np.random.Generator) -> Customers:
    """Customers whose pre-period covariates share a latent activity level.

    Index order is signup order: customer 0 signed up first (longest tenure).
    """
    tenure = np.sort(rng.exponential(400.0, users))[::-1] + rng.uniform(0, 1, users)
    activity = rng.gamma(1.5, 1.0, users) * (0.6 + 0.4 * np.minimum(tenure / 400.0, 2.0))
    orders = rng.poisson(activity).astype(float)
    spend = rng.lognormal(3.3, 1.0, users)
    revenue = orders * spend
    sessions = rng.poisson(6.0 * activity).astype(float)
    last_login = np.minimum(rng.exponential(25.0 / (activity + 0.2)), 365.0).round()
    mobile = (rng.random(users) < 0.55).astype(float)
    cov = {
        "tenure_days": tenure,
        "orders_90d": orders,
        "revenue_90d": revenue,
        "sessions_30d": sessions,
        "days_since_last_login": last_login,
        "is_mobile": mobile,
    }
    seg = {
        "buyers": orders >= 1,
        "frequent": orders >= 3,
        "vip": revenue >= 500,
        "heavy_sessions": sessions >= 15,
        "dormant": last_login > 60,
        "new": tenure < 60,
        "mobile": mobile > 0,
        "new_mobile_vip": (tenure < 200) & (mobile > 0) & (revenue >= 300),
        "lapsed_buyers": (orders >= 2) & (last_login > 90),
    }
    return Customers(covariates=cov, segments=seg)


def cell_sums(base: Customers, arm: Arms, rows: NDArray[np.int64] | None = None) -> CellSums:
    """The balance sums per (segment, arm), as the engine's query returns them.

    ``rows`` maps each assignment to the customer row it was joined to (default:
    its own); ``arm`` is each assignment's arm index.
    """
    pick = np.arange(arm.size) if rows is None else rows
    masks = [np.ones(arm.size, dtype=bool), *(m[pick] for m in base.segments.values())]
    shape = (len(masks), len(ARMS))
    units = np.zeros(shape)
    balance: dict[str, MeanSums] = {}
    for name, values in base.covariates.items():
        x = values[pick]
        n, mean, m2 = np.zeros(shape), np.full(shape, np.nan), np.zeros(shape)
        for si, mask in enumerate(masks):
            a, v = arm[mask], x[mask]
            n[si] = np.bincount(a, minlength=len(ARMS))
            with np.errstate(invalid="ignore", divide="ignore"):
                mean[si] = np.bincount(a, weights=v, minlength=len(ARMS)) / n[si]
            m2[si] = np.bincount(a, weights=(v - mean[si][a]) ** 2, minlength=len(ARMS))
        balance[name] = MeanSums(n=n, mean=mean, m2=m2)
        units = n
    return CellSums(
        segments=("all", *base.segments),
        arms=ARMS,
        units=units,
        metrics={},
        window_start=START,
        window_end=START,
        balance=balance,
    )


def clean(base: Customers, rng: np.random.Generator) -> CellSums:
    """A sound randomisation: a fair coin per user."""
    return cell_sums(base, rng.integers(0, 2, _size(base)))


def shifted(d: float) -> Callable[[Customers, np.random.Generator], CellSums]:
    """``sessions_30d`` raised by ``d`` standard deviations in the treatment arm."""

    def draw(base: Customers, rng: np.random.Generator) -> CellSums:
        arm = rng.integers(0, 2, _size(base))
        x = base.covariates["sessions_30d"]
        moved = x + d * x.std() * (arm == 1)
        covariates = {**base.covariates, "sessions_30d": moved}  # memberships as before
        return cell_sums(Customers(covariates=covariates, segments=base.segments), arm)

    return draw


def wrong_key(share: float) -> Callable[[Customers, np.random.Generator], CellSums]:
    """A share of control rows joined on a legacy id: they land on early signups."""

    def draw(base: Customers, rng: np.random.Generator) -> CellSums:
        users = _size(base)
        arm = rng.integers(0, 2, users)
        rows = np.arange(users)
        wrong = (arm == 0) & (rng.random(users) < share)
        rows[wrong] = rng.integers(0, users // 2, int(wrong.sum()))  # the older half
        return cell_sums(base, arm, rows)

    return draw


def sort_order(share: float) -> Callable[[Customers, np.random.Generator], CellSums]:
    """A share of users assigned by signup order (earlier half: treatment), others by coin."""

    def draw(base: Customers, rng: np.random.Generator) -> CellSums:
        users = _size(base)
        arm = rng.integers(0, 2, users)
        listed = rng.random(users) < share
        arm[listed] = (np.arange(users)[listed] >= users // 2).astype(np.int64) ^ 1
        return cell_sums(base, arm)

    return draw


def _size(base: Customers) -> int:
    return int(base.covariates["tenure_days"].size)


@dataclass(frozen=True, kw_only=True)
class Rate:
    """How often one scenario was flagged by the balance and SRM checks."""

    scenario: str
    runs: int
    flagged: int
    srm_flagged: int

    @property
    def rate(self) -> float:
        return self.flagged / self.runs

    def ci(self) -> tuple[float, float]:
        """Wilson 95% interval of the flag rate."""
        return wilson(self.flagged, self.runs)


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial share ``k / n``."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def run(
    scenario: str,
    draw: Callable[[Customers, np.random.Generator], CellSums],
    *,
    runs: int,
    users: int,
    seed: int,
) -> Rate:
    """Flag rates of one scenario over ``runs`` experiments (a new customer base each)."""
    rng = np.random.default_rng(seed)
    flagged = srm = 0
    for _ in range(runs):
        cells = draw(customers(users, rng), rng)
        flagged += balance_check(cells, control="control", threshold=THRESHOLD).flag
        srm += bool(srm_test_many(cells.units[:1], np.full((1, 2), 0.5)).flag[0])
    return Rate(scenario=scenario, runs=runs, flagged=flagged, srm_flagged=srm)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1000, help="clean A/A experiments")
    parser.add_argument("--planted-runs", type=int, default=200)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    started = time.perf_counter()
    scenarios: list[tuple[str, Callable[[Customers, np.random.Generator], CellSums], int]] = [
        ("clean A/A", clean, args.runs),
        *((f"shift sessions_30d +{d:g} SD", shifted(d), args.planted_runs) for d in (0.03, 0.05)),
        *((f"wrong key, {w:.0%} of control", wrong_key(w), args.planted_runs) for w in (0.05, 0.1)),
        *(
            (f"sort order, {s:.0%} of users", sort_order(s), args.planted_runs)
            for s in (0.02, 0.05)
        ),
    ]
    print(
        f"{args.users:,} users, {len(COVARIATES)} covariates x 10 segments (all included), "
        f"Holm at {THRESHOLD}; seed {args.seed}"
    )
    print(f"{'scenario':32} {'runs':>5} {'flagged':>8} {'rate':>7} {'95% CI':>17} {'SRM':>6}")
    for k, (name, draw, runs) in enumerate(scenarios):
        r = run(name, draw, runs=runs, users=args.users, seed=args.seed + k)
        low, high = r.ci()
        print(
            f"{name:32} {r.runs:5d} {r.flagged:8d} {r.rate:7.1%} "
            f"[{low:6.1%}, {high:6.1%}] {r.srm_flagged / r.runs:6.1%}"
        )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
