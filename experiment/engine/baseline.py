"""The pre-launch baseline: the engine's side of ``exp power`` and ``exp segments``.

Power planning needs each metric's mean and spread per segment before (or
while) an experiment runs: from the control arm when the dataset has
assignments for the experiment, else from every customer as if all were in
control, exposed at the window start. Segment checks need the customers table
alone, and the events beside it when there are any.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from experiment.engine import Dataset, aggregate, open_dataset
from experiment.engine.dataset import REQUIRED_COLUMNS, find_table, read_table, require_table
from experiment.errors import DataError

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from experiment.sums import CellSums
    from segments.definitions import SegmentSet

__all__ = [
    "BaselineSums",
    "analysis_start",
    "baseline_sums",
    "event_tables",
    "memory_bound",
    "open_customers",
    "open_pre_launch",
]


@dataclass(frozen=True, kw_only=True)
class BaselineSums:
    """The sums a power plan starts from.

    Attributes:
        cells: Sums per (segment, arm, metric).
        assigned: Whether they come from the experiment's assignments (else every
            customer counts as control).
        span_days: Days between the first and last assignment (at least 1), when assigned.
    """

    cells: CellSums
    assigned: bool
    span_days: float | None = None


def open_pre_launch(folder: Path) -> tuple[Dataset, bool]:
    """The dataset, and whether it has an assignments table (pre-launch data may not).

    Without one, the customers stand in for the assignments (see :func:`baseline_sums`).
    """
    import ibis

    if not Path(folder).is_dir() or find_table(Path(folder), "assignments") is not None:
        return open_dataset(folder), True
    con = ibis.duckdb.connect()
    tables = {}
    for name in ("customers", "events"):
        tables[name] = read_table(con, require_table(Path(folder), name), name)
        missing = [c for c in REQUIRED_COLUMNS[name] if c not in tables[name].columns]
        if missing:
            raise DataError(f"{folder}: table '{name}' lacks column(s) {', '.join(missing)}")
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


def _all_users(dataset: Dataset, config: ExperimentConfig) -> Dataset:
    """Every customer in control, exposed at the window start, for a pre-launch baseline.

    Without ``window.start`` the window is the last ``days`` of the events table.
    """
    import ibis

    start = config.window.start
    if start is None:
        last = dataset.events.ts.max().to_pyarrow().as_py()
        if last is None:
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
    return replace(dataset, assignments=fake)


def _span_days(dataset: Dataset, config: ExperimentConfig) -> float:
    """Days over the assignments' ``assigned_at`` span (at least a day)."""
    a = dataset.assignments
    a = a.filter(a.experiment == config.name)
    row = a.aggregate(first=a.assigned_at.min(), last=a.assigned_at.max()).to_pyarrow()
    first, last = row.column("first")[0].as_py(), row.column("last")[0].as_py()
    span: float = max((last - first).total_seconds() / 86_400, 1.0)
    return span


def baseline_sums(
    dataset: Path | str | Dataset, config: ExperimentConfig, segment_set: SegmentSet | None
) -> BaselineSums:
    """Sums of the control arm (if assigned) or of every customer, for a power plan.

    Raises:
        DataError: the dataset, a table or a column is missing, or events are empty.
    """
    if isinstance(dataset, Dataset):
        data, has_table = dataset, True
    else:
        data, has_table = open_pre_launch(Path(dataset))
    assigned = has_table and _has_assignments(data, config)
    cells = aggregate(data if assigned else _all_users(data, config), config, segment_set)
    span = _span_days(data, config) if assigned else None
    return BaselineSums(cells=cells, assigned=assigned, span_days=span)


def open_customers(folder: Path) -> ir.Table:
    """The customers table of a dataset folder (events and assignments are optional here)."""
    import ibis

    folder = Path(folder)
    source = find_table(folder, "customers")
    if source is None:
        raise DataError(f"{folder}: no customers.parquet (or customers/ folder) found")
    return read_table(ibis.duckdb.connect(), source, "customers")


def event_tables(folder: Path, customers: ir.Table) -> tuple[ir.Table, ir.Table | None] | None:
    """Events (and assignments, if any) beside the customers, on the same connection."""
    con = customers.get_backend()
    found = {}
    for name in ("events", "assignments"):
        source = find_table(Path(folder), name)
        if source is not None:
            found[name] = read_table(con, source, name)
    if "events" not in found:
        return None
    return found["events"], found.get("assignments")


def analysis_start(
    folder: Path, as_of: dt.datetime | None, config: ExperimentConfig | None
) -> dt.datetime | None:
    """``as_of``, else the experiment's window start, else the first assignment (UTC)."""
    import ibis

    if as_of is None and config is not None:
        as_of = config.window.start
    if as_of is None:
        path = Path(folder) / "assignments.parquet"
        if path.is_file():
            con = ibis.duckdb.connect()
            first = con.read_parquet(str(path)).assigned_at.min().to_pyarrow().as_py()
            con.disconnect()
            as_of = first
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.UTC)
    return as_of


@contextlib.contextmanager
def memory_bound(memory_limit: str | None) -> Iterator[None]:
    """Turn DuckDB running out of memory under ``memory_limit`` into a one-line ConfigError.

    Other errors pass through; without a limit, running out of memory is not
    the user's setting to fix, so it passes through too.
    """
    import duckdb

    from experiment.errors import ConfigError

    try:
        yield
    except (duckdb.OutOfMemoryException, DataError) as exc:
        cause = exc.__cause__ or exc.__context__  # read_table's DataError hides its cause
        oom = isinstance(exc, duckdb.OutOfMemoryException) or isinstance(
            cause, duckdb.OutOfMemoryException
        )
        if memory_limit is None or not oom:
            raise
        raise ConfigError(
            f"--memory-limit {memory_limit}: too small for this dataset (DuckDB ran out "
            "of memory); raise it, or leave it out for DuckDB's default"
        ) from exc
