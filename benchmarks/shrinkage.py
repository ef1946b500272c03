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

``--simulator`` runs the same check on the journey simulator instead
(:func:`simulated`): the ``mosaic`` scenario (20 exclusive country × device
segments, a different planted purchase effect in each) simulated in both arms' worlds
for several populations (``simulate_potential``, full journeys), each re-randomised
50/50 many times (as ``benchmarks/calibrate_sim.py``); every experiment runs what
``exp analyze`` runs on an exclusive set (``welch_ttest`` per segment, then
``shrink_lifts``, Paule–Mandel) and is scored against the population's true
per-segment lift from both potential outcomes (truth.json's numbers). The
homogeneous check is mosaic's arm ``flat`` (one +15% purchase effect for everyone,
as ``uniform``, on the same 20 segments; ``uniform`` itself has 4 segments of very
different baselines): the shrunken lifts should sit much closer to ``all``'s.

Prints, per setting: the mean squared error of the raw and shrunken absolute lifts
against the truth (pooled over segments and experiments), the reduction, and the
coverage of the shrunken 95% intervals (raw beside it). Must show: MSE at least 25%
lower, coverage 93-97%, and on the homogeneous setting lifts pulled to the common lift.

    python benchmarks/shrinkage.py               # ~20 s
    python benchmarks/shrinkage.py --reps 2000 --seed 3
    python benchmarks/shrinkage.py --simulator    # ~2 min: 10 populations x 60 experiments
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from experiment.stats import shrink_lifts, welch_ttest
from experiment.sums import MeanSums
from simulators.potential import simulate_potential

MOSAIC = Path(__file__).resolve().parents[1] / "simulators" / "scenarios" / "mosaic"

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


@dataclass(frozen=True)
class Pulled:
    """The homogeneous check: how far segment relative lifts sit from ``all``'s."""

    setting: str
    spread_raw: float  # mean |lift_abs - lift_abs(all)| over segments and experiments
    spread_shrunk: float
    mean_shrinkage: float


def simulated(
    scenario: str | Path = MOSAIC,
    *,
    arm: str = "treatment",
    users: int,
    days: int,
    populations: int,
    reps: int,
    seed: int,
    metric: str = "conversion",
) -> tuple[Figures, Pulled]:
    """Shrinkage on simulated journeys: ``populations`` × ``reps`` experiments of a scenario.

    Per population: its segments (``all`` and empty ones dropped), the true absolute
    lift per segment from both potential outcomes, then ``reps`` 50/50
    re-randomisations, each analysed as ``exp analyze`` does for an exclusive set.
    """
    import calibrate_sim as cs  # re-randomised sums, beside this script

    truths, raws, ses, fits, pulls = [], [], [], [], []
    for p in range(populations):
        run = simulate_potential(scenario, users=users, days=days, seed=seed + p)
        names, masks = cs.segments_of(run)
        keep = [i for i, n in enumerate(names) if n != "all" and masks[i].sum() > 0]
        masks = masks[[0, *keep]]  # ``all`` first, then the non-empty segments
        worlds = (run.values(metric, run.control)[0], run.values(metric, arm)[0])
        m = cs.Metric(metric, "mean", worlds)
        truth_abs, _ = cs.true_lift(m, masks[1:])
        design = cs.Design([m], masks)
        rng = np.random.default_rng(seed + 1000 + p)
        k = masks.shape[0]
        for z in cs.assignments(rng, reps, masks.shape[1]):
            control, treatment = design.sums(z)[m.name]
            res = welch_ttest(control, treatment, alpha=ALPHA)
            lift = res.lift_abs.reshape(len(z), k)
            se = res.se_abs.reshape(len(z), k)
            for r in range(len(z)):
                s = shrink_lifts(lift[r, 1:], se[r, 1:], alpha=ALPHA)
                fits.append((s.lift, s.low, s.high, s.shrinkage))
                raws.append(lift[r, 1:])
                ses.append(se[r, 1:])
                truths.append(truth_abs)
                pulls.append(
                    (np.abs(lift[r, 1:] - lift[r, 0]), np.abs(s.lift - lift[r, 0]), s.shrinkage)
                )
    name = f"{Path(scenario).name} {arm}, {metric}"
    figures = _figures(name, np.array(truths), np.array(raws), np.array(ses), fits)
    raw_d, shr_d, b = (np.array([q[i] for q in pulls]) for i in range(3))
    ok = np.isfinite(shr_d) & np.isfinite(raw_d)
    pulled = Pulled(name, float(raw_d[ok].mean()), float(shr_d[ok].mean()), float(b[ok].mean()))
    return figures, pulled


def _print_figures(rows: list[Figures]) -> None:
    heads = ("MSE raw", "MSE shrunk", "reduction", "cover raw", "cover shr", "mean B")
    print(f"{'setting':34}", *(f"{h:>10}" for h in heads), f"{'|err| raw':>9} {'|err| shr':>9}")
    for f in rows:
        print(
            f"{f.setting:34} {f.mse_raw:10.3e} {f.mse_shrunk:10.3e} {f.reduction:10.1%} "
            f"{f.cover_raw:10.1%} {f.cover_shrunk:10.1%} {f.mean_shrinkage:10.3f} "
            f"{f.spread_raw:9.2e} {f.spread_shrunk:9.2e}"
        )


def main_simulator(args: argparse.Namespace) -> None:
    """The ``--simulator`` figures: mosaic's heterogeneous arm and its homogeneous one."""
    start = time.perf_counter()
    kw = {"users": args.users, "days": args.days, "populations": args.populations}
    found = [
        simulated(MOSAIC, arm=arm, **kw, reps=args.sim_reps, seed=args.seed)
        for arm in ("treatment", "flat")
    ]
    _print_figures([f for f, _ in found])
    for _, pull in found:
        print(
            f"{pull.setting}: mean |lift_abs - lift_abs(all)| raw {pull.spread_raw:.2e}, "
            f"shrunk {pull.spread_shrunk:.2e} ({1 - pull.spread_shrunk / pull.spread_raw:.0%} "
            f"closer); mean shrinkage B {pull.mean_shrinkage:.3f}"
        )
    total = args.populations * args.sim_reps
    print(
        f"{total} experiments per scenario ({args.populations} populations x {args.sim_reps}), "
        f"{args.users} users, {args.days} days; {time.perf_counter() - start:.0f} s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--simulator", action="store_true", help="the journey simulator mode")
    parser.add_argument("--users", type=int, default=40_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--populations", type=int, default=10)
    parser.add_argument("--sim-reps", type=int, default=60)
    args = parser.parse_args(argv)
    if args.simulator:
        main_simulator(args)
        return
    rows = [
        disjoint(reps=args.reps, seed=args.seed, homogeneous=False),
        disjoint(reps=args.reps, seed=args.seed, homogeneous=False, redraw=True),
        disjoint(reps=args.reps, seed=args.seed, homogeneous=True),
        overlapping(reps=max(args.reps // 2, 1), seed=args.seed),
    ]
    _print_figures(rows)


if __name__ == "__main__":
    main()
