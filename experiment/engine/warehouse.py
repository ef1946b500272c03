"""The contract tables of an engine connection, resolved by name and checked like Parquet.

A table name comes from the experiment file's ``tables:`` or ``--table`` and is a
dotted identifier (:mod:`experiment.tablenames`); it reaches the engine through
Ibis (``con.table(name, database=...)``), never through SQL text. Each table is
checked against the data contract (:data:`experiment.engine.schema.CONTRACT`)
from the engine's own schema before any query runs: a missing table or column, a
column of the wrong type, an empty table (one ``LIMIT 1`` probe, cheap on every
engine) and ``user_id`` kinds that differ between tables are each one
:class:`~experiment.errors.DataError` line naming the engine and the table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiment.engine.fetch import scalar
from experiment.engine.schema import CONTRACT, EXPECTED, Kind, fits, kind_of, microseconds
from experiment.errors import DataError
from experiment.tablenames import TableNames, split_table_name

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir

    from experiment.engine.dataset import Dataset

__all__ = ["check_dataset", "engine_table", "engine_tables"]

_ABSENT = (
    "not found",
    "not_found",
    "does not exist",
    "cannot be found",
    "no such table",
    "unknown table",
)


def _missing(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return "notfound" in text.replace(" ", "") or any(p in text for p in _ABSENT)


def _first(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def engine_table(
    con: ibis.BaseBackend, where: str, names: TableNames, role: str, *, required: bool = True
) -> ir.Table | None:
    """Contract table ``role`` on ``con``, checked; ``None`` when absent and not required.

    ``where`` names the engine in messages (its URL, password redacted).

    Raises:
        DataError: the table is missing (if required), lacks a contract column, has
            one of the wrong type, or is empty.
    """
    name = names.of(role)
    table_name, database = split_table_name(name)
    label = f"table {name!r}" if name == role else f"table {name!r} ({role})"
    try:
        table = (
            _spark_table(con, table_name, database, role)
            if con.name == "pyspark" and database is not None
            else con.table(table_name, database=database)
        )
    except Exception as exc:  # each backend raises its own type
        if not _missing(exc):
            raise DataError(f"{where}: {label}: cannot read ({_first(exc)})") from None
        if not required:
            return None
        raise DataError(
            f"{where}: {label} not found; name the engine's table in the experiment "
            f"file's 'tables:' or with --table {role}=SCHEMA.TABLE"
        ) from None
    _check(table, f"{where}: {label}", CONTRACT[role])
    return _microseconds(table)


def _microseconds(table: ir.Table) -> ir.Table:
    """Nanosecond timestamps of an engine table as microseconds (:func:`microseconds`)."""
    zones = {
        name: dtype.timezone
        for name, dtype in table.schema().items()
        if dtype.is_timestamp() and (dtype.scale or 0) > 6
    }
    return microseconds(table, zones)


def _spark_table(
    con: ibis.BaseBackend, name: str, database: str | tuple[str, str], role: str
) -> ir.Table:
    """``database.name`` on Spark, through a view of our own.

    Ibis 12 reads the schema of a Spark table by its bare name, so a temporary view
    of the session called ``customers`` would stand in for ``crm.customers``. Spark
    reads the qualified name itself (identifiers only, each quoted) into a view
    whose name nobody else uses.
    """
    import uuid

    parts = database if isinstance(database, tuple) else (database,)
    quoted = ".".join(f"`{part}`" for part in (*parts, name))
    view = f"seglift_{role}_{uuid.uuid4().hex[:12]}"
    con._session.table(quoted).createOrReplaceTempView(view)  # Ibis's own SparkSession
    return con.table(view)


def _check(table: ir.Table, where: str, required: dict[str, Kind]) -> None:
    """A missing column, a column of the wrong type, or no rows: one line each."""
    schema = table.schema()
    missing = [c for c in required if c not in schema]
    if missing:
        raise DataError(
            f"{where} lacks column(s) {', '.join(missing)}; it has: "
            f"{', '.join(schema.names) or 'no columns'}"
        )
    for column, kind in required.items():
        dtype = schema[column]
        if not fits(dtype.to_pyarrow(), kind):
            raise DataError(f"{where}: column {column!r}: found {dtype}, expected {EXPECTED[kind]}")
    if not scalar(table.limit(1).count()):
        raise DataError(f"{where} is empty (0 rows); expected at least one row")


def engine_tables(
    con: ibis.BaseBackend,
    where: str,
    names: TableNames,
    roles: tuple[str, ...],
    *,
    optional: tuple[str, ...] = (),
) -> dict[str, ir.Table]:
    """The contract tables ``roles`` on ``con``, checked; those in ``optional`` may be absent.

    ``user_id`` must be text in every table or integers in every table (joins
    compare them); integer ids are then compared as text, as for Parquet.

    Raises:
        DataError: see :func:`engine_table`; or the tables' ``user_id`` kinds differ.
    """
    found = {}
    for role in roles:
        table = engine_table(con, where, names, role, required=role not in optional)
        if table is not None:
            found[role] = table
    kinds = {role: _id_kind(t) for role, t in found.items()}
    _one_id_kind(where, {names.of(r): k for r, k in kinds.items()})
    return {
        role: t if kinds[role] == "string" else t.mutate(user_id=t.user_id.cast("string"))
        for role, t in found.items()
    }


def _one_id_kind(where: str, kinds: dict[str, str]) -> None:
    """Raise a DataError unless every table (by name) has the same ``user_id`` kind."""
    if len(set(kinds.values())) > 1:
        listed = ", ".join(f"{name} {kind}" for name, kind in kinds.items())
        raise DataError(
            f"{where}: column 'user_id' has different types across tables ({listed}); "
            "expected one type in every table (all string or all integer), or no user would match"
        )


def _id_kind(table: ir.Table) -> str:
    """``string`` or ``integer``: the kind of a checked table's ``user_id`` column."""
    found = kind_of(table.schema()["user_id"].to_pyarrow())
    return "string" if found == "text" else "integer"


def check_dataset(dataset: Dataset) -> Dataset:
    """A :class:`Dataset` built by a caller (not opened by seglift), checked like any table.

    Raises:
        DataError: a table lacks a contract column, has one of the wrong type or no
            rows, or the tables' ``user_id`` kinds differ (one line naming the table).
    """
    tables = {"customers": dataset.customers, "events": dataset.events}
    tables["assignments"] = dataset.assignments
    for role, table in tables.items():
        where = f"{dataset.path}: table {role!r}"
        try:
            _check(table, where, CONTRACT[role])
        except DataError:
            raise
        except Exception as exc:  # e.g. its connection was closed: each backend has its type
            raise DataError(f"{where}: cannot read ({_first(exc)})") from None
    _one_id_kind(str(dataset.path), {role: _id_kind(t) for role, t in tables.items()})
    return dataset
