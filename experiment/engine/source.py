"""Where a command reads its data: a Parquet folder, or an engine connection and its tables.

One way in for every command. A :class:`DataSource` is either a dataset folder
(read by embedded DuckDB, the default) or an engine URL
(:mod:`~experiment.engine.connection`) with the names of the three contract
tables there (:mod:`experiment.tablenames`). :func:`resolve_source` builds one
from the command line and the experiment file; :func:`open_source` opens it as a
:class:`~experiment.engine.dataset.Dataset`, checked against the same data
contract either way; the ``open_*`` variants open only what a command needs.
Everything heavy then runs in the engine: only sums come back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from experiment.engine.connection import connect, engine_kind, redact, release, tune_duckdb
from experiment.engine.dataset import (
    Dataset,
    event_tables,
    open_customers,
    open_dataset,
    open_pre_launch,
)
from experiment.engine.fetch import scalar
from experiment.engine.warehouse import engine_tables
from experiment.errors import ConfigError
from experiment.tablenames import ROLES, TableNames, table_names

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig

__all__ = [
    "DataSource",
    "as_source",
    "customers_of",
    "first_assignment",
    "open_source",
    "open_source_customers",
    "open_source_events",
    "open_source_pre_launch",
    "opened",
    "resolve_source",
]


@dataclass(frozen=True, kw_only=True)
class DataSource:
    """A dataset folder, or an engine URL and where the contract tables are in it.

    Examples:
        >>> DataSource(engine="postgres://ana:secret@db:5432/shop").where
        'postgres://ana:***@db:5432/shop'
    """

    folder: Path | None = None
    engine: str | None = None
    tables: TableNames = field(default_factory=TableNames)

    def __post_init__(self) -> None:
        """Exactly one of ``folder`` and ``engine``."""
        if (self.folder is None) == (self.engine is None):
            raise ConfigError("a data source is a dataset folder or an engine URL, exactly one")

    @property
    def where(self) -> str:
        """The folder, or the engine URL with its password redacted: for messages."""
        return str(self.folder) if self.folder is not None else redact(str(self.engine))

    @property
    def duckdb_file(self) -> Path | None:
        """The database file of a ``duckdb://`` engine (an input no output may overwrite)."""
        if self.engine is None or engine_kind(self.engine) != "duckdb":
            return None
        return Path(self.engine.strip().split("://", 1)[1])


def resolve_source(
    dataset: Path | None,
    *,
    engine: str | None = None,
    tables: Mapping[str, str] | None = None,
    config: ExperimentConfig | None = None,
    dataset_hint: str = "a DATASET folder",
) -> DataSource:
    """The command's data: DATASET, else ``--engine``, else the experiment file's ``engine:``.

    ``tables`` (``--table`` pairs) override the experiment file's ``tables:``; both
    name tables in an engine, so they do not go with a dataset folder.
    ``dataset_hint`` is how messages name the folder argument.

    Raises:
        ConfigError: both DATASET and ``--engine``, neither (and no ``engine:``),
            or a bad table name.
    """
    if dataset is not None and engine is not None:
        raise ConfigError(f"give {dataset_hint} or --engine URL, not both")
    if dataset is not None:
        if tables:
            raise ConfigError(
                "--table names tables in an engine (--engine or the experiment file's "
                "'engine:'); a dataset folder holds customers, events and assignments"
            )
        return DataSource(folder=Path(dataset))
    url = engine if engine is not None else (config.engine if config is not None else None)
    if url is None:
        raise ConfigError(
            f"no data: give {dataset_hint}, --engine URL, or 'engine:' in the experiment file"
        )
    engine_kind(url)  # an unknown scheme is a one-line error before anything connects
    merged = {**(config.tables or {} if config is not None else {}), **(tables or {})}
    try:
        names = table_names(merged)
    except ValueError as exc:
        raise ConfigError(f"--table: {exc}") from None
    return DataSource(engine=url, tables=names)


def as_source(dataset: str | Path | DataSource) -> DataSource:
    """A folder path as a :class:`DataSource`; a source as itself."""
    return dataset if isinstance(dataset, DataSource) else DataSource(folder=Path(dataset))


def _connect(source: DataSource, memory_limit: str | None = None) -> ibis.BaseBackend:
    url = str(source.engine)
    if memory_limit is not None and engine_kind(url) != "duckdb":
        raise ConfigError(
            f"--memory-limit {memory_limit.strip()[:40]}: applies to DuckDB only, not to "
            f"--engine {source.where!r}; size the engine itself and leave it out"
        )
    con = connect(url)
    tune_duckdb(con, memory_limit)
    return con


