"""Bayesian read-outs of one comparison: chance to beat control and expected loss."""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from typing import TYPE_CHECKING

import numpy as np

from experiment.plan import kind_plan
from experiment.stats import BayesResult, bayes_beta_binomial, bayes_normal
from experiment.sums import MeanSums

if TYPE_CHECKING:
    from experiment.stats import LiftResult
    from experiment.sums import JointSums

__all__ = ["bayes", "threaded_beta_binomial"]

# Beta-Binomial read-outs: segments per thread below which a thread costs more than
# it saves, and the most threads.
_MIN_SLICE = 256
_MAX_WORKERS = 8


def bayes(
    sums: MeanSums | JointSums,
    kind: str,
    c: int,
    j: int,
    lift: LiftResult,
    *,
    cuped: bool,
    higher_is_better: bool = True,
) -> BayesResult:
    """Chance to beat control and expected loss (absolute units, GrowthBook's risk).

    Proportions use Beta-Binomial posteriors; means, ratios and CUPED-adjusted
    lifts the normal approximation of the lift's sampling distribution under a
    flat prior. For a lower-is-better metric "beating control" is being below it:
    the chance to win is ``P(treatment < control)`` and the expected loss of
    shipping is ``E[max(0, treatment - control)]``, computed exactly by swapping the
    arms (Beta-Binomial) or negating the lift (normal).
    """
    if kind_plan(kind).bayes == "beta-binomial" and isinstance(sums, MeanSums) and not cuped:
        if not higher_is_better:
            return threaded_beta_binomial(sums[:, j], sums[:, c])
        return threaded_beta_binomial(sums[:, c], sums[:, j])
    return bayes_normal(lift, higher_is_better=higher_is_better)


def threaded_beta_binomial(control: MeanSums, treatment: MeanSums) -> BayesResult:
    """:func:`~experiment.stats.bayes_beta_binomial` on one slice of segments per core, on threads.

    Its quadrature (Beta quantiles and incomplete beta functions) is most of the
    stats step's time at thousands of segments; the special functions release the
    GIL and each cell is computed on its own, so slicing changes nothing but the
    wall time.
    """
    size = control.n.size
    workers = min(os.cpu_count() or 1, _MAX_WORKERS, size // _MIN_SLICE)
    if workers <= 1:
        return bayes_beta_binomial(control, treatment)
    bounds = np.linspace(0, size, workers + 1).astype(int)
    slices = [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]

    def part(s: slice) -> BayesResult:
        return bayes_beta_binomial(control[s], treatment[s])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(part, slices))
    return BayesResult(
        **{f.name: np.concatenate([getattr(r, f.name) for r in parts]) for f in fields(BayesResult)}
    )
