"""Compile segment definitions to Ibis boolean expressions over the customers table.

Column names are checked against the table's schema (with close-match
suggestions) and constants against the column's type, so a typo fails at once
with one line instead of deep inside the engine. Rows where a referenced column
is null are not members (except for ``is_null``). ``segment("name")`` references
compile the named rule segment (cycles are rejected), the ``lifecycle`` column is
built in (:mod:`segments.lifecycle`), crossed segments expand into one segment per
combination of values, and cluster and predictive segments compile from their
fitted models (:mod:`segments.models`), so membership runs on any engine.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from typing import TYPE_CHECKING, Any

from experiment.errors import DataError, RuleError
from segments.definitions import REST, SegmentDef
from segments.lifecycle import LIFECYCLE, STAGES, days_since, lifecycle_column
from segments.rules import (
    Between,
    BoolOp,
    Column,
    Compare,
    Const,
    ConstList,
    DaysSince,
    Node,
    Not,
    NullCheck,
    Operand,
    Scalar,
    SegmentRef,
    parse_rule,
)

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from segments.definitions import SegmentSet

__all__ = ["Compiler", "compile_rule", "compile_segments"]

_MAX_CROSS_VALUES = 50
_MAX_CROSS_SEGMENTS = 500
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]+")


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
    if dtype.is_null() or "NULL" in str(dtype):  # an all-null Parquet column has no type
        return "column of nulls with no type (every value missing)"
    return str(dtype)


def _const_kind(value: Scalar) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _label(operand: Column | DaysSince) -> str:
    if isinstance(operand, DaysSince):
        return f"days_since({operand.column.name})"
    return f"column {operand.name!r}"


def _offset(operand: Column | DaysSince) -> int:
    return operand.column.offset if isinstance(operand, DaysSince) else operand.offset


class Compiler:
    """Compiles the rules of one segment set against one table (caches lifecycle and refs)."""

    def __init__(
        self, table: ir.Table, *, as_of: dt.datetime | None, segment_set: SegmentSet | None = None
    ) -> None:
        self.table = table
        self.as_of = as_of
        self.segment_set = segment_set
        self.columns = list(table.columns)
        self._rules = {
            s.name: s for s in (segment_set.segments if segment_set else ()) if s.kind == "rule"
        }
        self._refs: dict[str, ir.BooleanValue] = {}
        self._stack: list[str] = []
        self._lifecycle: ir.StringValue | None = None

    # ---------------------------------------------------------------- values
    def lifecycle(self) -> ir.StringValue:
        """The built-in ``lifecycle`` stage column (computed once)."""
        if self._lifecycle is None:
            config = self.segment_set.lifecycle if self.segment_set else None
            if config is None:
                from segments.lifecycle import LifecycleConfig

                config = LifecycleConfig()
            signals = None
            if config.at_risk_signals:
                rule = parse_rule(config.at_risk_signals)
                signals = lambda: self.rule(rule)  # noqa: E731
            self._lifecycle = lifecycle_column(
                self.table, config, as_of=self.as_of, signals=signals
            )
        return self._lifecycle

    def column(self, col: Column) -> ir.Value:
        """A customer column, or the built-in ``lifecycle`` column."""
        if col.name in self.columns:
            return self.table[col.name]
        if col.name == LIFECYCLE:
            return self.lifecycle()
        raise _unknown_column(col.name, [*self.columns, LIFECYCLE])

    def _value(self, operand: Column | DaysSince) -> tuple[ir.Value, str]:
        if isinstance(operand, DaysSince):
            col = self.column(operand.column)
            try:
                return days_since(col, self.as_of), "number"
            except RuleError as exc:
                raise RuleError(f"{exc} (column {operand.column.name!r})") from None
        return self.column(operand), _kind(self.column(operand).type())

    def _check(self, operand: Column | DaysSince, kind: str, values: tuple[Scalar, ...]) -> None:
        for value in values:
            got = _const_kind(value)
            if got != kind and not (kind == "number" and got == "boolean"):
                raise RuleError(
                    f"{_label(operand)} is a {kind} but is compared with {got} {value!r} "
                    f"at column {_offset(operand) + 1}"
                )
            builtin = isinstance(operand, Column) and operand.name == LIFECYCLE
            if builtin and LIFECYCLE not in self.columns and value not in STAGES:
                raise RuleError(
                    f"unknown lifecycle stage {value!r} at column {_offset(operand) + 1}; "
                    f"stages are: {', '.join(STAGES)}"
                )

    # ---------------------------------------------------------------- rules
    def _compare(self, node: Compare) -> ir.BooleanValue:
        import ibis

        subject = next(s for s in (node.left, node.right) if not isinstance(s, Const | ConstList))
        if not isinstance(subject, Column | DaysSince):  # pragma: no cover - parser guarantee
            raise RuntimeError("Comparison without a column.")
        expr, kind = self._value(subject)
        if isinstance(node.right, ConstList):
            self._check(subject, kind, node.right.values)
            isin = expr.isin(list(node.right.values))
            return ~isin if node.op == "not in" else isin

        def side(operand: Operand) -> Any:
            if isinstance(operand, Const):
                self._check(subject, kind, (operand.value,))
                return ibis.literal(operand.value)
            value, other_kind = self._value(operand)
            if other_kind != kind:
                raise RuleError(
                    f"{_label(subject)} ({kind}) is compared with {_label(operand)} "
                    f"({other_kind}) at column {_offset(operand) + 1}"
                )
            return value

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

    def segment(self, ref: SegmentRef) -> ir.BooleanValue:
        """The (non-null) membership of another rule segment; cycles are rejected."""
        if ref.name in self._refs:
            return self._refs[ref.name]
        if ref.name not in self._rules:
            names = list(self._rules)
            close = difflib.get_close_matches(ref.name, names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"rule segments: {', '.join(names)}"
            raise RuleError(
                f"segment({ref.name!r}) at column {ref.offset + 1} is not a rule segment "
                f"of this file; {hint}"
            )
        if ref.name in self._stack:
            cycle = " -> ".join([*self._stack[self._stack.index(ref.name) :], ref.name])
            raise RuleError(f"segment references form a cycle: {cycle}")
        self._stack.append(ref.name)
        rule = self._rules[ref.name].rule
        if rule is None:  # pragma: no cover - rule segments always have a rule
            raise RuntimeError("Rule segment without a rule.")
        expr = self.rule(rule).fill_null(False)
        self._stack.pop()
        self._refs[ref.name] = expr
        return expr

    def rule(self, node: Node) -> ir.BooleanValue:
        """An Ibis boolean expression for a parsed rule (may be null where inputs are null)."""
        if isinstance(node, BoolOp):
            exprs = [self.rule(o) for o in node.operands]
            while len(exprs) > 1:  # a balanced tree: log2(n) deep for the SQL compiler
                pairs = zip(exprs[::2], exprs[1::2], strict=False)
                joined = [(x & y) if node.op == "and" else (x | y) for x, y in pairs]
                exprs = joined + exprs[len(joined) * 2 :]
            return exprs[0]
        if isinstance(node, Not):
            return ~self.rule(node.operand)
        if isinstance(node, SegmentRef):
            if self.segment_set is None:
                raise RuleError("segment() can only be used in a segments file")
            return self.segment(node)
        if isinstance(node, NullCheck):
            col = self.column(node.column)
            result: ir.BooleanValue = col.notnull() if node.negate else col.isnull()
            return result
        if isinstance(node, Between):
            value, kind = self._value(node.value)
            self._check(node.value, kind, (node.low.value, node.high.value))
            between: ir.BooleanValue = value.between(node.low.value, node.high.value)
            return between
        return self._compare(node)

    # ---------------------------------------------------------------- expansion
    def _cross_values(self, dim: str) -> list[Scalar]:
        if dim == LIFECYCLE and dim not in self.columns:
            return list(STAGES)
        col = self.column(Column(dim, 0))
        counts = col.name("v").as_table().distinct().limit(_MAX_CROSS_VALUES + 1)
        values = [v for v in counts.to_pyarrow().column("v").to_pylist() if v is not None]
        if len(values) > _MAX_CROSS_VALUES:
            raise RuleError(
                f"cross: column {dim!r} has more than {_MAX_CROSS_VALUES} values; cross only "
                "categorical columns (or write rules for bands)"
            )
        return sorted(values, key=str)

    def cross(self, entry: SegmentDef, min_size: int) -> list[tuple[str, ir.BooleanValue]]:
        """One segment per combination of the columns' values, at least ``min_size`` users."""
        dims = list(entry.cross)
        exprs = {d: self.column(Column(d, 0)) for d in dims}
        values = {d: self._cross_values(d) for d in dims}
        keyed = self.table.select(**{f"k{i}": exprs[d] for i, d in enumerate(dims)})
        keys = [f"k{i}" for i in range(len(dims))]
        counts = keyed.group_by(keys).aggregate(n=keyed.count()).to_pyarrow().to_pylist()
        size = {tuple(row[k] for k in keys): row["n"] for row in counts}
        combos: list[tuple[Scalar, ...]] = [()]
        for d in dims:
            combos = [(*c, v) for c in combos for v in values[d]]
        kept = [c for c in combos if size.get(c, 0) >= min_size]
        if len(kept) > _MAX_CROSS_SEGMENTS:
            raise RuleError(f"cross gives {len(kept)} segments; at most {_MAX_CROSS_SEGMENTS}")
        out = []
        for combo in kept:
            name = "_".join([entry.name, *(_UNSAFE.sub("_", str(v)) for v in combo)])[:64]
            expr = exprs[dims[0]] == combo[0]
            for d, v in zip(dims[1:], combo[1:], strict=True):
                expr = expr & (exprs[d] == v)
            out.append((name, expr))
        return out


