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
    dataset: Annotated[Path, typer.Argument(help="Dataset folder holding the customers table.")],
    experiment: Annotated[Path, typer.Option("--experiment", "-e", help="Experiment YAML file.")],
) -> None:
    """Assign every customer to an arm and write DATASET/assignments.parquet.

    Hashes md5(salt:user_id) in DuckDB (the same arms as experiment.assign() gives
    one user at request time), applying the experiment's holdout, traffic share and
    per-segment allocation (the segments file's priority decides for users in
    several segments). This experiment's rows are replaced, other experiments'
    rows are kept; users who keep their arm keep their assigned_at. The file is
    replaced atomically. Prints users per segment and arm.
    """
    from experiment.api import assign_dataset
    from experiment.cli._outputs import experiment_inputs
    from experiment.config import load_experiment
    from experiment.files import check_output_file
    from reports.tables import assignment_lines

    inputs = experiment_inputs(experiment, load_experiment(experiment))
    check_output_file(dataset / "assignments.parquet", option="DATASET", inputs=inputs)

    with console(stderr=True).status("assigning in DuckDB…"):
        summary = assign_dataset(dataset, experiment)
    out = console()
    for line in assignment_lines(summary):
        out.print(line)
