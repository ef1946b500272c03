"""Terminal tables that fit: which columns to keep at a width, and the rich table of them.

Nothing is cut with an ellipsis. Columns marked ``whole`` (segment and metric
names) keep their full width; the others wrap. When the whole table does not fit,
the least important columns are dropped first (``drop``: higher goes first, equal
ranks together), then the rules between columns; ``width=None`` (output piped to
another program, or ``--wide``) keeps every column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["Column", "fit_table"]

_EDGE = 3  # a column's padding (one space each side) and its border
_WHOLE_MAX = 48  # a name longer than this wraps rather than squeeze every other column


@dataclass(frozen=True, kw_only=True)
class Column:
    """One column of a terminal table."""

    name: str
    justify: str = "left"
    drop: int = 0  # 0: always kept; higher ranks are dropped first when the table is too wide
    whole: bool = False  # never wrapped (names), up to 48 characters


def _width(cell: Any) -> int:
    text = cell.plain if hasattr(cell, "plain") else str(cell)
    return max((len(line) for line in text.split("\n")), default=0)


def _kept(columns: Sequence[Column], natural: list[int], width: int | None) -> list[int]:
    """Indices of the columns kept: all, or without the highest ranks until it fits."""
    keep = list(range(len(columns)))
    if width is None:
        return keep
    ranks = sorted({c.drop for c in columns if c.drop > 0}, reverse=True)
    for rank in ranks:
        if sum(natural[i] + _EDGE for i in keep) + 1 <= width:
            break
        keep = [i for i in keep if columns[i].drop != rank]
    return keep


def fit_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    width: int | None,
    **table: Any,
) -> Table:
    """A rich table of ``rows`` (str or rich Text cells) with the columns that fit ``width``.

    Extra keyword arguments go to :class:`rich.table.Table` (title, caption, ...).
    """
    from rich.table import Table

    natural = [max([len(c.name), *(_width(row[i]) for row in rows)]) for i, c in enumerate(columns)]
    keep = _kept(columns, natural, width)
    if width is not None and sum(natural[i] + _EDGE for i in keep) + 1 > width:
        from rich import box  # still too wide: no vertical rules, one space between columns

        table = {"box": box.SIMPLE_HEAD, "pad_edge": False, "collapse_padding": True, **table}
    out = Table(**table)
    for i in keep:
        c = columns[i]
        if c.whole:
            least = min(natural[i], _WHOLE_MAX)
            out.add_column(c.name, justify=c.justify, min_width=least, overflow="fold")  # type: ignore[arg-type]
        else:
            out.add_column(c.name, justify=c.justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        out.add_row(*(row[i] for i in keep))
    return out
