"""The regression adjustment's cross-moments in sums.parquet (``cuped: [a, b]`` metrics).

A metric adjusted by a list of covariates keeps, per (day, segment, arm) row, the
:class:`~experiment.sums.CovariateSums` beyond the metric's own ``n``, ``mean_y``
and ``m2_y``, in three list columns (``null`` on other metrics' rows):

=================  ============================================================
column             meaning
=================  ============================================================
``reg_mean_x``     the covariates' means (``k`` values; a ratio's denominator last)
``reg_c_xx``       their centred cross sums ``Σ(x_i - x̄_i)(x_j - x̄_j)``, row-major
                   (``k × k`` values)
``reg_c_xy``       their centred cross sums with the metric ``Σ(x_i - x̄_i)(y - ȳ)``
=================  ============================================================

The metadata's metric entry names the covariates after one-hot encoding
(``regression``: ``["revenue_90d", "channel=Web"]``). Files written before these
columns have neither: they load as before, without regression sums.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from experiment.sums import CellSums, CovariateSums, JointSums, MeanSums

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["REGRESSION_COLUMNS", "regression_fields", "regression_values", "with_regression"]

REGRESSION_COLUMNS = ("reg_mean_x", "reg_c_xx", "reg_c_xy")


def regression_fields() -> list[pa.Field]:
    """The list columns' Arrow fields (float64 lists)."""
    import pyarrow as pa

    return [pa.field(c, pa.list_(pa.float64())) for c in REGRESSION_COLUMNS]


def regression_values(cells: CellSums, name: str, cell: tuple[int, int]) -> dict[str, Any]:
    """One row's list values of metric ``name`` (``None`` without regression sums)."""
    sums = cells.regression.get(name)
    if sums is None:
        return dict.fromkeys(REGRESSION_COLUMNS)
    return {
        "reg_mean_x": [float(v) for v in sums.mean_x[cell]],
        "reg_c_xx": [float(v) for v in sums.c_xx[cell].ravel()],
        "reg_c_xy": [float(v) for v in sums.c_xy[cell]],
    }


def with_regression(
    cells: CellSums,
    rows: dict[str, list[Any]],
    picked: list[int],
    specs: Sequence[dict[str, Any]],
) -> CellSums:
    """``cells`` with the regression sums of the metrics whose entry lists ``regression``.

    ``rows`` are the table's columns (as Python lists), ``picked`` the rows of this
    day. A file without the columns, or a metric without the entry, adds nothing.

    Raises:
        ValueError: a row's lists do not have the covariates' lengths.
    """
    from dataclasses import replace

    listed = {s["name"]: tuple(s["regression"]) for s in specs if s.get("regression")}
    if not listed or any(c not in rows for c in REGRESSION_COLUMNS):
        return cells
    regression = {
        name: _sums(cells, rows, picked, name, k=len(names) + _is_ratio(cells, name))
        for name, names in listed.items()
    }
    return replace(cells, regression=regression, regression_names=listed)


def _is_ratio(cells: CellSums, name: str) -> int:
    """1 for a ratio metric (its sums carry the denominator as one more covariate)."""
    return int(isinstance(cells.metrics[name], JointSums))


def _sums(
    cells: CellSums, rows: dict[str, list[Any]], picked: list[int], name: str, *, k: int
) -> CovariateSums:
    """One metric's :class:`CovariateSums` from its rows' lists."""
    shape = (len(cells.segments), len(cells.arms))
    si = {s: i for i, s in enumerate(cells.segments)}
    aj = {a: j for j, a in enumerate(cells.arms)}
    mean_x, c_xy = np.full((*shape, k), np.nan), np.zeros((*shape, k))
    c_xx = np.zeros((*shape, k, k))
    for r in picked:
        if rows["metric"][r] != name or rows["reg_mean_x"][r] is None:
            continue
        cell = (si[rows["segment"][r]], aj[rows["arm"][r]])
        mean_x[cell] = _floats(rows["reg_mean_x"][r], k)
        c_xx[cell] = _floats(rows["reg_c_xx"][r], k * k).reshape(k, k)
        c_xy[cell] = _floats(rows["reg_c_xy"][r], k)
    y = cells.metrics[name]
    margin = y.y if isinstance(y, JointSums) else y
    if not isinstance(margin, MeanSums):  # pragma: no cover
        raise RuntimeError("Mean sums expected.")
    return CovariateSums(
        n=margin.n, mean_y=margin.mean, m2_y=margin.m2, mean_x=mean_x, c_xx=c_xx, c_xy=c_xy
    )


def _floats(values: list[Any], size: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A list column's value as float64 (``null`` as ``nan``), checked to have ``size`` items."""
    if len(values) != size:
        raise ValueError(f"regression sums of {len(values)} values where {size} are expected")
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
