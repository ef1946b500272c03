"""Power sums of an attribute scan without FILTER: each group's sums as sums of products.

An attribute scan (:func:`segments.refine.search.bin_sums`) asks, per (arm, half,
bin), for every searched group's count and moments. As FILTER-ed aggregates
(``COUNT(*) FILTER (WHERE flag)``) DuckDB evaluates each filter on every row:
with ~25 groups that is five times the work of asking for
``SUM(flag)``, ``FSUM(flag * y)`` and ``FSUM(flag * y * y)`` (and ``x``, ``x²``,
``x·y`` for joint sums), which add exact zeros for non-members and so sum the
same values. The centred moments are read from these power sums as
:func:`experiment.engine.read_sums` reads them (``m2 = Σy² − (Σy)²/n``, the same
formulas on the same sums).

Two cases stay on the FILTER-ed engine columns (:func:`plain_values`,
:func:`read_power_sums` returning ``None``): a sample whose metric values hold a
null, a NaN or an infinity (``0 × inf`` is not 0, and a null changes the count
of values), and a scan where the power sums cancel (``(Σy)²/n`` more than
:data:`CANCEL` times ``m2``, or the co-moment's analogue), where the engine reads
its Welford ``var_pop``/``covar_pop`` instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from experiment.sums import JointSums, MeanSums

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import ibis.expr.types as ir

__all__ = [
    "CANCEL",
    "binary_columns",
    "cancelling",
    "count_aggs",
    "plain_values",
    "power_aggs",
    "read_power_sums",
    "welford_aggs",
]

CANCEL = 1e6
"""Largest ``(Σy)²/n ÷ m2`` read from power sums; as :mod:`experiment.engine.moments`."""

_N, _SY, _SYY, _SX, _SXX, _SXY, _VY, _VX, _COV, _C = (
    f"__p{k}__{{}}__" for k in ("n", "y", "yy", "x", "xx", "xy", "vy", "vx", "cov", "c")
)

FloatArray = NDArray[np.float64]

_EXACT = 2.0**26
"""Below it, ``n * n / n`` is exactly ``n`` in float64."""


def plain_values(table: ir.Table, columns: Sequence[str]) -> bool:
    """Whether ``columns`` of ``table`` hold no null, NaN or infinity (one scalar query)."""
    from experiment.engine.fetch import rows

    if not columns:
        return True
    cols = [table[c] for c in columns]
    bad = [(c.isnull() | c.isnan() | c.isinf()).fill_null(True) for c in cols]
    found = table.aggregate(**{f"bad{k}": b.cast("int32").sum() for k, b in enumerate(bad)})
    return not any(rows(found)[0].values())


def _summer(table: ir.Table) -> Callable[[ir.NumericValue], ir.Scalar]:
    """The float sum of the engine of ``table``: DuckDB's compensated ``fsum``, else ``SUM``."""
    import ibis

    from experiment.engine.moments import engine_name

    if engine_name(table) != "duckdb":
        return lambda col: col.sum()

    def fsum(arg: float) -> float:  # pragma: no cover - a signature: the engine runs it
        """DuckDB's compensated sum."""
        raise NotImplementedError

    builtin: Callable[[ir.NumericValue], ir.Scalar] = ibis.udf.agg.builtin(name="fsum")(fsum)
    return builtin


def _counter(table: ir.Table) -> Callable[[ir.BooleanColumn], ir.Scalar]:
    """The count of true flags: DuckDB's ``COUNT_IF``, else ``SUM`` of the flag as 0/1.

    On DuckDB ``COUNT_IF`` is about twice as fast as ``SUM(CAST(flag AS INT))``
    and four times ``COUNT(*) FILTER (WHERE flag)``; the counts are the same integers.
    """
    import ibis

    from experiment.engine.moments import engine_name

    if engine_name(table) != "duckdb":
        return lambda flag: flag.cast("int32").sum()

    def count_if(arg: bool) -> int:  # pragma: no cover - a signature: the engine runs it
        """DuckDB's count of true values."""
        raise NotImplementedError

    builtin: Callable[[ir.BooleanColumn], ir.Scalar] = ibis.udf.agg.builtin(name="count_if")(
        count_if
    )
    return builtin


