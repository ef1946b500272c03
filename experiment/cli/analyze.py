"""``exp analyze`` and ``exp report``: results.json, the HTML report, the terminal table."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from experiment.cli._app import app, console, user_errors

__all__ = ["analyze", "report", "run_analysis"]


def run_analysis(
    dataset: Path, experiment: Path, out: Path, *, html: bool, memory_limit: str | None = None
) -> None:
    """Aggregate in the engine, test, write results.json (and report.html), print the table."""
    from rich.markup import escape

    from experiment.analysis import analyze_cells
    from experiment.config import load_experiment
    from experiment.engine import aggregate
    from experiment.engine.dataset import open_dataset
    from experiment.files import write_text_atomic
    from reports.html import render_html
    from reports.serialize import write_results
    from reports.terminal import decision_table, lift_table, quality_lines, srm_line
    from segments import load_segments

    out_console = console()
    config = load_experiment(experiment)
    segment_set = load_segments(config.segments) if config.segments is not None else None
    started = time.perf_counter()
    with console(stderr=True).status("aggregating in DuckDB…"), _memory_bound(memory_limit):
        cells = aggregate(open_dataset(dataset, memory_limit=memory_limit), config, segment_set)
    results = analyze_cells(cells, config, segment_set)
    page = render_html(results) if html else None  # render before writing anything
    write_results(results, out / "results.json")
    if page is not None:
        write_text_atomic(out / "report.html", page)
    out_console.print(srm_line(results))  # on top: a broken split voids everything below
    for line in quality_lines(results):
        out_console.print(line)
    out_console.print(lift_table(results))
    out_console.print(decision_table(results))
    elapsed = time.perf_counter() - started
    out_console.print(f"analysed in {elapsed:.1f}s → {escape(str(out))}/results.json")
    if page is not None:
        out_console.print(f"report: {escape(str((out / 'report.html').resolve()))}")


@contextlib.contextmanager
def _memory_bound(memory_limit: str | None) -> Iterator[None]:
    """Turn DuckDB running out of memory under ``--memory-limit`` into a one-line error."""
    import duckdb

    from experiment.errors import ConfigError, DataError

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


@app.command()
@user_errors
def analyze(
    dataset: Annotated[
        Path, typer.Argument(help="Dataset folder (customers, events, assignments).")
    ],
    experiment: Annotated[Path, typer.Option("--experiment", "-e", help="Experiment YAML file.")],
    out: Annotated[Path, typer.Option(help="Folder for results.json and report.html.")] = Path(
        "results"
    ),
    html: Annotated[bool, typer.Option(help="Also write report.html.")] = True,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            help="Cap DuckDB's memory, e.g. 1.5GB: beyond it DuckDB spills to the system "
            "temp folder (slower, bounded). Default: DuckDB's, 80% of RAM."
        ),
    ] = None,
) -> None:
    """Measure the lift of every treatment arm in every segment and metric.

    Aggregates the dataset to sufficient statistics in DuckDB, runs Welch t-tests
    (delta method for ratio metrics and relative lifts), corrects for multiple
    testing within each metric and checks the sample ratio. Writes results.json
    and report.html to OUT and prints the lift table.
    """
    run_analysis(dataset, experiment, out, html=html, memory_limit=memory_limit)


@app.command()
@user_errors
def report(
    results: Annotated[Path, typer.Argument(help="results.json written by `exp analyze`.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("report.html"),
    refinement: Annotated[
        Path | None,
        typer.Option(help="proposals.json written by `exp refine`: adds a Refinements section."),
    ] = None,
) -> None:
    """Re-render the HTML lift report from a results.json, without the data.

    The page is self-contained (inline CSS and SVG charts): open it offline or
    attach it to an e-mail. Also prints the per-segment decisions.
    """
    from rich.markup import escape

    from experiment.errors import DataError
    from experiment.results import load_results
    from experiment.results.refinement import load_refinement
    from reports.html import write_html
    from reports.terminal import decision_table

    loaded = load_results(results)
    found = load_refinement(refinement) if refinement is not None else None
    if found is not None and found.experiment != loaded.experiment:
        raise DataError(
            f"{refinement}: refinement of experiment {found.experiment!r}, "
            f"but {results} is of {loaded.experiment!r}"
        )
    write_html(loaded, out, found)
    out_console = console()
    out_console.print(decision_table(loaded))
    out_console.print(f"report: {escape(str(out.resolve()))}")
