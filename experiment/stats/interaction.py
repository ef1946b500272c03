"""Segment-versus-rest interaction tests: does a segment's lift differ from everyone else's?

For each segment ``s`` the rest of the population is ``all`` minus the users of ``s``.
Its sufficient statistics are exact differences of the cells' centred moments
(:func:`complement`), so the test is valid for overlapping segments: the segment
and its rest are disjoint sets of users, their lifts independent, and

    ``z = (lift_s - lift_rest) / sqrt(se_s² + se_rest²)``

is standard normal when the two lifts are equal, with the standard errors of the
experiment's own test. On the relative scale the lifts are compared as log ratios,
``log(1 + lift_rel)`` (:func:`log_scale`), as ratio measures are.

References:
    Interaction test (difference of two independent estimates): Altman & Bland
    (2003), https://doi.org/10.1136/bmj.326.7382.219
    Removing a part from merged centred moments (the pairwise update of Chan,
    Golub & LeVeque, solved for one part):
    https://en.wikipedia.org/wiki/Algorithms_for_calculating_variance#Parallel_algorithm
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, overload

import numpy as np

from experiment.stats._dist import norm_sf
from experiment.stats._lift import FloatArray, StrArray
from experiment.stats.messages import OK, TOO_FEW_UNITS
from experiment.sums import CovariateSums, JointSums, MeanSums

if TYPE_CHECKING:
    from experiment.stats._lift import LiftResult

__all__ = ["InteractionResult", "Scale", "complement", "interaction_test", "log_scale"]

Scale = Literal["absolute", "relative"]


def _part_removed(
    n_w: FloatArray, n_p: FloatArray, n_r: FloatArray, mean_w: FloatArray, mean_p: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(mean_rest, d, k)``: the rest's mean, ``d = mean_p - mean_w``, ``k = n_w n_p / n_r``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(n_p > 0, mean_p - mean_w, 0.0)
        mean_r = np.where(n_r > 0, mean_w - n_p * d / np.where(n_r > 0, n_r, 1.0), np.nan)
        k = np.where(n_r > 0, n_w * n_p / np.where(n_r > 0, n_r, 1.0), 0.0)
    return mean_r, d, k


@overload
def complement(whole: MeanSums, part: MeanSums) -> MeanSums: ...
@overload
def complement(whole: JointSums, part: JointSums) -> JointSums: ...
@overload
def complement(whole: CovariateSums, part: CovariateSums) -> CovariateSums: ...
@overload
def complement(whole: MeanSums | JointSums, part: MeanSums | JointSums) -> MeanSums | JointSums: ...
def complement(
    whole: MeanSums | JointSums | CovariateSums, part: MeanSums | JointSums | CovariateSums
) -> MeanSums | JointSums | CovariateSums:
    """The sums of ``whole`` minus the units of ``part`` (``part`` ⊆ ``whole``), per cell.

    Inverts Chan's merge: with ``n_r = n_w - n_p``, ``d = ȳ_p - ȳ_w``,
    ``ȳ_r = ȳ_w - n_p d / n_r`` and ``M2_r = M2_w - M2_p - n_w n_p d² / n_r``
    (co-moments alike, ``C_r = C_w - C_p - n_w n_p d_x d_y / n_r``). Exact in exact
    arithmetic; rounding can leave a tiny negative ``M2``, clipped to 0. An empty
    rest has ``n = 0`` and ``nan`` means.

    Args:
        whole: Sums of the whole population (e.g. ``all``), broadcastable to ``part``.
        part: Sums of a subset of its units (e.g. each segment).

    Returns:
        Sums of the same kind as the inputs.

    Raises:
        TypeError: ``whole`` and ``part`` are not the same kind of sums
            (``MeanSums``, ``JointSums`` or ``CovariateSums``).
    """
    n_r = np.maximum(whole.n - part.n, 0.0)
    if isinstance(whole, JointSums) and isinstance(part, JointSums):
        my, dy, k = _part_removed(whole.n, part.n, n_r, whole.mean_y, part.mean_y)
        mx, dx, _ = _part_removed(whole.n, part.n, n_r, whole.mean_x, part.mean_x)
        return JointSums(
            n=n_r,
            mean_y=my,
            mean_x=mx,
            m2_y=np.maximum(whole.m2_y - part.m2_y - k * dy**2, 0.0),
            m2_x=np.maximum(whole.m2_x - part.m2_x - k * dx**2, 0.0),
            c_xy=np.where(n_r > 0, whole.c_xy - part.c_xy - k * dx * dy, 0.0),
        )
    if isinstance(whole, CovariateSums) and isinstance(part, CovariateSums):
        return _covariate_complement(whole, part, n_r)
    if isinstance(whole, MeanSums) and isinstance(part, MeanSums):
        mean, d, k = _part_removed(whole.n, part.n, n_r, whole.mean, part.mean)
        return MeanSums(n=n_r, mean=mean, m2=np.maximum(whole.m2 - part.m2 - k * d**2, 0.0))
    raise TypeError("`whole` and `part` must be sums of the same kind.")


def _covariate_complement(
    whole: CovariateSums, part: CovariateSums, n_r: FloatArray
) -> CovariateSums:
    """:func:`complement` of :class:`CovariateSums`: every cross-moment alike."""
    my, dy, k = _part_removed(whole.n, part.n, n_r, whole.mean_y, part.mean_y)
    cell = (..., None)
    mx, dx, _ = _part_removed(whole.n[cell], part.n[cell], n_r[cell], whole.mean_x, part.mean_x)
    kx = k[cell]
    rest = (n_r > 0)[cell]
    return CovariateSums(
        n=n_r,
        mean_y=my,
        m2_y=np.maximum(whole.m2_y - part.m2_y - k * dy**2, 0.0),
        mean_x=mx,
        c_xx=np.where(
            rest[..., None],
            whole.c_xx - part.c_xx - kx[..., None] * dx[..., :, None] * dx[..., None, :],
            0.0,
        ),
        c_xy=np.where(rest, whole.c_xy - part.c_xy - kx * dx * dy[cell], 0.0),
    )


def log_scale(lift: LiftResult) -> tuple[FloatArray, FloatArray]:
    """``log(1 + lift_rel)`` and its delta-method standard error ``se_rel / (1 + lift_rel)``.

    For independent means the error is exactly ``sqrt(v_t/(n_t m_t²) + v_c/(n_c m_c²))``.
    The log ratio is far closer to normal than ``lift_rel`` when a baseline is small
    (few conversions, sparse revenue), where the ratio's skew and the correlation of
    ``lift_rel`` with its own standard error make a test on ``lift_rel`` anti-
    conservative. ``nan`` where ``1 + lift_rel <= 0``.

    References:
        Katz et al. (1978), log risk ratio; Altman & Bland (2003) compare ratio
        measures on the log scale: https://doi.org/10.1136/bmj.326.7382.219
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = 1.0 + lift.lift_rel
        positive = ratio > 0
        safe = np.where(positive, ratio, 1.0)
        return (
            np.where(positive, np.log(safe), np.nan),
            np.where(positive, lift.se_rel / safe, np.nan),
        )