def _engine_tables(
    con: ibis.BaseBackend,
    src: DataSource,
    roles: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> dict[str, ir.Table]:
    """:func:`engine_tables`; the connection is released when a table fails its checks."""
    try:
        return engine_tables(con, src.where, src.tables, roles, optional=optional)
    except BaseException:
        release(con)
        raise


def open_source(
    source: str | Path | DataSource | Dataset, *, memory_limit: str | None = None
) -> Dataset:
    """Open the three contract tables, checked against the data contract.

    ``memory_limit`` caps DuckDB's memory (folders and ``duckdb://`` files only).
    A dataset already open is returned as it is.

    Raises:
        DataError: a table or a required column is missing, of the wrong type or empty.
        ConfigError: a bad engine URL, a refused connection, or ``memory_limit``
            with another engine.
    """
    if isinstance(source, Dataset):
        return source
    src = as_source(source)
    if src.folder is not None:
        return open_dataset(src.folder, memory_limit=memory_limit)
    con = _connect(src, memory_limit)
    found = _engine_tables(con, src, ROLES)
    return Dataset(
        path=src.where,
        con=con,
        customers=found["customers"],
        events=found["events"],
        assignments=found["assignments"],
    )


def open_source_pre_launch(source: str | Path | DataSource) -> tuple[Dataset, bool]:
    """The dataset, and whether it has an assignments table (pre-launch data may not).

    Without one, the customers stand in for the assignments (see
    :func:`experiment.engine.dataset.open_pre_launch`).
    """
    src = as_source(source)
    if src.folder is not None:
        return open_pre_launch(src.folder)
    con = _connect(src)
    found = _engine_tables(con, src, ROLES, optional=("assignments",))
    has = "assignments" in found
    return Dataset(
        path=src.where,
        con=con,
        customers=found["customers"],
        events=found["events"],
        assignments=found.get("assignments", found["customers"]),
    ), has


def open_source_customers(source: str | Path | DataSource) -> ir.Table:
    """The customers table alone (segment checks and ``exp assign`` need no more)."""
    src = as_source(source)
    if src.folder is not None:
        return open_customers(src.folder)
    con = _connect(src)
    return _engine_tables(con, src, ("customers",))["customers"]


def open_source_events(
    source: str | Path | DataSource, customers: ir.Table
) -> tuple[ir.Table, ir.Table | None] | None:
    """Events (and assignments, if any) on the customers' connection; ``None`` without events."""
    src = as_source(source)
    if src.folder is not None:
        return event_tables(src.folder, customers)
    con = customers.get_backend()
    roles = ("events", "assignments")
    found = engine_tables(con, src.where, src.tables, roles, optional=roles)  # caller's con
    if "events" not in found:
        return None
    return found["events"], found.get("assignments")


def first_assignment(source: str | Path | DataSource) -> dt.datetime | None:
    """The earliest ``assigned_at`` of any experiment, or ``None`` without assignments."""
    from experiment.engine.dataset import find_table, read_table

    src = as_source(source)
    if src.folder is not None:
        import ibis

        found = find_table(src.folder, "assignments")  # checked: bad files are one line
        if found is None:
            return None
        con = ibis.duckdb.connect()
        table = read_table(con, found, "assignments")
    else:
        con = _connect(src)
        tables = _engine_tables(con, src, ("assignments",), optional=ROLES)
        if "assignments" not in tables:
            release(con)
            return None
        table = tables["assignments"]
    try:
        first: dt.datetime | None = scalar(table.assigned_at.min())
    finally:
        release(con)
    return first


@contextlib.contextmanager
def opened(
    source: str | Path | DataSource | Dataset, *, memory_limit: str | None = None
) -> Iterator[Dataset]:
    """:func:`open_source` for one block; closes what it opened (a dataset given stays open)."""
    if isinstance(source, Dataset):
        yield source
        return
    data = open_source(source, memory_limit=memory_limit)
    try:
        yield data
    finally:
        release(data.con)


@contextlib.contextmanager
def customers_of(source: str | Path | DataSource) -> Iterator[ir.Table]:
    """:func:`open_source_customers` for one block, its connection closed at the end."""
    customers = open_source_customers(source)
    try:
        yield customers
    finally:
        release(customers.get_backend())
