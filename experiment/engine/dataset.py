"""Open a dataset folder on the embedded engine and check it against the data contract.

A dataset is a folder holding ``customers``, ``events`` and ``assignments``, each
either ``NAME.parquet`` or a folder ``NAME/`` of Parquet files.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from experiment.errors import ConfigError, DataError

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir

__all__ = [
    "REQUIRED_COLUMNS",
    "Dataset",
    "event_tables",
    "find_table",
    "memory_bound",
    "open_customers",
    "open_dataset",
    "open_pre_launch",
    "read_table",
    "require_table",
]

_SIZE = re.compile(r"\d+(\.\d+)?\s*([KMGT]i?B)", re.IGNORECASE)

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("user_id",),
    "events": ("user_id", "ts", "event"),
    "assignments": ("user_id", "experiment", "arm", "assigned_at"),
}


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """The three contract tables as Ibis tables on one connection."""

    path: Path
    con: ibis.BaseBackend
    customers: ir.Table
    events: ir.Table
    assignments: ir.Table


def find_table(folder: Path, name: str) -> str | None:
    """The Parquet source of table ``name`` in a dataset folder, or ``None``."""
    single = folder / f"{name}.parquet"
    if single.is_file():
        return str(single)
    parts = folder / name
    if parts.is_dir() and any(parts.glob("*.parquet")):
        return str(parts / "*.parquet")
    return None


def require_table(folder: Path, name: str) -> str:
    """Like :func:`find_table`, but a missing table is a :class:`DataError`."""
    source = find_table(folder, name)
    if source is None:
        raise DataError(
            f"{folder}: table '{name}' not found; expected {name}.parquet or a folder {name}/ "
            "of Parquet files"
        )
    return source


def read_table(con: ibis.BaseBackend, source: str, name: str) -> ir.Table:
    """Register a Parquet source on the connection; unreadable files are a DataError."""
    try:
        return con.read_parquet(source, table_name=name)
    except Exception as exc:  # the engine's own error types vary by backend
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{source}: cannot read as Parquet ({first})") from None


def _check_columns(folder: Path, name: str, table: ir.Table) -> None:
    missing = [c for c in REQUIRED_COLUMNS[name] if c not in table.columns]
    if missing:
        raise DataError(
            f"{folder}: table '{name}' lacks column(s) {', '.join(missing)}; "
            f"it has: {', '.join(table.columns)}"
        )


def open_dataset(path: Path, *, memory_limit: str | None = None) -> Dataset:
    """Open a dataset folder on an in-process DuckDB connection.

    ``memory_limit`` (e.g. ``"1.5GB"``, ``"800MiB"``) caps DuckDB's memory; beyond
    it DuckDB spills to the system temp folder, which bounds the peak memory at the
    cost of time. ``None`` keeps DuckDB's default (80% of RAM).

    Raises:
        DataError: the folder, a table or a required column is missing.
        ConfigError: ``memory_limit`` is not a size.
    """
    import ibis

    folder = Path(path)
    limit = None if memory_limit is None else memory_limit.strip()
    if limit is not None and not _SIZE.fullmatch(limit):
        raise ConfigError(
            f"memory limit {memory_limit!r}: expected a size such as 1.5GB, 800MiB or 4GiB"
        )
    if not folder.is_dir():
        raise DataError(f"{folder}: dataset folder not found")
    con = ibis.duckdb.connect()
    if limit is not None:
        con.raw_sql("SET memory_limit = ?", parameters=[limit]).fetchall()
    con.raw_sql("SET enable_progress_bar = false")  # our own progress bars own the terminal
    # DuckDB spills to ./.tmp by default: keep it out of the user's working directory
    spill = Path(tempfile.gettempdir()) / "seglift-duckdb"
    con.raw_sql("SET temp_directory = ?", parameters=[str(spill)]).fetchall()
    tables = {}
    for name in REQUIRED_COLUMNS:
        tables[name] = read_table(con, require_table(folder, name), name)
        _check_columns(folder, name, tables[name])
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
    con = ibis.duckdb.connect()
    tables = {}
    for name in ("customers", "events"):
        tables[name] = read_table(con, require_table(Path(folder), name), name)
        missing = [c for c in REQUIRED_COLUMNS[name] if c not in tables[name].columns]
        if missing:
            raise DataError(f"{folder}: table '{name}' lacks column(s) {', '.join(missing)}")
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
    source = find_table(folder, "customers")
    if source is None:
        raise DataError(f"{folder}: no customers.parquet (or customers/ folder) found")
    return read_table(ibis.duckdb.connect(), source, "customers")


def event_tables(folder: Path, customers: ir.Table) -> tuple[ir.Table, ir.Table | None] | None:
    """Events (and assignments, if any) beside the customers, on the same connection."""
    con = customers.get_backend()
    found = {}
    for name in ("events", "assignments"):
        source = find_table(Path(folder), name)
        if source is not None:
            found[name] = read_table(con, source, name)
    if "events" not in found:
        return None
    return found["events"], found.get("assignments")


@contextlib.contextmanager
def memory_bound(memory_limit: str | None) -> Iterator[None]:
    """Turn DuckDB running out of memory under ``memory_limit`` into a one-line ConfigError.

    Other errors pass through; without a limit, running out of memory is not
    the user's setting to fix, so it passes through too.
    """
    import duckdb

    from experiment.errors import ConfigError

    try:
        yield
    except (duckdb.OutOfMemoryException, DataError) as exc:
        cause = exc.__cause__ or exc.__context__  # read_table's DataError hides its cause
        oom = isinstance(exc, duckdb.OutOfMemoryException) or isinstance(
            cause, duckdb.OutOfMemoryException
        )
        if memory_limit is None or not oom:
            raise
        raise ConfigError(
            f"--memory-limit {memory_limit}: too small for this dataset (DuckDB ran out "
            "of memory); raise it, or leave it out for DuckDB's default"
        ) from exc
