"""Sufficient statistics per cell: counts, means and centred co-moments, mergeable.

A cell is one (segment, arm, metric). Every test in ``experiment.stats`` needs only
these few numbers, so the query engine reduces millions of rows to them and the
stats engine never sees a row.

Moments are stored centred (``m2 = Σ(y - ȳ)²``) rather than as raw power sums:
``Σy² - (Σy)²/n`` cancels catastrophically when the mean is large relative to the
spread (the warning example is gbstats' ``sum_squares - sum**2/n``). Merging uses
the pairwise update of Chan, Golub & LeVeque, which is exact in exact arithmetic
and stable in floating point.

References:
    Chan, Golub & LeVeque (1979), "Updating formulae and a pairwise algorithm for
    computing sample variances":
    https://en.wikipedia.org/wiki/Algorithms_for_calculating_variance#Parallel_algorithm
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["CellSums", "CovariateSums", "JointSums", "MeanSums", "QualityCounts"]

FloatArray = NDArray[np.float64]


def _arr(value: ArrayLike) -> FloatArray:
    return np.atleast_1d(np.asarray(value, dtype=np.float64))


def _safe_div(numer: FloatArray, denom: FloatArray) -> FloatArray:
    """Divide elementwise; a zero denominator gives ``nan`` instead of a warning."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, numer / np.where(denom > 0, denom, 1.0), np.nan)


@dataclass(frozen=True)
class MeanSums:
    """Count, mean and centred sum of squares of one variable, one element per cell.

    Attributes:
        n: Number of units (users) in each cell.
        mean: Mean of the variable in each cell (``nan`` where ``n == 0``).
        m2: Centred sum of squares ``Σ(y - ȳ)²`` in each cell.
    """

    n: FloatArray
    mean: FloatArray
    m2: FloatArray

    def __post_init__(self) -> None:
        for name in ("n", "mean", "m2"):
            object.__setattr__(self, name, _arr(getattr(self, name)))
        if not self.n.shape == self.mean.shape == self.m2.shape:
            raise ValueError("MeanSums fields n, mean and m2 must have the same shape.")

    def __getitem__(self, index: Any) -> MeanSums:
        """The same cells of every field (numpy indexing), e.g. one arm's column."""
        return MeanSums(n=self.n[index], mean=self.mean[index], m2=self.m2[index])

    @classmethod
    def from_values(cls, values: ArrayLike) -> MeanSums:
        """Sums of a single cell from raw values (used by tests and small inputs)."""
        y = np.asarray(values, dtype=np.float64)
        if y.size == 0:
            return cls(n=_arr(0.0), mean=_arr(np.nan), m2=_arr(0.0))
        mean = y.mean()
        return cls(n=_arr(y.size), mean=_arr(mean), m2=_arr(((y - mean) ** 2).sum()))

    @classmethod
    def from_power_sums(cls, n: ArrayLike, sum_y: ArrayLike, sum_y2: ArrayLike) -> MeanSums:
        """Sums from raw power sums ``n, Σy, Σy²`` (as other systems export them).

        Prefer the engine's centred moments: this conversion loses precision when
        ``|mean| >> sd``.
        """
        n_, s1, s2 = _arr(n), _arr(sum_y), _arr(sum_y2)
        mean = _safe_div(s1, n_)
        m2 = np.maximum(s2 - np.where(n_ > 0, s1 * mean, 0.0), 0.0)
        return cls(n=n_, mean=mean, m2=m2)

    @property
    def sum(self) -> FloatArray:
        """``Σy`` per cell."""
        return np.where(self.n > 0, self.n * self.mean, 0.0)

    @property
    def var(self) -> FloatArray:
        """Sample variance (``ddof=1``) per cell; ``nan`` where ``n < 2``."""
        return _safe_div(self.m2, self.n - 1.0)

    def __add__(self, other: MeanSums) -> MeanSums:
        n = self.n + other.n
        w = _safe_div(other.n, n)
        ma = np.where(self.n > 0, self.mean, 0.0)
        mb = np.where(other.n > 0, other.mean, 0.0)
        delta = mb - ma
        mean = np.where(n > 0, ma + delta * np.nan_to_num(w), np.nan)
        m2 = self.m2 + other.m2 + np.nan_to_num(delta**2 * self.n * w)
        return MeanSums(n=n, mean=mean, m2=m2)


