"""``exp assign``: hash every customer into an arm in the engine, write the assignments table."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from experiment.cli._app import app, console, user_errors

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["assign", "run_assign", "summary_table"]

_SEG = "__seg__{}__"
_OUT = "not entered"
_TS = "timestamp('UTC', 6)"


def run_assign(
    dataset: Path, experiment: Path, *, now: dt.datetime
) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:
    """Assign every customer and replace this experiment's rows of ``assignments.parquet``.

    Users who keep their arm keep their ``assigned_at``; users who enter or change
    arm (a ramp-up) get ``now``. Other experiments' rows are kept as they are.

    Returns:
        The segment names (``all`` first), the column names (arms, ``holdout``,
        ``not entered``) and the user count per segment and column.

    Raises:
        DataError: the dataset folder, the customers table or its ``user_id`` is missing.
        ConfigError, RuleError: the experiment or segments file is invalid.
    """
    import ibis

    from experiment.assignment import HOLDOUT, AssignmentSpec, assignment_expr
    from experiment.config import check_allocation, load_experiment
    from experiment.engine.dataset import find_table, read_table, require_table
    from experiment.errors import DataError
    from experiment.files import atomic_path
    from segments import compile_segments, load_segments

    config = load_experiment(experiment)
    segment_set = load_segments(config.segments) if config.segments is not None else None
    folder = Path(dataset)
    if not folder.is_dir():
        raise DataError(f"{folder}: dataset folder not found")
    con = ibis.duckdb.connect()
    source = require_table(folder, "customers")
    customers = read_table(con, source, "customers")
    if "user_id" not in customers.columns:
        raise DataError(f"{source}: table 'customers' lacks column user_id")

    seg_exprs = compile_segments(segment_set, customers) if segment_set is not None else {}
    check_allocation(config, list(seg_exprs))
    spec = AssignmentSpec.from_config(config, priority=list(seg_exprs))
    cols = {_SEG.format(i): e for i, e in enumerate(seg_exprs.values())}
    c = customers.select(user_id=customers.user_id.cast("string"), **cols)
    users = c.group_by("user_id").aggregate(**{k: c[k].any() for k in cols})  # one row per id
    names = list(seg_exprs)
    members = {s: users[_SEG.format(names.index(s))] for s, _ in spec.segments}
    assigned = users.mutate(arm=assignment_expr(users.user_id, spec, members)).cache()

    summary = assigned.group_by("arm").aggregate(
        __all__=assigned.count(), **{k: assigned.count(where=assigned[k]) for k in cols}
    )
    columns = [*config.arms, *([HOLDOUT] if config.holdout else []), _OUT]
    counts: dict[str, dict[str, int]] = {s: dict.fromkeys(columns, 0) for s in ["all", *names]}
    for row in summary.to_pyarrow().to_pylist():
        column = row["arm"] if row["arm"] is not None else _OUT
        counts["all"][column] = row["__all__"]
        for i, s in enumerate(names):
            counts[s][column] = row[_SEG.format(i)]

    fresh = assigned.filter(assigned.arm.notnull())
    now_lit = ibis.literal(now.astimezone(dt.UTC)).cast(_TS)
    rows = fresh.select(
        "user_id", experiment=ibis.literal(config.name), arm=fresh.arm, assigned_at=now_lit
    )
    old_source = find_table(folder, "assignments")
    if old_source is not None:
        old = read_table(con, old_source, "assignments_old")
        old = old.select(
            user_id=old.user_id.cast("string"),
            experiment=old.experiment.cast("string"),
            arm=old.arm.cast("string"),
            assigned_at=old.assigned_at.cast(_TS),
        )
        mine = old.experiment == config.name
        prev = old.filter(mine).group_by(["user_id", "arm"]).aggregate(since=old.assigned_at.min())
        joined = rows.left_join(prev, ["user_id", "arm"])
        rows = joined.select(
            "user_id",
            "experiment",
            "arm",
            assigned_at=ibis.coalesce(joined.since, joined.assigned_at),
        )
        rows = old.filter(~mine).union(rows)
    with atomic_path(folder / "assignments.parquet") as tmp:
        con.to_parquet(rows, str(tmp))
    return ["all", *names], columns, counts


def summary_table(
    name: str, segments: list[str], columns: list[str], counts: dict[str, dict[str, int]]
) -> Table:
    """Users per segment and arm (with held-out and not-entered users)."""
    from rich.table import Table

    from reports.format import fmt_count

    table = Table(title=f"{name}: assignments per segment")
    table.add_column("segment")
    for column in columns:
        table.add_column(column, justify="right")
    for segment in segments:
        table.add_row(segment, *(fmt_count(counts[segment][c]) for c in columns))
    return table


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
    from experiment.config import load_experiment

    name = load_experiment(experiment).name
    with console(stderr=True).status("assigning in DuckDB…"):
        segments, columns, counts = run_assign(dataset, experiment, now=dt.datetime.now(dt.UTC))
    out = console()
    out.print(summary_table(name, segments, columns, counts))
    entered = sum(v for k, v in counts["all"].items() if k != _OUT)
    out.print(f"assigned {entered:,} users → {dataset / 'assignments.parquet'}")
