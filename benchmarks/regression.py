"""Regression adjustment with several covariates: variance reduction and A/A false positives.

Issue 17's must-show, on a simulated e-mail experiment shaped like Hillstrom's
(REALISM.md A2): per customer, last year's spend ``history`` (lognormal, log mean
5.0, log sd 1.03), ``recency`` (1 to 12 months), ``channel`` (Web 44 / Phone 44 /
Multichannel 12%) and ``newbie`` (50%), all pre-treatment. The outcomes depend on
every one of them, as they do in Hillstrom, but more strongly (in Hillstrom itself
history removes 0.04% of spend's variance: too little to show anything): a 2-week
visit (a proportion falling with recency) and spend per customer (a mean: a visit,
then a purchase, then a lognormal order value whose scale grows with history), and
a ratio metric, click-through on the e-mail's product impressions (impressions per
customer Poisson, growing with history and channel; clicks binomial, their rate
falling with recency), adjusted on its delta-method linearisation
(``ratio_regression_ttest``; a single covariate is the same with ``k = 1``).

Figures, per metric:

1. ``Var(adjusted)/Var(plain)`` of the lift estimate over many experiments, for each
   single numeric covariate (CUPED: ``cuped_ttest``) and for all four covariates at
   once (``regression_ttest``, channel one-hot), and the mean of the reported
   ``variance_reduction``. The k-covariate reduction must be at least the best
   single covariate's.
2. The A/A false-positive rate of ``regression_ttest`` at alpha = 5% (no effect),
   which must stay within 5 ± 1% over >= 1,000 runs (binomial z = 3.29 band shown).

Runs the stats engine on per-arm sums built from per-user draws (the sums the
engine's one query returns; the engine path itself is tested against statsmodels
in ``tests/experiment/engine/test_regression_engine.py``).

    python benchmarks/regression.py                   # 4,000 runs of 4,000 users, about 30 s
    python benchmarks/regression.py --runs 1000 --users 2000 --seed 3
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

import numpy as np

from experiment.engine.moments import stack_sums
from experiment.stats import (
    cuped_ttest,
    ratio_regression_ttest,
    ratio_ttest,
    regression_ttest,
    welch_ttest,
)
from experiment.sums import CovariateSums, JointSums

ALPHA = 0.05
Z = 3.29  # two-sided binomial band, as the other calibration scripts
NUMERIC = ("history", "recency", "newbie")
RATIOS = ("ctr",)  # ratio metrics: their draws carry the denominator as the last column


@dataclass(frozen=True, kw_only=True)
class Figures:
    """One metric's figures over ``runs`` experiments."""

    metric: str
    runs: int
    ratio_single: dict[str, float]  # Var(adjusted lift) / Var(plain lift), per covariate
    ratio_all: float
    reported_all: float  # mean reported variance_reduction of the k-covariate fit
    aa_rate: float  # A/A rejections at ALPHA (k covariates)


