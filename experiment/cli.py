"""The ``exp`` command line: the only module that wires the layers together.

Every user mistake surfaces as ``error: <one line>`` on stderr and exit code 2;
outputs are written atomically, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer

from experiment.errors import SegliftError

if TYPE_CHECKING:
    from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    name="exp",
    help="seglift: per-segment lift with statistics you can bet on.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

DEMO_USERS = 200_000
DEMO_DAYS = 14
DEMO_SEED = 7


def _console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn :class:`SegliftError` into ``error: ...`` on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SegliftError as exc:
            from rich.markup import escape

            _console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(code=2) from None

    return wrapper


def _run_simulation(scenario: str, users: int, days: int, seed: int, out: Path) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from simulators import simulate

    with Progress(
        TextColumn("[bold]simulating[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} days"),
        TimeElapsedColumn(),
        console=_console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(f"{scenario}: {users:,} users", total=days)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        summary = simulate(scenario, users=users, days=days, seed=seed, out=out, progress=advance)
    _console().print(
        f"simulated [bold]{summary.users:,}[/] users × {summary.days} days: "
        f"{summary.events:,} events in {summary.seconds:.1f}s → {out}"
    )


def _analyze(dataset: Path, experiment: Path, out: Path, *, html: bool) -> Path:
    from rich.markup import escape

    from experiment.analysis import analyze_cells
    from experiment.config import load_experiment
    from experiment.data import open_dataset
    from experiment.engine import aggregate
    from reports.html import render_html
    from reports.serialize import write_results
    from reports.terminal import lift_table, srm_line
    from segments import load_segments

    console = _console()
    config = load_experiment(experiment)
    segment_set = load_segments(config.segments) if config.segments is not None else None
    started = time.perf_counter()
    with _console(stderr=True).status("aggregating in DuckDB…"):
        ds = open_dataset(dataset)
        cells = aggregate(ds, config, segment_set)
    results = analyze_cells(cells, config, segment_set)
    page = render_html(results) if html else None  # render before writing anything
    write_results(results, out / "results.json")
    if page is not None:
        from experiment.files import write_text_atomic

        write_text_atomic(out / "report.html", page)
    console.print(lift_table(results))
    console.print(srm_line(results))
    console.print(
        f"analysed in {time.perf_counter() - started:.1f}s → {escape(str(out))}/results.json"
    )
    report = out / "report.html"
    if page is not None:
        console.print(f"report: {escape(str(report.resolve()))}")
    return report


@app.command()
@_user_errors
def simulate(
    scenario: Annotated[str, typer.Option(help="Built-in scenario name or scenario folder.")] = (
        "ecommerce"
    ),
    users: Annotated[int, typer.Option(min=1, help="Number of customers.")] = DEMO_USERS,
    days: Annotated[int, typer.Option(min=1, help="Days of experiment-period events.")] = DEMO_DAYS,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = DEMO_SEED,
    out: Annotated[Path, typer.Option(help="Dataset folder to write.")] = Path("data"),
) -> None:
    """Simulate customers and journeys with planted per-segment effects.

    Writes customers, events and assignments as Parquet, truth.json (the true
    effect per segment and metric) and the scenario's segments.yaml and
    experiment.yaml, ready for `exp analyze OUT --experiment OUT/experiment.yaml`.
    """
    _run_simulation(scenario, users, days, seed, out)


@app.command()
@_user_errors
def analyze(
    dataset: Annotated[
        Path, typer.Argument(help="Dataset folder (customers, events, assignments).")
    ],
    experiment: Annotated[Path, typer.Option("--experiment", "-e", help="Experiment YAML file.")],
    out: Annotated[Path, typer.Option(help="Folder for results.json and report.html.")] = Path(
        "results"
    ),
    html: Annotated[bool, typer.Option(help="Also write report.html.")] = True,
) -> None:
    """Measure the lift of every treatment arm in every segment and metric.

    Aggregates the dataset to sufficient statistics in DuckDB, runs Welch t-tests
    (delta method for ratio metrics and relative lifts), corrects for multiple
    testing within each metric and checks the sample ratio. Writes results.json
    and report.html to OUT and prints the lift table.
    """
    _analyze(dataset, experiment, out, html=html)


@app.command()
@_user_errors
def report(
    results: Annotated[Path, typer.Argument(help="results.json written by `exp analyze`.")],
    out: Annotated[Path, typer.Option(help="HTML file to write.")] = Path("report.html"),
) -> None:
    """Render the HTML lift report from a results.json."""
    from experiment.results import load_results
    from reports.html import write_html

    write_html(load_results(results), out)
    _console().print(f"report: {out.resolve()}")


@app.command()
@_user_errors
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the data and the report.")] = Path("demo"),
    users: Annotated[int, typer.Option(min=1, help="Number of customers.")] = DEMO_USERS,
    days: Annotated[int, typer.Option(min=1, help="Days of the experiment.")] = DEMO_DAYS,
    seed: Annotated[int, typer.Option(help="Random seed.")] = DEMO_SEED,
) -> None:
    """Simulate the ecommerce scenario, analyze it and write the HTML report, in one go.

    Writes OUT/data/ (the dataset), OUT/results.json and OUT/report.html.
    """
    data = out / "data"
    _run_simulation("ecommerce", users, days, seed, data)
    _analyze(data, data / "experiment.yaml", out, html=True)


def main() -> None:  # pragma: no cover - console-script entry point
    """Run the ``exp`` application."""
    app()
