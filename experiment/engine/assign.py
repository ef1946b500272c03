"""Assignment in the engine: hash every customer into an arm, write the assignments table.

The same arms as :func:`experiment.assign` gives one user at request time
(md5 of salt and user id), with the experiment's holdout, traffic share and
per-segment allocation, on whatever Ibis backend holds the customers table
(DuckDB, Spark, PostgreSQL). :func:`assigned_users` computes, :func:`assign_to`
also writes, to a Parquet file or an engine table (:mod:`experiment.engine.assign_write`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from experiment.assignment import HOLDOUT, AssignmentSpec, assignment_expr
from experiment.config import check_allocation
from experiment.engine.assign_write import (
    ParquetTarget,
    TableTarget,
    table_target,
    write_assignments,
)
from experiment.engine.dataset import find_table, read_table, require_table
from experiment.engine.fetch import scalar
from experiment.errors import ConfigError, DataError
from experiment.results.assignment import NOT_ENTERED, AssignmentSummary
from segments.compile import compile_segments

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from segments.definitions import SegmentSet

__all__ = [
    "Assignment",
    "assign_customers",
    "assign_in_engine",
    "assign_to",
    "assigned_users",
    "assignment_rows",
]

_SEG = "__seg__{}__"
_TS = "timestamp('UTC', 6)"


@dataclass(frozen=True, kw_only=True)
class Assignment:
    """Every customer's arm as an engine table, before anything is written.

    Attributes:
        users: One row per ``user_id`` with ``arm`` (null: not entered) and a
            ``__seg__<i>__`` membership flag per segment.
        segments: The segment names, in the segments file's order.
        experiment: The experiment's name.
    """

    users: ir.Table
    segments: tuple[str, ...]
    experiment: str


def _assigned(
    customers: ir.Table, config: ExperimentConfig, segment_set: SegmentSet | None
) -> tuple[ir.Table, list[str]]:
    """One row per user with its arm (``null``: not entered) and a flag per segment."""
    seg_exprs = compile_segments(segment_set, customers) if segment_set is not None else {}
    check_allocation(config, list(seg_exprs))
    spec = AssignmentSpec.from_config(config, priority=list(seg_exprs))
    cols = {_SEG.format(i): e for i, e in enumerate(seg_exprs.values())}
    c = customers.select(user_id=customers.user_id.cast("string"), **cols)
    users = c.group_by("user_id").aggregate(**{k: c[k].any() for k in cols})  # one row per id
    names = list(seg_exprs)
    members = {s: users[_SEG.format(names.index(s))] for s, _ in spec.segments}
    return users.mutate(arm=assignment_expr(users.user_id, spec, members)).cache(), names


def _counts(assigned: ir.Table, names: list[str], columns: list[str]) -> dict[str, dict[str, int]]:
    cols = [_SEG.format(i) for i in range(len(names))]
    summary = assigned.group_by("arm").aggregate(
        __all__=assigned.count(), **{k: assigned.count(where=assigned[k]) for k in cols}
    )
    counts: dict[str, dict[str, int]] = {s: dict.fromkeys(columns, 0) for s in ["all", *names]}
    for row in summary.to_pyarrow().to_pylist():
        column = row["arm"] if row["arm"] is not None else NOT_ENTERED
        counts["all"][column] = row["__all__"]
        for i, s in enumerate(names):
            counts[s][column] = row[_SEG.format(i)]
    return counts


def assigned_users(
    customers: ir.Table,
    config: ExperimentConfig,
    segment_set: SegmentSet | None,
    *,
    where: str = "customers",
) -> Assignment:
    """Every customer's arm, on the engine ``customers`` lives in (any Ibis backend).

    ``where`` names the table's file or engine in messages.

    Raises:
        DataError: ``customers`` lacks ``user_id``, or a row has none.
        ConfigError, RuleError: the experiment or segments file is invalid.
    """
    if "user_id" not in customers.columns:
        raise DataError(f"{where}: table 'customers' lacks column user_id")
    missing = scalar(customers.user_id.isnull().sum())
    if missing:  # grouped as one user, they would show as one 'not entered'
        raise DataError(
            f"{where}: table 'customers': {missing:,} row(s) with a null user_id; every "
            "customer needs an id to get an arm: drop those rows or fill in their ids"
        )
    users, names = _assigned(customers, config, segment_set)
    return Assignment(users=users, segments=tuple(names), experiment=config.name)


def assignment_rows(assignment: Assignment, *, now: dt.datetime) -> ir.Table:
    """The assignments rows of entered users (the contract's four columns), ``now`` stamped."""
    import ibis

    users = assignment.users
    fresh = users.filter(users.arm.notnull())
    return fresh.select(
        "user_id",
        experiment=ibis.literal(assignment.experiment),
        arm=fresh.arm,
        assigned_at=ibis.literal(now.astimezone(dt.UTC)).cast(_TS),
    )


def assign_to(
    customers: ir.Table,
    config: ExperimentConfig,
    segment_set: SegmentSet | None,
    target: ParquetTarget | TableTarget,
    *,
    now: dt.datetime,
    where: str = "customers",
) -> AssignmentSummary:
    """Assign every customer of ``customers`` (any engine) and write them to ``target``.

    This experiment's rows at the target are replaced; users who keep their arm keep
    their ``assigned_at``, users who enter or change arm get ``now``; other
    experiments' rows are kept as they are.

    Raises:
        DataError: ``customers`` lacks ``user_id``, or a row has none (``where``
            names the table in the message).
        ConfigError, RuleError: the experiment or segments file is invalid.
    """
    assignment = assigned_users(customers, config, segment_set, where=where)
    columns = [*config.arms, *([HOLDOUT] if config.holdout else []), NOT_ENTERED]
    counts = _counts(assignment.users, list(assignment.segments), columns)
    rows = assignment_rows(assignment, now=now)
    write_assignments(rows, target, experiment=config.name)
    written = target.path if isinstance(target, ParquetTarget) else target.label
    return AssignmentSummary(
        experiment=config.name,
        path=written,
        segments=("all", *assignment.segments),
        columns=tuple(columns),
        counts=counts,
    )


def assign_customers(
    folder: Path, config: ExperimentConfig, segment_set: SegmentSet | None, *, now: dt.datetime
) -> AssignmentSummary:
    """Assign a dataset folder's customers in an embedded DuckDB, into ``assignments.parquet``.

    The rows are replaced as :func:`assign_to` says.

    Raises:
        DataError: the dataset folder, the customers table or its ``user_id`` is missing.
        ConfigError, RuleError: the experiment or segments file is invalid.
    """
    import ibis

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: dataset folder not found")
    con = ibis.duckdb.connect()
    source = require_table(folder, "customers")
    customers = read_table(con, source, "customers")
    if "user_id" not in customers.columns:
        raise DataError(f"{source}: table 'customers' lacks column user_id")
    target = ParquetTarget(
        path=folder / "assignments.parquet", previous=find_table(folder, "assignments")
    )
    return assign_to(customers, config, segment_set, target, now=now, where=source)


def assign_in_engine(
    url: str, config: ExperimentConfig, *, to_table: str | None, out: Path | None
) -> AssignmentSummary:
    """Assign the customers table of the engine at ``url``; write a table there or ``out``.

    The customers table is the experiment file's ``tables: {customers: ...}``
    (default ``customers``), checked against the data contract like any other
    engine table (:mod:`experiment.engine.warehouse`).

    Raises:
        ConfigError: the URL cannot be opened, ``to_table`` is not a table name.
        DataError: the engine has no such customers table, or it breaks the contract.
    """
    from experiment.engine.connection import connect, redact, release
    from experiment.engine.warehouse import engine_table
    from experiment.tablenames import table_names
    from segments import load_segments

    segment_set = load_segments(config.segments) if config.segments is not None else None
    names = table_names(config.tables)
    con = connect(url, read_only=False)
    try:
        target: ParquetTarget | TableTarget
        if to_table is not None:
            target = table_target(con, to_table)
        elif out is not None:
            target = ParquetTarget(path=Path(out))
        else:
            raise ConfigError("with --engine give one of --to-table NAME or --out FILE.parquet")
        customers = engine_table(con, redact(url), names, "customers")
        assert customers is not None  # noqa: S101 (required: a missing table raises)
        now = dt.datetime.now(dt.UTC)
        return assign_to(customers, config, segment_set, target, now=now, where=redact(url))
    finally:
        release(con)
