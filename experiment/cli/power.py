"""``exp power``: baselines, minimum detectable effects, sample sizes and days needed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from experiment.arguments import DAYS, LIFT, POWER, USERS_PER_DAY
from experiment.cli._app import app, console, user_errors
from experiment.cli._format import Format, FormatOption, emit, resolve_format
from experiment.cli._source import EngineOption, TableOption
from experiment.errors import ConfigError

if TYPE_CHECKING:
    from experiment.analysis.power import Traffic

__all__ = ["power"]


_TrafficOption = Annotated[
    str | None,
    typer.Option(
        "--traffic",
        help="Traffic model: 'base' (a fixed customer base, everyone eligible at once: "
        "MDE at the share assigned, no days) or 'daily' (arrivals per day: days needed). "
        "Default: daily when --users-per-day is given or the assignments span more than "
        "one timestamp, else base.",
    ),
]


_Lift = Annotated[
    float,
    typer.Option(help="Relative lift to detect, e.g. 0.05 for +5%.", min=LIFT[0], max=LIFT[1]),
]
_Days = Annotated[
    int | None,
    typer.Option(
        help="Per-user measurement window in days (default: the experiment's window).",
        min=DAYS[0],
        max=DAYS[1],
    ),
]
_UsersPerDay = Annotated[
    float | None,
    typer.Option(
        help="Users entering the experiment per day (default: from the assignments' "
        "assigned_at span).",
        min=USERS_PER_DAY[0],
        max=USERS_PER_DAY[1],
    ),
]


@app.command()
@user_errors
def power(
    dataset: Annotated[
        Path | None,
        typer.Argument(
            help="Dataset folder (customers, events; assignments optional); omit with --engine."
        ),
    ] = None,
    *,
    experiment: Annotated[Path, typer.Option("--experiment", "-e", help="Experiment YAML file.")],
    engine: EngineOption = None,
    table: TableOption = None,
    segments: Annotated[
        Path | None,
        typer.Option("--segments", "-s", help="Segments file (default: the experiment's)."),
    ] = None,
    lift: _Lift = 0.05,
    days: _Days = None,
    users_per_day: _UsersPerDay = None,
    traffic: _TrafficOption = None,
    power_: Annotated[
        float,
        typer.Option(
            "--power", help="Probability of detecting the lift.", min=POWER[0], max=POWER[1]
        ),
    ] = 0.8,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Plan an experiment: how small a lift it can detect and how long it must run.

    Estimates each metric's baseline mean and standard deviation per segment in
    the engine (control arm if the dataset has assignments for the experiment,
    else all customers), then prints the minimum detectable relative lift at the
    current size (the MDE `exp analyze` reports), the users needed to detect --lift
    at the experiment's alpha and, under --traffic daily, the days needed (users
    per day over the assignments' span, or --users-per-day). The traffic model
    and any --days beyond the data's window (an extrapolation) are printed.
    """
    from experiment.api import plan_power
    from experiment.cli._source import data_source
    from experiment.config import load_experiment
    from reports.tables import power_lines

    if traffic not in (None, "base", "daily"):
        raise ConfigError(f"--traffic {traffic!r}: use 'base' or 'daily'")
    model: Traffic | None = "base" if traffic == "base" else "daily" if traffic else None
    config = load_experiment(experiment)
    source = data_source(dataset, engine=engine, table=table, config=config)
    with console(stderr=True).status("estimating baselines in the engine…"):
        plan = plan_power(
            source,
            config,
            segments=segments,
            lift=lift,
            power=power_,
            days=days,
            users_per_day=users_per_day,
            traffic=model,
        )
    fmt = resolve_format(fmt, as_json=as_json)
    if fmt is not Format.TABLE:
        document = plan.to_json_dict()
        emit(fmt, document=document, rows=document["rows"])
    else:
        out = console()
        for line in power_lines(plan):
            out.print(line)
