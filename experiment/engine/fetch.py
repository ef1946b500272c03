"""Fetch a query's result as Arrow or Python values without importing pandas.

Two things import pandas (0.3 s of CPU, a tenth of a short run) on the way from
an Ibis query to Python values, though no DataFrame is ever built: Ibis 12's
DuckDB backend imports ``ibis.backends.duckdb.converter`` (which imports pandas)
on the first ``to_pyarrow``; and PyArrow asks whether pandas is installed (so
imports it) when it turns a time-zone-aware timestamp into a ``datetime``. On
DuckDB, :func:`arrow` runs the same relation as ``to_pyarrow`` and applies Ibis's
own pandas-free :class:`~ibis.formats.pyarrow.PyArrowData` conversion to the
expression's schema (``to_pyarrow`` differs only for null-typed columns, which no
query here returns); :func:`rows` and :func:`scalar` read timestamps as integers
and build the same ``datetime`` values PyArrow would (``zoneinfo`` time zones;
nanoseconds, which no engine here returns, are truncated to microseconds).
Other engines go through ``to_pyarrow`` unchanged.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["arrow", "column_values", "numpy_columns", "rows", "scalar"]

_EPOCH = dt.datetime(1970, 1, 1)
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def arrow(expr: ir.Expr) -> Any:
    """The result of ``expr``: a ``pyarrow.Table`` (a table) or ``pyarrow.Scalar`` (a scalar)."""
    backend = expr._find_backend(use_default=True)
    if getattr(backend, "name", None) != "duckdb" or not hasattr(backend, "_to_duckdb_relation"):
        return expr.to_pyarrow()
    from ibis.formats.pyarrow import PyArrowData

    table = backend._to_duckdb_relation(expr).to_arrow_table()
    return expr.__pyarrow_result__(table, data_mapper=PyArrowData)


def numpy_columns(expr: ir.Table) -> dict[str, Any]:
    """Every column of ``expr`` as a numpy array (numbers only: no nulls, no text).

    DuckDB hands them over directly (``fetchnumpy``); PyArrow's ``to_numpy``
    would import pandas. Other engines go through ``to_pyarrow``.
    """
    backend = expr._find_backend(use_default=True)
    if getattr(backend, "name", None) != "duckdb" or not hasattr(backend, "_to_duckdb_relation"):
        table = expr.to_pyarrow()
        return {name: table.column(name).to_numpy() for name in table.column_names}
    import numpy as np

    found = backend._to_duckdb_relation(expr).fetchnumpy()
    return {name: np.asarray(values) for name, values in found.items()}


def rows(expr: ir.Table) -> list[dict[str, Any]]:
    """Every row of ``expr`` as a dict of Python values (``to_pyarrow().to_pylist()``)."""
    table = arrow(expr)
    names = table.column_names
    columns = [column_values(table.column(i)) for i in range(len(names))]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def scalar(expr: ir.Scalar) -> Any:
    """The Python value of a scalar expression (``to_pyarrow().as_py()``)."""
    value = arrow(expr)
    import pyarrow as pa

    if pa.types.is_timestamp(value.type):
        return column_values(pa.array([value.value], pa.int64()), value.type)[0]
    return value.as_py()


def column_values(column: Any, ts_type: Any = None) -> list[Any]:
    """A column's Python values; timestamps (or int64 ticks of ``ts_type``) without pandas."""
    import pyarrow as pa

    kind = ts_type if ts_type is not None else column.type
    if not pa.types.is_timestamp(kind):
        values: list[Any] = column.to_pylist()
        return values
    ticks = column.cast(pa.int64()) if ts_type is None else column
    per_second = _PER_SECOND[kind.unit]
    tz = _zone(kind.tz)
    out: list[Any] = []
    for t in ticks.to_pylist():
        if t is None:
            out.append(None)
            continue
        naive = _EPOCH + dt.timedelta(microseconds=t * 1_000_000 // per_second)
        out.append(naive if tz is None else naive.replace(tzinfo=dt.UTC).astimezone(tz))
    return out


def _zone(name: str | None) -> dt.tzinfo | None:
    """The ``tzinfo`` PyArrow gives a timestamp type's time zone: ``zoneinfo`` or a fixed offset."""
    if name is None:
        return None
    if name[:1] in "+-":
        sign = -1 if name[0] == "-" else 1
        hours, minutes = (int(p) for p in name[1:].split(":"))
        return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))
    import zoneinfo

    return zoneinfo.ZoneInfo(name)
