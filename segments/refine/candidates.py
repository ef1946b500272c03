"""Which refinements ``exp refine`` searches: attributes, their cut-offs, rule thresholds.

* Attributes: customers columns (numeric, string or boolean) other than
  ``user_id``; by default strings and booleans only with at most
  :data:`MAX_LEVELS` distinct values and no timestamp or date columns.
* Numeric cut-offs: the percentiles (1 … 99) of the attribute over the
  discovery half (a hashed sub-sample of it when large), rounded to
  :data:`DIGITS` significant digits (so the rules read well and still describe
  exactly the users measured; integer columns: rounded up to whole numbers),
  distinct only.
* Threshold bases: a rule segment whose rule is ``col OP c`` or a top-level
  ``and`` holding one (``OP`` one of ``>= > <= <``, ``col`` numeric) gives the
  rest of its rule as a base in which ``col`` is scanned for a better cut-off.
  The moved cut-off stays within the segment's meaning: it keeps the side the
  comparison keeps, does not cross another bound on ``col`` in the same rule
  (``fence``), and (in :func:`segments.refine.choose.best_cuts`) keeps the segment
  between half and twice its size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from experiment.errors import ConfigError
from segments.refine.search import HALF, SUB, Attribute
from segments.rules import BoolOp, Column, Compare, Const, Node

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence

    import ibis.expr.types as ir

    from experiment.engine import Dataset
    from segments.definitions import SegmentSet

__all__ = [
    "DIGITS",
    "MAX_LEVELS",
    "QUANTILE_USERS",
    "ThresholdBase",
    "attribute_kinds",
    "attributes_of",
    "base_exprs",
    "same_cut",
    "threshold_bases",
]

MAX_LEVELS = 30
DIGITS = 4
QUANTILE_USERS = 100_000
_PERCENTILES = [k / 100 for k in range(1, 100)]
_FLIP = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}


@dataclass(frozen=True)
class ThresholdBase:
    """A rule segment's comparison ``column op value`` and the rest of its rule.

    ``rest`` is ``None`` when the comparison is the whole rule (the base is everyone).
    ``parts`` are the rule's top-level ``and`` operands (the comparison at ``index``),
    so the moved rule keeps every other condition in place. ``fence`` is the open
    interval a new cut-off must stay in: other bounds on ``column`` in the same rule.
    """

    segment: str
    column: str
    op: Literal[">=", ">", "<=", "<"]
    value: float
    rest: Node | None
    parts: tuple[Node, ...] = ()
    index: int = 0
    fence: tuple[float, float] = (-math.inf, math.inf)

    @property
    def keeps_high(self) -> bool:
        """The segment is the high side of its comparison (``>=`` or ``>``)."""
        return self.op in (">=", ">")


def _kind(dtype: Any) -> str | None:
    if dtype.is_boolean() or dtype.is_string():
        return "categorical"
    if dtype.is_integer():
        return "integer"
    if dtype.is_numeric():
        return "numeric"
    return None


def _dunder(name: str) -> bool:
    """A ``__name__`` column: an index pandas or Dask wrote, or a clash with our own columns."""
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def attribute_kinds(customers: ir.Table, requested: Sequence[str] | None) -> dict[str, str]:
    """Candidate attribute → ``"integer"``, ``"numeric"`` or ``"categorical"``, from the schema.

    Raises:
        ConfigError: a requested attribute is not a column, is ``user_id``, is a
            ``__name__`` column (never a candidate: pandas' ``__index_level_0__``, or a
            name of the search's own columns), or has a type that cannot be cut
            (timestamp, date, nested).
    """
    schema = customers.schema()
    usable = {c: _kind(schema[c]) for c in customers.columns if c != "user_id" and not _dunder(c)}
    if requested is None:
        return {c: k for c, k in usable.items() if k is not None}
    out: dict[str, str] = {}
    valid = ", ".join(c for c, k in usable.items() if k is not None) or "none"
    for name in requested:
        kind = usable.get(name)
        if kind is None:
            what = "is not a customers column" if name not in usable else "cannot be cut"
            if name == "user_id":
                what = "is the user id"
            if _dunder(name) and name in customers.columns:
                what = "is reserved (names in double underscores are internal columns)"
            raise ConfigError(
                f"attributes: {name!r} {what}; numeric, string or boolean columns are: {valid}"
            )
        out[name] = kind
    return out


def attributes_of(
    table: ir.Table, kinds: dict[str, str], *, explicit: bool
) -> tuple[Attribute, ...]:
    """Cut-offs of the numeric attributes and level counts of the others (two scalar queries).

    Quantiles come from the discovery half of the sample, sub-sampled by hash to
    about :data:`QUANTILE_USERS` users (exact quantiles of a large sample: cheap,
    and deterministic unlike sketches); distinct counts from the whole half.

    Raises:
        ConfigError: an explicitly requested categorical attribute has more than
            :data:`MAX_LEVELS` values.
    """
    from experiment.engine.fetch import rows, scalar

    disc = table[HALF] == 0
    n = int(scalar(table.count()))
    digits = min(16, math.ceil(16 * 2 * QUANTILE_USERS / max(n, 1)))
    sub = disc if digits >= 16 else disc & (table[SUB] < "0123456789abcdef"[digits])
    aggs: dict[str, Any] = {}
    for k, (name, kind) in enumerate(kinds.items()):
        col = table[name]
        if kind != "categorical":
            aggs[f"a{k}"] = col.cast("float64").quantile(_PERCENTILES, where=sub)
        else:
            aggs[f"a{k}"] = col.nunique(where=disc)
    row = rows(table.aggregate(**aggs))[0] if aggs else {}
    out = []
    for k, (name, kind) in enumerate(kinds.items()):
        value = row[f"a{k}"]
        if kind != "categorical":
            cut = math.ceil if kind == "integer" else _round  # x >= 2.5 is x >= 3 for integers
            edges = sorted(
                {float(cut(v)) for v in value or () if v is not None and math.isfinite(v)}
            )
            if edges:
                out.append(Attribute(name, "numeric", tuple(edges)))
        elif (value or 0) > MAX_LEVELS:
            if explicit:
                raise ConfigError(
                    f"attributes: {name!r} has {value} values; categorical attributes may have "
                    f"at most {MAX_LEVELS} (cut numeric ones, or leave this one out)"
                )
        elif (value or 0) >= 2:
            out.append(Attribute(name, "categorical"))
    return tuple(out)


def _round(value: float) -> float:
    """``value`` to :data:`DIGITS` significant digits (a float that prints short)."""
    return float(f"{value:.{DIGITS}g}")


def _comparison(node: Node, numeric: set[str]) -> tuple[str, str, float] | None:
    """``(column, op, value)`` of a numeric ``col op const`` comparison, else ``None``."""
    if not isinstance(node, Compare) or node.op not in _FLIP:
        return None
    left, right, op = node.left, node.right, str(node.op)
    if isinstance(left, Const) and isinstance(right, Column):
        left, right, op = right, left, _FLIP[op]
    if not (isinstance(left, Column) and isinstance(right, Const)):
        return None
    value = right.value
    if isinstance(value, bool) or not isinstance(value, int | float) or left.name not in numeric:
        return None
    return left.name, op, float(value)


def threshold_bases(segment_set: SegmentSet, numeric: set[str]) -> tuple[ThresholdBase, ...]:
    """One base per (rule segment, numeric comparison at the top level of its rule)."""
    out = []
    for entry in segment_set.segments:
        rule = entry.rule
        if entry.kind != "rule" or rule is None:
            continue
        parts = rule.operands if isinstance(rule, BoolOp) and rule.op == "and" else (rule,)
        for i, part in enumerate(parts):
            found = _comparison(part, numeric)
            if found is None:
                continue
            others = parts[:i] + parts[i + 1 :]
            rest: Node | None = None
            if len(others) == 1:
                rest = others[0]
            elif others:
                rest = BoolOp("and", others)
            column, op, value = found
            fence = _fence(others, column, numeric)
            out.append(
                ThresholdBase(
                    entry.name,
                    column,
                    op,  # type: ignore[arg-type]
                    value,
                    rest,
                    parts=tuple(parts),
                    index=i,
                    fence=fence,
                )
            )
    return tuple(out)


def _fence(others: tuple[Node, ...], column: str, numeric: set[str]) -> tuple[float, float]:
    """The open interval between the other bounds on ``column`` among ``others``.

    ``350 <= history and history < 1000``: moving the lower bound may not pass 1000,
    moving the upper one may not go below 350 (the rule would select nobody).
    """
    low, high = -math.inf, math.inf
    for node in others:
        found = _comparison(node, numeric)
        if found is None or found[0] != column:
            continue
        _, op, value = found
        if op in (">=", ">"):
            low = max(low, value)
        else:
            high = min(high, value)
    return low, high


def same_cut(base: ThresholdBase, kind: str) -> set[float]:
    """Cut-offs ``c`` whose rule ``col >= c`` / ``col < c`` is the base's own rule again.

    ``col >= v`` and ``col < v`` are cut ``v``; ``col > v`` and ``col <= v`` are
    cut ``v`` too up to ties at ``v``, and exactly cut ``v + 1`` for an integer column.
    """
    same = {base.value}
    if base.op in (">", "<=") and kind == "integer" and base.value.is_integer():
        same.add(base.value + 1)
    return same


def base_exprs(
    dataset: Dataset,
    segment_set: SegmentSet | None,
    bases: tuple[ThresholdBase, ...],
    as_of: dt.datetime,
) -> list[ir.BooleanValue]:
    """Each threshold base's rule (the segment's rule without its comparison) on customers."""
    import ibis

    from segments.compile import Compiler

    compiler = Compiler(dataset.customers, as_of=as_of, segment_set=segment_set)
    return [
        ibis.literal(True) if b.rest is None else compiler.rule(b.rest).fill_null(False)
        for b in bases
    ]