def compile_rule(
    node: Node, table: ir.Table, *, as_of: dt.datetime | None = None
) -> ir.BooleanValue:
    """An Ibis boolean expression for a parsed rule (may be null where inputs are null)."""
    return Compiler(table, as_of=as_of).rule(node)


def _entry(
    compiler: Compiler, entry: SegmentDef, segment_set: SegmentSet, *, fit_missing: bool
) -> list[tuple[str, ir.BooleanValue]]:
    if entry.kind == "rule":
        return [(entry.name, compiler.segment(SegmentRef(entry.name, 0)))]
    if entry.kind == "cross":
        return compiler.cross(entry, segment_set.min_size)
    from segments.models import model_segments

    return model_segments(compiler, entry, fit_missing=fit_missing)


def compile_segments(
    segment_set: SegmentSet,
    table: ir.Table,
    *,
    as_of: dt.datetime | None = None,
    fit_missing: bool = True,
) -> dict[str, ir.BooleanValue]:
    """Non-null membership expressions for every segment, keyed by name, in priority order.

    Crossed, cluster and predictive entries expand into their segments. For an
    ``exclusive`` set the masks are first-match-wins and a final ``rest`` holds
    everyone else. Cluster and predictive models come from the sidecar file; a
    missing or outdated model is fitted on ``table`` (and saved) when
    ``fit_missing`` is true.

    Args:
        segment_set: The parsed segments file.
        table: The customers table.
        as_of: The analysis start, the reference time of ``days_since`` and ``lifecycle``.
        fit_missing: Fit models that the sidecar lacks instead of raising.

    Raises:
        RuleError: a rule names an unknown column or segment, mixes types or forms a
            cycle; the message names the file and the segment.
        DataError: a model cannot be fitted on the data (too few rows, separation).
    """
    compiler = Compiler(table, as_of=as_of, segment_set=segment_set)
    compiled: dict[str, ir.BooleanValue] = {}
    for entry in segment_set.segments:
        try:
            parts = _entry(compiler, entry, segment_set, fit_missing=fit_missing)
        except (RuleError, DataError) as exc:
            raise type(exc)(f"{segment_set.source}: segment {entry.name!r}: {exc}") from None
        for name, expr in parts:
            if name in compiled:
                raise RuleError(
                    f"{segment_set.source}: segment {entry.name!r} generates {name!r}, "
                    "which another segment already uses"
                )
            # a rule segment's expression is filled already (Compiler.segment)
            compiled[name] = expr if entry.kind == "rule" else expr.fill_null(False)
    if not segment_set.exclusive:
        return compiled
    exclusive: dict[str, ir.BooleanValue] = {}
    taken: ir.BooleanValue | None = None
    for name, expr in compiled.items():
        exclusive[name] = expr if taken is None else expr & ~taken
        taken = expr if taken is None else taken | expr
    if taken is not None:
        exclusive[REST] = ~taken
    return exclusive
