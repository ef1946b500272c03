"""The segment rule language: parse a rule into a small typed syntax tree.

A rule is a boolean expression over customer columns, e.g.
``days_since_last_login >= 14 and orders_90d == 0`` or ``device in ["mobile", "tablet"]``.
It is parsed by Python's ``ast`` in eval mode and every node is checked against a
whitelist: comparisons (``== != < <= > >=``, ``in``, ``not in``), ``and``/``or``/``not``,
column names, number/string/boolean constants and lists of constants. Anything
else (calls, attributes, subscripts, arithmetic, lambdas, ``;``) is rejected with
the column position. The text is never evaluated: the tree is compiled to engine
expressions by :mod:`segments.compile`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Literal

from experiment.errors import RuleError

__all__ = [
    "BoolOp",
    "Column",
    "Compare",
    "CompareOp",
    "Const",
    "ConstList",
    "Node",
    "Not",
    "Scalar",
    "columns_of",
    "parse_rule",
]

Scalar = bool | int | float | str
CompareOp = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not in"]

_COMPARE_OPS: dict[type[ast.cmpop], CompareOp] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.In: "in",
    ast.NotIn: "not in",
}
_MAX_RULE_LENGTH = 10_000


@dataclass(frozen=True)
class Column:
    """A reference to a customer column."""

    name: str
    offset: int


@dataclass(frozen=True)
class Const:
    """A constant: number, string or boolean."""

    value: Scalar


@dataclass(frozen=True)
class ConstList:
    """A list of constants, the right side of ``in`` / ``not in``."""

    values: tuple[Scalar, ...]


@dataclass(frozen=True)
class Compare:
    """``left op right``; at least one side is a column."""

    op: CompareOp
    left: Column | Const
    right: Column | Const | ConstList


@dataclass(frozen=True)
class BoolOp:
    """``and`` / ``or`` over two or more operands."""

    op: Literal["and", "or"]
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """``not operand``."""

    operand: Node


Node = Compare | BoolOp | Not


def _where(node: ast.AST) -> str:
    return f"at column {getattr(node, 'col_offset', 0) + 1}"


def _describe(node: ast.AST) -> str:
    names = {
        ast.Call: "function calls are",
        ast.Attribute: "attribute access is",
        ast.Subscript: "subscripts are",
        ast.BinOp: "arithmetic is",
        ast.UnaryOp: "arithmetic is",
        ast.Lambda: "lambdas are",
        ast.IfExp: "conditional expressions are",
        ast.NamedExpr: "assignments are",
    }
    return names.get(type(node), f"'{type(node).__name__}' expressions are")


def _scalar(node: ast.expr) -> Scalar:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool | int | float | str):
        return node.value
    if (  # a negative number parses as UnaryOp(USub, Constant)
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value
    raise RuleError(f"only numbers, strings and True/False are allowed in lists {_where(node)}")


def _operand(node: ast.expr) -> Column | Const:
    if isinstance(node, ast.Name):
        return Column(name=node.id, offset=node.col_offset)
    if isinstance(node, ast.Constant | ast.UnaryOp) and not (
        isinstance(node, ast.Constant) and node.value is None
    ):
        try:
            return Const(value=_scalar(node))
        except RuleError:
            pass
    if isinstance(node, ast.Constant) and node.value is None:
        raise RuleError(f"None is not a value here {_where(node)}; null checks come later")
    raise RuleError(f"{_describe(node)} not allowed in rules {_where(node)}")


def _compare(node: ast.Compare) -> Node:
    parts: list[Node] = []
    left: ast.expr = node.left
    for op_node, right in zip(node.ops, node.comparators, strict=True):
        op = _COMPARE_OPS.get(type(op_node))
        if op is None:
            raise RuleError(f"'is' comparisons are not allowed {_where(node)}; use == or !=")
        lhs = _operand(left)
        rhs: Column | Const | ConstList
        if op in ("in", "not in"):
            if not isinstance(right, ast.List | ast.Tuple | ast.Set):
                raise RuleError(f'\'{op}\' needs a list such as ["a", "b"] {_where(right)}')
            rhs = ConstList(values=tuple(_scalar(e) for e in right.elts))
            if not isinstance(lhs, Column):
                raise RuleError(f"the left side of '{op}' must be a column {_where(left)}")
        else:
            rhs = _operand(right)
            if not isinstance(lhs, Column) and not isinstance(rhs, Column):
                raise RuleError(f"a comparison needs a column on one side {_where(left)}")
        parts.append(Compare(op=op, left=lhs, right=rhs))
        left = right
    return parts[0] if len(parts) == 1 else BoolOp(op="and", operands=tuple(parts))


def _convert(node: ast.expr) -> Node:
    if isinstance(node, ast.BoolOp):
        op: Literal["and", "or"] = "and" if isinstance(node.op, ast.And) else "or"
        return BoolOp(op=op, operands=tuple(_convert(v) for v in node.values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return Not(operand=_convert(node.operand))
    if isinstance(node, ast.Compare):
        return _compare(node)
    if isinstance(node, ast.Name):
        raise RuleError(
            f"'{node.id}' alone is not a condition {_where(node)}; compare it, e.g. {node.id} == 1"
        )
    raise RuleError(f"{_describe(node)} not allowed in rules {_where(node)}")


def parse_rule(text: str) -> Node:
    """Parse a rule into its syntax tree, or raise a one-line :class:`RuleError`.

    Examples:
        >>> parse_rule("orders_90d == 0").op
        '=='
        >>> parse_rule("__import__('os').system('x')")
        Traceback (most recent call last):
        ...
        experiment.errors.RuleError: function calls are not allowed in rules at column 1
    """
    if not isinstance(text, str) or not text.strip():
        raise RuleError("the rule is empty; write a condition such as orders_90d >= 1")
    if len(text) > _MAX_RULE_LENGTH:
        raise RuleError(f"the rule is longer than {_MAX_RULE_LENGTH} characters")
    source = " ".join(text.split())  # rules may span lines in YAML
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        col = f" at column {exc.offset}" if exc.offset else ""
        raise RuleError(f"not a valid rule{col}: {exc.msg}") from None
    return _convert(tree.body)


def columns_of(node: Node) -> list[tuple[str, int]]:
    """Every column a rule references, with its position, in order of appearance."""
    if isinstance(node, BoolOp):
        return [c for operand in node.operands for c in columns_of(operand)]
    if isinstance(node, Not):
        return columns_of(node.operand)
    return [
        (side.name, side.offset) for side in (node.left, node.right) if isinstance(side, Column)
    ]
