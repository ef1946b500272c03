"""What a rule may hold: nesting depth, 64-bit integers, finite floats, short printable text.

The rule language (:mod:`segments.rules`) parses with Python's ``ast``; these limits
keep a hostile rule from reaching a ``RecursionError`` (the depth is checked on the
tree without recursion before it is converted), an engine overflow (a 40-digit
integer, ``1e999``) or a terminal (control characters in a string).
"""

from __future__ import annotations

import ast
import math
import unicodedata
from typing import TYPE_CHECKING

from experiment.errors import RuleError

if TYPE_CHECKING:
    from segments.rules import Scalar

__all__ = ["MAX_DEPTH", "MAX_STRING", "check_depth", "checked", "is_control", "too_deep", "where"]

MAX_DEPTH = 50  # nesting of not/and/or/parentheses/calls; real rules nest a few levels
MAX_STRING = 1_000  # characters of one string constant
_INT64 = 2**63 - 1
# Bidirectional-text controls can make a rule read differently from what it does.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def where(node: ast.AST) -> str:
    """``at column N`` of a node (1-based)."""
    return f"at column {getattr(node, 'col_offset', 0) + 1}"


def checked(value: Scalar, node: ast.expr) -> Scalar:
    """The constant, if within the engine's range: int64, finite float, short printable text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and not -_INT64 - 1 <= value <= _INT64:
        raise RuleError(
            f"the integer {where(node)} has {len(str(abs(value)))} digits; integers must fit "
            f"in 64 bits (at most {_INT64})"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise RuleError(
            f"the number {where(node)} is too large for a float; use a number below 1e308"
        )
    if isinstance(value, str):
        if len(value) > MAX_STRING:
            raise RuleError(
                f"the string {where(node)} has {len(value):,} characters; at most {MAX_STRING:,}"
            )
        bad = next((c for c in value if is_control(c)), None)
        if bad is not None:
            raise RuleError(
                f"the string {where(node)} holds the control character U+{ord(bad):04X}; "
                "strings may hold printable characters, tabs and line breaks only"
            )
    return value


def is_control(char: str) -> bool:
    """A C0/C1 control (but tab and line feed) or a bidirectional-text control."""
    return char in _BIDI or (unicodedata.category(char) == "Cc" and char not in "\t\n")


def too_deep() -> str:
    """The message for a rule nested too deeply."""
    return (
        f"the rule nests more than {MAX_DEPTH} levels (not, and/or, parentheses, signs); "
        "simplify it, e.g. drop repeated 'not'"
    )


def check_depth(root: ast.expr) -> None:
    """Refuse a tree deeper than :data:`MAX_DEPTH`, walking it without recursion."""
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise RuleError(too_deep())
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
