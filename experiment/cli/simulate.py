"""``exp simulate``: synthetic customers and journeys with planted effects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from experiment.cli._app import app, console, user_errors

__all__ = [
    "DATASET_FILES",
    "DEMO_DAYS",
    "DEMO_SEED",
    "DEMO_USERS",
    "check_dataset_folder",
    "run_simulation",
    "simulate",
]

DEMO_USERS = 200_000
DEMO_DAYS = 14
DEMO_SEED = 7
DATASET_FILES = (
    "customers.parquet",
    "events.parquet",
    "assignments.parquet",
    "truth.json",
    "segments.yaml",
    "experiment.yaml",
)
"""The files ``exp simulate`` writes into its output folder."""


def check_dataset_folder(out: Path, scenario: str, *, option: str = "--out") -> None:
    """Refuse an output folder that is a file, unwritable, or the scenario's own folder.

    Each file the simulation writes must not be a folder there either.
    """
    from experiment.files import check_output_file, check_output_folder

    source = Path(scenario)
    inputs = [source] if source.is_dir() else []
    check_output_folder(out, option=option, inputs=inputs)
    for name in DATASET_FILES:
        check_output_file(out / name, option=option, inputs=inputs)


def run_simulation(
    scenario: str,
    users: int,
    days: int,
    seed: int,
    out: Path,
    *,
    pre_period_events: bool | None = None,
) -> None:
    """Simulate with a progress bar on stderr and a one-line summary on stdout."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from experiment.files import watch_folder
    from reports.format import fmt_count, fmt_seconds, terminal_text
    from simulators import simulate as simulate_dataset

    check_dataset_folder(out, scenario)
    watch_folder(out)  # Ctrl-C removes the staged files

    with Progress(
        TextColumn("[bold]simulating[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} days"),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(f"{terminal_text(scenario)}: {fmt_count(users)} users", total=days)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        summary = simulate_dataset(
            scenario,
            users=users,
            days=days,
            seed=seed,
            out=out,
            progress=advance,
            pre_period_events=pre_period_events,
        )
    console().print(
        f"simulated [bold]{fmt_count(summary.users)}[/] users × {summary.days} days: "
        f"{fmt_count(summary.events)} events in {fmt_seconds(summary.seconds)} "
        f"→ {terminal_text(out)}"
    )


@app.command()
@user_errors
def simulate(
    scenario: Annotated[
        str,
        typer.Option(
            help="Built-in scenario (aa, ecommerce, media, saas, split: an effect only above a "
            "threshold inside one segment, uniform: one effect for everyone, mosaic: a different "
            "effect in each of 20 segments, lifecycle: a win-back campaign that reactivates "
            "at-risk and dormant customers) or a folder with scenario.yaml, segments.yaml and "
            "experiment.yaml."
        ),
    ] = "ecommerce",
    users: Annotated[int, typer.Option(min=1, help="Number of customers.")] = DEMO_USERS,
    days: Annotated[int, typer.Option(min=1, help="Days of experiment-period events.")] = DEMO_DAYS,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same files.")] = DEMO_SEED,
    out: Annotated[Path, typer.Option(help="Dataset folder to write.")] = Path("data"),
    pre_period_events: Annotated[
        bool | None,
        typer.Option(
            "--pre-period-events/--no-pre-period-events",
            help="Also write the 90-day pre-period's events (before assignment); "
            "default: the scenario's pre_period_events setting.",
        ),
    ] = None,
) -> None:
    """Simulate customers and journeys with planted per-segment effects.

    Writes customers, events and assignments as Parquet, truth.json (the true
    effect per segment and metric) and the scenario's segments.yaml and
    experiment.yaml, ready for `exp analyze OUT --experiment OUT/experiment.yaml`.
    """
    run_simulation(scenario, users, days, seed, out, pre_period_events=pre_period_events)
