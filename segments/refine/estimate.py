"""Estimation: measure a chosen proposal's sides on the estimation half only.

Everything a :class:`experiment.results.refinement.Side` reports (sizes, means, lift,
CI, p-value) and the interaction and equivalence tests read the estimation
half's sums. The follow-up MDE scales the estimation half's per-user spread to
the side's full size (user counts of both halves; counts do not depend on
outcomes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiment.results.refinement import Side
from experiment.stats import mde_cell, per_user_moments
from experiment.sums import JointSums
from segments.refine.inference import cut_sides, lift

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.stats import LiftResult
    from segments.refine.choose import Best
    from segments.refine.search import Sums

__all__ = ["DISCOVERY", "ESTIMATION", "cut_sums", "no_events", "side"]

DISCOVERY, ESTIMATION = 0, 1


def cut_sums(best: Best, half: int) -> tuple[tuple[Sums, Sums], tuple[Sums, Sums]]:
    """``((low_control, low_treatment), (high_control, high_treatment))``, shape (1,) each."""
    order = best.order[:, None]
    out = []
    for arm in (best.control, best.treatment):
        per_bin = arm[half, :, None]  # (bins, 1)
        low, high = cut_sides(per_bin, order)
        out.append((low[best.cut - 1], high[best.cut - 1]))
    (low_c, high_c), (low_t, high_t) = out
    return (low_c, low_t), (high_c, high_t)


def side(
    name: str,
    rule: str,
    *,
    control: Sums,
    treatment: Sums,
    full_n: tuple[float, float],
    config: ExperimentConfig,
    cuped: bool = False,
) -> tuple[Side, LiftResult]:
    """A side measured on the estimation half (``control``/``treatment``, shape (1,)).

    ``full_n`` is the side's (control, treatment) users over both halves, for the MDE:
    :func:`experiment.stats.mde_cell`, the one MDE of analyze, power and validate, on
    the control arm's per-user mean and variance (a ratio's linearisation).
    """
    res = lift(control, treatment, config.alpha, cuped=cuped)
    n_c, n_t = float(control.n[0]), float(treatment.n[0])
    reason = no_events(control, treatment)
    nan = float("nan")
    tested = not reason
    plain = control.y if cuped and isinstance(control, JointSums) else control
    mean, var = per_user_moments(plain)  # CUPED: the unadjusted MDE (conservative)
    mde = mde_cell(mean, var, full_n[0], full_n[1], alpha=config.alpha, power=config.power)
    out = Side(
        name=name,
        rule=rule,
        users=int(n_c + n_t),
        n_control=int(n_c),
        n_treatment=int(n_t),
        mean_control=float(res.mean_control[0]),
        mean_treatment=float(res.mean_treatment[0]),
        lift_abs=float(res.lift_abs[0]) if tested else nan,
        lift_rel=float(res.lift_rel[0]) if tested else nan,
        ci_low=float(res.ci_low[0]) if tested else nan,
        ci_high=float(res.ci_high[0]) if tested else nan,
        p_value=float(res.p_value[0]) if tested else nan,
        mde_rel=float(mde.mde_rel[0]),
        reason=reason,
    )
    return out, res


def no_events(control: Sums, treatment: Sums) -> str:
    """``no_control_events`` / ``no_treatment_events`` when an arm's total is exactly 0.

    An arm with no conversion (or a zero total of a mean or a ratio's numerator)
    has no relative interval worth the name: −100% ± 0 is not evidence, so such a
    side gets no interval and its proposal no test.
    """
    for name, sums in (("control", control), ("treatment", treatment)):
        mean = sums.mean_y if isinstance(sums, JointSums) else sums.mean  # CUPED: y
        if not (float(sums.n[0]) > 0 and float(mean[0]) != 0.0):
            return f"no_{name}_events"
    return ""