def power_aggs(
    table: ir.Table,
    y: ir.NumericColumn,
    x: ir.NumericColumn | None,
    flags: Sequence[ir.BooleanColumn | None],
    *,
    binary: bool = False,
) -> dict[str, ir.Scalar]:
    """Count and power sums of ``y`` (and ``x``) per group ``i`` of ``flags`` (``None``: all rows).

    Members' values times a 0/1 flag: non-members add exact zeros (the values are
    finite, :func:`plain_values`), so the sums are those of the members.
    ``binary``: ``y`` is 0 or 1, so ``Σy²`` is ``Σy`` and is not asked for.
    """
    fsum, count = _summer(table), _counter(table)
    aggs: dict[str, ir.Scalar] = {}
    for i, flag in enumerate(flags):
        one = None if flag is None else flag.cast("int32").cast("float64")
        aggs[_N.format(i)] = table.count() if flag is None else count(flag)
        aggs[_SY.format(i)] = fsum(y if one is None else one * y)
        if not binary:
            aggs[_SYY.format(i)] = fsum(y * y if one is None else one * y * y)
        if x is not None:
            aggs[_SX.format(i)] = fsum(x if one is None else one * x)
            aggs[_SXX.format(i)] = fsum(x * x if one is None else one * x * x)
            aggs[_SXY.format(i)] = fsum(y * x if one is None else one * y * x)
    return aggs


def count_aggs(table: ir.Table, flags: Sequence[ir.BooleanColumn | None]) -> dict[str, ir.Scalar]:
    """Each group's count of rows (``None``: all rows), for a scan grouped by a 0/1 ``y`` too.

    A 0/1 metric's power sums are counts: ``n`` is the group's rows at ``y = 0`` and
    ``y = 1``, and ``Σy`` (``= Σy²``) its rows at ``y = 1``. Grouped by ``y``, a scan
    asks one count per group instead of a count and a compensated sum; the sums are
    the same integers (:func:`binary_columns` reads them).
    """
    count = _counter(table)
    return {
        _C.format(i): table.count() if flag is None else count(flag) for i, flag in enumerate(flags)
    }


def binary_columns(counts: Callable[[str], FloatArray], groups: int) -> Callable[[str], FloatArray]:
    """:func:`power_aggs`' ``n`` and ``Σy`` columns from :func:`count_aggs`' counts.

    ``counts`` reads a count column in the caller's cell shape with a last axis for
    ``y`` (0, 1), ``nan`` where a cell has no row; a cell with rows at neither value
    stays ``nan``.
    """
    out: dict[str, FloatArray] = {}
    for i in range(groups):
        c = counts(_C.format(i))
        out[_N.format(i)] = np.where(np.isnan(c).all(axis=-1), np.nan, np.nansum(c, axis=-1))
        out[_SY.format(i)] = c[..., 1]
    return out.__getitem__


def welford_aggs(
    y: ir.NumericColumn, x: ir.NumericColumn | None, flags: dict[int, ir.BooleanColumn | None]
) -> dict[str, ir.Scalar]:
    """The engine's Welford moments (``var_pop``, ``covar_pop``) of the groups ``flags`` names.

    Asked only for the groups whose power sums cancel in some cell
    (:func:`cancelling`), FILTER-ed as in :func:`experiment.engine.moment_aggs`.
    """
    aggs: dict[str, ir.Scalar] = {}
    for i, flag in flags.items():
        aggs[_VY.format(i)] = y.var(how="pop", where=flag)
        if x is not None:
            aggs[_VX.format(i)] = x.var(how="pop", where=flag)
            aggs[_COV.format(i)] = y.cov(x, how="pop", where=flag)
    return aggs


def cancelling(
    column: Callable[[str], FloatArray], groups: int, *, joint: bool, binary: bool = False
) -> list[int]:
    """The groups with a cell where the power sums cancel (the engine reads Welford's there).

    Cells whose Welford moments are known to be exactly the power sums' need no
    query: one member (every moment 0 both ways), and a binary ``y`` that is all
    ones (``m2 = n - n²/n = 0``, exactly, as Welford's).
    """
    out = []
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(groups):
            n = _zero(column(_N.format(i)))
            (_, m2_y, bad_y) = _centred(column, _SY.format(i), _s2(i, binary), n, binary=binary)
            bad = bad_y
            if joint:
                (_, m2_x, bad_x) = _centred(column, _SX.format(i), _SXX.format(i), n)
                bad = bad | bad_x | _co_moment(column, i, n, m2_y, m2_x)[1]
            if np.any(bad):
                out.append(i)
    return out


