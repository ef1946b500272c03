"""The options every data-reading command shares: ``--engine URL`` and ``--table ROLE=NAME``.

A command reads a DATASET folder (embedded DuckDB), or the engine ``--engine``
names (else the experiment file's ``engine:``), with the contract tables named by
the experiment file's ``tables:`` and ``--table`` (README "Running on a warehouse
or Spark"). :func:`data_source` turns the command line into one
:class:`~experiment.engine.source.DataSource`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.engine.source import DataSource

__all__ = ["EngineOption", "TableOption", "data_source", "source_inputs"]

EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Read the tables from an engine instead of a DATASET folder: duckdb:///path.db, "
        "pyspark (the active SparkSession, or a local one), sc://host:15002 (Spark Connect) "
        "or postgres://user@host:port/db. Default: the experiment file's 'engine:'.",
    ),
]
TableOption = Annotated[
    list[str] | None,
    typer.Option(
        "--table",
        help="Where a table is in the engine, ROLE=NAME, e.g. customers=crm.customers "
        "(roles: customers, events, assignments); repeatable; overrides the experiment "
        "file's 'tables:'.",
    ),
]


def _pairs(values: list[str] | None) -> dict[str, str]:
    """``--table ROLE=NAME`` values as a dict; a malformed or repeated one is a usage error."""
    out: dict[str, str] = {}
    for text in values or []:
        role, sep, name = text.partition("=")
        if not sep or not role.strip() or not name.strip():
            raise typer.BadParameter(
                f"{text[:80]!r}: write ROLE=NAME, e.g. customers=crm.customers",
                param_hint="--table",
            )
        if role.strip() in out:
            raise typer.BadParameter(f"{role.strip()[:40]!r} is given twice", param_hint="--table")
        out[role.strip()] = name.strip()
    return out


def data_source(
    dataset: Path | None,
    *,
    engine: str | None,
    table: list[str] | None,
    config: ExperimentConfig | None = None,
    hint: str = "a DATASET folder",
) -> DataSource:
    """The command's data: DATASET, else ``--engine``, else the experiment file's ``engine:``.

    Raises:
        ConfigError: both or neither, or a bad engine URL or table name (one line).
    """
    from experiment.engine.source import resolve_source

    tables = _pairs(table)
    return resolve_source(dataset, engine=engine, tables=tables, config=config, dataset_hint=hint)


def source_inputs(source: DataSource | None) -> list[Path]:
    """What the source reads from disk (a dataset's tables, a DuckDB file): never an output."""
    from experiment.cli._outputs import dataset_inputs

    if source is None:
        return []
    if source.folder is not None:
        return dataset_inputs(source.folder)
    file = source.duckdb_file
    return [file] if file is not None and file.exists() else []
