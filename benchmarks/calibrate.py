"""Calibration suite for the stats engine (REALISM.md B8), simulated at the sums level.

Each check draws thousands of replicate experiments, runs them through
``experiment.stats`` as one vectorised call per look, and compares the measured rate
with its target inside a binomial band of z = 3.29 (PlanOut's tolerance):

* A/A false-positive rate (overall and per tail) per metric kind: proportions at 0.5%
  and 3%, capped zero-inflated lognormal revenue, clustered CTR (delta method) with
  the naive binomial FPR beside it; each at a 50/50 and a 10/90 split;
* coverage of the relative-lift CI at a planted +5% lift;
* power at a planted effect against the analytic normal power;
* Holm family-wise error over 20 null segments (``adjust_pvalues``), raw any-FP beside;
* sequential testing with 28 daily looks against naive peeking on the same draws;
* CUPED: variance ratio against 1 - ρ², bias, coverage, and a new-user cell;
* Cochran's Q under homogeneity.

It prints one table row per check with PASS/FAIL and exits 1 if any check fails.
A failure is information, not necessarily a bug: skewed revenue in a small arm is the
known case where the normal approximation breaks (REALISM.md B1-B2).

    python benchmarks/calibrate.py            # about a minute on 2 cores
    python benchmarks/calibrate.py --reps 5000 --seed 7
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.stats
from numpy.typing import NDArray

from experiment.stats import (
    LiftResult,
    adjust_pvalues,
    cochran_q,
    cuped_ttest,
    ratio_ttest,
    sequential_interval,
    welch_ttest,
)
from experiment.sums import JointSums, MeanSums

Z = 3.29
ALPHA = 0.05
SPLITS = {"50/50": 0.5, "10/90": 0.1}  # share of users in control
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Row:
    check: str
    setting: str
    measured: float
    low: float
    high: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.low <= self.measured <= self.high


def band(rate: float, reps: int) -> tuple[float, float]:
    half = Z * np.sqrt(rate * (1 - rate) / reps)
    return rate - half, rate + half


# ------------------------------------------------------------------ draws of sums
def proportion_sums(rng: np.random.Generator, n: int, p: float, reps: int) -> MeanSums:
    s = rng.binomial(n, p, reps).astype(np.float64)
    return MeanSums(n=np.full(reps, float(n)), mean=s / n, m2=s * (1 - s / n))


def normal_sums(rng: np.random.Generator, n: int, mu: float, sd: float, reps: int) -> MeanSums:
    return MeanSums(
        n=np.full(reps, float(n)),
        mean=rng.normal(mu, sd / np.sqrt(n), reps),
        m2=sd**2 * rng.chisquare(n - 1, reps),
    )


def _chunks(reps: int, n: int, budget: int = 4_000_000) -> Iterator[int]:
    size = max(1, budget // max(n, 1))
    for start in range(0, reps, size):
        yield min(size, reps - start)


# Revenue per user: 3% buy, order value lognormal (median $40, σ_log 1.2), capped at the
# 99th percentile of order value (GrowthBook-style capping).
BUY, LOG_MEDIAN, SIGMA = 0.03, np.log(40.0), 1.2
CAP = float(np.exp(LOG_MEDIAN + SIGMA * scipy.stats.norm.isf(0.01)))


def revenue_sums(rng: np.random.Generator, n: int, reps: int, lift: float = 0.0) -> MeanSums:
    means, m2s = [], []
    for size in _chunks(reps, n):
        buys = rng.random((size, n)) < BUY
        spend = np.where(buys, np.minimum(rng.lognormal(LOG_MEDIAN, SIGMA, (size, n)), CAP), 0.0)
        spend *= 1.0 + lift  # after capping, so the true relative lift is exactly `lift`
        mean = spend.mean(axis=1)
        means.append(mean)
        m2s.append(((spend - mean[:, None]) ** 2).sum(axis=1))
    return MeanSums(n=np.full(reps, float(n)), mean=np.concatenate(means), m2=np.concatenate(m2s))


def ctr_sums(rng: np.random.Generator, n: int, reps: int) -> tuple[JointSums, Floats, Floats]:
    """Per-user clicks / impressions (impressions 1 + NegBin mean 8, CTR ~ Beta(0.5, 12)).

    Also returns the pooled click and impression totals for the naive binomial test.
    """
    parts: list[JointSums] = []
    clicks_tot, impr_tot = [], []
    for size in _chunks(reps, n):
        impressions = 1.0 + rng.negative_binomial(2, 2 / 9, (size, n))
        clicks = rng.binomial(impressions.astype(np.int64), rng.beta(0.5, 12.0, (size, n)))
        y, x = clicks.astype(np.float64), impressions
        my, mx = y.mean(axis=1), x.mean(axis=1)
        dy, dx = y - my[:, None], x - mx[:, None]
        parts.append(
            JointSums(
                n=np.full(size, float(n)),
                mean_y=my,
                mean_x=mx,
                m2_y=(dy**2).sum(axis=1),
                m2_x=(dx**2).sum(axis=1),
                c_xy=(dx * dy).sum(axis=1),
            )
        )
        clicks_tot.append(y.sum(axis=1))
        impr_tot.append(x.sum(axis=1))
    fields = ("n", "mean_y", "mean_x", "m2_y", "m2_x", "c_xy")
    joint = JointSums(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))
    return joint, np.concatenate(clicks_tot), np.concatenate(impr_tot)


# ------------------------------------------------------------------ checks
def aa_rows(kind: str, split: str, lift: LiftResult, reps: int, note: str = "") -> list[Row]:
    reject = lift.p_value < ALPHA
    low, high = band(ALPHA, reps)
    tail_low, tail_high = band(ALPHA / 2, reps)
    setting = f"{kind}, {split}"
    return [
        Row("A/A FPR", setting, reject.mean(), low, high, note),
        Row("A/A upper tail", setting, (reject & (lift.lift_abs > 0)).mean(), tail_low, tail_high),
        Row("A/A lower tail", setting, (reject & (lift.lift_abs < 0)).mean(), tail_low, tail_high),
    ]


def guard(n_control: int, skew: float) -> str:
    """Kohavi's rule of thumb: the normal approximation needs n >= 355 s² per arm."""
    need = 355 * skew**2
    return f"skew {skew:.1f}: 355·s²={need:,.0f} " + ("met" if n_control >= need else "NOT met")


