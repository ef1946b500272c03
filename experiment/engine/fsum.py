"""Engine-side sums: DuckDB's compensated ``fsum``, exact integer sums, and helpers.

DuckDB reduces plain ``sum`` in whatever order its threads finish, so the last
bits of a float sum change from run to run; :func:`fsum` asks DuckDB for its
compensated (Kahan-Babuska) sum instead, and every other engine for its plain
``SUM`` (see :mod:`experiment.engine.moments`, which re-exports these).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ibis.expr.types as ir

__all__ = ["as_float", "engine_name", "fsum", "plain_sums", "stable_sum"]


def fsum(col: ir.NumericValue, *, where: ir.BooleanValue | None = None) -> ir.FloatingScalar:
    """The float64 sum of ``col``: compensated on DuckDB (same bits whatever the order).

    The engine is the one ``col``'s tables live on; DuckDB gets its ``fsum``
    builtin, every other engine (or an expression bound to none) a plain ``sum``.

    References:
        DuckDB ``fsum`` (Kahan-Babuska summation):
        https://duckdb.org/docs/sql/functions/aggregates#fsumarg
    """
    value = col.cast("float64")
    if engine_name(col) == "duckdb":
        return _fsum(value, where=where)
    return value.sum(where=where)


def stable_sum(col: ir.NumericValue, *, where: ir.BooleanValue | None = None) -> ir.NumericScalar:
    """An integer column's exact sum; a float one's :func:`fsum` (the same bits every run)."""
    return col.sum(where=where) if col.type().is_integer() else fsum(col, where=where)


def plain_sums(expr: ir.Table) -> ir.Table:
    """``expr`` with DuckDB's ``fsum`` as a plain ``SUM``: the query another engine runs.

    :func:`fsum` picks the sum when a query is built, from the tables' backend; this
    turns a query built on DuckDB into the one Spark, PostgreSQL, Snowflake or
    BigQuery would get, e.g. to compile it for them (``ibis.to_sql``).
    """
    import ibis.expr.operations as ops

    def swap(node: Any, kwargs: dict[str, Any] | None) -> Any:
        if kwargs is None:
            kwargs = dict(zip(node.__argnames__, node.__args__, strict=True))
        if isinstance(node, ops.AggUDF) and node.__func_name__ == "fsum":
            return ops.Sum(kwargs["arg"], where=kwargs["where"])
        return node.__recreate__(kwargs)

    return expr.op().replace(swap).to_expr()


def as_float(col: ir.Value) -> ir.FloatingValue:
    """``col`` as float64; a boolean as 1.0/0.0 (null stays null), which PostgreSQL cannot cast."""
    import ibis

    if col.type().is_boolean():
        return ibis.cases((col, 1), (~col, 0)).cast("float64")
    return col.cast("float64")


def engine_name(expr: ir.Expr) -> str:
    """The name of the backend ``expr``'s tables are bound to (``""`` when unbound).

    Raises:
        RuntimeError: ``expr`` mixes tables of two connections.
    """
    from ibis.common.exceptions import IbisError

    backends, _ = expr._find_backends()
    if len(backends) > 1:
        raise RuntimeError("An engine query mixes tables of two connections.")
    try:
        return str(backends[0].name) if backends else ""
    except IbisError:  # pragma: no cover - a backend without a name
        return ""


def _builtin_fsum() -> Any:
    import ibis

    def fsum(arg: float) -> float:  # pragma: no cover - a signature: the engine runs it
        """DuckDB's compensated sum."""
        raise NotImplementedError

    return ibis.udf.agg.builtin(name="fsum")(fsum)


def _fsum(col: ir.NumericValue, *, where: ir.BooleanValue | None) -> ir.FloatingScalar:
    global _FSUM  # noqa: PLW0603 - built once, lazily (ibis loads only when a query is built)
    if _FSUM is None:
        _FSUM = _builtin_fsum()
    return _FSUM(col, where=where)


_FSUM: Any = None
