"""Calibration: coverage of the relative-lift interval, symmetric delta vs log-ratio vs Fieller.

Simulates independent two-arm cells (300, 500, 1,000 and 2,000 users per arm) with a
known true relative lift, runs :func:`experiment.stats.welch_ttest` on their sums once
per construction (every repetition is one cell of one vectorised call), and prints per
cell and construction:

* coverage: share of reported sets that contain the true relative lift (target 95%).
  A Fieller set that is a single ray ``[low, inf)`` (the control mean too uncertain to
  bound the ratio above) counts as the set it is. A cell with no finite bound
  (``nan``: zero control mean, or a Fieller set with no finite bound above -100%)
  reports nothing beyond "a lift of at least -100%", which contains every possible
  lift: it counts as covering, and its share is printed beside it;
* strict: the same with cells without a bound counted as misses;
* no bound: share of ``nan`` intervals;
* open: share of single-ray ``[low, inf)`` intervals;
* below -100%: share of lower bounds below -100% (impossible for these metrics);
* width: mean width of the finite intervals;
* def. cov: coverage among the defined intervals only;
* abs coverage: coverage of the absolute (Welch) interval for the true difference of
  means, the same for every construction: what the normal approximation of the means
  themselves achieves;
* test: the share of repetitions in which Welch's test of the true ratio (treatment
  against the control scaled by ``1 + lift``, two arms of the same distribution: an
  A/A test) does not reject. Fieller's set is every ratio that test does not reject
  (up to its degrees of freedom, taken at ratio 1), so its coverage is this share;
  and at lift 0 every interval that excludes 0 exactly when the Welch test rejects
  covers exactly this share. Where the test itself accepts more than 96% (very sparse
  or skewed values: a single large value inflates the variance with the difference,
  Efron 1969), no interval that agrees with the test can be in the 94-96% band.

Populations: conversion at 2% with true lifts 0 and +20%; stress revenue, with
tails heavier than any figure of ``shared/REALISM.md`` (lognormal sigma 1.5 and 2;
zero-inflated lognormal, 70% zeros with sigma 1.5 and 90% zeros with sigma 2); and
revenue as REALISM.md publishes it (A2: order value lognormal with log sd 0.84, the
Hillstrom buyers; revenue per user a hurdle of 97-99.1% zeros): buyers' order value,
3% and 0.9% (Hillstrom) buyers. The true lift scales every value; a lognormal with
sigma ``s`` has mean ``exp(s²/2)``.

    python benchmarks/relative_ci.py                 # 5,000 repetitions per cell
    python benchmarks/relative_ci.py --reps 20000
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from experiment.stats import welch_ttest
from experiment.sums import MeanSums

SIZES = (300, 500, 1000, 2000)
METHODS = ("delta", "log", "fieller")


@dataclass(frozen=True, kw_only=True)
class Population:
    """A simulated metric: how to draw ``(reps, n)`` values under a true relative lift."""

    name: str
    lift: float
    kind: str  # "binary" or "lognormal"
    param: float  # conversion rate, or lognormal sigma
    zeros: float = 0.0  # share of users with value 0 (zero-inflated revenue)


POPULATIONS = (
    Population(name="conversion 2%, lift 0", lift=0.0, kind="binary", param=0.02),
    Population(name="conversion 2%, lift +20%", lift=0.2, kind="binary", param=0.02),
    Population(name="lognormal s=1.5, lift 0", lift=0.0, kind="lognormal", param=1.5),
    Population(name="lognormal s=2, lift +20%", lift=0.2, kind="lognormal", param=2.0),
    Population(
        name="zero-infl. 70% s=1.5, lift 0", lift=0.0, kind="lognormal", param=1.5, zeros=0.7
    ),
    Population(
        name="zero-infl. 90% s=2, lift +20%", lift=0.2, kind="lognormal", param=2.0, zeros=0.9
    ),
    # REALISM.md A2: Hillstrom buyers' log(spend) sd 0.84; 97-99.1% of users spend nothing.
    Population(name="order value s=0.84, lift 0", lift=0.0, kind="lognormal", param=0.84),
    Population(name="3% buy s=0.84, lift +20%", lift=0.2, kind="lognormal", param=0.84, zeros=0.97),
    Population(name="0.9% buy s=0.84, lift 0", lift=0.0, kind="lognormal", param=0.84, zeros=0.991),
)


@dataclass(frozen=True, kw_only=True)
class Row:
    """Calibration of one construction on one population and arm size."""

    population: str
    n: int
    method: str
    coverage: float
    strict: float
    undefined: float
    open_above: float
    below_floor: float
    width: float
    abs_coverage: float
    defined_coverage: float
    test_acceptance: float


def _draw(pop: Population, reps: int, n: int, scale: float, rng: np.random.Generator) -> MeanSums:
    """Sums of ``reps`` arms of ``n`` users, every value multiplied by ``scale``."""
    if pop.kind == "binary":
        values = (rng.random((reps, n)) < pop.param * scale).astype(np.float64)
    else:
        values = scale * rng.lognormal(0.0, pop.param, size=(reps, n))
        if pop.zeros:
            values *= rng.random((reps, n)) >= pop.zeros
    mean = values.mean(axis=1)
    m2 = ((values - mean[:, None]) ** 2).sum(axis=1)
    return MeanSums(n=np.full(reps, float(n)), mean=mean, m2=m2)


def calibrate(
    pop: Population, n: int, reps: int, rng: np.random.Generator, *, alpha: float = 0.05
) -> list[Row]:
    """Coverage, undefined share, share below -100% and mean width per construction."""
    control = _draw(pop, reps, n, 1.0, rng)
    treatment = _draw(pop, reps, n, 1.0 + pop.lift, rng)
    unit = pop.param if pop.kind == "binary" else np.exp(pop.param**2 / 2) * (1 - pop.zeros)
    ratio = 1.0 + pop.lift  # the control scaled to the treatment's distribution
    scaled = MeanSums(n=control.n, mean=control.mean * ratio, m2=control.m2 * ratio**2)
    accepted = float(np.mean(~(welch_ttest(scaled, treatment, alpha=alpha).p_value < alpha)))
    rows = []
    for method in METHODS:
        res = welch_ttest(control, treatment, alpha=alpha, relative_interval=method)  # type: ignore[arg-type]
        low, high = res.ci_low, res.ci_high
        defined = ~(np.isnan(low) | np.isnan(high))
        finite = defined & np.isfinite(high)
        covered = defined & (low <= pop.lift) & (pop.lift <= high)
        rows.append(
            Row(
                population=pop.name,
                n=n,
                method=method,
                coverage=float((covered | ~defined).mean()),
                strict=float(covered.mean()),
                undefined=float(1.0 - defined.mean()),
                open_above=float((defined & ~finite).mean()),
                below_floor=float((defined & (low < -1.0)).mean()),
                width=float(np.mean((high - low)[finite])) if finite.any() else np.nan,
                defined_coverage=float(covered.sum() / defined.sum()),
                abs_coverage=float(
                    np.mean(
                        (res.ci_abs_low <= unit * pop.lift) & (unit * pop.lift <= res.ci_abs_high)
                    )
                ),
                test_acceptance=accepted,
            )
        )
    return rows


def _summary(rows: list[Row], low: float = 0.94, high: float = 0.96) -> None:
    """Per construction: cells within [low, high], the coverage range, and floor violations.

    Beside it, the cells where the absolute Welch interval itself is outside the band: a
    relative interval consistent with the Welch test (it excludes 0 exactly when the test
    rejects) inherits the test's over- or under-coverage there.
    """
    print(f"\nsummary: cells with coverage in [{low:.0%}, {high:.0%}]")
    for method in METHODS:
        mine = [r for r in rows if r.method == method]
        inside = sum(low <= r.coverage <= high for r in mine)
        floor = sum(r.below_floor > 0 for r in mine)
        cover = [r.coverage for r in mine]
        print(
            f"  {method:<8} {inside}/{len(mine)} cells, coverage {min(cover):.4f}-{max(cover):.4f},"
            f" {floor} cells with a lower bound below -100%"
        )
    welch = [r for r in rows if r.method == METHODS[0]]
    outside = [r for r in welch if not low <= r.abs_coverage <= high]
    print(f"  absolute Welch interval outside the band on {len(outside)}/{len(welch)} cells")
    over = [r for r in welch if r.test_acceptance > high]
    print(
        f"  Welch's test of the true ratio accepts more than {high:.0%} on {len(over)}/{len(welch)}"
        " cells (no interval that agrees with the test can be in the band there):"
    )
    fieller = {(r.population, r.n): r for r in rows if r.method == "fieller"}
    for r in over:
        f = fieller[r.population, r.n]
        test, cover = r.test_acceptance, f.coverage
        print(f"    {r.population:<31} {r.n:>5}: test {test:.4f}, fieller {cover:.4f}")
    rest = [fieller[r.population, r.n] for r in welch if r.test_acceptance <= high]
    inside = sum(low <= r.coverage <= high for r in rest)
    print(f"  fieller in the band on {inside}/{len(rest)} of the other cells")


def main() -> None:
    """Print the calibration table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(f"{args.reps} repetitions per cell, 95% two-sided intervals")
    header = f"{'population':<31} {'n/arm':>5} {'method':<8} {'coverage':>8} {'strict':>7}"
    print(
        header
        + f" {'no bound':>8} {'open':>7} {'<-100%':>7} {'width':>8} {'def.cov':>7} {'abs cov':>7}"
        + f" {'test':>7}"
    )
    rows = [row for pop in POPULATIONS for n in SIZES for row in calibrate(pop, n, args.reps, rng)]
    for row in rows:
        print(
            f"{row.population:<31} {row.n:>5} {row.method:<8} {row.coverage:>8.4f}"
            f" {row.strict:>7.4f} {row.undefined:>8.4f} {row.open_above:>7.4f}"
            f" {row.below_floor:>7.4f} {row.width:>8.3f}"
            f" {row.defined_coverage:>7.4f} {row.abs_coverage:>7.4f} {row.test_acceptance:>7.4f}"
        )
    _summary(rows)


if __name__ == "__main__":
    main()
