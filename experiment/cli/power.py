"""``exp power``: baselines, minimum detectable effects, sample sizes and days needed."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from experiment.cli._app import app, console, user_errors

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.engine.dataset import Dataset
    from segments.definitions import SegmentSet

__all__ = ["power", "power_rows"]


def _open(folder: Path) -> tuple[Dataset, bool]:
    """The dataset, and whether it has an assignments table (pre-launch data may not)."""
    import ibis

    from experiment.engine.dataset import (
        REQUIRED_COLUMNS,
        Dataset,
        find_table,
        open_dataset,
        read_table,
        require_table,
    )
    from experiment.errors import DataError

    if not Path(folder).is_dir() or find_table(Path(folder), "assignments") is not None:
        return open_dataset(folder), True
    con = ibis.duckdb.connect()
    tables = {}
    for name in ("customers", "events"):
        tables[name] = read_table(con, require_table(Path(folder), name), name)
        missing = [c for c in REQUIRED_COLUMNS[name] if c not in tables[name].columns]
        if missing:
            raise DataError(f"{folder}: table '{name}' lacks column(s) {', '.join(missing)}")
    # the assignments are replaced by every customer in control (see _all_users)
    return Dataset(
        path=Path(folder),
        con=con,
        customers=tables["customers"],
        events=tables["events"],
        assignments=tables["customers"],
    ), False


def _has_assignments(dataset: Dataset, config: ExperimentConfig) -> bool:
    a = dataset.assignments
    count = a.count(where=a.experiment == config.name).to_pyarrow().as_py()
    return bool(count)


def _all_users(dataset: Dataset, config: ExperimentConfig) -> tuple[Dataset, dt.datetime]:
    """Every customer in control, exposed at the window start, for a pre-launch baseline.

    Without ``window.start`` the window is the last ``days`` of the events table.
    """
    import ibis

    start = config.window.start
    if start is None:
        last = dataset.events.ts.max().to_pyarrow().as_py()
        if last is None:
            from experiment.errors import DataError

            raise DataError(f"{dataset.path}: events table is empty; no baseline to estimate")
        start = last - dt.timedelta(days=config.window.days)
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    cust = dataset.customers
    fake = cust.select(
        user_id=cust.user_id.cast("string"),
        experiment=ibis.literal(config.name),
        arm=ibis.literal(config.control),
        assigned_at=ibis.literal(start, type="timestamp('UTC')"),
    )
    return replace(dataset, assignments=fake), start


def _users_per_day(dataset: Dataset, config: ExperimentConfig, units: float) -> float:
    """Assigned users per day over the assignments' ``assigned_at`` span (at least a day)."""
    a = dataset.assignments
    a = a.filter(a.experiment == config.name)
    row = a.aggregate(first=a.assigned_at.min(), last=a.assigned_at.max()).to_pyarrow()
    first, last = row.column("first")[0].as_py(), row.column("last")[0].as_py()
    span: float = max((last - first).total_seconds() / 86_400, 1.0)
    return units / span


def power_rows(
    dataset: Dataset,
    config: ExperimentConfig,
    segment_set: SegmentSet | None,
    *,
    has_assignments: bool = True,
    lift: float,
    power: float,
    users_per_day: float | None,
) -> dict[str, Any]:
    """Baselines in the engine, then per (segment, metric) MDE, sample size and days.

    Baselines come from the control arm when the dataset has assignments for the
    experiment, else from all customers (as if all were in control). Sizes split
    users by the arm weights, control against the smallest treatment arm.
    """
    import numpy as np

    from experiment.analysis import arm_baselines
    from experiment.engine import aggregate
    from experiment.plan import kind_plan
    from experiment.stats import mde_mean, mde_proportion, sample_size_mean, sample_size_proportion

    assigned = has_assignments and _has_assignments(dataset, config)
    source = dataset if assigned else _all_users(dataset, config)[0]
    cells = aggregate(source, config, segment_set)
    base = arm_baselines(cells, config.control)
    total = sum(config.arms.values())
    w_c = config.arms[config.control] / total
    w_t = min(w for a, w in config.arms.items() if a != config.control) / total
    users = cells.units.sum(axis=1)  # every arm
    c = cells.arms.index(config.control)
    if assigned:  # the current split: control against the smallest treatment arm
        n_c, n_t = cells.units[:, c], np.delete(cells.units, c, axis=1).min(axis=1)
    else:
        n_c, n_t = users * w_c, users * w_t
    rate: float | None = users_per_day
    if rate is None and assigned:
        rate = _users_per_day(dataset, config, float(users[0]))
    seg_rate = (
        rate * users / users[0]
        if rate is not None and users[0] > 0
        else np.full_like(users, np.nan)
    )
    rows = []
    for metric in config.metrics:
        mean, sd = base[metric.name]
        if kind_plan(metric.kind).power == "proportion":
            mde = mde_proportion(mean, n_c, n_t, alpha=config.alpha, power=power)
            size = sample_size_proportion(
                mean, lift, alpha=config.alpha, power=power, ratio=w_t / w_c
            )
        else:
            mde = mde_mean(mean, sd, n_c, n_t, alpha=config.alpha, power=power)
            size = sample_size_mean(
                mean, sd, lift, alpha=config.alpha, power=power, ratio=w_t / w_c
            )
        needed = size.n_control / w_c  # segment users entering the experiment
        with np.errstate(divide="ignore", invalid="ignore"):
            days = needed / seg_rate
        for si, segment in enumerate(cells.segments):
            rows.append(
                {
                    "segment": segment,
                    "metric": metric.name,
                    "kind": metric.kind,
                    "users": int(users[si]),
                    "mean": _num(mean[si]),
                    "sd": _num(sd[si]),
                    "mde_abs": _num(mde.mde_abs[si]),
                    "mde_rel": _num(mde.mde_rel[si]),
                    "n_control_needed": _ceil(size.n_control[si]),
                    "n_treatment_needed": _ceil(size.n_treatment[si]),
                    "users_needed": _ceil(needed[si]),
                    "days_needed": _num(days[si]),
                }
            )
    return {
        "experiment": config.name,
        "baseline": "control arm" if assigned else "all customers",
        "alpha": config.alpha,
        "power": power,
        "lift": lift,
        "window_days": config.window.days,
        "users_per_day": rate,
        "rows": rows,
    }


