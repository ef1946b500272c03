"""The per-user table of ``exp refine``, carrying the attributes and threshold bases it cuts.

The attributes scanned and the rules of the threshold bases (a rule segment's rule
without the comparison whose cut-off moves) are read from the customers. They ride
on the per-user table's own customers join, the one that reads the segment flags
(:func:`experiment.engine.user_table`'s ``customer_columns``), instead of a second
join of the customers to the sample: at 1M users, a hash join of a million rows less.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from experiment.engine import user_table
from segments.refine.candidates import base_exprs, threshold_bases

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Mapping

    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from experiment.engine import Dataset, UserTable
    from segments.definitions import SegmentSet
    from segments.refine.candidates import ThresholdBase

__all__ = ["Carried", "carried_users", "searched_bases"]

_ATTR, _BASE = "__attr__{}__", "__base__{}__"


@dataclass(frozen=True, kw_only=True)
class Carried:
    """The per-user table and where it carries each attribute and threshold base.

    ``columns`` maps an attribute to its column of ``users.table``; ``found`` holds
    every threshold base of the segments file (its rule is column ``k`` of
    :func:`searched_bases`; a base that is the whole rule has none).
    """

    users: UserTable
    columns: dict[str, str]
    found: tuple[ThresholdBase, ...]


def carried_users(
    dataset: Dataset,
    config: ExperimentConfig,
    segment_set: SegmentSet | None,
    *,
    kinds: Mapping[str, str],
    every: Mapping[str, str],
) -> Carried:
    """The per-user table (:func:`experiment.engine.user_table`, no quantile caps or counts).

    It carries the attributes ``kinds`` names, the columns of the rule thresholds
    (numeric comparisons in the rules of an overlapping segments file; ``every``
    gives each customers column's kind) and the rules of their bases.
    """
    found: tuple[ThresholdBase, ...] = ()
    if segment_set is not None and not segment_set.exclusive:
        found = threshold_bases(segment_set, {c for c, k in every.items() if k != "categorical"})
    wanted = tuple(dict.fromkeys([*kinds, *(b.column for b in found)]))
    columns = {a: _ATTR.format(k) for k, a in enumerate(wanted)}

    def customer_columns(start: dt.datetime) -> dict[str, ir.Value]:
        cols: dict[str, ir.Value] = {columns[a]: dataset.customers[a] for a in wanted}
        exprs = base_exprs(dataset, segment_set, found, start)
        pairs = enumerate(zip(found, exprs, strict=True))
        cols.update({_BASE.format(k): e for k, (b, e) in pairs if b.rest is not None})
        return cols

    users = user_table(
        dataset,
        config,
        segment_set,
        quantile_caps=False,
        counts=False,
        customer_columns=customer_columns,
    )
    return Carried(users=users, columns=columns, found=found)


def searched_bases(
    carried: Carried, parents: Mapping[str, str]
) -> tuple[dict[int, ThresholdBase], dict[int, str | None]]:
    """The bases of segments a rule can name (``parents``) by group index, and their flags.

    Group indices follow the per-user table's segments; a flag is the column of
    the base's rule, or ``None`` for a base of every user (the comparison is the
    whole rule).
    """
    first = len(carried.users.segments)
    used = [k for k, b in enumerate(carried.found) if b.segment in parents]
    bases = {first + j: carried.found[k] for j, k in enumerate(used)}
    flags = {
        first + j: None if carried.found[k].rest is None else _BASE.format(k)
        for j, k in enumerate(used)
    }
    return bases, flags
