"""Tail functions of the t, chi-square and normal distributions, straight from ``scipy.special``.

``scipy.stats`` computes these with the same special functions, but importing it
costs most of a short run's start-up (it loads every distribution, and pandas
through its dependencies). These wrappers call the special functions that
``scipy.stats``' ``t``, ``chi2`` and ``norm`` call, with the same handling of
invalid parameters (``nan``) and of the support's ends, so the values are the
same bit for bit (a test compares them on a grid with its edge cases).

References:
    scipy.stats' t, chi2 and norm (``_sf``/``_isf``/``_cdf`` of each):
    https://github.com/scipy/scipy/blob/main/scipy/stats/_continuous_distns.py
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import special

__all__ = ["chi2_sf", "norm_cdf", "norm_isf", "norm_pdf", "norm_sf", "t_isf", "t_sf"]

FloatArray = NDArray[np.float64]

_SQRT_2PI = np.sqrt(2 * np.pi)  # scipy's _norm_pdf_C


def _out(value: Any) -> Any:
    """A 0-d result as a numpy scalar, as ``scipy.stats`` returns it."""
    arr = np.asarray(value, dtype=np.float64)
    return arr[()] if arr.ndim == 0 else arr


def t_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.t.sf(x, df)``: ``P(T > x)``; ``nan`` for ``df <= 0`` or ``nan`` input."""
    x, df = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(df, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        bad = ~(df > 0) | np.isnan(x)
        value = np.where(x == -np.inf, 1.0, special.stdtr(df, -x))
    return _out(np.where(bad, np.nan, value))


def t_isf(q: Any, df: Any) -> Any:
    """``scipy.stats.t.isf(q, df)``: the ``x`` with ``P(T > x) = q``."""
    q, df = np.broadcast_arrays(np.asarray(q, dtype=np.float64), np.asarray(df, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        ok = (df > 0) & (q >= 0) & (q <= 1)
        value = np.select([q == 0, q == 1], [np.inf, -np.inf], -special.stdtrit(df, q))
    return _out(np.where(ok, value, np.nan))


def chi2_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.chi2.sf(x, df)``: ``P(X > x)``; 1 at and below 0."""
    x, df = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(df, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        bad = ~(df > 0) | np.isnan(x)
        value = np.select([x <= 0, x == np.inf], [1.0, 0.0], special.chdtrc(df, x))
    return _out(np.where(bad, np.nan, value))


def norm_cdf(x: Any) -> Any:
    """``scipy.stats.norm.cdf(x)``."""
    return _out(special.ndtr(np.asarray(x, dtype=np.float64)))


def norm_sf(x: Any) -> Any:
    """``scipy.stats.norm.sf(x)``."""
    return _out(special.ndtr(-np.asarray(x, dtype=np.float64)))


def norm_isf(q: Any) -> Any:
    """``scipy.stats.norm.isf(q)``: the ``x`` with ``P(Z > x) = q``."""
    q = np.asarray(q, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ok = (q >= 0) & (q <= 1)
        value = np.select([q == 0, q == 1], [np.inf, -np.inf], -special.ndtri(q))
    return _out(np.where(ok, value, np.nan))


def norm_pdf(x: Any) -> Any:
    """``scipy.stats.norm.pdf(x)``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        return _out(np.exp(-(x**2) / 2.0) / _SQRT_2PI)
