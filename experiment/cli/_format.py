r"""``--format table|json|csv``: what a results-printing command writes to standard output.

``table`` (the default) is for people: rich tables sized to the terminal. ``json``
is the command's whole document, and ``csv`` its rows, one per line with a header,
for other tools to read from a pipe: nothing else goes to standard output then
(progress, warnings and the SRM line go to standard error). JSON escapes control
characters itself; a CSV field holding one (an arm or segment name from the data)
shows it as ``\xNN`` text, as the terminal tables do, so none reaches a terminal.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any

import typer

from reports.format import plain_text

__all__ = ["Format", "FormatOption", "csv_text", "emit", "resolve_format"]


class Format(StrEnum):
    """What a command prints on standard output."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


FormatOption = Annotated[
    Format,
    typer.Option(
        "--format",
        case_sensitive=False,
        help="table (for people), json (the whole document) or csv (one line per row), "
        "on standard output; with json or csv everything else goes to standard error.",
    ),
]


def resolve_format(fmt: Format, *, as_json: bool = False) -> Format:
    """``--json`` (kept from earlier releases) is ``--format json``."""
    return Format.JSON if as_json else fmt


def _cell(value: Any) -> str:
    """A CSV field: empty for null or NaN, a list as ``a;b``, numbers as Python writes them.

    Text is :func:`~reports.format.plain_text`: no control character reaches a terminal.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, list | tuple) and all(not isinstance(v, Mapping | list) for v in value):
        return ";".join(_cell(v) for v in value)
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, allow_nan=False, default=str)
    return plain_text(value)


def _flat(row: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nested mappings as ``key.sub`` columns (per-metric MDEs, ...)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{sub}": v for sub, v in value.items()})
        else:
            out[key] = value
    return out


def csv_text(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows (mappings) as CSV with a header: the union of their keys, in first-seen order.

    Nested mappings become ``key.sub`` columns.
    """
    rows = [_flat(row) for row in rows]
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([plain_text(k) for k in header])
    for row in rows:
        writer.writerow([_cell(row.get(k)) for k in header])
    return out.getvalue()


def emit(fmt: Format, *, document: Any, rows: Iterable[Mapping[str, Any]]) -> None:
    """Print ``document`` as JSON, or ``rows`` as CSV, on standard output (not for ``table``)."""
    if fmt is Format.JSON:
        typer.echo(json.dumps(document, indent=2, allow_nan=False, default=str))
    elif fmt is Format.CSV:
        typer.echo(csv_text(rows), nl=False)
