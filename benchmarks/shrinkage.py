"""Calibration of the empirical-Bayes shrinkage of segment lifts (issue 17) on known truths.

No shipped scenario plants effects in 15+ segments, and a full journey simulation per
experiment is too slow for hundreds of experiments, so the per-segment sufficient
statistics are drawn directly from known truths (as ``benchmarks/calibrate.py`` does):

* **disjoint** (20 exclusive segments of 400-6,000 users per arm, conversion with
  baselines 1.5-8%): each experiment draws binomial conversions per (segment, arm),
  runs ``welch_ttest`` and ``shrink_lifts`` (Paule–Mandel). ``heterogeneous``: the
  true relative lifts are planted once (normal, mean +5%, sd 12%) and held fixed
  over the experiments, like a scenario's planted effects; ``homogeneous``: every
  segment has baseline 4% and lift +0.4 pp, so ``τ² = 0``; ``redrawn``: new true
  lifts per experiment (an empirical-Bayes interval covers at the nominal rate on
  average over segments *and* over draws of the effects; for one fixed draw it
  covers more or less, depending on how normal that draw looks);
* **overlapping** (20 random segments, each user in each with probability 15%,
  40,000 users): fixed potential outcomes per user (a user's effect is the sum of
  the effects planted on the segments they are in), re-randomised 50/50 per
  experiment (ExP re-randomisation, as ``benchmarks/calibrate_sim.py``); shrinkage
  toward ``all`` with the moment estimator of ``τ²``.

Prints, per setting: the mean squared error of the raw and shrunken absolute lifts
against the truth (pooled over segments and experiments), the reduction, and the
coverage of the shrunken 95% intervals (raw beside it). Must show: MSE at least 25%
lower, coverage 93-97%, and on the homogeneous setting lifts pulled to the common lift.

    python benchmarks/shrinkage.py               # ~20 s
    python benchmarks/shrinkage.py --reps 2000 --seed 3
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from experiment.stats import shrink_lifts, welch_ttest
from experiment.sums import MeanSums

ALPHA = 0.05
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Figures:
    setting: str
    mse_raw: float
    mse_shrunk: float
    cover_raw: float
    cover_shrunk: float
    mean_shrinkage: float
    spread_raw: float  # mean |raw - truth|
    spread_shrunk: float  # mean |shrunk - truth|

    @property
    def reduction(self) -> float:
        return 1.0 - self.mse_shrunk / self.mse_raw


def _proportion_sums(n: Floats, conversions: Floats) -> MeanSums:
    mean = conversions / n
    return MeanSums(n=n, mean=mean, m2=conversions * (1.0 - mean))


def _figures(
    setting: str, truth: Floats, raw: Floats, se: Floats, fits: list[tuple[Floats, ...]]
) -> Figures:
    """Pool raw and shrunken estimates (reps x segments) against the truth."""
    z = 1.959963984540054
    lift, low, high, b = (np.array([f[i] for f in fits]) for i in range(4))
    ok = np.isfinite(lift)
    return Figures(
        setting=setting,
        mse_raw=float(((raw - truth) ** 2)[ok].mean()),
        mse_shrunk=float(((lift - truth) ** 2)[ok].mean()),
        cover_raw=float((np.abs(raw - truth) <= z * se)[ok].mean()),
        cover_shrunk=float(((low <= truth) & (truth <= high))[ok].mean()),
        mean_shrinkage=float(b[ok].mean()),
        spread_raw=float(np.abs(raw - truth)[ok].mean()),
        spread_shrunk=float(np.abs(lift - truth)[ok].mean()),
    )


def disjoint(
    *, reps: int, seed: int, homogeneous: bool, redraw: bool = False, segments: int = 20
) -> Figures:
    """Exclusive segments: binomial sums drawn per experiment from known truths.

    ``redraw``: every experiment draws new true lifts (the average over the prior,
    which is what an empirical-Bayes interval's coverage is about); otherwise they
    are planted once and held fixed.
    """
    rng = np.random.default_rng(seed)
    n = np.round(np.exp(rng.uniform(np.log(400), np.log(6000), segments)))
    shape = (reps, segments) if redraw else (segments,)
    if homogeneous:
        base, rel = np.full(segments, 0.04), np.full(shape, 0.10)
    else:
        base, rel = rng.uniform(0.015, 0.08, segments), rng.normal(0.05, 0.12, shape)
    p_t = np.clip(base * (1.0 + rel), 0.0, 1.0)
    truth = p_t - base
    conv_c = rng.binomial(n.astype(np.int64), base, size=(reps, segments)).astype(np.float64)
    p_t = np.broadcast_to(p_t, (reps, segments))
    conv_t = rng.binomial(n.astype(np.int64), p_t).astype(np.float64)
    nn = np.broadcast_to(n, (reps, segments)).astype(np.float64)
    res = welch_ttest(_proportion_sums(nn, conv_c), _proportion_sums(nn, conv_t), alpha=ALPHA)
    fits = []
    for r in range(reps):
        s = shrink_lifts(res.lift_abs[r], res.se_abs[r], alpha=ALPHA)
        fits.append((s.lift, s.low, s.high, s.shrinkage))
    name = "homogeneous" if homogeneous else "heterogeneous, " + ("redrawn" if redraw else "fixed")
    name = f"disjoint, {name}"
    return _figures(name, truth, res.lift_abs, res.se_abs, fits)


def overlapping(*, reps: int, seed: int, users: int = 40_000, segments: int = 20) -> Figures:
    """Overlapping segments: fixed potential outcomes, re-randomised assignment."""
    rng = np.random.default_rng(seed)
    member = rng.random((users, segments)) < 0.15
    base = rng.uniform(0.02, 0.08, users)
    effect = member.astype(np.float64) @ rng.normal(0.004, 0.008, segments)
    u = rng.random(users)  # one uniform per user: both worlds' outcomes (common random numbers)
    y0 = (u < base).astype(np.float64)
    y1 = (u < np.clip(base + effect, 0.0, 1.0)).astype(np.float64)
    m = np.column_stack([np.ones(users), member]).astype(np.float64)
    truth = (m.T @ (y1 - y0)) / m.sum(axis=0)
    fits, raws, ses = [], [], []
    for _ in range(reps):
        t = (rng.random(users) < 0.5).astype(np.float64)
        arms = []
        for w, y in ((1.0 - t, y0), (t, y1)):
            cnt = w @ m
            arms.append(_proportion_sums(cnt, (w * y) @ m))
        res = welch_ttest(arms[0], arms[1], alpha=ALPHA)
        share = m[:, 1:].sum(axis=0) / users
        s = shrink_lifts(
            res.lift_abs[1:],
            res.se_abs[1:],
            alpha=ALPHA,
            overall=(float(res.lift_abs[0]), float(res.se_abs[0])),
            shares=share,
        )
        fits.append((s.lift, s.low, s.high, s.shrinkage))
        raws.append(res.lift_abs[1:])
        ses.append(res.se_abs[1:])
    return _figures("overlapping, heterogeneous", truth[1:], np.array(raws), np.array(ses), fits)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    rows = [
        disjoint(reps=args.reps, seed=args.seed, homogeneous=False),
        disjoint(reps=args.reps, seed=args.seed, homogeneous=False, redraw=True),
        disjoint(reps=args.reps, seed=args.seed, homogeneous=True),
        overlapping(reps=max(args.reps // 2, 1), seed=args.seed),
    ]
    heads = ("MSE raw", "MSE shrunk", "reduction", "cover raw", "cover shr", "mean B")
    print(f"{'setting':34}", *(f"{h:>10}" for h in heads), f"{'|err| raw':>9} {'|err| shr':>9}")
    for f in rows:
        print(
            f"{f.setting:34} {f.mse_raw:10.3e} {f.mse_shrunk:10.3e} {f.reduction:10.1%} "
            f"{f.cover_raw:10.1%} {f.cover_shrunk:10.1%} {f.mean_shrinkage:10.3f} "
            f"{f.spread_raw:9.2e} {f.spread_shrunk:9.2e}"
        )


if __name__ == "__main__":
    main()