@dataclass(frozen=True)
class JointSums:
    """Count, means and centred co-moments of a pair ``(y, x)``, one element per cell.

    Used for ratio metrics (``y`` = numerator, ``x`` = denominator, both per user)
    and for CUPED (``y`` = metric, ``x`` = pre-period covariate).

    Attributes:
        n: Number of units in each cell.
        mean_y: Mean of ``y``.
        mean_x: Mean of ``x``.
        m2_y: ``Σ(y - ȳ)²``.
        m2_x: ``Σ(x - x̄)²``.
        c_xy: ``Σ(x - x̄)(y - ȳ)``.
    """

    n: FloatArray
    mean_y: FloatArray
    mean_x: FloatArray
    m2_y: FloatArray
    m2_x: FloatArray
    c_xy: FloatArray

    def __post_init__(self) -> None:
        names = ("n", "mean_y", "mean_x", "m2_y", "m2_x", "c_xy")
        for name in names:
            object.__setattr__(self, name, _arr(getattr(self, name)))
        if len({getattr(self, name).shape for name in names}) != 1:
            raise ValueError("JointSums fields must all have the same shape.")

    def __getitem__(self, index: Any) -> JointSums:
        """The same cells of every field (numpy indexing), e.g. one arm's column."""
        return JointSums(
            n=self.n[index],
            mean_y=self.mean_y[index],
            mean_x=self.mean_x[index],
            m2_y=self.m2_y[index],
            m2_x=self.m2_x[index],
            c_xy=self.c_xy[index],
        )

    @classmethod
    def from_values(cls, y: ArrayLike, x: ArrayLike) -> JointSums:
        """Sums of a single cell from raw paired values."""
        y_ = np.asarray(y, dtype=np.float64)
        x_ = np.asarray(x, dtype=np.float64)
        if y_.shape != x_.shape:
            raise ValueError("y and x must have the same shape.")
        if y_.size == 0:
            zero, nan = _arr(0.0), _arr(np.nan)
            return cls(n=zero, mean_y=nan, mean_x=nan, m2_y=zero, m2_x=zero, c_xy=zero)
        dy, dx = y_ - y_.mean(), x_ - x_.mean()
        return cls(
            n=_arr(y_.size),
            mean_y=_arr(y_.mean()),
            mean_x=_arr(x_.mean()),
            m2_y=_arr((dy**2).sum()),
            m2_x=_arr((dx**2).sum()),
            c_xy=_arr((dx * dy).sum()),
        )

    @property
    def y(self) -> MeanSums:
        """The ``y`` margin."""
        return MeanSums(n=self.n, mean=self.mean_y, m2=self.m2_y)

    @property
    def x(self) -> MeanSums:
        """The ``x`` margin."""
        return MeanSums(n=self.n, mean=self.mean_x, m2=self.m2_x)

    @property
    def cov(self) -> FloatArray:
        """Sample covariance of ``x`` and ``y`` (``ddof=1``); ``nan`` where ``n < 2``."""
        return _safe_div(self.c_xy, self.n - 1.0)

    def __add__(self, other: JointSums) -> JointSums:
        y = self.y + other.y
        x = self.x + other.x
        n = self.n + other.n
        w = np.nan_to_num(_safe_div(other.n, n))
        dy = np.where(other.n > 0, other.mean_y, 0.0) - np.where(self.n > 0, self.mean_y, 0.0)
        dx = np.where(other.n > 0, other.mean_x, 0.0) - np.where(self.n > 0, self.mean_x, 0.0)
        c_xy = self.c_xy + other.c_xy + np.nan_to_num(dx * dy * self.n * w)
        return JointSums(n=n, mean_y=y.mean, mean_x=x.mean, m2_y=y.m2, m2_x=x.m2, c_xy=c_xy)


