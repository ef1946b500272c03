"""A projection of value per customer beyond the window, from two half-window spend sums.

The model (README "Lifecycle analysis", labelled a projection everywhere it is
shown): over a window of ``W`` days, ``m1`` and ``m2`` are the mean spend per
customer in the first and second half (``h = W / 2`` days each). The daily spend
rate of the second half, ``a = m2 / h``, goes on after the window, decaying by
``g = min(1, (m2 / m1)^(1/h))`` a day: the geometric decay seen between the
halves (customers lapsing and spending less), never growth. So

    value(H) = m1 + m2 + a · g^(h/2) · (1 - g^(H-W)) / (1 - g)     (H > W; a·(H-W) when g = 1)

The retention part (the decay ``g``) and the spend part (the level ``a``) both
come from ``(m1, m2)``, so the delta method on their joint covariance, estimated
from per-customer sums ``n, Σy1, Σy2, Σy1², Σy2², Σy1y2``, carries the
uncertainty of both. The treatment effect is the difference of two independent
projections.

References:
    Delta method: Casella & Berger (2002), Statistical Inference, 5.5.4.
    Geometric (constant-hazard) retention projections of customer value: Gupta &
    Lehmann (2003), Customers as assets, J. Interactive Marketing 17(1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from experiment.stats._difference import NormalDifference, normal_difference

__all__ = ["ValueDifference", "ValueProjection", "project_value", "value_difference"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ValueProjection:
    """Projected value per customer at one horizon, with its delta-method variance."""

    value: FloatArray
    variance: FloatArray
    decay: FloatArray

    def __getitem__(self, index: Any) -> ValueProjection:
        """The same elements of every field (numpy indexing)."""
        return ValueProjection(self.value[index], self.variance[index], self.decay[index])


def _value(m1: FloatArray, m2: FloatArray, window: float, horizon: float) -> FloatArray:
    h = window / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.minimum(1.0, np.where(m1 > 0, (m2 / m1) ** (1 / h), np.nan))
        extra = horizon - window
        tail = np.where(g < 1, (1 - g**extra) / (1 - g), extra)
    out: FloatArray = m1 + m2 + (m2 / h) * g ** (h / 2) * tail
    return out


def project_value(sums: ArrayLike, *, window: int, horizon: int) -> ValueProjection:
    """Project value per customer to ``horizon`` days from half-window spend sums.

    Args:
        sums: ``(6, ...)``: ``n, Σy1, Σy2, Σy1², Σy2², Σy1y2`` per cell.
        window: The observed window ``W`` in days (at least 2).
        horizon: The horizon ``H`` in days; ``H <= W`` gives the observed
            ``m1 + m2`` (no projection).

    Returns:
        The projection per cell; ``nan`` with fewer than 2 customers or no spend
        in the first half.

    Examples:
        >>> p = project_value([[4.0], [8.0], [8.0], [32.0], [32.0], [16.0]], window=10, horizon=20)
        >>> float(p.value[0]), float(p.decay[0])
        (8.0, 1.0)
    """
    s = np.asarray(sums, dtype=np.float64)
    n, s1, s2, s11, s22, s12 = s
    with np.errstate(divide="ignore", invalid="ignore"):
        m1, m2 = s1 / n, s2 / n
        v11 = (s11 - n * m1 * m1) / (n - 1) / n
        v22 = (s22 - n * m2 * m2) / (n - 1) / n
        v12 = (s12 - n * m1 * m2) / (n - 1) / n
    if horizon <= window:
        return ValueProjection(m1 + m2, v11 + v22 + 2 * v12, np.ones_like(m1))
    f = _value(m1, m2, window, horizon)
    step1 = np.maximum(np.abs(m1), 1e-12) * 1e-6
    step2 = np.maximum(np.abs(m2), 1e-12) * 1e-6
    d1 = (_value(m1 + step1, m2, window, horizon) - _value(m1 - step1, m2, window, horizon)) / (
        2 * step1
    )
    d2 = (_value(m1, m2 + step2, window, horizon) - _value(m1, m2 - step2, window, horizon)) / (
        2 * step2
    )
    variance = d1 * d1 * v11 + d2 * d2 * v22 + 2 * d1 * d2 * v12
    h = window / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        decay = np.minimum(1.0, np.where(m1 > 0, (m2 / m1) ** (1 / h), np.nan))
    ok = n >= 2
    return ValueProjection(
        np.where(ok, f, np.nan), np.where(ok, variance, np.nan), np.where(ok, decay, np.nan)
    )


ValueDifference = NormalDifference  # treatment minus control projected value


def value_difference(
    control: ValueProjection, treatment: ValueProjection, *, alpha: float = 0.05
) -> ValueDifference:
    """The treatment effect on the projected value (independent arms)."""
    return normal_difference(
        control.value, control.variance, treatment.value, treatment.variance, alpha=alpha
    )
