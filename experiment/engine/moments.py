"""Moment columns: the one builder and reader of count, mean, variance and covariance.

Every engine query that reduces users to sufficient statistics (the main
(segment, arm) query, the sequential timeline, ``exp refine``'s attribute scans)
asks for the same few aggregates of a per-user ``y`` (and, for a ratio metric or
a CUPED covariate, ``x``): the count, the means, the population variances and
the population covariance. :func:`count_agg` and :func:`moment_aggs` name them
under a caller's key (a tuple of indices, e.g. ``(segment, metric)``);
:func:`read_count` and :func:`read_sums` turn the result's columns back into
:class:`~experiment.sums.MeanSums` / :class:`~experiment.sums.JointSums`, with
centred moments (``m2 = n · var``, ``c_xy = n · cov``). The column-name
templates live here and nowhere else.

Determinism: DuckDB reduces plain ``sum``/``avg``/``var_pop`` in whatever order
its threads finish, so the last bits of a mean or variance change from run to
run. Every float sum here is :func:`fsum`: on DuckDB its compensated
(Kahan-Babuska) ``fsum``, accurate to about one rounding of the exact sum whatever
the order, so the same data give the same bits. Other engines (Spark, PostgreSQL,
Snowflake, BigQuery) have no such builtin: there it is their plain ``SUM`` of
float64, which agrees to ~1e-15 relative on analysis-sized data (the parity tests
compare every number of results.json at 1e-9) but may differ in the last bits
between runs on Spark, whose partial sums arrive in task order. The centred moments
come from these sums (``m2 = Σy² − (Σy)²/n``), which is exact enough while the
mean is not far larger than the spread (the compensated sums lose nothing to
the number of rows); when it is (cancellation beyond :data:`_CANCEL`), the
engine's own ``var_pop``/``covar_pop`` (Welford, accurate but summed in thread
order) is read instead, as before. A query that sums groups of users first
(``moment_aggs(..., welford=False)``, :func:`merged_agg`) has no such column:
there a cell whose values are all equal has variance 0 (its least and greatest
value tell), and any other cancelling cell raises :class:`VarianceNeededError`.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from experiment.engine.fsum import as_float, engine_name, fsum, plain_sums, stable_sum
from experiment.plan import kind_plan
from experiment.sums import CovariateSums, JointSums, MeanSums

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig

__all__ = [
    "Key",
    "VarianceNeededError",
    "as_float",
    "count_agg",
    "engine_name",
    "fsum",
    "merged_agg",
    "metric_sums",
    "moment_aggs",
    "plain_sums",
    "read_count",
    "read_regression",
    "read_sums",
    "regression_aggs",
    "stable_sum",
    "stack_sums",
]

Key = tuple[int, ...]
"""Indices that name one group of moment columns, e.g. ``(segment, metric)``."""

_S = TypeVar("_S", bound=MeanSums | JointSums | CovariateSums)

# Private names of engine-side columns; indices, never user text, go into them.
_N = "__n__{}__"  # key
_VAR = "__var__{}__{}__"
_COV = "__cov__{}__"
_S1 = "__s1__{}__{}__"  # key, y|x: compensated Σ
_S2 = "__s2__{}__{}__"  # key, yy|xx|xy: compensated Σ of products
_CNT = "__c__{}__{}__"  # key, y|x: non-null count
_LO = "__lo__{}__{}__"  # key, y|x: least value (without the engine's variance)
_HI = "__hi__{}__{}__"  # key, y|x: greatest value
_R1 = "__r1__{}__"  # regressor k: compensated Σx_k
_R2 = "__r2__{}__{}__"  # regressors k, l: compensated Σx_k x_l
_RY = "__ry__{}__{}__"  # metric, regressor k: compensated Σx_k y

_CANCEL = 1e6
"""Largest ``(Σy)²/n ÷ m2`` read from the power sums (at most ~6 digits lost of ~16)."""


def _name(template: str, key: Key, *rest: str) -> str:
    return template.format("_".join(map(str, key)), *rest)


def count_agg(
    t: ir.Table, *, key: Key, where: ir.BooleanValue | None = None
) -> dict[str, ir.IntegerScalar]:
    """The row count of ``t`` (optionally only where ``where``), named under ``key``."""
    return {_name(_N, key): t.count(where=where)}


def moment_aggs(
    y: ir.NumericColumn,
    x: ir.NumericColumn | None = None,
    *,
    key: Key,
    where: ir.BooleanValue | None = None,
    welford: bool = True,
) -> dict[str, ir.Scalar]:
    """Mean and population variance of ``y`` (and ``x``, and their covariance), under ``key``.

    Args:
        y: The per-user metric (a ratio's numerator).
        x: The ratio's denominator or the CUPED covariate, if any.
        key: Names the group; :func:`read_sums` reads it back with the same key.
        where: Rows aggregated (all rows when ``None``): a FILTER on each aggregate.
        welford: The engine's own variance and covariance, which :func:`read_sums`
            reads only where the power sums cancel. ``False`` asks for each part's
            least and greatest value instead (a query that sums groups of users
            first merges these, :func:`merged_agg`, and no variance): where the
            sums cancel, :func:`read_sums` then knows the variance only of a
            constant part (0), and raises :class:`VarianceNeededError` otherwise.
    """
    aggs: dict[str, ir.Scalar] = {}
    for part, col in (("y", y), ("x", x)):
        if col is not None:
            aggs[_name(_CNT, key, part)] = col.count(where=where)
            aggs[_name(_S1, key, part)] = fsum(col, where=where)
            aggs[_name(_S2, key, part * 2)] = fsum(col * col, where=where)
            if welford:
                aggs[_name(_VAR, key, part)] = col.var(how="pop", where=where)
            else:
                aggs[_name(_LO, key, part)] = col.min(where=where)
                aggs[_name(_HI, key, part)] = col.max(where=where)
    if x is not None:
        aggs[_name(_S2, key, "xy")] = fsum(y * x, where=where)
        if welford:
            aggs[_name(_COV, key)] = y.cov(x, how="pop", where=where)
    return aggs


def merged_agg(name: str, col: ir.NumericColumn) -> ir.Scalar:
    """The aggregate of one column of groups' partial aggregates, by the column's name.

    Counts and sums add (integers exactly, floats with :func:`stable_sum`); the
    least and greatest values of ``moment_aggs(..., welford=False)`` take the
    least and the greatest.
    """
    if name.startswith("__lo__"):
        return col.min()
    if name.startswith("__hi__"):
        return col.max()
    return stable_sum(col)


class VarianceNeededError(LookupError):
    """Power sums cancel in a cell whose query has no variance of the engine's."""


def read_count(column: Callable[[str], NDArray[np.float64]], *, key: Key) -> NDArray[np.float64]:
    """The count of :func:`count_agg` under ``key``; a missing or null cell counts 0."""
    return _null_as_zero(column(_name(_N, key)))


def read_sums(
    column: Callable[[str], NDArray[np.float64]],
    *,
    key: Key,
    n: NDArray[np.float64],
    joint: bool,
) -> MeanSums | JointSums:
    """The moments of :func:`moment_aggs` under ``key``, as centred sums.

    ``column`` gives one result column by name as an array of the caller's shape
    (``nan`` where the cell has no row or a null); ``n`` is the count of the same
    cells (:func:`read_count`). An empty cell keeps a ``nan`` mean and zero
    moments. ``joint`` reads ``(y, x)`` as :class:`JointSums`, else ``y`` as
    :class:`MeanSums`.
    """
    # Values near 1e308 overflow to inf/nan here; the analysis stops on them
    # (experiment.analysis.quality), so numpy's warning would only be noise.
    with np.errstate(over="ignore", invalid="ignore"):
        mean_y, m2_y = _centred(column, key, "y", n)
        if not joint:
            return MeanSums(n=n, mean=mean_y, m2=m2_y)
        mean_x, m2_x = _centred(column, key, "x", n)
        return _joint(column, key, n, (mean_y, m2_y), (mean_x, m2_x))


def _joint(
    column: Callable[[str], NDArray[np.float64]],
    key: Key,
    n: NDArray[np.float64],
    y: tuple[NDArray[np.float64], NDArray[np.float64]],
    x: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> JointSums:
    """Joint sums from each part's mean and ``m2`` and the cross sums (overflow stays inf)."""
    (mean_y, m2_y), (mean_x, m2_x) = y, x
    s_y, s_x = (_null_as_zero(column(_name(_S1, key, p))) for p in "yx")
    safe = np.where(n > 0, n, 1.0)
    c_xy = _null_as_zero(column(_name(_S2, key, "xy"))) - s_y * s_x / safe
    scale = np.sqrt((s_y**2 / safe + np.abs(m2_y)) * (s_x**2 / safe + np.abs(m2_x)))
    bad = (scale > _CANCEL * np.maximum(np.sqrt(m2_y * m2_x), np.finfo(float).tiny)) & (n > 0)
    if np.any(bad):  # read only when needed: a query by membership pattern has none
        c_xy = np.where(bad, _welford(column, _name(_COV, key), key, "yx", bad) * n, c_xy)
    return JointSums(
        n=n, mean_y=mean_y, mean_x=mean_x, m2_y=m2_y, m2_x=m2_x, c_xy=np.where(n > 0, c_xy, 0.0)
    )


def _null_as_zero(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """SQL ``NULL`` (an empty group's sum) as 0; infinities stay, so overflow is seen."""
    return np.where(np.isnan(values), 0.0, values)


def _centred(
    column: Callable[[str], NDArray[np.float64]], key: Key, part: str, n: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean and ``m2`` of one part from its compensated sums (Welford's where they cancel)."""
    count = _null_as_zero(column(_name(_CNT, key, part)))
    some = count > 0
    safe = np.where(some, count, 1.0)
    s1 = _null_as_zero(column(_name(_S1, key, part)))
    s2 = _null_as_zero(column(_name(_S2, key, part * 2)))
    mean = np.where(some, s1 / safe, np.nan)
    shift = s1 * s1 / safe
    m2 = np.maximum(s2 - shift, 0.0)
    cancels = shift > _CANCEL * m2
    if np.any(cancels):  # read only when needed: a query by membership pattern has none
        m2 = np.where(cancels, _welford(column, _name(_VAR, key, part), key, part, cancels) * n, m2)
    return mean, np.where(some, m2, 0.0)


def _welford(
    column: Callable[[str], NDArray[np.float64]],
    name: str,
    key: Key,
    parts: str,
    needed: NDArray[np.bool_],
) -> NDArray[np.float64]:
    """The engine's variance (or covariance) column ``name``, null as 0.

    A query without it (``moment_aggs(..., welford=False)``) has each part's least and
    greatest value: a part that is constant in a cell has variance (and covariance)
    exactly 0, as the engine's would be.

    Raises:
        VarianceNeededError: the query has no column ``name`` and a ``needed`` cell
            is not constant.
    """
    try:
        return _null_as_zero(column(name))
    except KeyError:
        pass
    constant = np.zeros(needed.shape, dtype=bool)
    for part in parts:
        constant |= column(_name(_LO, key, part)) == column(_name(_HI, key, part))
    if np.any(needed & ~constant):
        raise VarianceNeededError(name)
    return np.zeros(needed.shape)


def stack_sums(parts: Sequence[_S], *, axis: int = 0) -> _S:
    """Sums of the same kind joined along a new ``axis`` (``np.stack`` of every field).

    ``parts`` must not be empty: its first element gives the kind.
    """
    kind = type(parts[0])
    stacked: dict[str, Any] = {
        f.name: np.stack([getattr(p, f.name) for p in parts], axis=axis) for f in fields(kind)
    }
    return kind(**stacked)


def metric_sums(
    config: ExperimentConfig, read: Callable[[int, bool], MeanSums | JointSums]
) -> tuple[dict[str, MeanSums | JointSums], dict[str, JointSums]]:
    """Each metric's sums and the CUPED metrics' joint sums, from ``read(metric, joint)``.

    A ratio metric's sums are its :class:`JointSums`; a CUPED metric keeps its ``y``
    margin as the metric and its joint sums with the covariate go to the second
    dict (``CellSums.cuped``).
    """
    metrics: dict[str, MeanSums | JointSums] = {}
    cuped: dict[str, JointSums] = {}
    for mi, metric in enumerate(config.metrics):
        ratio = kind_plan(metric.kind).ratio
        if not ratio and metric.cuped is None:
            metrics[metric.name] = read(mi, False)
            continue
        joint = read(mi, True)
        if not isinstance(joint, JointSums):
            raise RuntimeError("Joint sums expected.")
        metrics[metric.name] = joint if ratio else joint.y
        if not ratio:
            cuped[metric.name] = joint
    return metrics, cuped


def regression_aggs(
    regs: dict[int, ir.NumericColumn], metrics: dict[int, tuple[ir.NumericColumn, tuple[int, ...]]]
) -> dict[str, ir.Scalar]:
    """The cross-moment sums of a regression adjustment (``cuped: [a, b]``).

    ``regs`` maps regressor ``k`` to its per-user column (no nulls); ``metrics`` maps a
    metric index to its per-user ``y`` and its regressors. Asks once per regressor
    for ``Σx_k``, once per pair of regressors of a common metric for ``Σx_k x_l``, and
    per metric for ``Σx_k y``; the metric's own count, mean and ``m2`` are
    :func:`moment_aggs`'s. Compensated sums (:func:`fsum`): the centred moments come
    from them, so the regressors arrive shifted near 0 (numeric ones by their rounded
    mean, :mod:`experiment.engine.regressors`), where those sums do not cancel.
    """
    aggs: dict[str, ir.Scalar] = {}
    for mi, (y, ks) in metrics.items():
        for a, k in enumerate(ks):
            aggs[_R1.format(k)] = fsum(regs[k])
            aggs[_RY.format(mi, k)] = fsum(regs[k] * y)
            for l_ in ks[a:]:
                lo, hi = min(k, l_), max(k, l_)
                aggs[_R2.format(lo, hi)] = fsum(regs[lo] * regs[hi])
    return aggs


def read_regression(
    column: Callable[[str], NDArray[np.float64]],
    *,
    metric: int,
    regressors: tuple[int, ...],
    y: MeanSums,
    shifts: tuple[float, ...],
) -> CovariateSums:
    """The :class:`CovariateSums` of :func:`regression_aggs` for one metric.

    ``y`` is the metric's own sums (:func:`read_sums`); its count is every cell's.
    ``shifts`` are the constants the engine subtracted from the regressors (added
    back to their means; the cross-moments do not depend on them).
    """
    n = y.n
    safe = np.where(n > 0, n, 1.0)
    with np.errstate(over="ignore", invalid="ignore"):
        s_x = np.stack([_null_as_zero(column(_R1.format(k))) for k in regressors], axis=-1)
        mean_x = np.where((n > 0)[..., None], s_x / safe[..., None], np.nan)
        s_xy = np.stack([_null_as_zero(column(_RY.format(metric, k))) for k in regressors], axis=-1)
        c_xy = s_xy - s_x * np.where(n > 0, y.mean, 0.0)[..., None]
        s_xx = np.stack(
            [
                np.stack(
                    [
                        _null_as_zero(column(_R2.format(min(k, l_), max(k, l_))))
                        for l_ in regressors
                    ],
                    axis=-1,
                )
                for k in regressors
            ],
            axis=-2,
        )
        c_xx = s_xx - s_x[..., :, None] * s_x[..., None, :] / safe[..., None, None]
    mean_x = mean_x + np.asarray(shifts, dtype=np.float64)  # the engine's shift, added back
    return CovariateSums(n=n, mean_y=y.mean, m2_y=y.m2, mean_x=mean_x, c_xx=c_xx, c_xy=c_xy)
