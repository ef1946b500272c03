"""The Parquet files of a dataset table, read at the footer and checked against the data contract.

Before DuckDB reads a table, every file of it (``NAME.parquet``, or each part of
a ``NAME/`` folder) has its footer read: a file that cannot be read (truncated,
not Parquet, permission denied, a symlink loop), a folder without parts, parts
whose column types disagree, a missing column and a column of the wrong type
are each one :class:`~experiment.errors.DataError` line naming the file, the
column, the type found and the type expected. Footers are a few kilobytes: this
costs milliseconds, and no query ever starts on a file that would fail halfway.
"""

from __future__ import annotations

import errno
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from experiment.errors import DataError

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pyarrow as pa

__all__ = [
    "CONTRACT",
    "EXPECTED",
    "Kind",
    "TableFiles",
    "check_columns",
    "check_ids",
    "fits",
    "inspect_table",
    "kind_of",
    "microseconds",
]

Kind = Literal["id", "text", "timestamp", "number"]
"""What a contract column holds: ``id`` is text or integers (one type across tables)."""

CONTRACT: dict[str, dict[str, Kind]] = {
    "customers": {"user_id": "id"},
    "events": {"user_id": "id", "ts": "timestamp", "event": "text"},
    "assignments": {
        "user_id": "id",
        "experiment": "text",
        "arm": "text",
        "assigned_at": "timestamp",
    },
}
"""Each table's required columns and what they must hold (README "Data contract")."""

EXPECTED: dict[Kind, str] = {
    "id": "string or integer",
    "text": "string",
    "timestamp": "timestamp (write epoch numbers and ISO strings as Parquet timestamps)",
    "number": "a number (integer, float or decimal)",
}
"""What each kind accepts, as messages say it."""


@dataclass(frozen=True, kw_only=True)
class TableFiles:
    """One table's Parquet files: what DuckDB reads, the files, their schema and row count."""

    name: str
    source: str
    files: tuple[Path, ...]
    schema: pa.Schema
    rows: int


def kind_of(dtype: pa.DataType) -> Kind | None:
    """The contract kind an Arrow type satisfies (``id`` for integers), or ``None``."""
    import pyarrow as pa

    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_string_view(dtype)
    ):
        return "text"  # string_view: Polars' strings, as the file's Arrow schema records them
    if pa.types.is_integer(dtype):
        return "id"
    if pa.types.is_timestamp(dtype):
        return "timestamp"
    if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "number"
    return None


def microseconds(table: ir.Table, zones: dict[str, str | None]) -> ir.Table:
    """``table`` with the nanosecond timestamp columns ``zones`` names as microseconds.

    Each keeps its time zone (``None``: none). DuckDB refuses to compare a
    ``TIMESTAMP_NS`` with the zoned window, and Ibis does not know its
    ``TIMESTAMPTZ_NS``: any filter on such a ``ts`` would fail mid-query.
    """
    import ibis.expr.datatypes as dt

    cast = {c: table[c].cast(dt.Timestamp(timezone=tz, scale=6)) for c, tz in zones.items()}
    return table.mutate(**cast) if cast else table


def fits(dtype: pa.DataType, kind: Kind) -> bool:
    """Whether a column of Arrow type ``dtype`` holds contract kind ``kind``."""
    found = kind_of(dtype)
    if kind == "id":
        return found in ("id", "text")
    if kind == "number":
        return found in ("id", "number")
    return found == kind


class _NotAFile(OSError):
    """A path that is not a regular file: a FIFO, a socket, a device."""


def _unreadable(path: Path, exc: Exception) -> DataError:
    """One line for a file the footer reader refused, by cause."""
    if isinstance(exc, PermissionError):
        why = "permission denied; make the file readable"
    elif isinstance(exc, OSError) and exc.errno == errno.ELOOP:
        why = "symlink loop; point the link at a Parquet file"
    elif isinstance(exc, IsADirectoryError):
        why = "is a folder; a table is NAME.parquet or a folder NAME/ of .parquet parts"
    elif isinstance(exc, _NotAFile):
        why = "not a regular file (a named pipe, socket or device); copy the data into a file"
    else:
        first = (str(exc).splitlines() or [type(exc).__name__])[0].split(". ")[0][:160]
        why = f"not a readable Parquet file, truncated or another format ({first})"
    return DataError(f"{path}: cannot read as Parquet: {why}")


def _is_part(name: str) -> bool:
    """A part of a table folder: ``*.parquet`` (any case), not hidden.

    Names starting with ``.`` or ``_`` are skipped, as Spark, Hive and
    ``pyarrow.dataset`` skip them: macOS's ``._part-0.parquet`` copies, ``_SUCCESS``.
    """
    return name.lower().endswith(".parquet") and not name.startswith((".", "_"))