def check_aa(rng: np.random.Generator, reps: int) -> list[Row]:
    rows: list[Row] = []
    # Skewness of revenue per user from one large sample (for the 355·s² guard).
    spend = np.where(
        rng.random(2_000_000) < BUY,
        np.minimum(rng.lognormal(LOG_MEDIAN, SIGMA, 2_000_000), CAP),
        0.0,
    )
    revenue_skew = float(scipy.stats.skew(spend))
    for split, share in SPLITS.items():
        n_total = 50_000
        n_c, n_t = int(n_total * share), n_total - int(n_total * share)
        for p in (0.005, 0.03):
            lift = welch_ttest(
                proportion_sums(rng, n_c, p, reps), proportion_sums(rng, n_t, p, reps)
            )
            skew = (1 - 2 * p) / np.sqrt(p * (1 - p))
            note = f"n={n_c}/{n_t}; {guard(n_c, skew)}"
            rows += aa_rows(f"proportion {p:.1%}", split, lift, reps, note)

        n_total = 20_000
        n_c, n_t = int(n_total * share), n_total - int(n_total * share)
        lift = welch_ttest(revenue_sums(rng, n_c, reps), revenue_sums(rng, n_t, reps))
        note = f"n={n_c}/{n_t}, cap ${CAP:.0f}; {guard(n_c, revenue_skew)}"
        rows += aa_rows("capped revenue", split, lift, reps, note)

        n_total = 8_000
        n_c, n_t = int(n_total * share), n_total - int(n_total * share)
        (jc, clicks_c, impr_c), (jt, clicks_t, impr_t) = (
            ctr_sums(rng, n_c, reps),
            ctr_sums(rng, n_t, reps),
        )
        lift = ratio_ttest(jc, jt)
        rows += aa_rows("clustered CTR (delta)", split, lift, reps, f"n={n_c}/{n_t}")
        # The naive pooled-binomial test treats impressions as independent (B5).
        naive = welch_ttest(
            MeanSums(n=impr_c, mean=clicks_c / impr_c, m2=clicks_c * (1 - clicks_c / impr_c)),
            MeanSums(n=impr_t, mean=clicks_t / impr_t, m2=clicks_t * (1 - clicks_t / impr_t)),
        )
        rows.append(
            Row(
                "naive binomial CTR FPR",
                split,
                (naive.p_value < ALPHA).mean(),
                0.10,
                1.0,
                "must be > 10%: why the delta method",
            )
        )
    return rows


