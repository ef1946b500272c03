"""Rule text, names and sentences for the segments ``exp refine`` proposes.

Rules are written from the parsed syntax tree (never by pasting user text into
code): every rule produced here parses with :func:`segments.rules.parse_rule`
and compiles with :mod:`segments.compile` against the same segments file.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import TYPE_CHECKING

from experiment.engine import ALL
from segments.definitions import REST
from segments.rules import (
    Between,
    Column,
    Compare,
    ConstList,
    DaysSince,
    Node,
    Not,
    NullCheck,
    Operand,
    Scalar,
    SegmentRef,
    columns_of,
    segments_of,
)

if TYPE_CHECKING:
    from segments.definitions import SegmentSet

__all__ = [
    "condition",
    "conjoin",
    "literal",
    "parent_rules",
    "percent",
    "rule_families",
    "safe_name",
    "token",
    "unparse",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]+")
_MAX_NAME = 64


def literal(value: Scalar) -> str:
    """A constant as rule text: ``True``/``False``, a number, or a double-quoted string.

    Examples:
        >>> literal(True), literal(3.0), literal(0.5202), literal("mobile")
        ('True', '3', '0.5202', '"mobile"')
    """
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return json.dumps(value)


def _operand(node: Operand | ConstList) -> str:
    if isinstance(node, Column):
        return node.name
    if isinstance(node, DaysSince):
        return f"days_since({node.column.name})"
    if isinstance(node, ConstList):
        return "[" + ", ".join(literal(v) for v in node.values) + "]"
    return literal(node.value)


def unparse(node: Node) -> str:
    """Rule text of a syntax tree (fully parenthesised where precedence could matter).

    Examples:
        >>> from segments.rules import parse_rule
        >>> unparse(parse_rule("a >= 1 and not (b in ['x', 'y'] or is_null(c))"))
        '(a >= 1) and (not ((b in ["x", "y"]) or (is_null(c))))'
    """
    if isinstance(node, Compare):
        return f"{_operand(node.left)} {node.op} {_operand(node.right)}"
    if isinstance(node, Between):
        low, high = literal(node.low.value), literal(node.high.value)
        return f"between({_operand(node.value)}, {low}, {high})"
    if isinstance(node, NullCheck):
        return f"{'not_null' if node.negate else 'is_null'}({node.column.name})"
    if isinstance(node, SegmentRef):
        return f"segment({json.dumps(node.name)})"
    if isinstance(node, Not):
        return f"not ({unparse(node.operand)})"
    return f" {node.op} ".join(f"({unparse(o)})" for o in node.operands)


def _ref(name: str) -> str:
    return unparse(SegmentRef(name, 0))


def parent_rules(segment_set: SegmentSet | None, segments: tuple[str, ...]) -> dict[str, str]:
    """Rule text of each segment that a rule can name: ``""`` for ``all``.

    A rule segment is ``segment("name")``; in an exclusive file it also excludes
    the earlier segments (``and not (segment("a") or ...)``) and ``rest`` is
    ``not (...)`` of all of them. Segments that expand from crossed, cluster or
    predictive entries cannot be named by a rule and are left out.
    """
    out = {ALL: ""}
    if segment_set is None:
        return out
    rules = {s.name for s in segment_set.segments if s.kind == "rule"}
    earlier: list[str] = []
    expressible = True
    for name in segments[1:]:
        if name == REST and segment_set.exclusive:
            if expressible and earlier:
                out[name] = "not (" + " or ".join(_ref(e) for e in earlier) + ")"
            continue
        if name not in rules:
            expressible = False
            continue
        if not segment_set.exclusive or not earlier:
            out[name] = _ref(name)
        elif expressible:
            out[name] = f"{_ref(name)} and not (" + " or ".join(_ref(e) for e in earlier) + ")"
        earlier.append(name)
    return out


def rule_families(segment_set: SegmentSet | None) -> dict[str, frozenset[str]]:
    """Each rule segment's family: the columns its rule reads (``segment()`` refs expanded).

    Segments of one family are bands of the same columns (``sessions_30d >= 8`` and
    ``sessions_30d >= 1 and sessions_30d < 8``); only they may be merged.
    """
    if segment_set is None:
        return {}
    rules = {s.name: s.rule for s in segment_set.segments if s.kind == "rule" and s.rule}

    def columns(name: str, seen: frozenset[str]) -> frozenset[str]:
        rule = rules.get(name)
        if rule is None or name in seen:
            return frozenset()
        own = frozenset(c for c, _ in columns_of(rule))
        refs = [columns(r, seen | {name}) for r in segments_of(rule)]
        return own.union(*refs)

    return {name: columns(name, frozenset()) for name in rules}


def conjoin(*parts: str) -> str:
    """``a and b``, leaving out empty parts and parenthesising compound ones.

    Examples:
        >>> conjoin("", "x >= 1")
        'x >= 1'
        >>> conjoin('segment("a") and not (segment("b"))', "x < 1")
        '(segment("a") and not (segment("b"))) and x < 1'
    """
    kept = [p for p in parts if p]
    if len(kept) == 1:
        return kept[0]
    return " and ".join(f"({p})" if (" or " in p or " and " in p) else p for p in kept)


def safe_name(parts: list[str], used: set[str]) -> str:
    """A segment name from ``parts`` (valid, at most 64 characters, unused); adds it to ``used``.

    Examples:
        >>> used = {"vip_x_ge_1"}
        >>> safe_name(["vip", "x", "ge", "1"], used)
        'vip_x_ge_1_44e892'
        >>> safe_name(["1st", "tier", "", "a b"], used)
        's_1st_tier_a_b'
    """
    base = _UNSAFE.sub("_", "_".join(p for p in parts if p)).strip("_") or "segment"
    if not re.match(r"[A-Za-z_]", base):
        base = f"s_{base}"
    name = base[:_MAX_NAME]
    if name in used or len(base) > _MAX_NAME:
        digest = hashlib.md5(base.encode()).hexdigest()[:6]
        name = f"{base[: _MAX_NAME - 7]}_{digest}"
        k = 2
        while name in used:
            name = f"{base[: _MAX_NAME - 10]}_{digest}{k:02d}"
            k += 1
    used.add(name)
    return name


def percent(value: float) -> str:
    """``+18%`` style (one decimal below 10%), ``n/a`` for nan.

    Examples:
        >>> percent(0.183), percent(-0.0412), percent(float("nan"))
        ('+18%', '-4.1%', 'n/a')
    """
    if not math.isfinite(value):
        return "n/a"
    pct = 100 * value
    return f"{pct:+.1f}%" if abs(pct) < 10 else f"{pct:+.0f}%"


def token(value: float) -> str:
    """A cut-off as a name fragment.

    Examples:
        >>> token(0.52), token(-3.0)
        ('0_52', 'm3')
    """
    text = literal(value).replace("-", "m").replace(".", "_").replace("+", "")
    return text


def condition(attribute: str, op: str, value: float | tuple[Scalar, ...]) -> str:
    """``attribute op value`` (``in [...]`` for levels)."""
    if isinstance(value, tuple):
        return f"{attribute} {op} " + _operand(ConstList(value))
    return f"{attribute} {op} {literal(value)}"
