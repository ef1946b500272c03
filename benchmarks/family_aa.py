"""A/A family-wise error per multiple-testing family, through the real ``analyze_cells``.

Issue 14's must-show: over many simulated A/A experiments (no effect anywhere) with
20 exclusive segments, three arms (control and two treatments) and two metrics
(conversion, a proportion at 5%, and heavy-tailed revenue per user), the share of
experiments in which a family rejects at least once (its family-wise error rate, FWER)
must be at most alpha = 5% for every family of the default ``correction_scope``
(``primary_and_segments``). The old ``per_metric`` scope runs on the same draws beside it.

Each experiment's sufficient statistics are drawn from their sampling distributions:
conversions per (segment, arm) cell from the binomial, revenue from per-user
log-normal spend among purchasers (drawn per user, summed per cell). The p-values
come from :func:`experiment.analysis.analyze_cells`, the function ``exp analyze``
runs.

It also counts the rows whose displayed adjusted interval (``ci_adj_low``,
``ci_adj_high``, added by issue 14's adjusted intervals) excludes 0 while the
adjusted test does not reject, and the reverse; without those fields the check
prints "not available".

    python benchmarks/family_aa.py                 # 2,000 experiments, about a minute
    python benchmarks/family_aa.py --runs 4000 --seed 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from scipy import stats

from experiment.analysis import analyze_cells
from experiment.config import ExperimentConfig
from experiment.results import AnalysisResults, ResultRow
from experiment.sums import CellSums, MeanSums

ALPHA = 0.05
ARMS = ("control", "a", "b")
CONVERSION = 0.05
START = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
SCOPES = ("primary_and_segments", "per_metric")


@dataclass(frozen=True, kw_only=True)
class FamilyRate:
    """One family's family-wise error over the simulated experiments."""

    scope: str
    family: str
    size: int
    rejected: int
    runs: int

    @property
    def rate(self) -> float:
        """The share of experiments with at least one rejection in the family."""
        return self.rejected / self.runs

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Clopper-Pearson interval of the rate."""
        ci = stats.binomtest(self.rejected, self.runs).proportion_ci(confidence_level=level)
        return float(ci.low), float(ci.high)


@dataclass(frozen=True, kw_only=True)
class Consistency:
    """Rows whose adjusted interval and adjusted test disagree (None: fields missing)."""

    excludes_not_rejected: int | None
    rejected_includes: int | None
    rows: int


def config(scope: str) -> ExperimentConfig:
    """The A/A experiment file under ``scope``."""
    return ExperimentConfig.model_validate(
        {
            "name": "family-aa",
            "arms": dict.fromkeys(ARMS, 1.0 / len(ARMS)),
            "alpha": ALPHA,
            "correction": "holm",
            "correction_scope": scope,
            "metrics": [
                {"name": "conversion", "kind": "proportion", "event": "purchase"},
                {"name": "revenue", "kind": "mean", "event": "purchase", "value": "revenue"},
            ],
        }
    )


def _mean_sums(n: np.ndarray, total: np.ndarray, m2: np.ndarray) -> MeanSums:
    """Cells with ``all`` (their sum over segments) stacked on top of the segments."""
    n_all, total_all = n.sum(axis=0, keepdims=True), total.sum(axis=0, keepdims=True)
    mean = total / n
    mean_all = total_all / n_all
    # Pooled centred sum of squares: within-segment plus between-segment parts.
    m2_all = (m2 + n * (mean - mean_all) ** 2).sum(axis=0, keepdims=True)
    return MeanSums(
        n=np.vstack([n_all, n]), mean=np.vstack([mean_all, mean]), m2=np.vstack([m2_all, m2])
    )


def simulate_cells(rng: np.random.Generator, segments: int) -> CellSums:
    """One A/A experiment's cell sums: every arm has the same distribution."""
    sizes = rng.integers(200, 1500, size=segments)  # users per arm in each segment
    n = np.repeat(sizes[:, None], len(ARMS), axis=1).astype(np.float64)
    buyers = rng.binomial(n.astype(np.int64), CONVERSION).astype(np.float64)
    conversion = _mean_sums(n, buyers, buyers * (1.0 - buyers / n))
    # Revenue: 0 for non-buyers, log-normal spend for buyers, summed per cell.
    flat = buyers.astype(np.int64).ravel()
    spend = rng.lognormal(3.0, 1.0, size=int(flat.sum()))
    cell = np.repeat(np.arange(flat.size), flat)
    total = np.bincount(cell, weights=spend, minlength=flat.size).reshape(n.shape)
    squares = np.bincount(cell, weights=spend**2, minlength=flat.size).reshape(n.shape)
    m2 = np.maximum(squares - total**2 / n, 0.0)
    return CellSums(
        segments=("all", *(f"s{i:02d}" for i in range(1, segments + 1))),
        arms=ARMS,
        units=np.vstack([n.sum(axis=0, keepdims=True), n]),
        metrics={"conversion": conversion, "revenue": _mean_sums(n, total, m2)},
        window_start=START,
        window_end=START + dt.timedelta(days=14),
    )


