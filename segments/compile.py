"""Compile parsed segment rules to Ibis boolean expressions over the customers table.

Column names are checked against the table's schema (with close-match
suggestions) and constants against the column's type, so a typo fails at once
with one line instead of deep inside the engine. Rows where a referenced column
is null are not members.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from experiment.errors import RuleError
from segments.rules import BoolOp, Column, Compare, Const, ConstList, Node, Not, Scalar

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from segments.definitions import SegmentSet

__all__ = ["compile_rule", "compile_segments"]


def _unknown_column(name: str, columns: list[str]) -> RuleError:
    close = difflib.get_close_matches(name, columns, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"columns are: {', '.join(columns)}"
    return RuleError(f"unknown column {name!r}; {hint}")


def _kind(dtype: Any) -> str:
    if dtype.is_boolean():
        return "boolean"
    if dtype.is_numeric():
        return "number"
    if dtype.is_string():
        return "string"
    if dtype.is_timestamp() or dtype.is_date():
        return "timestamp"
    return str(dtype)


def _const_kind(value: Scalar) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _check_types(col: Column, kind: str, values: tuple[Scalar, ...]) -> None:
    for value in values:
        got = _const_kind(value)
        if got != kind and not (kind == "number" and got == "boolean"):
            raise RuleError(
                f"column {col.name!r} is a {kind} but is compared with {got} {value!r} "
                f"at column {col.offset + 1}"
            )


def _compare(node: Compare, table: ir.Table) -> ir.BooleanValue:
    import ibis

    columns = list(table.columns)

    def side(operand: Column | Const) -> Any:
        if isinstance(operand, Column):
            if operand.name not in columns:
                raise _unknown_column(operand.name, columns)
            return table[operand.name]
        return ibis.literal(operand.value)

    col = node.left if isinstance(node.left, Column) else node.right
    if not isinstance(col, Column):  # pragma: no cover - the parser guarantees a column
        raise RuntimeError("Comparison without a column.")
    if col.name not in columns:
        raise _unknown_column(col.name, columns)
    kind = _kind(table[col.name].type())
    if isinstance(node.right, ConstList):
        _check_types(col, kind, node.right.values)
        expr = table[col.name].isin(list(node.right.values))
        return ~expr if node.op == "not in" else expr
    for other in (node.left, node.right):
        if isinstance(other, Const):
            _check_types(col, kind, (other.value,))
    left, right = side(node.left), side(node.right)
    ops = {
        "==": left.__eq__,
        "!=": left.__ne__,
        "<": left.__lt__,
        "<=": left.__le__,
        ">": left.__gt__,
        ">=": left.__ge__,
    }
    result: ir.BooleanValue = ops[node.op](right)
    return result


def compile_rule(node: Node, table: ir.Table) -> ir.BooleanValue:
    """An Ibis boolean expression for a parsed rule (may be null where inputs are null)."""
    if isinstance(node, BoolOp):
        exprs = [compile_rule(o, table) for o in node.operands]
        out = exprs[0]
        for e in exprs[1:]:
            out = (out & e) if node.op == "and" else (out | e)
        return out
    if isinstance(node, Not):
        return ~compile_rule(node.operand, table)
    return _compare(node, table)


def compile_segments(segment_set: SegmentSet, table: ir.Table) -> dict[str, ir.BooleanValue]:
    """Non-null membership expressions for every segment, keyed by segment name.

    Raises:
        RuleError: a rule names an unknown column or mixes types; the message names
            the file and the segment.
    """
    compiled = {}
    for seg in segment_set.segments:
        try:
            compiled[seg.name] = compile_rule(seg.rule, table).fill_null(False)
        except RuleError as exc:
            raise RuleError(f"{segment_set.source}: segment {seg.name!r}: {exc}") from None
    return compiled
