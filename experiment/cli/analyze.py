"""``exp analyze`` and ``exp report``: results.json, the HTML report, the terminal table."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from experiment.cli._app import app, console, table_width, user_errors
from experiment.cli._format import Format, FormatOption, emit
from experiment.cli._source import EngineOption, TableOption
from experiment.errors import ConfigError

if TYPE_CHECKING:
    from experiment.engine.source import DataSource
    from experiment.files import Writer
    from experiment.results import AnalysisResults
    from experiment.sums import CellSums

__all__ = ["analyze", "report", "run_analysis"]


def run_analysis(
    dataset: Path | DataSource | None,
    experiment: Path,
    out: Path,
    *,
    html: bool,
    memory_limit: str | None = None,
    save_sums: bool = False,
    from_sums: Path | None = None,
    fmt: Format = Format.TABLE,
    wide: bool = False,
) -> None:
    """Analyse (from the data, or from kept sums), write results.json (and report.html).

    Prints the SRM and balance lines, the data-quality lines, the lift and decision
    tables; with ``fmt`` json or csv, results.json or its rows on standard output and
    the SRM, balance and quality lines on standard error.
    """
    from experiment.analysis.lifecycle_run import with_lifecycle
    from experiment.api import analyze_sums, compute_sums
    from experiment.cli._outputs import experiment_inputs
    from experiment.cli._source import source_inputs
    from experiment.config import load_experiment
    from experiment.engine.source import as_source
    from experiment.files import text_writer, write_together
    from reports.html import render_html
    from reports.terminal import balance_line, quality_lines, srm_line

    config = load_experiment(experiment)
    source = None if dataset is None else as_source(dataset)
    sources = [*experiment_inputs(experiment, config), *source_inputs(source)]
    sources += [from_sums] if from_sums is not None else []
    targets = _check_outputs(sources, out, html=html, save_sums=save_sums)
    started = time.perf_counter()
    if from_sums is not None:
        cells = None
        results = analyze_sums(from_sums, config)
    else:
        assert source is not None  # noqa: S101  (checked by the command)
        with console(stderr=True).status("aggregating in the engine…"):
            cells = compute_sums(source, config, memory_limit=memory_limit)
        results = with_lifecycle(
            analyze_sums(cells, config), source, config, memory_limit=memory_limit
        )
    # everything is rendered first, then the files are replaced together
    text = results.to_json()  # results.json, and the --format json/csv output
    writers: list[tuple[Path, Writer]] = [(targets[0], text_writer(text))]
    if html:
        writers.append((targets[1], text_writer(render_html(results))))
    if save_sums and cells is not None:
        writers.append((targets[-1], functools.partial(_write_sums, cells)))
    write_together(writers)
    out_console = console(stderr=fmt is not Format.TABLE)
    out_console.print(srm_line(results))  # on top: a broken split voids everything below
    out_console.print(balance_line(results))  # so do arms that differ before exposure
    for line in quality_lines(results):
        out_console.print(line)
    if fmt is not Format.TABLE:
        document = json.loads(text)
        emit(fmt, document=document, rows=document["results"])
        return
    _print_tables(results, [w[0] for w in writers], time.perf_counter() - started, wide=wide)


def _check_outputs(inputs: list[Path], out: Path, *, html: bool, save_sums: bool) -> list[Path]:
    """results.json, report.html and sums.parquet in OUT, checked against the inputs first."""
    from experiment.files import check_output_file, check_output_folder

    check_output_folder(out, option="--out", inputs=inputs)
    names = ["results.json", *(["report.html"] if html else []), "sums.parquet"]
    names = names if save_sums else names[:-1]
    return [check_output_file(out / n, option="--out", inputs=inputs) for n in names]


def _write_sums(cells: CellSums, tmp: Path) -> None:
    from experiment.results.sums import write_sums_to

    write_sums_to(cells, tmp)


def _print_tables(
    results: AnalysisResults, written: list[Path], elapsed: float, *, wide: bool = False
) -> None:
    """The lift and decision tables, then where each file went."""
    from reports.format import fmt_seconds, terminal_text
    from reports.lifecycle_text import lifecycle_lines
    from reports.terminal import decision_table, heterogeneity_lines, lift_table, pair_lines

    out_console = console(wide=wide)
    out_console.print(lift_table(results, width=table_width(wide=wide), wide=wide))
    for line in pair_lines(results) + heterogeneity_lines(results) + lifecycle_lines(results):
        out_console.print(line)
    out_console.print(decision_table(results, width=table_width(wide=wide)))
    out_console.print(f"analysed in {fmt_seconds(elapsed)} → {terminal_text(written[0])}")
    for path in written[1:]:
        what = "report" if path.name == "report.html" else "sums"
        shown = path.resolve() if what == "report" else path
        out_console.print(f"{what}: {terminal_text(shown)}")


def _source(
    dataset: Path | None,
    experiment: Path,
    engine: str | None,
    table: list[str] | None,
    *,
    from_sums: Path | None,
) -> DataSource | None:
    """The data to analyse: none with --from-sums, else DATASET, --engine or the file's engine."""
    from experiment.cli._source import data_source
    from experiment.config import load_experiment

    if from_sums is None:
        config = load_experiment(experiment)
        return data_source(dataset, engine=engine, table=table, config=config)
    if dataset is not None or engine is not None:
        raise ConfigError(
            "exp analyze: give DATASET (or --engine) or --from-sums SUMS.parquet, not both"
        )
    return None


