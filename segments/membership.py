"""Evaluate segment membership for an in-memory customers table (simulator, tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from segments.compile import compile_segments

if TYPE_CHECKING:
    import datetime as dt

    import pyarrow as pa

    from segments.definitions import SegmentSet

__all__ = ["membership"]


def membership(
    table: pa.Table, segment_set: SegmentSet, *, as_of: dt.datetime | None = None
) -> dict[str, NDArray[np.bool_]]:
    """Boolean membership per segment, aligned with the rows of ``table``.

    Rules compile to Ibis and run on an embedded DuckDB connection, the same path
    the analysis takes, so a simulator's truth and an analysis agree on who is in
    a segment. ``as_of`` is the analysis start, the reference time of
    ``days_since()`` and of the ``lifecycle`` stages.
    """
    import ibis

    con = ibis.duckdb.connect()
    try:
        t = con.create_table("customers", table)
        exprs = compile_segments(segment_set, t, as_of=as_of)
        if not exprs:
            return {}
        # row order of a projection of one table is preserved by DuckDB
        result = t.select(**{f"s{i}": e for i, e in enumerate(exprs.values())}).to_pyarrow()
    finally:
        con.disconnect()
    return {
        name: result.column(f"s{i}").to_numpy(zero_copy_only=False).astype(np.bool_)
        for i, name in enumerate(exprs)
    }