@dataclass(frozen=True, eq=False)
class InteractionResult:
    """The difference of two independent lifts and its z test, one element per cell.

    Attributes:
        difference: ``lift_a - lift_b`` on the chosen scale (relative: of ``lift_rel``).
        se: ``sqrt(se_a² + se_b²)``; relative: of the log ratios' difference.
        z: ``difference / se``; relative: ``log((1 + lift_rel_a) / (1 + lift_rel_b)) / se``.
        p_value: Two-sided, ``2 P(Z > |z|)``.
        reason: ``""``, else why the test is ``nan`` (the first estimate's reason, the
            second's when that one is undefined, else ``"too_few_units"``).
    """

    difference: FloatArray
    se: FloatArray
    z: FloatArray
    p_value: FloatArray
    reason: StrArray


def interaction_test(a: LiftResult, b: LiftResult, *, scale: Scale) -> InteractionResult:
    """Test whether two independent lifts differ, on the absolute or relative scale.

    Args:
        a: Lifts of one population per cell (e.g. each segment).
        b: Lifts of a disjoint population per cell (e.g. each segment's rest).
        scale: ``"absolute"`` (``lift_abs``, ``se_abs``) or ``"relative"``
            (``log(1 + lift_rel)`` and its delta-method error, :func:`log_scale`).

    Returns:
        The difference ``a - b``, its standard error, z and two-sided p-value.

    Raises:
        ValueError: ``scale`` is not ``"absolute"`` or ``"relative"``.

    References:
        Altman & Bland (2003), "Interaction revisited: the difference between two
        estimates", https://doi.org/10.1136/bmj.326.7382.219

    Examples:
        >>> from experiment.stats import welch_ttest
        >>> seg = welch_ttest(MeanSums.from_values([0, 1] * 50), MeanSums.from_values([1] * 60 + [0] * 40), alpha=0.05)
        >>> rest = welch_ttest(MeanSums.from_values([0, 1] * 500), MeanSums.from_values([0, 1] * 500), alpha=0.05)
        >>> round(float(interaction_test(seg, rest, scale="absolute").difference[0]), 3)
        0.1
    """  # noqa: E501
    if scale not in ("absolute", "relative"):
        raise ValueError(f"scale == {scale!r}, must be 'absolute' or 'relative'.")
    est_a, se_a = log_scale(a) if scale == "relative" else (a.lift_abs, a.se_abs)
    est_b, se_b = log_scale(b) if scale == "relative" else (b.lift_abs, b.se_abs)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = est_a - est_b
        se = np.sqrt(se_a**2 + se_b**2)
        ok = np.isfinite(diff) & np.isfinite(se) & (se > 0)
        z = np.where(ok, diff / np.where(ok, se, 1.0), np.nan)
        bad_a = ~(np.isfinite(est_a) & np.isfinite(se_a))
        bad_b = ~(np.isfinite(est_b) & np.isfinite(se_b))
    why = np.where(bad_a, a.reason, np.where(bad_b, b.reason, OK))
    reason = np.where(ok, OK, np.where(why == OK, TOO_FEW_UNITS, why))
    if scale == "relative":  # report the difference of the relative lifts themselves
        diff = a.lift_rel - b.lift_rel
    return InteractionResult(
        difference=np.where(ok, diff, np.nan),
        se=np.where(ok, se, np.nan),
        z=z,
        p_value=np.where(ok, 2.0 * norm_sf(np.abs(z)), np.nan),
        reason=reason.astype(a.reason.dtype),
    )