def _rejections(results: AnalysisResults) -> dict[str, tuple[bool, int]]:
    """Per family: did any of its tests reject, and how many tests did it hold?"""
    out: dict[str, tuple[bool, int]] = {}
    for row in results.results:
        rejected, size = out.get(row.family, (False, 0))
        out[row.family] = (rejected or row.p_adjusted < results.alpha, max(size, row.family_size))
    return out


def _disagreements(results: AnalysisResults) -> tuple[int, int, int] | None:
    """Rows with adjusted CI excluding 0 but not rejected, the reverse, and rows checked."""
    if "ci_adj_low" not in {f.name for f in fields(ResultRow)}:
        return None
    excludes_only = rejects_only = checked = 0
    for row in results.results:
        low: float = getattr(row, "ci_adj_low")  # noqa: B009 (absent before the merge)
        high: float = getattr(row, "ci_adj_high")  # noqa: B009
        if row.suppressed or not (math.isfinite(row.p_adjusted) and math.isfinite(low + high)):
            continue
        checked += 1
        excludes, rejects = low > 0 or high < 0, row.p_adjusted < results.alpha
        excludes_only += excludes and not rejects
        rejects_only += rejects and not excludes
    return excludes_only, rejects_only, checked


def run(
    runs: int, *, segments: int = 20, seed: int = 0, scopes: tuple[str, ...] = SCOPES
) -> tuple[list[FamilyRate], Consistency]:
    """Family-wise error per family of each scope, on the same simulated experiments."""
    rng = np.random.default_rng(seed)
    configs = {scope: config(scope) for scope in scopes}
    hits: dict[str, Counter[str]] = {scope: Counter() for scope in scopes}
    sizes: dict[tuple[str, str], int] = {}
    bad: list[int] | None = [0, 0, 0]
    for _ in range(runs):
        cells = simulate_cells(rng, segments)
        for scope, cfg in configs.items():
            results = analyze_cells(cells, cfg, None)
            for family, (rejected, size) in _rejections(results).items():
                hits[scope][family] += rejected
                sizes[scope, family] = max(size, sizes.get((scope, family), 0))
            counts = _disagreements(results) if scope == scopes[0] else (0, 0, 0)
            if counts is None:
                bad = None
            elif bad is not None:
                bad = [b + c for b, c in zip(bad, counts, strict=True)]
    rates = [
        FamilyRate(scope=scope, family=fam, size=sizes[scope, fam], rejected=k, runs=runs)
        for scope in scopes
        for fam, k in sorted(hits[scope].items())
    ]
    consistency = Consistency(
        excludes_not_rejected=None if bad is None else bad[0],
        rejected_includes=None if bad is None else bad[1],
        rows=0 if bad is None else bad[2],
    )
    return rates, consistency


def _print(rates: list[FamilyRate], consistency: Consistency, runs: int, seconds: float) -> bool:
    print(f"A/A, {runs} experiments, Holm at alpha {ALPHA:.0%}, {seconds:.1f} s")
    print(f"{'scope':<22}{'family':<30}{'tests':>6}{'FWER':>8}  95% CI (Clopper-Pearson)")
    ok = True
    for r in rates:
        low, high = r.interval()
        # Fails only when the data reject FWER <= alpha (one-sided, 2.5%).
        passed = low <= ALPHA or r.scope != SCOPES[0]
        ok &= passed
        mark = "" if r.scope != SCOPES[0] else ("  ok" if passed else "  ABOVE 5%")
        print(
            f"{r.scope:<22}{r.family:<30}{r.size:>6}{r.rate:>8.2%}  [{low:.2%}, {high:.2%}]{mark}"
        )
    if consistency.excludes_not_rejected is None:
        print("adjusted interval vs adjusted test: not available (no ci_adj_low/ci_adj_high)")
    else:
        print(
            f"adjusted interval vs adjusted test ({consistency.rows} rows, default scope): "
            f"{consistency.excludes_not_rejected} exclude 0 but do not reject, "
            f"{consistency.rejected_includes} reject but include 0"
        )
        ok &= consistency.excludes_not_rejected == consistency.rejected_includes == 0
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args: Any = parser.parse_args(argv)
    began = time.perf_counter()
    rates, consistency = run(args.runs, segments=args.segments, seed=args.seed)
    ok = _print(rates, consistency, args.runs, time.perf_counter() - began)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
