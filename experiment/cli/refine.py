"""``exp refine``: propose better segment definitions from held-out lift evidence."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from experiment.cli._app import app, console, user_errors
from experiment.cli._format import Format, FormatOption, emit
from experiment.cli._source import EngineOption, TableOption

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.engine.source import DataSource
    from experiment.results import AnalysisResults
    from experiment.results.refinement import Refinement
    from segments.definitions import SegmentSet

__all__ = ["refine"]

_SUFFIXES = (".yaml", ".yml")


_Metric = Annotated[
    str | None, typer.Option(help="Metric to refine on (default: the experiment's first).")
]
_Arm = Annotated[str | None, typer.Option(help="Treatment arm (default: the first treatment arm).")]
_Attributes = Annotated[
    str | None,
    typer.Option(
        help="Customer columns to split on, comma-separated (default: every customers "
        "column except ids and timestamps; text columns with at most 30 values)."
    ),
]
_Seed = Annotated[int, typer.Option(help="Salts the random discovery/estimation split.", min=0)]
_MinSize = Annotated[
    int | None,
    typer.Option(
        help="Smallest side of a cut, in users (default: the segments file's min_size, else 100).",
        min=1,
    ),
]
_Report = Annotated[
    Path | None,
    typer.Option(help="Also write the HTML lift report with a Refinements section."),
]
_Results = Annotated[
    Path | None,
    typer.Option(help="results.json of `exp analyze` for --report (default: analyse the dataset)."),
]


def attribute_names(text: str | None) -> list[str] | None:
    """The column names of ``--attributes`` (None: not given); an empty list is an error."""
    if text is None:
        return None
    names = [a.strip() for a in text.split(",") if a.strip()]
    if not names:
        raise typer.BadParameter("give column names separated by commas", param_hint="--attributes")
    return names


def _search(
    data: DataSource,
    config: ExperimentConfig,
    *,
    metric: str | None,
    arm: str | None,
    attributes: list[str] | None,
    seed: int,
    min_size: int | None,
) -> Refinement:
    """Run the search with a progress bar over the attribute scans (on stderr)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from experiment.api import refine as run_refine
    from reports.format import terminal_text as escape

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console(stderr=True), transient=True) as bar:
        task = bar.add_task("searching refinements", total=None)

        def progress(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=escape(label))

        return run_refine(
            data,
            config,
            metric=metric,
            arm=arm,
            attributes=attributes,
            seed=seed,
            min_size=min_size,
            progress=progress,
        )


def _results_for_report(data: DataSource, config: ExperimentConfig) -> AnalysisResults:
    """The experiment's analysis, for the report the Refinements section joins."""
    from experiment.api import analyze

    with console(stderr=True).status("analysing the experiment for the report…"):
        return analyze(data, config)


def _inputs(
    experiment: Path,
    out: Path,
    *,
    report: Path | None,
    results: Path | None,
    dataset: Path | None = None,
    engine: str | None = None,
    table: list[str] | None = None,
) -> tuple[ExperimentConfig, DataSource, SegmentSet | None, AnalysisResults | None]:
    """The experiment, the data, its segments and the given results, checked before any search."""
    from experiment.cli._source import data_source
    from experiment.config import load_experiment
    from experiment.errors import DataError
    from experiment.results import load_results
    from segments import load_segments

    if out.suffix.lower() not in _SUFFIXES:
        raise typer.BadParameter(f"{out}: must end in .yaml or .yml", param_hint="--out")
    if results is not None and report is None:
        raise typer.BadParameter("--results is only read for --report", param_hint="--results")
    config = load_experiment(experiment)
    source = data_source(dataset, engine=engine, table=table, config=config)
    _check_outputs(experiment, config, out, report=report, results=results, source=source)
    segment_set = load_segments(config.segments) if config.segments is not None else None
    loaded = load_results(results) if results is not None else None
    if loaded is not None and loaded.experiment != config.name:
        raise DataError(
            f"{results}: results of experiment {loaded.experiment!r}, not {config.name!r}"
        )
    return config, source, segment_set, loaded


