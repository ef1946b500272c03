"""The policy learner and the policy's value: pure numpy on per-cell, per-arm moments.

Options are the arms: ``0`` is the control experience (untreated), ``1 … A`` the
treatment arms. Per cell the learner sees only the discovery half's means and
their variances; the value of a learned policy reads only the estimation half's.

Learning rule (decision theory with a guard against noise):

1. The *default* option is the arm with the best overall discovery gain (its lift
   per user net of the ``cost`` of treating), unless that gain is significantly
   negative (one-sided at ``alpha``; then the control): what one would do without
   segments. Whether the policy is worth shipping is decided on the held-out half
   (``recommendation``), not here.
2. A cell departs from the default only on significant discovery evidence: an
   option whose gain beats the default's in the cell by a one-sided z above the
   Bonferroni critical value over every (cell, alternative) pair at ``alpha``. So a
   homogeneous effect gives treat-all (or treat-none) instead of a policy chasing
   the noise of small cells, and a real responder cell still stands out.
3. A ``budget`` (largest share of customers treated) drops treated cells with the
   smallest discovery gain per user until the rest fits (greedy, by whole cells).

Value per 1,000 customers of a policy: ``1000 · Σ_c share_c · Δ_c · scale_c`` over
its treated cells, ``Δ_c`` the held-out difference of means (arm − control),
``scale_c`` 1 or a ratio metric's control mean denominator; its variance
``1000² · Σ share_c² · scale_c² · (v_arm/n_arm + v_ctrl/n_ctrl)``, exact for
independent cells (they are exclusive, so they share no user); the shares (from
user counts) are taken as fixed. Normal interval (the delta method for a linear
combination).

References:
    Bonferroni: https://en.wikipedia.org/wiki/Bonferroni_correction
    Policy value of a segment rule on held-out data, and the Qini curve:
    Radcliffe (2007), "Using control groups to target on predicted lift";
    Kitagawa & Tetenov (2018), "Who should be treated? Empirical welfare
    maximization methods for treatment choice", https://doi.org/10.3982/ECTA13288
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import norm

__all__ = ["Moments", "PolicyEstimate", "default_option", "gain_curve", "learn", "policy_value"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Moments:
    """Per option (axis 0: control, then the arms) and cell (axis 1): mean and its variance.

    ``var_mean`` is the variance of the mean (``s² / n``); ``scale`` per cell turns a
    difference of means into a change per customer (1, or a ratio's denominator mean).
    """

    mean: FloatArray
    var_mean: FloatArray
    scale: FloatArray


@dataclass(frozen=True)
class PolicyEstimate:
    """A value per 1,000 customers with its normal interval and two-sided p-value."""

    value: float
    ci_low: float
    ci_high: float
    p_value: float


def _gain(m: Moments, cost: float) -> FloatArray:
    """Per option and cell: lift per customer over control, net of the cost of treating."""
    treat = (np.arange(m.mean.shape[0]) > 0)[:, None]
    return np.asarray((m.mean - m.mean[0]) * m.scale - cost * treat, dtype=np.float64)


def default_option(overall: Moments, cost: float, *, alpha: float) -> int:
    """The arm with the best overall gain, unless discovery shows it loses (``0``: control).

    The tested arm is the default unless its overall gain (net of the cost) is
    significantly negative (one-sided z below ``-z_alpha``): whether the change is
    worth shipping at all is the held-out test's question, not the learner's.
    """
    gain = _gain(overall, cost)[:, 0]
    gain = np.where(np.isfinite(gain), gain, -np.inf)
    if gain.size < 2:
        return 0
    best = 1 + int(np.argmax(gain[1:]))
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(overall.var_mean[best, 0] + overall.var_mean[0, 0]) * overall.scale[0]
        z = gain[best] / se
    return best if not (z < -float(norm.isf(alpha))) else 0


def learn(
    cells: Moments,
    overall: Moments,
    share: FloatArray,
    *,
    alpha: float,
    cost: float = 0.0,
    budget: float = 1.0,
) -> tuple[IntArray, FloatArray]:
    """The option per cell (see the module docstring) and each cell's discovery gain.

    Returns:
        ``(choice, gain)``: per cell the option given (0: untreated) and the
        discovery gain per customer of that option (0 untreated).
    """
    n_opt, n_cell = cells.mean.shape
    d = default_option(overall, cost, alpha=alpha)
    gain = _gain(cells, cost)
    choice = np.full(n_cell, d, dtype=np.int64)
    if n_opt > 1 and n_cell > 0:
        crit = float(norm.isf(alpha / (n_cell * (n_opt - 1))))
        with np.errstate(invalid="ignore", divide="ignore"):
            z = (gain - gain[d]) / np.sqrt(cells.var_mean + cells.var_mean[d])
        z = np.where(np.isfinite(z), z, -np.inf)
        z[d] = -np.inf
        better = z > crit
        best = np.argmax(np.where(better, gain, -np.inf), axis=0)
        choice = np.where(better.any(axis=0), best, d).astype(np.int64)
    chosen = np.nan_to_num(gain[choice, np.arange(n_cell)])
    chosen = np.where(choice > 0, chosen, 0.0)
    treated = choice > 0
    if share[treated].sum() > budget + 1e-12:
        keep = np.zeros(n_cell, dtype=bool)
        used = 0.0
        for c in np.argsort(-chosen, kind="stable"):
            if treated[c] and chosen[c] > 0 and used + share[c] <= budget + 1e-12:
                keep[c], used = True, used + share[c]
        choice = np.where(keep, choice, 0)
        chosen = np.where(keep, chosen, 0.0)
    return choice, np.asarray(chosen, dtype=np.float64)


def policy_value(
    held: Moments,
    share: FloatArray,
    choice: IntArray,
    *,
    alpha: float,
    against: IntArray | None = None,
) -> PolicyEstimate:
    """Value per 1,000 customers of ``choice`` (minus ``against``'s) on the held-out moments.

    A cell given the same option by both policies contributes nothing; ``nan`` when
    a cell that contributes has an undefined mean or variance.
    """
    other = np.zeros_like(choice) if against is None else against
    cols = np.arange(choice.size)
    differ = (choice != other) & (share > 0)  # an empty cell changes nothing
    diff = (held.mean[choice, cols] - held.mean[other, cols]) * held.scale
    var = (held.var_mean[choice, cols] + held.var_mean[other, cols]) * held.scale**2
    value = 1000.0 * float(np.sum(np.where(differ, share * diff, 0.0)))
    se = 1000.0 * float(np.sqrt(np.sum(np.where(differ, share**2 * var, 0.0))))
    if not differ.any():
        return PolicyEstimate(0.0, 0.0, 0.0, 1.0)
    crit = float(norm.isf(alpha / 2))
    p = float(2 * norm.sf(abs(value) / se)) if se > 0 else float("nan")
    return PolicyEstimate(value, value - crit * se, value + crit * se, p)


def gain_curve(
    held: Moments, share: FloatArray, order: IntArray, best: IntArray, *, alpha: float
) -> list[tuple[int, float, PolicyEstimate]]:
    """``(k, share treated, value)`` for treating the first ``k`` cells of ``order``.

    ``order`` ranks cells by discovery gain (best first) and ``best`` is each cell's
    discovery-best arm; only held-out moments enter the values.
    """
    out = []
    choice = np.zeros(share.size, dtype=np.int64)
    out.append((0, 0.0, PolicyEstimate(0.0, 0.0, 0.0, 1.0)))
    for k, c in enumerate(order, start=1):
        choice[c] = best[c]
        treated = float(share[choice > 0].sum())
        out.append((k, treated, policy_value(held, share, choice.copy(), alpha=alpha)))
    return out
