"""Open a dataset folder on the embedded engine and check it against the data contract.

A dataset is a folder holding ``customers``, ``events`` and ``assignments``, each
either ``NAME.parquet`` or a folder ``NAME/`` of Parquet files.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from experiment.engine.compilers import lazy_compilers
from experiment.engine.schema import (
    CONTRACT,
    TableFiles,
    check_columns,
    check_ids,
    inspect_table,
    microseconds,
)
from experiment.errors import ConfigError, DataError

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir
    import pyarrow as pa

__all__ = [
    "REQUIRED_COLUMNS",
    "Dataset",
    "engine_errors",
    "event_tables",
    "find_table",
    "memory_bound",
    "open_customers",
    "open_dataset",
    "open_pre_launch",
    "read_table",
    "require_table",
]

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {n: tuple(c) for n, c in CONTRACT.items()}


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """The three contract tables as Ibis tables on one connection.

    ``path`` is the dataset folder, or the engine's URL (password redacted): it
    names the data in messages.
    """

    path: Path | str
    con: ibis.BaseBackend
    customers: ir.Table
    events: ir.Table
    assignments: ir.Table


def find_table(folder: Path, name: str) -> str | None:
    """The Parquet source of table ``name`` in a dataset folder, or ``None``.

    Raises:
        DataError: a file of the table cannot be read, or its folder has no parts.
    """
    found = inspect_table(Path(folder), name)
    return None if found is None else found.source


def _require(folder: Path, name: str) -> TableFiles:
    found = inspect_table(folder, name)
    if found is None:
        raise DataError(
            f"{folder}: table '{name}' not found; expected {name}.parquet or a folder {name}/ "
            "of Parquet files"
        )
    return found


def require_table(folder: Path, name: str) -> str:
    """Like :func:`find_table`, but a missing table is a :class:`DataError`."""
    return _require(Path(folder), name).source


def _literal(path: Path) -> str:
    """``path`` as a DuckDB glob that matches only itself.

    DuckDB globs every path it reads: a folder ``run[1]`` would read ``run1``'s
    files, ``runs*`` every ``runs...`` folder's. ``[x]`` matches ``x`` alone.
    """
    return "".join(f"[{c}]" if c in "[*?" else c for c in str(path))


def _register(con: ibis.BaseBackend, files: TableFiles, name: str) -> ir.Table:
    """Register checked files on the connection; integer user ids are compared as text.

    DuckDB reads exactly the files whose footers were checked (not a glob of the folder).
    """
    try:
        table = con.read_parquet([_literal(f.absolute()) for f in files.files], table_name=name)
    except Exception as exc:  # the engine's own error types vary by backend
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{files.source}: cannot read as Parquet ({first})") from None
    if "user_id" in table.columns and not table.user_id.type().is_string():
        table = table.mutate(user_id=table.user_id.cast("string"))
    return _microseconds(table, files.schema)


def _microseconds(table: ir.Table, schema: pa.Schema) -> ir.Table:
    """Nanosecond timestamps of the files' schema as microseconds (:func:`microseconds`).

    The files' Arrow schema names them: Ibis sees DuckDB's ``TIMESTAMPTZ_NS`` as unknown.
    """
    import pyarrow as pa

    zones = {
        f.name: f.type.tz
        for f in schema
        if pa.types.is_timestamp(f.type) and f.type.unit == "ns" and f.name in table.columns
    }
    return microseconds(table, zones)


def read_table(con: ibis.BaseBackend, source: str, name: str) -> ir.Table:
    """Register a Parquet source of :func:`find_table`; unreadable files are a DataError."""
    path = Path(source)
    folder, table = (
        (path.parent.parent, path.parent.name)
        if "*" in path.name
        else (
            path.parent,
            path.stem,
        )
    )
    files = _require(folder, table)
    if table in CONTRACT:  # a table registered under another name keeps its contract
        check_columns(files, CONTRACT[table])
    return _register(con, files, name)


def _checked(folder: Path, names: tuple[str, ...]) -> dict[str, TableFiles]:
    """Every named table's files, with the contract's columns, types and rows checked."""
    files = {name: _require(folder, name) for name in names}
    for name, found in files.items():
        check_columns(found, CONTRACT[name])
    check_ids(folder, list(files.values()))
    return files


def open_dataset(path: Path, *, memory_limit: str | None = None) -> Dataset:
    """Open a dataset folder on an in-process DuckDB connection.

    ``memory_limit`` (e.g. ``"1.5GB"``, ``"800MiB"``) caps DuckDB's memory; beyond
    it DuckDB spills to the system temp folder, which bounds the peak memory at the
    cost of time. ``None`` bounds it from the machine (``default_memory_limit``).

    Raises:
        DataError: the folder or a table is missing, unreadable, empty, or a required
            column is missing or of the wrong type (:mod:`~experiment.engine.schema`).
        ConfigError: ``memory_limit`` is not a size.
    """
    import ibis

    from experiment.engine.connection import check_memory_limit, tune_duckdb

    folder = Path(path)
    check_memory_limit(memory_limit)
    if not folder.is_dir():
        raise DataError(f"{folder}: dataset folder not found")
    files = _checked(folder, tuple(CONTRACT))
    lazy_compilers()  # DuckDB's SQL compiler alone, not all twenty
    con = ibis.duckdb.connect()
    tune_duckdb(con, memory_limit)
    tables = {name: _register(con, found, name) for name, found in files.items()}
    return Dataset(
        path=folder,
        con=con,
        customers=tables["customers"],
        events=tables["events"],
        assignments=tables["assignments"],
    )


def open_pre_launch(folder: Path) -> tuple[Dataset, bool]:
    """The dataset, and whether it has an assignments table (pre-launch data may not).

    Without one, the customers stand in for the assignments
    (:func:`experiment.engine.baseline.baseline_sums`).
    """
    import ibis

    if not Path(folder).is_dir() or find_table(Path(folder), "assignments") is not None:
        return open_dataset(folder), True
    files = _checked(Path(folder), ("customers", "events"))
    lazy_compilers()
    con = ibis.duckdb.connect()
    tables = {name: _register(con, found, name) for name, found in files.items()}
    return Dataset(
        path=Path(folder),
        con=con,
        customers=tables["customers"],
        events=tables["events"],
        assignments=tables["customers"],
    ), False


def open_customers(folder: Path) -> ir.Table:
    """The customers table of a dataset folder (events and assignments are optional here)."""
    import ibis

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: dataset folder not found")
    found = inspect_table(folder, "customers")
    if found is None:
        raise DataError(f"{folder}: no customers.parquet (or customers/ folder) found")
    check_columns(found, CONTRACT["customers"])
    lazy_compilers()
    return _register(ibis.duckdb.connect(), found, "customers")


def event_tables(folder: Path, customers: ir.Table) -> tuple[ir.Table, ir.Table | None] | None:
    """Events (and assignments, if any) beside the customers, on the same connection."""
    con = customers.get_backend()
    found: dict[str, ir.Table] = {}
    for name in ("events", "assignments"):
        files = inspect_table(Path(folder), name)
        if files is not None:
            check_columns(files, CONTRACT[name])
            found[name] = _register(con, files, name)
    if "events" not in found:
        return None
    return found["events"], found.get("assignments")


_FILE = re.compile(r'file "([^"]+)"')


def _corrupt(exc: Exception) -> DataError:
    """A read DuckDB gave up halfway (a damaged page behind a valid footer), as one line."""
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    found = _FILE.search(text)
    where = found.group(1) if found else "dataset"
    reason = text.split(": ")[-1][:200]
    return DataError(f"{where}: cannot read as Parquet: corrupt data ({reason}); rewrite the file")


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """Turn DuckDB failing to read a damaged file (found only mid-query) into a DataError."""
    import duckdb

    try:
        yield
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        text = str(exc).lower()
        if "parquet" not in text and "failed to read file" not in text:
            raise  # e.g. the spill folder: not the data's fault
        raise _corrupt(exc) from None


@contextlib.contextmanager
def memory_bound(memory_limit: str | None) -> Iterator[None]:
    """Turn DuckDB running out of memory under ``memory_limit`` into a one-line ConfigError.

    Damaged files found mid-query become a DataError (:func:`engine_errors`). Other
    errors pass through. Without a limit, running out of memory under the default
    bound (:func:`~experiment.engine.connection.default_memory_limit`) says how to
    raise it.
    """
    import duckdb

    try:
        with engine_errors():
            yield
    except (duckdb.OutOfMemoryException, DataError) as exc:
        cause = exc.__cause__ or exc.__context__  # read_table's DataError hides its cause
        oom = isinstance(exc, duckdb.OutOfMemoryException) or isinstance(
            cause, duckdb.OutOfMemoryException
        )
        if not oom:
            raise
        if memory_limit is None:  # the bound chosen from the machine
            from experiment.engine.connection import default_memory_limit

            raise ConfigError(
                f"DuckDB ran out of memory under seglift's default bound "
                f"({default_memory_limit()}); give a larger --memory-limit, e.g. 4GB"
            ) from exc
        raise ConfigError(
            f"--memory-limit {memory_limit}: too small for this dataset (DuckDB ran out "
            "of memory); raise it, or leave it out for the default bound"
        ) from exc