def _num(value: Any) -> float | None:
    v = float(value)
    return v if math.isfinite(v) else None


def _ceil(value: Any) -> int | None:
    v = float(value)
    return math.ceil(v) if math.isfinite(v) else None


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _print(doc: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    rate = doc["users_per_day"]
    out.print(
        f"[bold]{escape(doc['experiment'])}[/]: baselines from the {doc['baseline']} over "
        f"{doc['window_days']} days; alpha {doc['alpha']:g}, power {doc['power']:g}, "
        f"target lift {doc['lift']:.1%}; traffic "
        + (f"{rate:,.0f} users/day" if rate is not None else "unknown (use --users-per-day)")
    )
    table = Table()
    for col in ("segment", "metric", "users", "mean", "sd", "MDE", "users needed", "days"):
        left = col in ("segment", "metric")
        table.add_column(col, justify="left" if left else "right", overflow="fold")
    for r in doc["rows"]:
        table.add_row(
            escape(r["segment"]),
            escape(r["metric"]),
            f"{r['users']:,}",
            _fmt(r["mean"], ".4g"),
            _fmt(r["sd"], ".4g"),
            _fmt(r["mde_rel"], ".1%"),
            _fmt(r["users_needed"], ","),
            _fmt(r["days_needed"], ".1f"),
        )
    out.print(table)


@app.command()
@user_errors
def power(
    dataset: Annotated[
        Path, typer.Argument(help="Dataset folder (customers, events, assignments).")
    ],
    *,
    experiment: Annotated[Path, typer.Option("--experiment", "-e", help="Experiment YAML file.")],
    segments: Annotated[
        Path | None,
        typer.Option("--segments", "-s", help="Segments file (default: the experiment's)."),
    ] = None,
    lift: Annotated[
        float, typer.Option(help="Relative lift to detect, e.g. 0.05 for +5%.", min=1e-6)
    ] = 0.05,
    days: Annotated[
        int | None,
        typer.Option(
            help="Per-user measurement window in days (default: the experiment's window).",
            min=1,
            max=3650,
        ),
    ] = None,
    users_per_day: Annotated[
        float | None,
        typer.Option(
            help="Users entering the experiment per day (default: from the assignments' "
            "assigned_at span).",
            min=1e-9,
        ),
    ] = None,
    power_: Annotated[
        float,
        typer.Option("--power", help="Probability of detecting the lift.", min=0.5, max=0.999),
    ] = 0.8,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Plan an experiment: how small a lift it can detect and how long it must run.

    Estimates each metric's baseline mean and standard deviation per segment in
    the engine (control arm if the dataset has assignments for the experiment,
    else all customers), then prints the minimum detectable relative lift at the
    current size, the users needed to detect --lift at the experiment's alpha, and
    the days needed at the current traffic (users per day over the assignments'
    span, or --users-per-day). Two-sided z test, as statsmodels' NormalIndPower.
    """
    from experiment.config import load_experiment
    from segments import load_segments

    config = load_experiment(experiment)
    if days is not None:
        config = config.model_copy(
            update={"window": config.window.model_copy(update={"days": days})}
        )
    seg_file = segments if segments is not None else config.segments
    segment_set = load_segments(seg_file) if seg_file is not None else None
    with console(stderr=True).status("estimating baselines in the engine…"):
        data, has_assignments = _open(dataset)
        doc = power_rows(
            data,
            config,
            segment_set,
            has_assignments=has_assignments,
            lift=lift,
            power=power_,
            users_per_day=users_per_day,
        )
    if as_json:
        typer.echo(json.dumps(doc, indent=2, allow_nan=False))
    else:
        _print(doc)