@app.command()
@user_errors
def analyze(
    dataset: Annotated[
        Path | None,
        typer.Argument(
            help="Dataset folder (customers, events, assignments); omit with --engine "
            "or --from-sums."
        ),
    ] = None,
    *,
    experiment: Annotated[Path, typer.Option("--experiment", "-e", help="Experiment YAML file.")],
    engine: EngineOption = None,
    table: TableOption = None,
    out: Annotated[Path, typer.Option(help="Folder for results.json and report.html.")] = Path(
        "results"
    ),
    html: Annotated[bool, typer.Option(help="Also write report.html.")] = True,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            help="Cap DuckDB's memory, e.g. 4GB (default: 40% of RAM, at most 1.5GiB); "
            "beyond it DuckDB spills to the system temp folder. DuckDB only."
        ),
    ] = None,
    save_sums: Annotated[
        bool,
        typer.Option(
            "--save-sums", help="Also write OUT/sums.parquet: the sums --from-sums re-reads."
        ),
    ] = False,
    from_sums: Annotated[
        Path | None,
        typer.Option(
            help="Re-run the statistics from a sums.parquet of --save-sums, without the data "
            "(another alpha, correction or decision rule); DATASET is then omitted."
        ),
    ] = None,
    fmt: FormatOption = Format.TABLE,
    wide: Annotated[
        bool, typer.Option("--wide", help="Every column of the tables, however wide.")
    ] = False,
) -> None:
    """Measure the lift of every treatment arm in every segment and metric.

    Aggregates the dataset to sufficient statistics in the engine (DuckDB for a
    folder, or --engine), runs Welch t-tests
    (delta method for ratio metrics and relative lifts), corrects for multiple
    testing within each metric and checks the sample ratio. Writes results.json
    and report.html to OUT and prints the lift table. With --save-sums, also
    the sufficient statistics (OUT/sums.parquet); --from-sums re-runs the
    statistics from them instead of the data.
    """
    source = _source(dataset, experiment, engine, table, from_sums=from_sums)
    if from_sums is not None and (save_sums or memory_limit is not None or table):
        raise ConfigError(
            "exp analyze: --save-sums, --memory-limit and --table read the data; "
            "--from-sums does not"
        )
    run_analysis(
        source,
        experiment,
        out,
        html=html,
        memory_limit=memory_limit,
        save_sums=save_sums,
        from_sums=from_sums,
        fmt=fmt,
        wide=wide,
    )


@app.command()
@user_errors
def report(
    results: Annotated[Path, typer.Argument(help="results.json written by `exp analyze`.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("report.html"),
    refinement: Annotated[
        Path | None,
        typer.Option(help="proposals.json written by `exp refine`: adds a Refinements section."),
    ] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Re-render the HTML lift report from a results.json, without the data.

    The page is self-contained (inline CSS and SVG charts): open it offline or
    attach it to an e-mail. Also prints the per-segment decisions.
    """
    from experiment.errors import DataError
    from experiment.files import HTML_SUFFIXES, check_output_file
    from experiment.results import load_results
    from experiment.results.refinement import load_refinement
    from reports.format import terminal_text
    from reports.html import write_html
    from reports.terminal import decision_table

    inputs = [results, *([refinement] if refinement is not None else [])]
    check_output_file(out, option="--out", inputs=inputs, suffixes=HTML_SUFFIXES)
    loaded = load_results(results)
    found = load_refinement(refinement) if refinement is not None else None
    if found is not None and found.experiment != loaded.experiment:
        raise DataError(
            f"{refinement}: refinement of experiment {found.experiment!r}, "
            f"but {results} is of {loaded.experiment!r}"
        )
    write_html(loaded, out, found)
    if fmt is not Format.TABLE:  # the decisions, for other tools
        from dataclasses import asdict

        from experiment.results.decision import decisions

        rows = [asdict(d) for d in decisions(loaded)]
        emit(fmt, document={"experiment": loaded.experiment, "decisions": rows}, rows=rows)
        return
    out_console = console()
    out_console.print(decision_table(loaded, width=table_width()))
    out_console.print(f"report: {terminal_text(out.resolve())}")