@dataclass(frozen=True)
class CovariateSums:
    """Count, means and centred cross-moments of ``y`` and ``k`` covariates, per cell.

    The sufficient statistics of a regression adjustment with several covariates
    (numeric columns and one-hot levels): the first and second cross-moments of
    ``(y, x_1 … x_k)``. Cell axes lead; the covariate axes trail.

    Attributes:
        n: Number of units in each cell, shape ``cells``.
        mean_y: Mean of ``y``, shape ``cells``.
        m2_y: ``Σ(y - ȳ)²``, shape ``cells``.
        mean_x: Means of the covariates, shape ``cells + (k,)``.
        c_xx: ``Σ(x_i - x̄_i)(x_j - x̄_j)``, shape ``cells + (k, k)``.
        c_xy: ``Σ(x_i - x̄_i)(y - ȳ)``, shape ``cells + (k,)``.
    """

    n: FloatArray
    mean_y: FloatArray
    m2_y: FloatArray
    mean_x: FloatArray
    c_xx: FloatArray
    c_xy: FloatArray

    def __post_init__(self) -> None:
        for name in ("n", "mean_y", "m2_y", "mean_x", "c_xx", "c_xy"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        cells, k = self.n.shape, self.mean_x.shape[-1:]
        if (
            self.mean_y.shape != cells
            or self.m2_y.shape != cells
            or self.mean_x.shape != cells + k
            or self.c_xy.shape != cells + k
            or self.c_xx.shape != cells + k + k
        ):
            raise ValueError("CovariateSums fields must share the cell shape (k covariates last).")

    def __getitem__(self, index: Any) -> CovariateSums:
        """The same cells of every field (numpy indexing of the cell axes)."""
        idx = index if isinstance(index, tuple) else (index,)
        return CovariateSums(
            n=self.n[idx],
            mean_y=self.mean_y[idx],
            m2_y=self.m2_y[idx],
            mean_x=self.mean_x[(*idx, Ellipsis)],
            c_xx=self.c_xx[(*idx, Ellipsis)],
            c_xy=self.c_xy[(*idx, Ellipsis)],
        )

    @classmethod
    def from_values(cls, y: ArrayLike, x: ArrayLike) -> CovariateSums:
        """Sums of a single cell from ``y`` (``n``) and covariates ``x`` (``n × k``)."""
        y_ = np.asarray(y, dtype=np.float64)
        x_ = np.asarray(x, dtype=np.float64)
        x_ = x_[:, None] if x_.ndim == 1 else x_
        if y_.size == 0:
            k = x_.shape[1]
            zero, nan = _arr(0.0), _arr(np.nan)
            return cls(
                n=zero,
                mean_y=nan,
                m2_y=zero,
                mean_x=np.full((1, k), np.nan),
                c_xx=np.zeros((1, k, k)),
                c_xy=np.zeros((1, k)),
            )
        dy, dx = y_ - y_.mean(), x_ - x_.mean(axis=0)
        return cls(
            n=_arr(y_.size),
            mean_y=_arr(y_.mean()),
            m2_y=_arr((dy**2).sum()),
            mean_x=x_.mean(axis=0)[None, :],
            c_xx=(dx.T @ dx)[None, :, :],
            c_xy=(dx.T @ dy)[None, :],
        )

    @property
    def y(self) -> MeanSums:
        """The ``y`` margin."""
        return MeanSums(n=self.n, mean=self.mean_y, m2=self.m2_y)

    def __add__(self, other: CovariateSums) -> CovariateSums:
        """Merge two sets of cells (Chan et al.'s pairwise update of every co-moment)."""
        n = self.n + other.n
        w = np.nan_to_num(_safe_div(other.n, n)) * self.n  # n_a n_b / n
        dy = np.where(other.n > 0, other.mean_y, 0.0) - np.where(self.n > 0, self.mean_y, 0.0)
        have_a, have_b = (self.n > 0)[..., None], (other.n > 0)[..., None]
        dx = np.where(have_b, other.mean_x, 0.0) - np.where(have_a, self.mean_x, 0.0)
        wx = w[..., None]
        share = np.nan_to_num(_safe_div(other.n, n))[..., None]
        mean_x = np.where(
            (n > 0)[..., None], np.where(have_a, self.mean_x, 0.0) + dx * share, np.nan
        )
        return CovariateSums(
            n=n,
            mean_y=(self.y + other.y).mean,
            m2_y=(self.y + other.y).m2,
            mean_x=mean_x,
            c_xx=self.c_xx
            + other.c_xx
            + np.nan_to_num(wx[..., None] * dx[..., :, None] * dx[..., None, :]),
            c_xy=self.c_xy + other.c_xy + np.nan_to_num(wx * dx * dy[..., None]),
        )


@dataclass(frozen=True, kw_only=True)
class QualityCounts:
    """Raw counts from the engine.

    Attributes:
        multiple_arms: Users assigned to two or more arms of the experiment.
        duplicate_customers: Assigned users with more than one customers row.
        assignments_without_customer: Assigned users with no customers row.
        events_before_assignment: Events of the metrics' event types, in the window,
            before the user's assignment (other event types are not read).
        events_outside_window: Events outside the analysis window (of any user).
        events_total: Every event of the events table (0: not counted, older sums).
        events_before_window: Of ``events_outside_window``, those before the window.
        invalid_revenue: Metric values (``value`` columns) that are NaN, ±inf or
            negative, among the window's events of the metrics' event types (every
            user's, assigned or not: a check of the events table).
        revenue_values: Non-null metric values examined (the share's denominator).
        value_columns: The ``value`` columns examined.
        segment_warnings: Segments with the same analysed users as an earlier one,
            and rule values no customer has (one message each).
    """

    multiple_arms: int = 0
    duplicate_customers: int = 0
    assignments_without_customer: int = 0
    events_before_assignment: int = 0
    events_outside_window: int = 0
    events_total: int = 0
    events_before_window: int = 0
    invalid_revenue: int = 0
    revenue_values: int = 0
    value_columns: tuple[str, ...] = ()
    segment_warnings: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CellSums:
    """Sufficient statistics for every (segment, arm) cell of every metric.

    Arrays have shape ``(len(segments), len(arms))``; ``segments[0]`` is ``"all"``.
    ``strata`` names the allocation each unit was assigned under (``""``: the
    experiment's weights, else the allocation's segment); ``strata_units`` counts
    units per (segment, stratum, arm) when there is more than one stratum.
    ``timeline`` (sequential experiments only) holds, per window day (ISO date),
    the same cell sums cumulated up to the end of that day.
    ``assignment_days`` is the span from the first to the last assignment of the
    analysed users, in days: the base of the traffic per day (users / span); 0 when
    every user was assigned at once (a fixed base: no daily traffic), ``nan`` when
    unknown (sums written before it was recorded).
    ``balance`` holds, per pre-exposure covariate (a customers column), its sums per
    (segment, arm) over the cell's units, for the balance check (empty: not computed).
    ``regression`` holds, per metric with a list of covariates (``cuped: [a, b]``), the
    metric's :class:`CovariateSums` with them; ``regression_names`` the covariates'
    names after one-hot encoding (``channel=Web``), in the order of the last axis.
    """

    segments: tuple[str, ...]
    arms: tuple[str, ...]
    units: NDArray[np.float64]
    metrics: dict[str, MeanSums | JointSums]
    window_start: dt.datetime
    window_end: dt.datetime
    strata: tuple[str, ...] = ("",)
    strata_units: NDArray[np.float64] | None = None
    quality: QualityCounts = field(default_factory=QualityCounts)
    cuped: dict[str, JointSums] = field(default_factory=dict)
    caps: dict[str, float] = field(default_factory=dict)
    timeline: tuple[tuple[str, CellSums], ...] = ()
    assignment_days: float = math.nan
    balance: dict[str, MeanSums] = field(default_factory=dict)
    regression: dict[str, CovariateSums] = field(default_factory=dict)
    regression_names: dict[str, tuple[str, ...]] = field(default_factory=dict)