def customers(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Pre-treatment attributes and both outcomes of ``n`` customers (no effect: A/A)."""
    history = rng.lognormal(5.0, 1.03, n)
    recency = rng.integers(1, 13, n).astype(float)
    channel = rng.choice(3, n, p=[0.44, 0.44, 0.12])  # web, phone, multichannel
    newbie = (rng.random(n) < 0.5).astype(float)
    logit = -0.6 + 0.8 * np.log(history / 158) - 0.25 * recency + 1.5 * (channel == 2)
    logit = logit + 0.8 * (channel == 1) - 1.2 * newbie
    visit = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    buy = visit * (rng.random(n) < 0.3 + 0.4 * (channel == 2))
    spend = buy * rng.lognormal(3.0, 0.4, n) * (history / 158) ** 0.7
    impressions = rng.poisson(1.0 + 2.0 * (history / 158) ** 0.5 + 1.5 * (channel == 2))
    rate = np.clip(0.12 - 0.008 * recency + 0.05 * (channel == 1) - 0.03 * newbie, 0.01, 1)
    clicks = rng.binomial(impressions, rate)
    return {
        "impressions": impressions.astype(float),
        "ctr": clicks.astype(float),
        "history": history,
        "recency": recency,
        "newbie": newbie,
        "channel_phone": (channel == 1).astype(float),
        "channel_multi": (channel == 2).astype(float),
        "visit": visit,
        "spend": spend,
    }


def _covariates(data: dict[str, np.ndarray]) -> np.ndarray:
    cols = ("history", "recency", "newbie", "channel_phone", "channel_multi")
    return np.column_stack([data[c] for c in cols])


def run(*, runs: int, users: int, seed: int) -> list[Figures]:
    """Draw ``runs`` A/A experiments of ``users`` customers (half per arm) and test them."""
    rng = np.random.default_rng(seed)
    arms: dict[str, list[list[tuple[np.ndarray, np.ndarray]]]] = {
        "visit": [],
        "spend": [],
        "ctr": [],
    }
    for _ in range(runs):
        data = customers(users, rng)
        t = rng.permutation(users) < users // 2
        x = _covariates(data)
        for metric, draws in arms.items():
            y = data[metric]
            xs = np.column_stack([x, data["impressions"]]) if metric in RATIOS else x
            draws.append([(y[~t], xs[~t]), (y[t], xs[t])])
    return [_figures(metric, draws) for metric, draws in arms.items()]


def _figures(metric: str, draws: list[list[tuple[np.ndarray, np.ndarray]]]) -> Figures:
    """The metric's variance ratios and A/A rate over every draw, vectorised over runs."""
    if metric in RATIOS:
        return _ratio_figures(metric, draws)
    arm = [
        stack_sums([CovariateSums.from_values(y, x)[0] for y, x in (d[a] for d in draws)])
        for a in (0, 1)
    ]
    plain = welch_ttest(arm[0].y, arm[1].y, alpha=ALPHA)
    var_plain = float(np.var(plain.lift_abs))
    res = regression_ttest(arm[0], arm[1], alpha=ALPHA)
    single = {}
    for i, name in enumerate(NUMERIC):
        joint = [
            stack_sums([JointSums.from_values(y, x[:, i])[0] for y, x in (d[a] for d in draws)])
            for a in (0, 1)
        ]
        single[name] = float(np.var(cuped_ttest(*joint, alpha=ALPHA).lift_abs)) / var_plain
    return Figures(
        metric=metric,
        runs=len(draws),
        ratio_single=single,
        ratio_all=float(np.var(res.lift_abs)) / var_plain,
        reported_all=float(np.nanmean(res.variance_reduction)),
        aa_rate=float(np.mean(res.p_value < ALPHA)),
    )


def _ratio_figures(metric: str, draws: list[list[tuple[np.ndarray, np.ndarray]]]) -> Figures:
    """:func:`_figures` of a ratio metric (the denominator is the draws' last column)."""

    def sums(cols: list[int]) -> list[CovariateSums]:
        return [
            stack_sums(
                [
                    CovariateSums.from_values(y, x[:, [*cols, -1]])[0]
                    for y, x in (d[a] for d in draws)
                ]
            )
            for a in (0, 1)
        ]

    joint = [
        stack_sums([JointSums.from_values(y, x[:, -1])[0] for y, x in (d[a] for d in draws)])
        for a in (0, 1)
    ]
    var_plain = float(np.var(ratio_ttest(*joint, alpha=ALPHA).lift_abs))
    k = draws[0][0][1].shape[1] - 1
    res = ratio_regression_ttest(*sums(list(range(k))), alpha=ALPHA)
    single = {
        name: float(np.var(ratio_regression_ttest(*sums([i]), alpha=ALPHA).lift_abs)) / var_plain
        for i, name in enumerate(NUMERIC)
    }
    return Figures(
        metric=f"{metric} (ratio)",
        runs=len(draws),
        ratio_single=single,
        ratio_all=float(np.var(res.lift_abs)) / var_plain,
        reported_all=float(np.nanmean(res.variance_reduction)),
        aa_rate=float(np.mean(res.p_value < ALPHA)),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4000)
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    ok = True
    for fig in run(runs=args.runs, users=args.users, seed=args.seed):
        best = min(fig.ratio_single, key=fig.ratio_single.__getitem__)
        print(f"{fig.metric}: Var(adjusted)/Var(plain) over {fig.runs} experiments")
        for name, ratio in fig.ratio_single.items():
            print(f"  cuped {name:<10} {ratio:.4f}  (reduction {1 - ratio:.1%})")
        print(
            f"  all k=5 regressors  {fig.ratio_all:.4f}  (reduction {1 - fig.ratio_all:.1%}; "
            f"reported variance_reduction {fig.reported_all:.1%})"
        )
        band = Z * math.sqrt(ALPHA * (1 - ALPHA) / fig.runs)
        print(
            f"  A/A false positives {fig.aa_rate:.2%} (alpha {ALPHA:.0%}, z=3.29 band "
            f"{ALPHA - band:.2%}..{ALPHA + band:.2%})"
        )
        ok &= fig.ratio_all <= fig.ratio_single[best] and abs(fig.aa_rate - ALPHA) <= 0.01
    print(f"{'PASS' if ok else 'FAIL'} in {time.perf_counter() - began:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
