"""``exp assign``: hash every customer into an arm in the engine, write the assignments table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiment.cli._app import app, console, user_errors

__all__ = ["assign"]


@app.command()
@user_errors
def assign(
    experiment: Annotated[Path, typer.Option("--experiment", "-e", help="Experiment YAML file.")],
    dataset: Annotated[
        Path | None, typer.Argument(help="Dataset folder holding the customers table.")
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            help="Engine URL (duckdb:///file.db, pyspark, postgres://…) holding the customers "
            "table (the experiment file's tables: customers, default 'customers'); default: "
            "the experiment file's engine:."
        ),
    ] = None,
    to_table: Annotated[
        str | None,
        typer.Option(help="With --engine: write into this engine table (NAME or SCHEMA.NAME)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="With --engine: write this Parquet file.")
    ] = None,
) -> None:
    """Assign every customer to an arm and write DATASET/assignments.parquet.

    Hashes md5(salt:user_id) in the engine (the same arms as experiment.assign()
    gives one user at request time), applying the experiment's holdout, traffic
    share and per-segment allocation (the segments file's priority decides for
    users in several segments). This experiment's rows are replaced, other
    experiments' rows are kept; users who keep their arm keep their assigned_at.
    The file is replaced atomically; with --engine, --to-table replaces the
    engine table (in one transaction on DuckDB and PostgreSQL) and --out writes
    a Parquet file. Prints users per segment and arm.
    """
    from experiment.api import assign_dataset
    from experiment.cli._outputs import experiment_inputs
    from experiment.config import load_experiment
    from experiment.engine.assign import assign_in_engine
    from experiment.errors import ConfigError
    from experiment.files import check_output_file
    from reports.tables import assignment_lines

    config = load_experiment(experiment)
    inputs = experiment_inputs(experiment, config)
    if dataset is None and engine is None:  # the experiment file may name the engine
        engine = config.engine
    if dataset is None and engine is None:
        raise ConfigError("DATASET: missing; give a dataset folder, or --engine URL")
    if dataset is not None and engine is not None:
        raise ConfigError("DATASET and --engine: give one of them, not both")
    if engine is None and (to_table is not None or out is not None):
        raise ConfigError(
            "--to-table and --out need --engine; DATASET writes DATASET/assignments.parquet"
        )
    if engine is not None and (to_table is None) == (out is None):
        raise ConfigError("with --engine give one of --to-table NAME or --out FILE.parquet")
    if out is not None:
        check_output_file(out, option="--out", inputs=inputs, suffixes=(".parquet",))
    if dataset is not None:
        check_output_file(dataset / "assignments.parquet", option="DATASET", inputs=inputs)

    with console(stderr=True).status("assigning in the engine…"):
        if engine is not None:
            summary = assign_in_engine(engine, config, to_table=to_table, out=out)
        else:
            summary = assign_dataset(dataset or Path(), experiment)
    for line in assignment_lines(summary):
        console().print(line)
