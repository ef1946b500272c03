"""The policy's cells: the segments made exclusive, first match wins, plus the others.

A policy gives every customer one arm, so its cells must not overlap. A segments
file's rule segments are taken in file (priority) order, each minus the earlier
ones (``segment("b") and not (segment("a"))``), and ``everyone_else`` holds
everyone in none of them (``rest`` is a reserved name). An ``exclusive`` file
means exactly this already. Crossed, cluster and predictive entries (which a rule
cannot name) are left out: their customers fall in a later cell or in
``everyone_else``. Without a segments file the one
cell is ``all``. A refined cell is a cell cut in two on an attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from segments.refine.propose import conjoin, safe_name, unparse
from segments.rules import BoolOp, Node, Not, SegmentRef, parse_rule

if TYPE_CHECKING:
    import datetime as dt

    import ibis.expr.types as ir

    from segments.definitions import SegmentSet

__all__ = ["Cell", "cell_exprs", "exclusive_cells", "inline", "split_cell"]


@dataclass(frozen=True)
class Cell:
    """A policy cell: its name, its own exclusive rule (``""``: everyone), its parent."""

    name: str
    rule: str
    parent: str = ""


def _ref(name: str) -> str:
    return unparse(SegmentRef(name, 0))


def exclusive_cells(segment_set: SegmentSet | None) -> tuple[Cell, ...]:
    """The exclusive cells of a segments file in priority order, ``rest`` last."""
    if segment_set is None:
        return (Cell("all", ""),)
    names = [s.name for s in segment_set.segments if s.kind == "rule"]
    if not names:
        return (Cell("all", ""),)
    out = []
    for k, name in enumerate(names):
        earlier = " or ".join(_ref(e) for e in names[:k])
        out.append(Cell(name, conjoin(_ref(name), f"not ({earlier})" if earlier else "")))
    rest = safe_name(["everyone", "else"], set(segment_set.names))  # "rest" is reserved
    out.append(Cell(rest, "not (" + " or ".join(_ref(e) for e in names) + ")"))
    return tuple(out)


def split_cell(
    cell: Cell, conditions: tuple[str, str], names: tuple[str, str]
) -> tuple[Cell, Cell]:
    """``cell`` cut in two by ``conditions`` (low side, high side), named ``names``."""
    return tuple(  # type: ignore[return-value]
        Cell(n, conjoin(cell.rule, c), parent=cell.name)
        for n, c in zip(names, conditions, strict=True)
    )


def cell_exprs(
    cells: tuple[Cell, ...], customers: ir.Table, segment_set: SegmentSet | None, as_of: dt.datetime
) -> list[ir.BooleanValue]:
    """Each cell's membership on the customers table (a null attribute: not a member)."""
    import ibis

    from segments.compile import Compiler

    compiler = Compiler(customers, as_of=as_of, segment_set=segment_set)
    return [
        ibis.literal(True) if not c.rule else compiler.rule(parse_rule(c.rule)).fill_null(False)
        for c in cells
    ]


def inline(rule: str, segment_set: SegmentSet | None) -> str:
    """``rule`` with every ``segment("x")`` replaced by x's own rule: a self-contained rule.

    The policy's segments file then stands alone (it has no other segments to refer to).
    """
    if not rule or segment_set is None:
        return rule
    rules = {s.name: s.rule for s in segment_set.segments if s.kind == "rule" and s.rule}

    def expand(node: Node) -> Node:
        if isinstance(node, SegmentRef) and node.name in rules:
            return expand(rules[node.name])
        if isinstance(node, BoolOp):
            return BoolOp(node.op, tuple(expand(o) for o in node.operands))
        if isinstance(node, Not):
            return Not(expand(node.operand))
        return node

    return unparse(expand(parse_rule(rule)))
