"""From per-cell sums to the policy result: learn on discovery, value on the held-out half.

Only :func:`build_targeting` sees both halves, and it hands the learner the
discovery half's moments and every value the estimation half's (see
:mod:`segments.target.learn`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.stats import norm

from experiment.results.targeting import GainPoint, PolicyCell, PolicyValue, Targeting
from experiment.stats import per_user_moments
from experiment.sums import JointSums
from segments.refine.estimate import DISCOVERY, ESTIMATION
from segments.target.learn import Moments, gain_curve, learn, policy_value

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig, MetricSpec
    from segments.refine.search import Scan
    from segments.target.cells import Cell
    from segments.target.learn import IntArray, PolicyEstimate

__all__ = ["HalfMoments", "Sampled", "build_targeting", "moments"]


@dataclass(frozen=True)
class HalfMoments:
    """One metric's moments per half: cells and everyone; ``users`` per cell and half."""

    discovery: Moments
    held: Moments
    discovery_overall: Moments
    users: np.ndarray  # shape (2 halves, cells + 1): everyone first
    arm_users: np.ndarray  # shape (2 halves, arms + 1): control first, everyone in the arm


@dataclass(frozen=True)
class Sampled:
    """One metric's moments, with the metric and the treatment arms (option order)."""

    metric: MetricSpec
    arms: tuple[str, ...]
    moments: HalfMoments


def _half(scans: list[Scan], half: int, cols: slice | list[int]) -> Moments:
    """Moments of one half for the groups ``cols``: control, then each arm."""
    parts = [scans[0].control[half, 0, cols]] + [s.treatment[half, 0, cols] for s in scans]
    mean, var_mean = [], []
    for sums in parts:
        m, v = per_user_moments(sums)
        mean.append(m)
        with np.errstate(divide="ignore", invalid="ignore"):
            var_mean.append(v / sums.n)
    control = parts[0]
    scale = control.mean_x if isinstance(control, JointSums) else np.ones_like(mean[0])
    return Moments(np.array(mean), np.array(var_mean), np.asarray(scale, dtype=np.float64))


def moments(scans: list[Scan]) -> HalfMoments:
    """The moments of :func:`segments.refine.search.bin_sums` scans, one per arm (group 0: all)."""
    groups = scans[0].control.n.shape[-1]
    cells = list(range(1, groups))
    users = scans[0].control.n[:, 0, :] + sum(s.treatment.n[:, 0, :] for s in scans)
    return HalfMoments(
        discovery=_half(scans, DISCOVERY, cells),
        held=_half(scans, ESTIMATION, cells),
        discovery_overall=_half(scans, DISCOVERY, [0]),
        users=np.asarray(users, dtype=np.float64),
        arm_users=np.stack(
            [scans[0].control.n[:, 0, 0]] + [s.treatment.n[:, 0, 0] for s in scans], axis=1
        ).astype(np.float64),
    )


def _signed(m: Moments, sign: float) -> Moments:
    return Moments(sign * m.mean, m.var_mean, m.scale)


def _value(
    s: Sampled, policy: str, est: PolicyEstimate, share: float, *, guardrail: bool
) -> PolicyValue:
    return PolicyValue(
        metric=s.metric.name,
        policy=policy,
        value=est.value,
        ci_low=est.ci_low,
        ci_high=est.ci_high,
        p_value=est.p_value,
        share_treated=share,
        guardrail=guardrail,
        higher_is_better=s.metric.higher_is_better,
    )


def _values(
    sampled: list[Sampled], share: np.ndarray, choice: IntArray, every: IntArray, alpha: float
) -> list[PolicyValue]:
    out = []
    treated, all_share = float(share[choice > 0].sum()), float(share[every > 0].sum())
    for k, s in enumerate(sampled):
        held = s.moments.held
        g = k > 0
        out += [
            _value(
                s, "learned", policy_value(held, share, choice, alpha=alpha), treated, guardrail=g
            ),
            _value(
                s,
                "treat_all",
                policy_value(held, share, every, alpha=alpha),
                all_share,
                guardrail=g,
            ),
            _value(
                s, "treat_none", policy_value(held, share, 0 * every, alpha=alpha), 0.0, guardrail=g
            ),
            _value(
                s,
                "learned_vs_treat_all",
                policy_value(held, share, choice, alpha=alpha, against=every),
                treated,
                guardrail=g,
            ),
        ]
    return out


