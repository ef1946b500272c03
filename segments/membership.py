"""Segment membership: evaluated on an in-memory table, and checked for what silently empties it.

:func:`membership` evaluates the rules on an Arrow table (simulator, tests).
:func:`absent_categories` finds rule constants no customer has (``'bronz'``),
:func:`fingerprints` and :func:`duplicates` segments with the same members
under two names; ``exp segments validate`` and ``exp analyze`` report both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from segments.compile import compile_segments
from segments.rules import BoolOp, Column, Compare, Const, ConstList, Not

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterator

    import ibis.expr.types as ir
    import pyarrow as pa

    from segments.definitions import SegmentSet
    from segments.rules import Node

__all__ = [
    "FP_HASHES",
    "absent_categories",
    "category_counts",
    "duplicates",
    "fingerprint_hashes",
    "fingerprints",
    "membership",
]


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


def _literals(node: Node | None) -> Iterator[tuple[str, str]]:
    """``(column, text)`` of every equality or ``in`` test against a text constant."""
    if isinstance(node, BoolOp):
        for operand in node.operands:
            yield from _literals(operand)
    elif isinstance(node, Not):
        yield from _literals(node.operand)
    elif isinstance(node, Compare) and node.op in ("==", "!=", "in", "not in"):
        sides = (node.left, node.right)
        column = next((s for s in sides if isinstance(s, Column)), None)
        consts = [s for s in sides if isinstance(s, Const | ConstList)]
        if column is None or not consts:
            return
        const = consts[0]
        values = const.values if isinstance(const, ConstList) else (const.value,)
        for value in values:
            if isinstance(value, str):
                yield column.name, value


def category_counts(table: ir.Table, segment_set: SegmentSet) -> dict[str, Any]:
    """The aggregates :func:`absent_categories` reads: a count per text constant of a rule.

    A caller that scans the customers anyway adds them to its own aggregate and
    passes the row on (one scan instead of two).
    """
    ordered = _category_tests(table, segment_set)
    return {f"absent_c{k}": (table[c] == v).sum() for k, (_, c, v) in enumerate(ordered)}


def _category_tests(table: ir.Table, segment_set: SegmentSet) -> list[tuple[str, str, str]]:
    """``(segment, column, text constant)`` of every rule test on a text column, sorted."""
    tests = {
        (entry.name, column, value)
        for entry in segment_set.segments
        for column, value in _literals(entry.rule)
        if column in table.columns and table[column].type().is_string()
    }
    return sorted(tests)


def absent_categories(
    table: ir.Table, segment_set: SegmentSet, row: dict[str, Any] | None = None
) -> tuple[str, ...]:
    """One warning per text constant of a rule that no customer has in that column.

    ``loyalty_tier in ['bronz']`` compiles and silently matches no one; this names
    the segment, the value, a close match and the values present. One aggregate
    counts every constant (:func:`category_counts`; ``row``, its result when the
    caller ran it); the values of a column are read only when one is absent.
    """
    import difflib

    ordered = _category_tests(table, segment_set)
    if not ordered:
        return ()
    if row is None:
        row = table.aggregate(**category_counts(table, segment_set)).to_pyarrow().to_pylist()[0]
    out: list[str] = []
    for k, (name, column, value) in enumerate(ordered):
        if row[f"absent_c{k}"]:
            continue
        counts = table[column].value_counts().to_pyarrow()
        present = sorted(str(v) for v in counts.column(0).to_pylist() if v is not None)
        close = difflib.get_close_matches(value, present, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        shown = ", ".join(map(repr, present[:20])) + (", …" if len(present) > 20 else "")
        out.append(
            f"{segment_set.source}: segment {name!r}: value {value!r} never occurs in column "
            f"{column!r}; {hint}values present: {shown or 'none'}"
        )
    return tuple(out)


FP_HASHES = ("__fp_a__", "__fp_b__")
"""The hash columns of :func:`fingerprint_hashes`, which :func:`fingerprints` reads if present."""


def fingerprint_hashes(table: ir.Table) -> dict[str, ir.IntegerValue]:
    """The two 31-bit hashes of the user id :func:`fingerprints` sums, by column name.

    A caller that projects them once (``table.mutate(**fingerprint_hashes(table))``)
    spares the engine hashing every id once per segment and sum: about half the
    cost of the customers' scan with 20 segments.
    """
    uid = table.user_id.cast("string")
    first, second = uid.hash() % 2_147_483_647, (uid + "#").hash() % 2_147_483_629
    return dict(zip(FP_HASHES, (first, second), strict=True))


def fingerprints(table: ir.Table, masks: dict[str, ir.BooleanValue]) -> dict[str, Any]:
    """Aggregates whose values are equal for two masks with exactly the same members.

    Per mask: its size and two sums of independent 31-bit hashes of the user id;
    two different member sets agree on all three with probability about 2⁻⁶².
    The hashes are ``table``'s columns :data:`FP_HASHES` where it has them
    (:func:`fingerprint_hashes`). Sums of ``CASE WHEN mask THEN hash ELSE 0``
    rather than ``FILTER``-ed sums: half the engine's time, and the same numbers
    (an empty mask sums to 0 instead of null; :func:`duplicates` reads both as 0).
    """
    import ibis

    if all(c in table.columns for c in FP_HASHES):
        first, second = (table[c] for c in FP_HASHES)
    else:
        first, second = fingerprint_hashes(table).values()
    aggs: dict[str, Any] = {}
    for i, mask in enumerate(masks.values()):
        aggs[f"fp_n{i}"] = mask.sum()
        aggs[f"fp_a{i}"] = ibis.ifelse(mask, first, 0).sum()
        aggs[f"fp_b{i}"] = ibis.ifelse(mask, second, 0).sum()
    return aggs


def duplicates(names: list[str], row: dict[str, Any]) -> dict[str, str]:
    """Each segment with exactly the members of an earlier one (and members), to that one."""
    seen: dict[tuple[int, int, int], str] = {}
    out: dict[str, str] = {}
    for i, name in enumerate(names):
        if f"fp_n{i}" not in row:
            return {}
        key = (int(row[f"fp_n{i}"] or 0), int(row[f"fp_a{i}"] or 0), int(row[f"fp_b{i}"] or 0))
        if key[0] == 0:
            continue
        if key in seen:
            out[name] = seen[key]
        else:
            seen[key] = name
    return out
