"""The segment rule language: parse a rule into a small typed syntax tree.

A rule is a boolean expression over customer columns, e.g.
``days_since_last_login >= 14 and orders_90d == 0`` or ``device in ["mobile", "tablet"]``.
It is parsed by Python's ``ast`` in eval mode and every node is checked against a
whitelist: comparisons (``== != < <= > >=``, ``in``, ``not in``), ``and``/``or``/``not``,
column names, number/string/boolean constants, lists of constants and five
functions:

* ``days_since(col)``: whole days from a timestamp column to the analysis start;
* ``between(x, low, high)``: ``low <= x <= high`` (``x`` a column or ``days_since``);
* ``is_null(col)`` / ``not_null(col)``: null checks (other conditions are false on nulls);
* ``segment("name")``: membership of another named segment of the same file.

Anything else (other calls, attributes, subscripts, arithmetic, lambdas, ``;``) is
rejected with the column position. The text is never evaluated: the tree is
compiled to engine expressions by :mod:`segments.compile`.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass
from typing import Literal

from experiment.errors import RuleError
from segments.rule_limits import check_depth, checked, is_control, too_deep

__all__ = [
    "FUNCTIONS",
    "Between",
    "BoolOp",
    "Column",
    "Compare",
    "CompareOp",
    "Const",
    "ConstList",
    "DaysSince",
    "Node",
    "Not",
    "NullCheck",
    "Operand",
    "Scalar",
    "SegmentRef",
    "columns_of",
    "parse_rule",
    "segments_of",
]

Scalar = bool | int | float | str
CompareOp = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not in"]
FUNCTIONS = ("between", "days_since", "is_null", "not_null", "segment")

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
class DaysSince:
    """``days_since(col)``: whole days from ``col`` to the analysis start."""

    column: Column


@dataclass(frozen=True)
class Const:
    """A constant: number, string or boolean."""

    value: Scalar


@dataclass(frozen=True)
class ConstList:
    """A list of constants, the right side of ``in`` / ``not in``."""

    values: tuple[Scalar, ...]


Operand = Column | DaysSince | Const


@dataclass(frozen=True)
class Compare:
    """``left op right``; at least one side is a column or ``days_since``."""

    op: CompareOp
    left: Operand
    right: Operand | ConstList


@dataclass(frozen=True)
class Between:
    """``between(value, low, high)``: ``low <= value <= high``."""

    value: Column | DaysSince
    low: Const
    high: Const


@dataclass(frozen=True)
class NullCheck:
    """``is_null(col)`` (``negate=False``) or ``not_null(col)`` (``negate=True``)."""

    column: Column
    negate: bool


@dataclass(frozen=True)
class SegmentRef:
    """``segment("name")``: membership of another segment of the same file."""

    name: str
    offset: int


@dataclass(frozen=True)
class BoolOp:
    """``and`` / ``or`` over two or more operands."""

    op: Literal["and", "or"]
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """``not operand``."""

    operand: Node


Node = Compare | Between | NullCheck | SegmentRef | BoolOp | Not


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


def _negative_number(node: ast.expr) -> bool:
    """A negative number parses as ``UnaryOp(USub, Constant)``."""
    return (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    )


def _scalar(node: ast.expr) -> Scalar:
    if isinstance(node, ast.Constant) and isinstance(node.value, bool | int | float | str):
        return checked(node.value, node)
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and _negative_number(node)
    ):
        return checked(-node.operand.value, node)
    if isinstance(node, ast.Constant):
        kind = {bytes: "bytes literals are", complex: "complex numbers are"}.get(
            type(node.value), f"{node.value!r} is"
        )
        raise RuleError(f"{kind} not allowed in rules {_where(node)}; use a number or a string")
    raise RuleError(f"only numbers, strings and True/False are allowed in lists {_where(node)}")


def _call_name(node: ast.Call) -> str:
    """The whitelisted function a call names, or a one-line error."""
    allowed = ", ".join(f"{f}()" for f in FUNCTIONS)
    if isinstance(node.func, ast.Name) and node.func.id not in FUNCTIONS:
        close = difflib.get_close_matches(node.func.id, FUNCTIONS, n=1)
        if close:
            raise RuleError(
                f"unknown function {node.func.id[:40]!r} {_where(node)}; did you mean {close[0]}()?"
            )
    if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
        raise RuleError(
            f"function calls are not allowed in rules {_where(node)}; the only functions are "
            f"{allowed}"
        )
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise RuleError(f"{node.func.id}() takes plain positional arguments {_where(node)}")
    return node.func.id


def _arity(node: ast.Call, name: str, n: int) -> None:
    if len(node.args) != n:
        raise RuleError(f"{name}() takes {n} argument(s), got {len(node.args)} {_where(node)}")


def _column_arg(node: ast.expr, func: str) -> Column:
    if not isinstance(node, ast.Name):
        raise RuleError(f"{func}() needs a column name {_where(node)}")
    return Column(name=node.id, offset=node.col_offset)


def _operand(node: ast.expr) -> Operand:
    if isinstance(node, ast.Name):
        return Column(name=node.id, offset=node.col_offset)
    if isinstance(node, ast.Call):
        name = _call_name(node)
        if name != "days_since":
            raise RuleError(f"{name}() is a condition, not a value {_where(node)}")
        _arity(node, name, 1)
        return DaysSince(column=_column_arg(node.args[0], name))
    if isinstance(node, ast.Constant) and node.value is None:
        raise RuleError(
            f"None is not a value here {_where(node)}; use is_null(col) or not_null(col)"
        )
    if isinstance(node, ast.Constant) or _negative_number(node):
        return Const(value=_scalar(node))
    raise RuleError(f"{_describe(node)} not allowed in rules {_where(node)}")


def _compare(node: ast.Compare) -> Node:
    parts: list[Node] = []
    left: ast.expr = node.left
    for op_node, right in zip(node.ops, node.comparators, strict=True):
        op = _COMPARE_OPS.get(type(op_node))
        if op is None:
            raise RuleError(
                f"'is' comparisons are not allowed {_where(node)}; use ==, != or is_null(col)"
            )
        lhs = _operand(left)
        rhs: Operand | ConstList
        if op in ("in", "not in"):
            if not isinstance(right, ast.List | ast.Tuple | ast.Set):
                raise RuleError(f'\'{op}\' needs a list such as ["a", "b"] {_where(right)}')
            if not right.elts:
                raise RuleError(
                    f"'{op}' needs at least one value {_where(right)}; "
                    "an empty list matches nobody (or everybody)"
                )
            rhs = ConstList(values=tuple(_scalar(e) for e in right.elts))
            if isinstance(lhs, Const):
                raise RuleError(f"the left side of '{op}' must be a column {_where(left)}")
        else:
            rhs = _operand(right)
            if isinstance(lhs, Const) and isinstance(rhs, Const):
                raise RuleError(f"a comparison needs a column on one side {_where(left)}")
        parts.append(Compare(op=op, left=lhs, right=rhs))
        left = right
    return parts[0] if len(parts) == 1 else BoolOp(op="and", operands=tuple(parts))


def _condition_call(node: ast.Call) -> Node:
    name = _call_name(node)
    if name == "segment":
        _arity(node, name, 1)
        arg = node.args[0]
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            raise RuleError(f'segment() needs a quoted name such as segment("vip") {_where(arg)}')
        return SegmentRef(name=arg.value, offset=node.col_offset)
    if name in ("is_null", "not_null"):
        _arity(node, name, 1)
        return NullCheck(column=_column_arg(node.args[0], name), negate=name == "not_null")
    if name == "between":
        _arity(node, name, 3)
        value = _operand(node.args[0])
        if isinstance(value, Const):
            raise RuleError(f"between() needs a column or days_since() first {_where(node)}")
        bounds = [_operand(a) for a in node.args[1:]]
        if not all(isinstance(b, Const) for b in bounds):
            raise RuleError(f"between() bounds must be constants {_where(node)}")
        low, high = bounds
        if not isinstance(low, Const) or not isinstance(high, Const):  # pragma: no cover
            raise RuntimeError("Bounds are not constants.")
        return Between(value=value, low=low, high=high)
    raise RuleError(f"days_since() is a value, compare it, e.g. days_since(x) <= 30 {_where(node)}")


def _convert(node: ast.expr) -> Node:
    if isinstance(node, ast.BoolOp):
        op: Literal["and", "or"] = "and" if isinstance(node.op, ast.And) else "or"
        return BoolOp(op=op, operands=tuple(_convert(v) for v in node.values))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return Not(operand=_convert(node.operand))
    if isinstance(node, ast.Compare):
        return _compare(node)
    if isinstance(node, ast.Call):
        return _condition_call(node)
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
        >>> parse_rule("days_since(signup_at) <= 30").left
        DaysSince(column=Column(name='signup_at', offset=11))
        >>> parse_rule("__import__('os').system('x')")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        experiment.errors.RuleError: function calls are not allowed in rules at column 1; ...
    """
    if not isinstance(text, str) or not text.strip():
        raise RuleError("the rule is empty; write a condition such as orders_90d >= 1")
    if len(text) > _MAX_RULE_LENGTH:
        raise RuleError(f"the rule is longer than {_MAX_RULE_LENGTH} characters")
    source = " ".join(text.split())  # rules may span lines in YAML
    bad = next((c for c in source if is_control(c)), None)
    if bad is not None:
        raise RuleError(
            f"the rule holds the control character U+{ord(bad):04X} at column "
            f"{source.index(bad) + 1}; rules are printable text"
        )
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        col = f" at column {exc.offset}" if exc.offset else ""
        raise RuleError(f"not a valid rule{col}: {exc.msg}") from None
    except (RecursionError, MemoryError):  # Python's parser gave up on the nesting
        raise RuleError(too_deep()) from None
    check_depth(tree.body)
    return _convert(tree.body)


def _columns(side: object) -> list[tuple[str, int]]:
    if isinstance(side, Column):
        return [(side.name, side.offset)]
    if isinstance(side, DaysSince):
        return [(side.column.name, side.column.offset)]
    return []


def columns_of(node: Node) -> list[tuple[str, int]]:
    """Every column a rule references, with its position, in order of appearance."""
    if isinstance(node, BoolOp):
        return [c for operand in node.operands for c in columns_of(operand)]
    if isinstance(node, Not):
        return columns_of(node.operand)
    if isinstance(node, SegmentRef):
        return []
    if isinstance(node, NullCheck):
        return _columns(node.column)
    if isinstance(node, Between):
        return _columns(node.value)
    return _columns(node.left) + _columns(node.right)


def segments_of(node: Node) -> list[str]:
    """Every segment a rule references with ``segment("name")``, in order of appearance."""
    if isinstance(node, BoolOp):
        return [s for operand in node.operands for s in segments_of(operand)]
    if isinstance(node, Not):
        return segments_of(node.operand)
    if isinstance(node, SegmentRef):
        return [node.name]
    return []