def _cells(
    cells: tuple[Cell, ...],
    s: Sampled,
    *,
    share: np.ndarray,
    choice: IntArray,
    gain: np.ndarray,
    best: IntArray,
    alpha: float,
) -> tuple[PolicyCell, ...]:
    held = s.moments.held
    cols = np.arange(len(cells))
    lift = (held.mean[best, cols] - held.mean[0]) * held.scale
    se = np.sqrt(held.var_mean[best, cols] + held.var_mean[0]) * held.scale
    crit = float(norm.isf(alpha / 2))
    users = s.moments.users.sum(axis=0)[1:]
    names = ("", *s.arms)
    return tuple(
        PolicyCell(
            name=c.name,
            rule=c.rule,
            parent=c.parent,
            users=int(users[k]),
            share=float(share[k]),
            arm=names[int(choice[k])],
            best_arm=names[int(best[k])],
            gain=float(gain[k]),
            lift_abs=float(lift[k]),
            ci_abs_low=float(lift[k] - crit * se[k]),
            ci_abs_high=float(lift[k] + crit * se[k]),
        )
        for k, c in enumerate(cells)
    )


def _recommend(values: list[PolicyValue], choice: IntArray, every: IntArray) -> tuple[str, str]:
    """``policy``, ``treat_all`` or ``no_change``, and why (held-out evidence only)."""
    if not (choice > 0).any():
        return "no_change", "the learned policy treats no cell: no arm gained on the discovery half"
    for v in values:
        if v.policy == "learned" and v.guardrail:
            harmed = v.ci_high < 0 if v.higher_is_better else v.ci_low > 0
            if harmed:
                return "no_change", f"the policy harms guardrail {v.metric!r} on the held-out half"
    main = next(v for v in values if v.policy == "learned" and not v.guardrail)
    good = main.ci_low > 0 if main.higher_is_better else main.ci_high < 0
    if not good:
        return (
            "no_change",
            "the policy's held-out value is not significantly better than treating none",
        )
    if (choice == every).all():
        return "treat_all", "every cell gets the same arm; its held-out value beats treating none"
    return "policy", "its held-out value beats treating none"


def build_targeting(
    config: ExperimentConfig,
    sampled: list[Sampled],
    cells: tuple[Cell, ...],
    *,
    seed: int,
    cost: float,
    budget: float,
    attributes: tuple[str, ...],
) -> Targeting:
    """Learn on the primary metric's discovery moments; value everything held out."""
    s = sampled[0]
    m = s.moments
    sign = 1.0 if s.metric.higher_is_better else -1.0
    users = m.users.sum(axis=0)
    share = users[1:] / users[0] if users[0] > 0 else np.zeros(len(cells))
    disc = _signed(m.discovery, sign)
    choice, gain = learn(
        disc,
        _signed(m.discovery_overall, sign),
        share,
        alpha=config.alpha,
        cost=cost,
        budget=budget,
    )
    overall = sign * m.discovery_overall.mean[:, 0]
    top = 1 + int(np.nanargmax(overall[1:] - overall[0]))
    every = np.full(len(cells), top, dtype=np.int64)
    cell_gain = (disc.mean[1:] - disc.mean[0]) * disc.scale - cost
    best = 1 + np.argmax(np.where(np.isfinite(cell_gain), cell_gain, -np.inf), axis=0)
    values = _values(sampled, share, choice, every, config.alpha)
    order = np.argsort(-np.nan_to_num(cell_gain.max(axis=0), nan=-np.inf), kind="stable")
    curve = tuple(
        GainPoint(cells=k, share_treated=sh, value=e.value, ci_low=e.ci_low, ci_high=e.ci_high)
        for k, sh, e in gain_curve(m.held, share, order, best, alpha=config.alpha)
    )
    recommendation, reason = _recommend(values, choice, every)
    return Targeting(
        experiment=config.name,
        metric=s.metric.name,
        control=config.control,
        arms=s.arms,
        alpha=config.alpha,
        seed=seed,
        cost=cost,
        budget=budget,
        discovery_users=int(m.users[DISCOVERY, 0]),
        estimation_users=int(m.users[ESTIMATION, 0]),
        attributes=attributes,
        cells=_cells(
            cells, s, share=share, choice=choice, gain=sign * gain, best=best, alpha=config.alpha
        ),
        values=tuple(values),
        gain_curve=curve,
        recommendation=recommendation,
        reason=reason,
    )
