"""The sequential timeline's regression sums: ``cuped: [a, b]`` with ``sequential: true``.

The regression adjustment (:func:`experiment.stats.regression_ttest`) needs, per
cell, the regressors' sums ``Σx_k``, their cross sums ``Σx_k x_l`` and their cross
sums with the metric ``Σx_k y`` (and, for a ratio, with its denominator, which
joins the regressors last), as the main query's :func:`~experiment.engine.moments.
regression_aggs`. A regressor is a pre-treatment customers column: it never
changes, so ``Σx_k`` and ``Σx_k x_l`` are counted once, on the user's first day
(with the timeline's starts), while ``Σx_k y`` changes by ``x_k · Δy`` on each of
the user's event days (``Δy`` the change of the shifted ``y`` the timeline already
carries). Numpy cumulates them over the days with the rest, and
:func:`regression_sums` centres them into one
:class:`~experiment.sums.CovariateSums` per metric and day, as
:func:`~experiment.engine.moments.read_regression` does for the final analysis.

The regressors arrive shifted (numeric ones by their rounded mean,
:mod:`experiment.engine.regressors`), ``y`` and a ratio's denominator by the
timeline's own shifts, so the power sums do not cancel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from experiment.engine.moments import fsum
from experiment.engine.regressors import REG
from experiment.plan import kind_plan
from experiment.sums import CovariateSums, JointSums, MeanSums

if TYPE_CHECKING:
    from collections.abc import Callable

    import ibis.expr.types as ir
    from numpy.typing import NDArray

    from experiment.config import ExperimentConfig
    from experiment.engine.users import UserTable

__all__ = [
    "R1",
    "R2",
    "RD",
    "RY",
    "listed",
    "regression_changes",
    "regression_columns",
    "regression_starts",
    "regression_sums",
    "regressor_values",
]

# Engine-side column names (indices only, never user text).
R1 = "__t_r1_{}__"  # regressor k: Σx̃_k
R2 = "__t_r2_{}_{}__"  # regressors k <= l: Σx̃_k x̃_l
RY = "__t_ry_{}_{}__"  # metric, regressor k: Σx̃_k ỹ
RD = "__t_rd_{}_{}__"  # ratio metric, regressor k: Σx̃_k x̃ (its denominator)
_Y, _X, _YY, _XX, _XY = (f"__d_{s}_{{}}__" for s in ("y", "x", "yy", "xx", "xy"))  # the timeline's


def listed(users: UserTable, config: ExperimentConfig) -> dict[int, tuple[int, ...]]:
    """Per metric index with a list of covariates, its regressors (no denominator)."""
    by_metric = users.regressors.by_metric
    return {mi: by_metric[m.name] for mi, m in enumerate(config.metrics) if m.name in by_metric}


def _ratio(config: ExperimentConfig, mi: int) -> bool:
    return kind_plan(config.metrics[mi].kind).ratio


def regressor_values(t: ir.Table, users: UserTable, config: ExperimentConfig) -> dict[str, Any]:
    """The used regressors per user, shifted; no customers row counts as 0 (as in the cells)."""
    used = sorted({k for ks in listed(users, config).values() for k in ks})
    return {REG.format(k): t[REG.format(k)].fill_null(-users.regressors.shift(k)) for k in used}


def regression_columns(users: UserTable, config: ExperimentConfig) -> list[str]:
    """The query's regression sum columns, in a fixed order."""
    metrics = listed(users, config)
    used = sorted({k for ks in metrics.values() for k in ks})
    pairs = sorted({(min(k, l_), max(k, l_)) for ks in metrics.values() for k in ks for l_ in ks})
    out = [R1.format(k) for k in used] + [R2.format(k, l_) for k, l_ in pairs]
    for mi, ks in metrics.items():
        out += [RY.format(mi, k) for k in ks]
        out += [RD.format(mi, k) for k in ks] if _ratio(config, mi) else []
    return out


