"""Pure numpy inference of ``exp refine`` on sufficient statistics.

The two sides of every cut are merged from per-bin sums (Chan's merge in
:mod:`experiment.sums`); each side's relative lift and its delta-method standard
error come from the experiment's own tests (:func:`experiment.stats.welch_ttest`,
:func:`experiment.stats.ratio_ttest`). Two sides are compared by

    ``z = (lift_rel_a - lift_rel_b) / sqrt(se_a² + se_b²)``,

the relative scale, so that one multiplicative effect on sides with different
baselines is not heterogeneity. Merges are tested for equivalence of the two
lifts within a margin by two one-sided z tests (TOST).

Discovery ranks candidate cuts by the same contrast on the log scale with the
arms' pooled variance (:func:`log_lift`): still multiplicative, but robust to
the small sides whose delta-method variance is unstable. It only ranks; every
reported number comes from the estimation half.

References:
    Delta method for the relative lift: Deng, Knoblich & Lu (KDD 2018),
    https://arxiv.org/abs/1803.06336
    Interaction test (difference of two independent estimates): Altman & Bland
    (2003), https://doi.org/10.1136/bmj.326.7382.219
    TOST: Schuirmann (1987), https://en.wikipedia.org/wiki/Equivalence_test
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import special

from experiment.stats import LiftResult, cuped_ttest, ratio_ttest, welch_ttest
from experiment.sums import JointSums, MeanSums

__all__ = [
    "cumulate",
    "cut_sides",
    "equivalence_p",
    "interaction_z",
    "lift",
    "log_lift",
    "two_sided_p",
]

Sums = MeanSums | JointSums
FloatArray = NDArray[np.float64]


def _shifted(n: FloatArray, mean: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(n·d, d, ref)`` per bin: ``d = mean - ref``, ``ref`` the weighted mean over axis 0."""
    filled = np.where(n > 0, mean, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ref = np.nan_to_num((n * filled).sum(axis=0) / n.sum(axis=0))
    d = np.where(n > 0, filled - ref, 0.0)
    return n * d, d, ref


def cumulate(sums: Sums) -> Sums:
    """Prefix merges along axis 0: element ``k`` holds bins ``0 … k`` merged.

    The closed form of merging many cells at once (the pairwise update of Chan
    et al. applied to all prefixes): ``N = Σn``, ``M = Σ n·m / N`` and
    ``M2 = Σ m2 + Σ n (m - M)²`` (co-moments alike), computed with cumulative
    sums of the cell means shifted by their overall mean, which keeps the
    between-cell term free of cancellation. Equals repeated ``+`` up to rounding.

    References:
        Chan, Golub & LeVeque (1979):
        https://en.wikipedia.org/wiki/Algorithms_for_calculating_variance#Parallel_algorithm
    """
    n = np.cumsum(sums.n, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(n > 0, 1.0 / np.where(n > 0, n, 1.0), np.nan)

        def margin(mean: FloatArray, m2: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
            nd, d, _ = _shifted(sums.n, mean)
            shift = np.cumsum(nd, axis=0) * inv  # prefix mean minus ref
            between = np.cumsum(nd * d, axis=0) - n * np.nan_to_num(shift) ** 2
            # the mean itself unshifted, so that cells that are all 0 merge to exactly 0
            merged = np.cumsum(sums.n * np.where(sums.n > 0, mean, 0.0), axis=0) * inv
            return merged, np.cumsum(m2, axis=0) + np.maximum(between, 0.0), shift

        if isinstance(sums, MeanSums):
            mean, m2, _ = margin(sums.mean, sums.m2)
            return MeanSums(n=n, mean=mean, m2=m2)
        mean_y, m2_y, shift_y = margin(sums.mean_y, sums.m2_y)
        mean_x, m2_x, shift_x = margin(sums.mean_x, sums.m2_x)
        nd_y, _, _ = _shifted(sums.n, sums.mean_y)
        _, d_x, _ = _shifted(sums.n, sums.mean_x)
        cross = np.cumsum(nd_y * d_x, axis=0) - n * np.nan_to_num(shift_y * shift_x)
        c_xy = np.cumsum(sums.c_xy, axis=0) + cross
    return JointSums(n=n, mean_y=mean_y, mean_x=mean_x, m2_y=m2_y, m2_x=m2_x, c_xy=c_xy)


def cut_sides(sums: Sums, order: NDArray[np.int64]) -> tuple[Sums, Sums]:
    """The two sides of every cut of ordered bins, shape ``(bins - 1, groups)``.

    Args:
        sums: Per-bin sums of one arm and half, shape ``(bins, groups)``.
        order: Per group, the bin order (shape ``(bins, groups)``); cut ``j``
            (``1 … bins-1``) puts ordered bins ``0 … j-1`` low and ``j …`` high.

    Returns:
        ``(low, high)``; row ``j - 1`` is cut ``j``.
    """
    cols = np.arange(order.shape[1])[None, :]
    ordered = sums[order, cols]
    prefix = cumulate(ordered)
    suffix = cumulate(ordered[::-1])[::-1]
    return prefix[:-1], suffix[1:]


def lift(control: Sums, treatment: Sums, alpha: float, *, cuped: bool = False) -> LiftResult:
    """The experiment's test of treatment against control (Welch t, or delta-method ratio).

    ``cuped``: the joint sums hold the metric and its CUPED covariate, and the test
    is the experiment's CUPED test (:func:`experiment.stats.cuped_ttest`).

    A side with no treatment events has no relative CI (``experiment.stats`` reason
    ``zero_treatment``), so its interaction z is undefined: −100% ± 0 is not evidence.
    """
    if cuped and isinstance(control, JointSums) and isinstance(treatment, JointSums):
        return cuped_ttest(control, treatment, alpha=alpha)
    if isinstance(control, JointSums) and isinstance(treatment, JointSums):
        return ratio_ttest(control, treatment, alpha=alpha)
    if isinstance(control, MeanSums) and isinstance(treatment, MeanSums):
        return welch_ttest(control, treatment, alpha=alpha)
    raise TypeError("control and treatment must be sums of the same kind")


def interaction_z(a: LiftResult, b: LiftResult) -> FloatArray:
    """``(lift_rel_a - lift_rel_b) / sqrt(se_rel_a² + se_rel_b²)``; ``nan`` where undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (a.lift_rel - b.lift_rel) / np.sqrt(a.se_rel**2 + b.se_rel**2)
    return np.asarray(np.where(np.isfinite(z), z, np.nan), dtype=np.float64)


def log_lift(control: Sums, treatment: Sums) -> tuple[FloatArray, FloatArray]:
    """``log(m_t / m_c)`` and its variance from the arms' *pooled* coefficient of variation.

    ``Var ≈ cv² (1/n_c + 1/n_t)`` with ``cv`` the per-user coefficient of variation
    of both arms together (ratio metrics: of the linearised values): the null
    variance, stable where a small side's control mean is small by chance (the
    per-arm delta-method variance then shrinks with it and inflates ``z``).
    ``nan`` where a mean is not positive.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if isinstance(control, JointSums) and isinstance(treatment, JointSums):
            joint = control + treatment
            ratio = joint.mean_y / joint.mean_x
            m2 = joint.m2_y - 2 * ratio * joint.c_xy + ratio**2 * joint.m2_x
            cv2 = np.maximum(m2, 0.0) / (joint.n - 1) / joint.mean_y**2
            m_c = control.mean_y / control.mean_x
            m_t = treatment.mean_y / treatment.mean_x
        elif isinstance(control, MeanSums) and isinstance(treatment, MeanSums):
            pooled = control + treatment
            cv2 = pooled.var / pooled.mean**2
            m_c, m_t = control.mean, treatment.mean
        else:
            raise TypeError("control and treatment must be sums of the same kind")
        ok = (m_c > 0) & (m_t > 0) & (control.n >= 2) & (treatment.n >= 2)
        log = np.where(ok, np.log(np.where(ok, m_t / m_c, 1.0)), np.nan)
        var = np.where(ok, cv2 * (1.0 / control.n + 1.0 / treatment.n), np.nan)
    return np.asarray(log, dtype=np.float64), np.asarray(var, dtype=np.float64)


def two_sided_p(z: FloatArray) -> FloatArray:
    """Two-sided normal p-value of a z statistic.

    ``special.ndtr(-x)`` is what ``scipy.stats.norm.sf(x)`` computes, without the
    start-up cost of importing ``scipy.stats``.
    """
    return np.asarray(2.0 * special.ndtr(-np.abs(z)), dtype=np.float64)


def equivalence_p(a: LiftResult, b: LiftResult, margin: float) -> FloatArray:
    """TOST p-value that ``|lift_rel_a - lift_rel_b| < margin`` (normal, two one-sided tests).

    ``max(P(Z > (d + margin)/se), P(Z < (d - margin)/se))`` with ``d`` the difference
    and ``se`` its standard error (the lifts taken as independent: conservative
    when they share users).
    """
    d = a.lift_rel - b.lift_rel
    with np.errstate(invalid="ignore"):
        se = np.sqrt(a.se_rel**2 + b.se_rel**2)
        lower = special.ndtr(-((d + margin) / se))  # norm.sf
        upper = special.ndtr((d - margin) / se)  # norm.cdf
    return np.asarray(np.maximum(lower, upper), dtype=np.float64)