def _check_outputs(
    experiment: Path,
    config: ExperimentConfig,
    out: Path,
    *,
    report: Path | None,
    results: Path | None,
    source: DataSource | None = None,
) -> None:
    """The proposals, evidence, models copy and report paths: writable, distinct, no input."""
    from experiment.cli._outputs import experiment_inputs
    from experiment.cli._source import source_inputs
    from experiment.errors import ConfigError
    from experiment.files import HTML_SUFFIXES, check_companions, check_output_file
    from segments.definitions import models_path

    inputs = [*experiment_inputs(experiment, config), *source_inputs(source)]
    inputs += [results] if results is not None else []
    targets = [("--out", out), ("--out", out.with_suffix(".json")), ("--out", models_path(out))]
    targets += [("--report", report)] if report is not None else []
    for option, path in targets:
        kinds = HTML_SUFFIXES if option == "--report" else ()
        check_output_file(path, option=option, inputs=inputs, suffixes=kinds)
    check_companions(out, [out.with_suffix(".json")], option="--out")
    if report is not None and any(report.resolve() == p.resolve() for _, p in targets[:-1]):
        raise ConfigError(
            f"--report {report}: is also a file --out writes ({out}, its .json evidence or "
            "models copy); give another path"
        )


@app.command()
@user_errors
def refine(
    dataset: Annotated[
        Path | None,
        typer.Argument(help="Dataset folder (customers, events, assignments); omit with --engine."),
    ] = None,
    *,
    experiment: Annotated[Path, typer.Option("--experiment", "-e", help="Experiment YAML file.")],
    engine: EngineOption = None,
    table: TableOption = None,
    out: Annotated[
        Path,
        typer.Option(
            help="Proposals segments file to write (.yaml); its evidence goes to the same "
            "name with .json."
        ),
    ] = Path("proposals.yaml"),
    metric: _Metric = None,
    arm: _Arm = None,
    attributes: _Attributes = None,
    seed: _Seed = 0,
    min_size: _MinSize = None,
    report: _Report = None,
    results: _Results = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Propose better segment definitions from the measured lift, without fooling yourself.

    For each segment the search tries splitting it on a customer attribute (numeric
    thresholds at quantiles, groupings of categories), moving a threshold already in
    its rule, and merging segments whose lifts are indistinguishable; it runs in the
    engine, one pass per attribute, on sufficient statistics.

    Honest inference: users are split at random into two halves. The search sees only
    the discovery half and keeps the best cut per segment; every proposal is then
    measured on the estimation half, which the search never saw: each side's lift with
    its confidence interval, sizes, the interaction test (do the two sides' relative
    lifts differ?) and the MDE a follow-up experiment on that side would have. The
    interaction p-values are corrected over the split and threshold proposals with
    the experiment's correction; merges need two one-sided tests (corrected over
    the merges) showing the lifts equivalent within the experiment's target_lift.

    Writes OUT: the original segments file unchanged plus the new segments of
    significant proposals, each with its evidence as YAML comments (the others as
    comments only), valid input to `exp segments validate` and `exp analyze`; the
    evidence as JSON beside it (for `exp report --refinement`); and copies the fitted
    models file of cluster and predictive segments. Prints a table of the proposals.
    """
    from reports.html import render_html
    from reports.proposals import write_proposals

    names = attribute_names(attributes)
    config, source, segment_set, loaded = _inputs(
        experiment, out, report=report, results=results, dataset=dataset, engine=engine, table=table
    )
    started = time.perf_counter()
    found = _search(
        source,
        config,
        metric=metric,
        arm=arm,
        attributes=names,
        seed=seed,
        min_size=min_size,
    )
    elapsed = time.perf_counter() - started
    page = None
    if report is not None:  # rendered before anything is written
        analysis = loaded or _results_for_report(source, config)
        page = render_html(analysis, found)
    also = [(report, page)] if page is not None and report is not None else []
    files = write_proposals(found, segment_set, out, also=also)
    if fmt is not Format.TABLE:  # the evidence document, one CSV row per proposal
        document = json.loads(found.to_json())
        emit(fmt, document=document, rows=document["proposals"])
        return
    _print_summary(found, files, elapsed, has_segments=segment_set is not None, report=report)


def _print_summary(
    found: Refinement, files: Any, elapsed: float, *, has_segments: bool, report: Path | None
) -> None:
    """The proposals table, what was written where, and how long the search took."""
    from reports.format import fmt_seconds
    from reports.format import terminal_text as escape
    from reports.terminal import refinement_table

    out_console = console()
    out_console.print(refinement_table(found))
    added = sum(p.significant for p in found.proposals)
    out_console.print(
        f"searched in {fmt_seconds(elapsed)}: {added} of {len(found.proposals)} proposals added → "
        f"{escape(files.segments)} (evidence {escape(files.evidence)})"
    )
    if not has_segments and not added:
        out_console.print(
            "[yellow]no segments file and no proposal added: the YAML lists no segments[/]"
        )
    if files.models is not None:
        out_console.print(f"fitted models copied → {escape(files.models)}")
    if report is not None:
        out_console.print(f"report: {escape(report.resolve())}")