def read_power_sums(
    column: Callable[[str], FloatArray],
    groups: int,
    *,
    joint: bool,
    binary: bool = False,
    welford: Callable[[str], FloatArray] | None = None,
) -> list[MeanSums | JointSums]:
    """Each group's centred sums from :func:`power_aggs`' columns, as the engine reads them.

    ``column`` gives a result column by name in the caller's cell shape (``nan``
    where a cell has no row). The formulas are :func:`experiment.engine.read_sums`'
    on the same sums: where they cancel, the group's Welford moments
    (:func:`welford_aggs`, read by ``welford``) are taken instead.
    """
    out: list[MeanSums | JointSums] = []
    with np.errstate(over="ignore", invalid="ignore"):
        for i in range(groups):
            n = _zero(column(_N.format(i)))
            mean_y, m2_y = _moments(column, welford, i, n, "y", binary=binary)
            if not joint:
                out.append(MeanSums(n=n, mean=mean_y, m2=m2_y))
                continue
            mean_x, m2_x = _moments(column, welford, i, n, "x")
            c_xy, bad = _co_moment(column, i, n, m2_y, m2_x)
            if np.any(bad):
                c_xy = np.where(bad, _welford(welford, _COV.format(i)) * n, c_xy)
            out.append(
                JointSums(
                    n=n,
                    mean_y=mean_y,
                    mean_x=mean_x,
                    m2_y=m2_y,
                    m2_x=m2_x,
                    c_xy=np.where(n > 0, c_xy, 0.0),
                )
            )
    return out


def _welford(welford: Callable[[str], FloatArray] | None, name: str) -> FloatArray:
    if welford is None:
        raise RuntimeError("Power sums cancel: the Welford moments are needed.")
    return _zero(welford(name))


def _moments(
    column: Callable[[str], FloatArray],
    welford: Callable[[str], FloatArray] | None,
    i: int,
    n: FloatArray,
    part: str,
    *,
    binary: bool = False,
) -> tuple[FloatArray, FloatArray]:
    """Mean and ``m2`` of ``y`` or ``x`` of group ``i`` (Welford's where the sums cancel)."""
    if part == "y":
        mean, m2, bad = _centred(column, _SY.format(i), _s2(i, binary), n, binary=binary)
        var = _VY
    else:
        mean, m2, bad = _centred(column, _SX.format(i), _SXX.format(i), n)
        var = _VX
    if np.any(bad):
        m2 = np.where(bad, _welford(welford, var.format(i)) * n, m2)
    return mean, np.where(n > 0, m2, 0.0)


def _zero(values: FloatArray) -> FloatArray:
    """A missing cell's sum (``nan``) as 0."""
    return np.where(np.isnan(values), 0.0, values)


def _s2(i: int, binary: bool) -> str:
    """The column of ``Σy²`` of group ``i``: ``Σy`` itself for a binary ``y``."""
    return (_SY if binary else _SYY).format(i)


def _centred(
    column: Callable[[str], FloatArray],
    s1_name: str,
    s2_name: str,
    n: FloatArray,
    *,
    binary: bool = False,
) -> tuple[FloatArray, FloatArray, NDArray[np.bool_]]:
    """Mean, ``m2`` from ``Σ`` and ``Σ²``, and the cells where the engine reads Welford's.

    Not where Welford's ``m2`` is exactly this one, 0: one member, or all ones.
    """
    some = n > 0
    safe = np.where(some, n, 1.0)
    s1, s2 = _zero(column(s1_name)), _zero(column(s2_name))
    mean = np.where(some, s1 / safe, np.nan)
    shift = s1 * s1 / safe
    m2 = np.maximum(s2 - shift, 0.0)
    exact = (n == 1) | (binary & (s1 == n) & (n < _EXACT))
    return mean, m2, (shift > CANCEL * m2) & ~exact


def _co_moment(
    column: Callable[[str], FloatArray], i: int, n: FloatArray, m2_y: FloatArray, m2_x: FloatArray
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """``c_xy = Σxy − ΣyΣx/n`` and the cells where it cancels (as the engine decides)."""
    s_y, s_x = _zero(column(_SY.format(i))), _zero(column(_SX.format(i)))
    safe = np.where(n > 0, n, 1.0)
    c_xy = _zero(column(_SXY.format(i))) - s_y * s_x / safe
    scale = np.sqrt((s_y**2 / safe + np.abs(m2_y)) * (s_x**2 / safe + np.abs(m2_x)))
    bad = scale > CANCEL * np.maximum(np.sqrt(m2_y * m2_x), np.finfo(float).tiny)
    return c_xy, bad & (n > 1)  # one member: c_xy is 0 both ways
