"""``exp demo``: simulate, analyze and report on the embedded default in one command."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from experiment.cli._app import app, user_errors
from experiment.cli.analyze import run_analysis
from experiment.cli.simulate import (
    DATASET_FILES,
    DEMO_DAYS,
    DEMO_SEED,
    DEMO_USERS,
    check_dataset_folder,
    run_simulation,
)

__all__ = ["demo"]


@app.command()
@user_errors
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the data and the report.")] = Path("demo"),
    users: Annotated[int, typer.Option(min=1, help="Number of customers.")] = DEMO_USERS,
    days: Annotated[int, typer.Option(min=1, help="Days of the experiment.")] = DEMO_DAYS,
    seed: Annotated[int, typer.Option(help="Random seed.")] = DEMO_SEED,
) -> None:
    """Simulate the ecommerce scenario, analyze it and write the HTML report, in one go.

    Writes OUT/data/ (the dataset), OUT/results.json and OUT/report.html.
    """
    from experiment.files import check_output_file, check_output_folder

    check_output_folder(out, option="--out")
    for name in ("results.json", "report.html"):
        check_output_file(out / name, option="--out")
    from experiment.errors import SegliftError

    data = out / "data"
    check_dataset_folder(data, "ecommerce")
    new = [p for p in (out, data, *(data / n for n in DATASET_FILES)) if not p.exists()]
    run_simulation("ecommerce", users, days, seed, data)
    try:
        run_analysis(data, data / "experiment.yaml", out, html=True)
    except SegliftError as exc:
        # too few users (or days) for the analysis: the data alone is no demo
        _remove(new)
        raise type(exc)(
            f"--users {users}, --days {days}: the simulated data cannot be analysed "
            f"(too few customers or days?): {exc}"
        ) from None
    _next_steps(out, data)


def _remove(new: list[Path]) -> None:
    """Remove the files and (then empty) folders this run created, deepest first."""
    for path in reversed(new):
        with contextlib.suppress(OSError):
            if path.is_dir():
                path.rmdir()
            else:
                path.unlink(missing_ok=True)


def _next_steps(out: Path, data: Path) -> None:
    """What to run next on the demo's files, printed as exact commands."""
    from experiment.cli._app import console
    from reports.format import terminal_text

    experiment, segments = data / "experiment.yaml", data / "segments.yaml"
    commands = (
        ("open the report (one self-contained file)", f"{out / 'report.html'}"),
        ("re-run the analysis", f"exp analyze {data} -e {experiment} --out {out}"),
        (
            "check the segments before a rollout",
            f"exp segments validate {segments} -d {data} -e {experiment}",
        ),
        ("plan the next experiment", f"exp power {data} -e {experiment}"),
    )
    show = console(stderr=True)
    show.print("\nNext:", soft_wrap=True)
    for what, command in commands:
        show.print(f"  {terminal_text(command)}  [dim]# {what}[/]", soft_wrap=True)