def check_coverage(rng: np.random.Generator, reps: int) -> list[Row]:
    rows: list[Row] = []
    low, high = band(1 - ALPHA, reps)
    for split, share in SPLITS.items():
        n_c, n_t = int(50_000 * share), 50_000 - int(50_000 * share)
        lift = welch_ttest(
            proportion_sums(rng, n_c, 0.03, reps), proportion_sums(rng, n_t, 0.0315, reps)
        )
        covered = (lift.ci_low <= 0.05) & (lift.ci_high >= 0.05)
        rows.append(
            Row("coverage lift_rel +5%", f"proportion 3%, {split}", covered.mean(), low, high)
        )
        n_c, n_t = int(20_000 * share), 20_000 - int(20_000 * share)
        lift = welch_ttest(revenue_sums(rng, n_c, reps), revenue_sums(rng, n_t, reps, lift=0.05))
        covered = (lift.ci_low <= 0.05) & (lift.ci_high >= 0.05)
        rows.append(
            Row("coverage lift_rel +5%", f"capped revenue, {split}", covered.mean(), low, high)
        )
    return rows


def check_power(rng: np.random.Generator, reps: int) -> list[Row]:
    rows: list[Row] = []
    z = scipy.stats.norm.isf(ALPHA / 2)
    for split, share in SPLITS.items():
        n_c, n_t = int(40_000 * share), 40_000 - int(40_000 * share)
        p_c = 0.03
        # Effect for ~80% power, then the analytic power at the true variances.
        se0 = np.sqrt(p_c * (1 - p_c) * (1 / n_c + 1 / n_t))
        p_t = p_c + (z + scipy.stats.norm.isf(0.2)) * se0
        se = np.sqrt(p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t)
        analytic = scipy.stats.norm.sf(z - (p_t - p_c) / se) + scipy.stats.norm.cdf(
            -z - (p_t - p_c) / se
        )
        lift = welch_ttest(
            proportion_sums(rng, n_c, p_c, reps), proportion_sums(rng, n_t, p_t, reps)
        )
        low, high = band(analytic, reps)
        rows.append(
            Row(
                "power vs analytic",
                f"proportion 3% +{(p_t / p_c - 1):.1%}, {split}",
                (lift.p_value < ALPHA).mean(),
                low,
                high,
                f"analytic {analytic:.3f}",
            )
        )
    return rows


def check_holm(rng: np.random.Generator, reps: int) -> list[Row]:
    segments = 20
    control = normal_sums(rng, 2_000, 5.0, 2.0, reps * segments)
    treatment = normal_sums(rng, 2_000, 5.0, 2.0, reps * segments)
    p = welch_ttest(control, treatment).p_value.reshape(reps, segments)
    family = np.repeat(np.arange(reps)[:, None], segments, axis=1)
    holm = adjust_pvalues(p, method="holm", groups=family)
    raw_any = (p < ALPHA).any(axis=1).mean()
    expected_raw = 1 - (1 - ALPHA) ** segments
    return [
        Row(
            "Holm FWER, 20 null segments",
            "welch",
            (holm < ALPHA).any(axis=1).mean(),
            0.0,
            band(ALPHA, reps)[1],
        ),
        Row("raw any-FP, 20 null segments", "welch", raw_any, *band(expected_raw, reps)),
    ]


def check_sequential(rng: np.random.Generator, reps: int) -> list[Row]:
    looks, per_day = 28, 200
    control = normal_sums(rng, per_day, 3.0, 2.0, reps)
    treatment = normal_sums(rng, per_day, 3.0, 2.0, reps)
    seq_hit = np.zeros(reps, dtype=bool)
    naive_hit = np.zeros(reps, dtype=bool)
    for look in range(looks):
        if look:
            control = control + normal_sums(rng, per_day, 3.0, 2.0, reps)
            treatment = treatment + normal_sums(rng, per_day, 3.0, 2.0, reps)
        lift = welch_ttest(control, treatment)
        seq_hit |= (
            sequential_interval(lift, control.n + treatment.n, tuning=5000).seq_p_value < ALPHA
        )
        naive_hit |= lift.p_value < ALPHA
    return [
        Row(
            "sequential FPR, 28 looks",
            "A/A, N*=5000",
            seq_hit.mean(),
            0.0,
            band(ALPHA, reps)[1],
            "expect ~2%",
        ),
        Row(
            "naive peeking FPR, 28 looks", "same draws", naive_hit.mean(), 0.15, 1.0, "expect ~25%"
        ),
    ]