def regression_starts(
    t: ir.Table, g: ir.Table | None, users: UserTable, config: ExperimentConfig
) -> dict[str, Any]:
    """The starts' regression sums: aggregates of ``t`` (``g`` None), then columns of ``g``.

    ``g`` is ``t`` grouped with those aggregates and ``y{mi}`` (``x{mi}`` for a
    ratio), the shifted constant every starting user's metric has.
    """
    columns = regression_columns(users, config)
    if g is None:
        out: dict[str, Any] = {}
        for c in columns:
            if c.startswith("__t_r1_"):
                k = int(c[len("__t_r1_") : -2])
                out[c] = fsum(t[REG.format(k)])
            elif c.startswith("__t_r2_"):
                k, l_ = map(int, c[len("__t_r2_") : -2].split("_"))
                out[c] = fsum(t[REG.format(k)] * t[REG.format(l_)])
        return out
    out = {c: g[c] for c in columns if c.startswith(("__t_r1_", "__t_r2_"))}
    for mi, ks in listed(users, config).items():
        for k in ks:
            out[RY.format(mi, k)] = g[f"y{mi}"] * g[R1.format(k)]
            if _ratio(config, mi):
                out[RD.format(mi, k)] = g[f"x{mi}"] * g[R1.format(k)]
    return out


def regression_changes(
    j: ir.Table, deltas: dict[str, Any], users: UserTable, config: ExperimentConfig
) -> dict[str, Any]:
    """Per (user, event day): ``x̃_k · Δỹ`` (and ``x̃_k · Δx̃``); ``Σx̃_k`` and ``Σx̃_k x̃_l`` stay."""
    out: dict[str, Any] = {}
    for mi, ks in listed(users, config).items():
        for k in ks:
            x = j[REG.format(k)]
            out[RY.format(mi, k)] = x * deltas[_Y.format(mi)].cast("float64")
            if _ratio(config, mi):
                out[RD.format(mi, k)] = x * deltas[_X.format(mi)].cast("float64")
    return out


def regression_sums(
    column: Callable[[str], NDArray[np.float64]],
    n: NDArray[np.float64],
    metrics: dict[str, MeanSums | JointSums],
    users: UserTable,
    config: ExperimentConfig,
) -> dict[str, CovariateSums]:
    """One day's :class:`CovariateSums` per listed metric from its cumulated shifted sums.

    ``column`` reads a cumulated column on the day; ``metrics`` are the day's
    metric sums (their ``y`` mean and ``m2``). The centred moments are
    ``c_kl = Σx̃_k x̃_l - Σx̃_k Σx̃_l / n`` (shift-free) and the means get the
    regressors' shifts back; a ratio's denominator is the last regressor.
    """
    out: dict[str, CovariateSums] = {}
    some = n > 0
    safe = np.where(some, n, 1.0)
    for mi, ks in listed(users, config).items():
        name = config.metrics[mi].name
        sums = metrics[name]
        y = sums.y if isinstance(sums, JointSums) else sums
        s_x = [column(R1.format(k)) for k in ks]
        s_xy = [column(RY.format(mi, k)) for k in ks]
        shifts = [users.regressors.shift(k) for k in ks]
        s_xx = [[column(R2.format(min(k, l_), max(k, l_))) for l_ in ks] for k in ks]
        if isinstance(sums, JointSums):  # the denominator, last (shift: the mean back)
            s_d = column(_X.format(mi))
            for row, k in zip(s_xx, ks, strict=True):
                row.append(column(RD.format(mi, k)))
            s_xx.append([*(column(RD.format(mi, k)) for k in ks), column(_XX.format(mi))])
            s_x.append(s_d)
            s_xy.append(column(_XY.format(mi)))
            shifts.append(0.0)
        sx = np.stack(s_x, axis=-1)
        sy = column(_Y.format(mi))
        c_xx = np.stack([np.stack(r, axis=-1) for r in s_xx], axis=-2)
        c_xx = c_xx - sx[..., :, None] * sx[..., None, :] / safe[..., None, None]
        c_xy = np.stack(s_xy, axis=-1) - sx * (sy / safe)[..., None]
        mean_x = np.where(some[..., None], sx / safe[..., None], np.nan)
        if isinstance(sums, JointSums):  # the timeline shifts the denominator by K_x
            mean_x[..., -1] = sums.mean_x
        out[name] = CovariateSums(
            n=n,
            mean_y=y.mean,
            m2_y=y.m2,
            mean_x=mean_x + np.asarray(shifts, dtype=np.float64),
            c_xx=np.where(some[..., None, None], c_xx, 0.0),
            c_xy=np.where(some[..., None], c_xy, 0.0),
        )
    return out
