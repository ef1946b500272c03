"""Kaplan–Meier survival curves from grouped counts, with Greenwood's variance.

The engine hands, per curve, segment and arm, how many users had their event at
time ``t`` and how many left the risk set (censored) at ``t``: that is all the
product-limit estimator needs. Everything is vectorised over the leading axes.

References:
    Kaplan & Meier (1958), Nonparametric estimation from incomplete observations,
    JASA 53, 457–481. Greenwood (1926), The natural duration of cancer (variance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from experiment.stats._difference import NormalDifference, normal_difference
from experiment.stats._dist import norm_isf

__all__ = [
    "MIN_EXPECTED",
    "SurvivalCurve",
    "SurvivalDifference",
    "expected_events",
    "kaplan_meier",
    "pointwise_interval",
    "survival_difference",
]

FloatArray = NDArray[np.float64]

MIN_EXPECTED = 5.0  # expected events and non-events per arm for a normal-approximation test


@dataclass(frozen=True)
class SurvivalCurve:
    """``S(t) = P(T > t)`` for ``t = 0..W`` on the last axis.

    Attributes:
        survival: The product-limit estimate; ``nan`` once nobody is at risk.
        variance: Greenwood's variance of ``survival``.
        at_risk: Users still at risk at ``t`` (their time is ``>= t``).
        events: Users whose event is at ``t``.
    """

    survival: FloatArray
    variance: FloatArray
    at_risk: FloatArray
    events: FloatArray

    def __getitem__(self, index: Any) -> SurvivalCurve:
        """The same elements of every field (numpy indexing)."""
        return SurvivalCurve(
            survival=self.survival[index],
            variance=self.variance[index],
            at_risk=self.at_risk[index],
            events=self.events[index],
        )


def kaplan_meier(events: ArrayLike, exits: ArrayLike) -> SurvivalCurve:
    """Kaplan–Meier curves from counts of events and censored exits per time.

    ``S(t) = Π_{s <= t} (1 - d_s / n_s)`` with ``n_s = Σ_{u >= s} (d_u + c_u)``;
    ``Var S(t) = S(t)² Σ_{s <= t} d_s / (n_s (n_s - d_s))`` (0 once ``S`` is 0).

    Args:
        events: ``d[..., t]``, users with the event at time ``t``.
        exits: ``c[..., t]``, users censored at time ``t`` (observed through ``t``
            without the event).

    Returns:
        The curves, same shape as the inputs.

    Raises:
        ValueError: the shapes differ or a count is negative.

    Examples:
        >>> kaplan_meier([0, 1, 1], [0, 0, 2]).survival.tolist()
        [1.0, 0.75, 0.5]
    """
    d = np.asarray(events, dtype=np.float64)
    c = np.asarray(exits, dtype=np.float64)
    if d.shape != c.shape:
        raise ValueError("events and exits must have the same shape.")
    if (d < 0).any() or (c < 0).any():
        raise ValueError("events and exits must be >= 0.")
    n = np.flip(np.cumsum(np.flip(d + c, -1), -1), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(n > 0, d / n, 0.0)
        term = np.where(n > d, d / (n * (n - d)), 0.0)
    survival: FloatArray = np.cumprod(1.0 - hazard, axis=-1, dtype=np.float64)
    variance = survival**2 * np.cumsum(term, axis=-1)
    survival = np.where(n > 0, survival, np.nan)
    return SurvivalCurve(
        survival=survival, variance=np.where(n > 0, variance, np.nan), at_risk=n, events=d
    )


SurvivalDifference = NormalDifference  # treatment minus control survival at chosen times


def survival_difference(
    control: SurvivalCurve, treatment: SurvivalCurve, *, alpha: float = 0.05
) -> SurvivalDifference:
    """``S_t(t) - S_c(t)`` with ``SE = sqrt(Var_c + Var_t)`` (independent arms), two-sided z.

    ``nan`` where either curve is undefined or both variances are 0.
    """
    return normal_difference(
        control.survival, control.variance, treatment.survival, treatment.variance, alpha=alpha
    )


def expected_events(
    control: SurvivalCurve, treatment: SurvivalCurve
) -> tuple[FloatArray, FloatArray]:
    """Each arm's expected events up to each time if both arms had the pooled hazard.

    ``E_a(t) = Σ_{s <= t} n_a(s) · d(s) / n(s)``, the log-rank expected counts
    (Mantel 1966); with one event time, ``K · n_a / N`` of a 2×2 table's margins. They
    depend on the pooled counts only, so choosing the tests to run by them does not
    bias the tests under the null.

    Examples:
        >>> c = kaplan_meier([0, 2, 0], [0, 0, 8])
        >>> t = kaplan_meier([0, 0, 0], [0, 0, 10])
        >>> [float(x) for x in expected_events(c, t)[0]]
        [0.0, 1.0, 1.0]
    """
    n = control.at_risk + treatment.at_risk
    d = control.events + treatment.events
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(n > 0, d / n, 0.0)
    return (
        np.cumsum(control.at_risk * hazard, axis=-1),
        np.cumsum(treatment.at_risk * hazard, axis=-1),
    )


def pointwise_interval(
    curve: SurvivalCurve, *, alpha: float = 0.05
) -> tuple[FloatArray, FloatArray]:
    """``S(t) ± z·sqrt(Var)`` at each time (plain Greenwood interval), clipped to [0, 1]."""
    half = float(norm_isf(alpha / 2)) * np.sqrt(curve.variance)
    return np.clip(curve.survival - half, 0.0, 1.0), np.clip(curve.survival + half, 0.0, 1.0)
