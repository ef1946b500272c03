"""Assignment in the engine: hash every customer into an arm, write the assignments table.

The same arms as :func:`experiment.assign` gives one user at request time
(md5 of salt and user id), with the experiment's holdout, traffic share and
per-segment allocation.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiment.assignment import HOLDOUT, AssignmentSpec, assignment_expr
from experiment.config import check_allocation
from experiment.engine.dataset import find_table, read_table, require_table
from experiment.errors import DataError
from experiment.files import write_together
from experiment.results.assignment import NOT_ENTERED, AssignmentSummary
from segments.compile import compile_segments

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from segments.definitions import SegmentSet

__all__ = ["assign_customers"]

_SEG = "__seg__{}__"
_TS = "timestamp('UTC', 6)"


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


def _keep_earlier(con: Any, folder: Path, rows: ir.Table, config: ExperimentConfig) -> ir.Table:
    """Other experiments' rows as they are; users keeping their arm keep ``assigned_at``."""
    import ibis

    old_source = find_table(folder, "assignments")
    if old_source is None:
        return rows
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
        "user_id", "experiment", "arm", assigned_at=ibis.coalesce(joined.since, joined.assigned_at)
    )
    return old.filter(~mine).union(rows)


def assign_customers(
    folder: Path, config: ExperimentConfig, segment_set: SegmentSet | None, *, now: dt.datetime
) -> AssignmentSummary:
    """Assign every customer and replace this experiment's rows of ``assignments.parquet``.

    Users who keep their arm keep their ``assigned_at``; users who enter or change
    arm (a ramp-up) get ``now``. Other experiments' rows are kept as they are.

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
    assigned, names = _assigned(customers, config, segment_set)
    columns = [*config.arms, *([HOLDOUT] if config.holdout else []), NOT_ENTERED]
    counts = _counts(assigned, names, columns)
    fresh = assigned.filter(assigned.arm.notnull())
    now_lit = ibis.literal(now.astimezone(dt.UTC)).cast(_TS)
    rows = fresh.select(
        "user_id", experiment=ibis.literal(config.name), arm=fresh.arm, assigned_at=now_lit
    )
    rows = _keep_earlier(con, folder, rows, config)
    target = folder / "assignments.parquet"
    write_together([(target, lambda tmp: con.to_parquet(rows, str(tmp)))])
    return AssignmentSummary(
        experiment=config.name,
        path=target,
        segments=("all", *names),
        columns=tuple(columns),
        counts=counts,
    )
