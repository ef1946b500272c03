"""Where ``exp assign`` writes: a Parquet file (any engine) or a table back in the engine.

Both targets replace this experiment's rows and keep every other experiment's
rows as they are; a user whose arm did not change keeps ``assigned_at`` (a
ramp-up only stamps users who enter or move).

- :class:`ParquetTarget`: the new rows (one per user, four columns) are fetched
  from whatever engine computed them as Arrow record batches, merged with the
  previous file in a local DuckDB, and written by pyarrow through
  :func:`experiment.files.write_together` (temp file beside the target, then
  rename). No engine ever writes the file itself (Spark would write a folder).
- :class:`TableTarget`: merged in the engine, then Ibis ``create_table(...,
  overwrite=True)``, which builds the new table under a fresh name before it
  replaces the old one. On PostgreSQL Ibis runs create, drop and rename in one
  transaction; on DuckDB this module wraps them in one; Spark cannot overwrite
  a table it is reading, so there the merged rows are fetched first and the
  table is overwritten by ``saveAsTable`` (not atomic: Spark has no transactions).

Table names come from the command line: only dotted identifiers are accepted,
and they reach the engine as Ibis arguments, never inside SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiment.engine.dataset import read_table
from experiment.errors import ConfigError
from experiment.files import write_together
from experiment.tablenames import split_table_name

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir
    import pyarrow as pa

__all__ = ["ParquetTarget", "TableTarget", "table_target", "write_assignments"]

_TS = "timestamp('UTC', 6)"
_BATCH = 100_000


@dataclass(frozen=True, kw_only=True)
class ParquetTarget:
    """A Parquet file; ``previous`` is the source whose other rows are kept (default: ``path``)."""

    path: Path
    previous: str | None = None


@dataclass(frozen=True, kw_only=True)
class TableTarget:
    """A table in the engine ``con``: ``name`` in the (catalog and) schema ``database``."""

    con: ibis.BaseBackend
    name: str
    database: str | tuple[str, str] | None = None

    @property
    def label(self) -> str:
        """The dotted name, as the user gave it."""
        db = self.database
        parts = [] if db is None else [db] if isinstance(db, str) else list(db)
        return ".".join([*parts, self.name])


def table_target(con: ibis.BaseBackend, name: str, *, option: str = "--to-table") -> TableTarget:
    """A :class:`TableTarget` for ``NAME``, ``SCHEMA.NAME`` or ``CATALOG.SCHEMA.NAME``.

    Raises:
        ConfigError: ``name`` is not a dotted identifier.
    """
    try:
        table, database = split_table_name(name)
    except ValueError:
        raise ConfigError(
            f"{option} {name!r}: not a table name; give NAME, SCHEMA.NAME or "
            "CATALOG.SCHEMA.NAME of letters, digits and _ (not starting with a digit)"
        ) from None
    return TableTarget(con=con, name=table, database=database)


def _contract(table: ir.Table) -> ir.Table:
    """The four assignment columns, typed as the data contract says."""
    return table.select(
        user_id=table.user_id.cast("string"),
        experiment=table.experiment.cast("string"),
        arm=table.arm.cast("string"),
        assigned_at=table.assigned_at.cast(_TS),
    )


def keep_earlier(old: ir.Table | None, rows: ir.Table, *, experiment: str) -> ir.Table:
    """Other experiments' rows as they are; users keeping their arm keep ``assigned_at``."""
    import ibis

    if old is None:
        return rows
    old = _contract(old)
    mine = old.experiment == experiment
    prev = old.filter(mine).group_by(["user_id", "arm"]).aggregate(since=old.assigned_at.min())
    joined = rows.left_join(prev, ["user_id", "arm"])
    rows = joined.select(
        "user_id", "experiment", "arm", assigned_at=ibis.coalesce(joined.since, joined.assigned_at)
    )
    return old.filter(~mine).union(rows)


def _batches(table: ir.Table) -> pa.RecordBatchReader:
    """Fetch ``table`` from its engine as Arrow record batches."""
    import ibis
    import pyarrow as pa

    if ibis.get_backend(table).name == "duckdb":
        # Ibis 12's batch reader calls fetch_record_batch, which DuckDB 2.0 removed
        whole = table.to_pyarrow()
        return pa.RecordBatchReader.from_batches(whole.schema, whole.to_batches(_BATCH))
    return table.to_pyarrow_batches(chunk_size=_BATCH)


def _arrow(table: ir.Table) -> pa.Table:
    """Fetch ``table`` from its engine as one Arrow table, batch by batch."""
    return _batches(table).read_all()


def _write_parquet(rows: ir.Table, target: ParquetTarget, *, experiment: str) -> None:
    import ibis
    import pyarrow.parquet as pq

    fresh = _arrow(_contract(rows))
    con = ibis.duckdb.connect()
    previous = target.previous
    if previous is None and target.path.is_file():
        previous = str(target.path)
    try:
        old = read_table(con, previous, "assignments_old") if previous is not None else None
        new = con.create_table("assignments_new", fresh)
        merged = keep_earlier(old, new, experiment=experiment)

        def write(tmp: Path) -> None:
            reader = _batches(merged)
            with pq.ParquetWriter(tmp, reader.schema) as out:
                for batch in reader:
                    out.write_batch(batch)

        write_together([(target.path, write)])
    finally:
        con.disconnect()


def _existing(target: TableTarget) -> ir.Table | None:
    """The target table as it is, or ``None`` (``list_tables`` breaks on DuckDB 2.0)."""
    from ibis.common.exceptions import TableNotFound

    try:
        return target.con.table(target.name, database=target.database)
    except TableNotFound:
        return None


def _write_table(rows: ir.Table, target: TableTarget, *, experiment: str) -> None:
    con = target.con
    old = _existing(target)
    merged: Any = keep_earlier(old, _contract(rows), experiment=experiment)
    if con.name == "pyspark":  # cannot overwrite a table it reads from
        merged = _arrow(merged)
    if con.name != "duckdb":
        con.create_table(target.name, merged, database=target.database, overwrite=True)
        return
    # DuckDB's create_table(overwrite=True) runs create, drop, rename one by one
    native: Any = con.con
    native.begin()
    try:
        con.create_table(target.name, merged, database=target.database, overwrite=True)
    except BaseException:
        native.rollback()
        raise
    native.commit()


def write_assignments(
    rows: ir.Table, target: ParquetTarget | TableTarget, *, experiment: str
) -> None:
    """Replace ``experiment``'s rows at ``target`` with ``rows`` (the four contract columns).

    Args:
        rows: This experiment's assignments, one row per entered user, on any engine.
        target: A Parquet file, or a table in an engine (``rows``' own for a table).
        experiment: The experiment's name, whose previous rows are replaced.
    """
    if isinstance(target, ParquetTarget):
        _write_parquet(rows, target, experiment=experiment)
    else:
        _write_table(rows, target, experiment=experiment)