def _joint_normal(
    rng: np.random.Generator, n: int, mu_y: float, rho: float, reps: int
) -> JointSums:
    cov = np.array([[4.0, 2.0 * rho], [2.0 * rho, 1.0]])
    means = rng.multivariate_normal([mu_y, 3.0], cov / n, size=reps)
    scatter = np.asarray(
        scipy.stats.wishart.rvs(df=n - 1, scale=cov, size=reps, random_state=rng), dtype=np.float64
    )
    return JointSums(
        n=np.full(reps, float(n)),
        mean_y=means[:, 0],
        mean_x=means[:, 1],
        m2_y=scatter[:, 0, 0],
        m2_x=scatter[:, 1, 1],
        c_xy=scatter[:, 0, 1],
    )


def check_cuped(rng: np.random.Generator, reps: int) -> list[Row]:
    rows: list[Row] = []
    effect, n = 0.2, 1_000
    for rho in (0.0, 0.3, 0.6, 0.8):
        control, treatment = (
            _joint_normal(rng, n, 10.0, rho, reps),
            _joint_normal(rng, n, 10.2, rho, reps),
        )
        res = cuped_ttest(control, treatment)
        plain = welch_ttest(control.y, treatment.y)
        ratio = res.lift_abs.var(ddof=1) / plain.lift_abs.var(ddof=1)
        rows.append(
            Row(
                "CUPED variance ratio",
                f"ρ={rho}",
                ratio,
                1 - rho**2 - 0.05,
                1 - rho**2 + 0.05,
                f"target 1-ρ²={1 - rho**2:.2f}; mean reported reduction "
                f"{np.nanmean(res.variance_reduction):.3f}",
            )
        )
        err = res.lift_abs - effect
        se_bias = err.std(ddof=1) / np.sqrt(reps)
        rows.append(Row("CUPED bias / SE", f"ρ={rho}", err.mean() / se_bias, -Z, Z))
        covered = (res.ci_abs_low <= effect) & (effect <= res.ci_abs_high)
        rows.append(Row("CUPED CI coverage", f"ρ={rho}", covered.mean(), *band(1 - ALPHA, reps)))
    # New users: no pre-period, x = 0 for everyone, so no gain and no crash.
    zero = normal_sums(rng, n, 10.0, 2.0, reps)
    control = JointSums(
        n=zero.n,
        mean_y=zero.mean,
        mean_x=np.zeros(reps),
        m2_y=zero.m2,
        m2_x=np.zeros(reps),
        c_xy=np.zeros(reps),
    )
    res = cuped_ttest(control, control)
    rows.append(
        Row(
            "CUPED new users (x=0)",
            "reduction",
            float(np.nanmax(np.abs(res.variance_reduction))),
            0.0,
            1e-9,
            "no covariate: exactly 0",
        )
    )
    return rows


def check_heterogeneity(rng: np.random.Generator, reps: int) -> list[Row]:
    k = 12
    se = np.geomspace(0.01, 0.1, k)
    estimates = 0.03 + rng.normal(0.0, 1.0, (reps, k)) * se
    res = cochran_q(estimates, np.broadcast_to(se, (reps, k)))
    return [
        Row(
            "Cochran Q FPR (homogeneous)",
            f"{k} segments",
            (res.p_value < ALPHA).mean(),
            *band(ALPHA, reps),
        )
    ]


CHECKS: dict[str, Callable[[np.random.Generator, int], list[Row]]] = {
    "A/A": check_aa,
    "coverage": check_coverage,
    "power": check_power,
    "Holm": check_holm,
    "sequential": check_sequential,
    "CUPED": check_cuped,
    "heterogeneity": check_heterogeneity,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2_000, help="replicates per check")
    parser.add_argument("--seed", type=int, default=2026, help="master seed")
    args = parser.parse_args(argv)

    seeds = np.random.SeedSequence(args.seed).spawn(len(CHECKS))
    rows: list[Row] = []
    for (name, check), seed in zip(CHECKS.items(), seeds, strict=True):
        start = time.perf_counter()
        rows += check(np.random.default_rng(seed), args.reps)
        print(f"[{name}: {time.perf_counter() - start:.1f}s]", file=sys.stderr)

    print(f"{'check':<31} {'setting':<32} {'measured':>9}  {'band (z=3.29)':<19} {'':4}  note")
    for row in rows:
        print(
            f"{row.check:<31} {row.setting:<32} {row.measured:>9.4f}  "
            f"[{row.low:.4f}, {row.high:.4f}]  {'PASS' if row.ok else 'FAIL'}  {row.note}"
        )
    failed = sum(not row.ok for row in rows)
    print(f"\n{len(rows) - failed}/{len(rows)} checks pass ({args.reps} replicates each).")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