def _locate(folder: Path, name: str) -> tuple[str, tuple[Path, ...]] | None:
    """The DuckDB source and the files of table ``name``, or ``None`` when it is absent."""
    single = folder / f"{name}.parquet"
    try:
        single.stat()
    except FileNotFoundError:
        pass
    except OSError as exc:  # a symlink loop, or a folder we may not enter
        raise _unreadable(single, exc) from None
    else:
        if single.is_dir():
            raise _unreadable(single, IsADirectoryError(str(single)))
        return str(single), (single,)
    parts = folder / name
    if not parts.is_dir():
        return None
    try:
        files = tuple(sorted(p for p in parts.iterdir() if _is_part(p.name)))
    except OSError as exc:
        raise _unreadable(parts, exc) from None
    if not files:
        raise DataError(
            f"{parts}: folder of table '{name}' holds no .parquet parts; "
            f"expected {name}.parquet or {name}/*.parquet"
        )
    return str(parts / "*.parquet"), files


def _check_names(path: Path, names: list[str]) -> None:
    """Column names must differ other than by case: DuckDB reads them case-insensitively.

    It would rename the second of ``user_id`` and ``USER_ID`` to ``USER_ID_1``: a
    contract column could vanish and a rule would name a column the file lacks.
    """
    seen: dict[str, str] = {}
    for column in names:
        first = seen.get(column.lower())
        seen.setdefault(column.lower(), column)
        if first is not None:
            how = "twice" if first == column else f"as {first!r} and {column!r}"
            raise DataError(
                f"{path}: column {first!r} appears {how}; column names must differ other "
                "than by upper/lower case (DuckDB reads them case-insensitively): rename or "
                "drop one"
            )


def inspect_table(folder: Path, name: str) -> TableFiles | None:
    """Read the footer of every file of table ``name``; ``None`` when the table is absent.

    Raises:
        DataError: a file cannot be read, a folder has no parts, two column names
            differ only by case, or the parts' columns or their types differ.
    """
    import pyarrow.parquet as pq

    found = _locate(Path(folder), name)
    if found is None:
        return None
    source, files = found
    schema: pa.Schema | None = None
    rows = 0
    for path in files:
        try:
            if not stat.S_ISREG(path.stat().st_mode):  # a pipe would block the read forever
                raise _NotAFile(str(path))
            meta = pq.read_metadata(path)
            part = meta.schema.to_arrow_schema()
        except Exception as exc:  # pyarrow's errors: ArrowInvalid, OSError, ...
            raise _unreadable(path, exc) from None
        rows += meta.num_rows
        _check_names(path, part.names)
        if schema is None:
            schema = part
            continue
        lacking = [c for c in schema.names if c not in part.names]
        if lacking:  # DuckDB would fail on it mid-query
            raise DataError(
                f"{path}: lacks column(s) {', '.join(map(repr, lacking))} that {files[0].name} "
                f"has (every part of {name}/ must have the same columns)"
            )
        for field in part:
            if field.name in schema.names and schema.field(field.name).type != field.type:
                raise DataError(
                    f"{path}: column {field.name!r}: found {field.type}, expected "
                    f"{schema.field(field.name).type} like {files[0].name} (every part of "
                    f"{name}/ must have the same column types)"
                )
    if schema is None:  # pragma: no cover - _locate returns at least one file
        raise RuntimeError("No files.")
    return TableFiles(name=name, source=source, files=files, schema=schema, rows=rows)


def check_columns(
    table: TableFiles, required: dict[str, Kind], *, used_by: str = "", empty_ok: bool = False
) -> None:
    """Raise on a missing column, a column of the wrong type, or (unless allowed) no rows.

    Raises:
        DataError: one line naming the file, the column, the type found and expected.
    """
    where = table.source if len(table.files) == 1 else f"{Path(table.source).parent}/"
    missing = [c for c in required if c not in table.schema.names]
    if missing:
        raise DataError(
            f"{where}: table '{table.name}' lacks column(s) {', '.join(missing)}"
            f"{used_by}; it has: {', '.join(table.schema.names) or 'no columns'}"
        )
    for column, kind in required.items():
        dtype = table.schema.field(column).type
        if not fits(dtype, kind):
            raise DataError(
                f"{where}: table '{table.name}': column {column!r}{used_by}: found {dtype}, "
                f"expected {EXPECTED[kind]}"
            )
    if not empty_ok and table.rows == 0:
        raise DataError(
            f"{where}: table '{table.name}' is empty (0 rows); expected at least one row"
        )


def check_ids(folder: Path, tables: list[TableFiles]) -> None:
    """``user_id`` must be text in every table or integers in every table (joins compare them).

    Raises:
        DataError: the tables disagree; names both tables and types.
    """
    kinds = {t.name: kind_of(t.schema.field("user_id").type) for t in tables}
    if len(set(kinds.values())) > 1:
        listed = ", ".join(f"{t.name} {t.schema.field('user_id').type}" for t in tables)
        raise DataError(
            f"{folder}: column 'user_id' has different types across "
            f"tables ({listed}); expected one type in every table (all string or all integer), "
            "or no user would match"
        )
