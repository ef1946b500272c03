"""The engine side of ``exp refine``: one cached sample table, one GROUP BY per attribute.

The per-user table of :func:`experiment.engine.user_table` (built for the one metric refined)
is narrowed to the analysed users of the two arms compared, given a sample half
(an md5 hash of the user id, salted with the experiment's salt and the refine
seed: ``0`` discovery, ``1`` estimation), a flag per searched segment, the
metric's per-user values and the candidate attribute columns (carried by the
per-user table, :mod:`segments.refine.carried`, or joined), and cached once.
Each attribute then costs one ``group_by([arm, half, bin])`` with each searched
group's sums: power sums (:mod:`segments.refine.scan`; counts per ``y`` for a 0/1
metric) on a sample of finite values, else FILTER-ed engine moment columns read
back by :mod:`experiment.engine.moments`, into the centred moments of
:mod:`experiment.sums`; no Python loop touches a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from experiment.engine import count_agg, moment_aggs, read_count, read_sums, stack_sums
from experiment.engine.fetch import arrow
from experiment.plan import kind_plan
from experiment.sums import JointSums, MeanSums
from segments.refine.scan import (
    binary_columns,
    cancelling,
    count_aggs,
    plain_values,
    power_aggs,
    read_power_sums,
    welford_aggs,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import ibis.expr.types as ir

    from experiment.config import MetricSpec
    from experiment.engine import UserTable

__all__ = [
    "HALF",
    "SUB",
    "Attribute",
    "Sample",
    "Scan",
    "Sums",
    "bin_sums",
    "half_of",
    "sample_table",
]

Sums = MeanSums | JointSums
ARM, HALF, BIN, SUB = "__arm__", "__half__", "__bin__", "__sub__"
Y, X = "__y__", "__x__"
FLAG = "__flag__{}__"


@dataclass(frozen=True)
class Attribute:
    """A candidate attribute: numeric (cut at ``edges``) or categorical (its ``levels``).

    A numeric attribute's bin ``b`` holds ``edges[b-1] <= value < edges[b]`` (bin 0:
    below the first edge; the last bin: at or above the last edge); null values
    fall in no bin. A categorical attribute has one bin per non-null level seen.
    """

    name: str
    kind: Literal["numeric", "categorical"]
    edges: tuple[float, ...] = ()


@dataclass(frozen=True)
class Sample:
    """The cached sample table and what its columns mean.

    ``flags[i]`` names the column that marks members of searched group ``i``
    (a segment, or a threshold proposal's base rule; ``None``: every user, as
    ``all``); ``ratio``: the metric has a
    second column (a ratio's denominator, or the CUPED covariate when ``cuped``),
    so its sums are joint. ``plain``: the metric's values are all finite (no null),
    so scans read power sums (:mod:`segments.refine.scan`); ``binary``: ``y`` is 0 or 1.
    """

    table: ir.Table
    flags: tuple[str | None, ...]
    ratio: bool
    cuped: bool = False
    plain: bool = False
    binary: bool = False


@dataclass(frozen=True)
class Scan:
    """Sums of one attribute, shape ``(2 halves, bins, groups)`` per arm (control, treatment).

    ``bins`` labels axis 1: a numeric attribute's bin index, or a categorical level.
    """

    attribute: Attribute | None
    bins: tuple[Any, ...]
    control: Sums
    treatment: Sums


def half_of(
    user_id: ir.StringValue, salt: str, seed: int
) -> tuple[ir.IntegerValue, ir.StringValue]:
    """The half, ``0`` (discovery) or ``1`` (estimation), and a sub-sample digit.

    From ``md5(f"refine:{salt}:{seed}:{user_id}")``: a first hex digit below ``8``
    is discovery (exactly half of the 16 digits, independent of the arm hash,
    which uses another salt prefix); the second hex digit picks sub-samples (for
    the cut-off quantiles).
    """
    import ibis

    digest = (ibis.literal(f"refine:{salt}:{seed}:") + user_id.cast("string")).hexdigest("md5")
    half: ir.IntegerValue = (digest.substr(0, 1) >= "8").cast("int8")
    return half, digest.substr(1, 1)


def sample_table(
    users: UserTable,
    customers: ir.Table,
    metric: MetricSpec,
    *,
    control: str,
    arm: str,
    salt: str,
    seed: int,
    attributes: tuple[str, ...],
    base: Mapping[int, ir.BooleanValue | str | None],
    carried: Mapping[str, str] | None = None,
) -> Sample:
    """Build and cache the sample table (analysed users of ``control`` and ``arm`` only).

    Columns the per-user table already carries (``carried``, ``base`` names) are
    read from it; the others come from one more join with ``customers``. A group of
    every user has no column (its flag is ``None``), nor has ``all``.

    Args:
        users: The per-user table of the one metric refined.
        customers: The customers table (attribute columns and ``base`` rules come from it).
        metric: The metric refined.
        control: The control arm.
        arm: The treatment arm compared.
        salt: The experiment's assignment salt.
        seed: The refine seed.
        attributes: Customers columns to carry.
        base: Extra group index (after the segments of ``users``, ``0`` being ``all``)
            → its membership: an expression on ``customers``, the name of a
            boolean column of ``users.table``, or ``None`` (every user).
        carried: Attribute → the column of ``users.table`` that holds it
            (:func:`experiment.engine.user_table`'s ``customer_columns``).
    """
    carried = carried or {}
    t = users.table
    t = t.filter(users.valid(t) & t.arm.isin([control, arm]))
    metric_cols = users.metric_columns(metric, t)
    half, sub = half_of(t.user_id, salt, seed)
    cols: dict[str, Any] = {
        "user_id": t.user_id,
        ARM: (t.arm == arm).cast("int8"),
        HALF: half,
        SUB: sub,
        Y: metric_cols[0],
    }
    if len(metric_cols) == 2:
        cols[X] = metric_cols[1]
    for i in range(1, len(users.segments)):
        cols[FLAG.format(i)] = users.member(i, t)
    cols.update({a: t[carried[a]] for a in attributes if a in carried})
    cols.update(
        {FLAG.format(i): t[e].fill_null(False) for i, e in base.items() if isinstance(e, str)}
    )
    s = t.select(**cols)
    feats: dict[str, Any] = {a: customers[a] for a in attributes if a not in carried}
    joined = {i: e for i, e in base.items() if e is not None and not isinstance(e, str)}
    feats.update({FLAG.format(i): e.fill_null(False) for i, e in joined.items()})
    if feats:
        f = customers.select(__uid__=customers.user_id.cast("string"), **feats)
        if users.surplus > 0:  # duplicated customers are not analysed; any row will do
            f = f.group_by("__uid__").aggregate(**{c: f[c].arbitrary() for c in feats})
        s = s.left_join(f, s.user_id == f["__uid__"]).drop("__uid__")
        s = s.mutate(**{FLAG.format(i): s[FLAG.format(i)].fill_null(False) for i in joined})
    s = s.drop("user_id")
    segments = (None, *(FLAG.format(i) for i in range(1, len(users.segments))))
    first = len(users.segments)
    flags = segments + tuple(
        None if base[i] is None else FLAG.format(i) for i in range(first, first + len(base))
    )
    joint = len(metric_cols) == 2
    cuped = joint and metric.cuped is not None
    cached = s.cache()
    plain = plain_values(cached, [Y, X] if joint else [Y])
    binary = kind_plan(metric.kind).binary
    return Sample(table=cached, flags=flags, ratio=joint, cuped=cuped, plain=plain, binary=binary)


def bin_expr(column: ir.Value, attribute: Attribute) -> ir.Value:
    """The bin of each row: an int (numeric, by binary search over the edges) or the level."""
    import ibis

    if attribute.kind == "categorical":
        return column

    def search(lo: int, hi: int) -> Any:  # bins lo..hi; edges[lo..hi-1] separate them
        if lo == hi:
            return ibis.literal(lo, type="int16")
        mid = (lo + hi) // 2
        edge = ibis.literal(attribute.edges[mid], type="float64")
        return ibis.ifelse(column.cast("float64") >= edge, search(mid + 1, hi), search(lo, mid))

    return search(0, len(attribute.edges))


def bin_sums(sample: Sample, attribute: Attribute | None, groups: Sequence[int]) -> Scan:
    """One GROUP BY [arm, half, bin] of the sample with the sums of the given groups.

    Rows whose attribute is null fall in no bin. ``attribute=None`` gives one bin
    holding every row (each group's totals per half). Axis 2 of the result
    follows ``groups``. A plain sample is scanned for power sums
    (:mod:`segments.refine.scan`); where those would cancel, and for other
    samples, the engine's FILTER-ed moment columns are read. The bin is a grouping
    key expression, not a column of its own: Ibis compiles that query in about
    half the time (30 ms less per numeric attribute, whose bin is a tree of ~100
    comparisons).
    """
    import ibis

    t = sample.table
    if attribute is None:
        t = t.mutate(**{BIN: ibis.literal(0, type="int16")})
        key = t[BIN]
    else:
        t = t.filter(t[attribute.name].notnull())
        key = bin_expr(t[attribute.name], attribute)
    if sample.plain:
        return _power_scan(sample, t, key, attribute, groups)
    aggs: dict[str, Any] = {}
    x = t[X] if sample.ratio else None
    for i, g in enumerate(groups):
        flag = sample.flags[g]
        m = None if flag is None else t[flag]
        aggs.update(count_agg(t, key=(i,), where=m))
        aggs.update(moment_aggs(t[Y], x, key=(i,), where=m))
    table = arrow(t.group_by([ARM, HALF], **{BIN: key}).aggregate(**aggs))
    bins, index = _bins(table, attribute)
    return _read(_scatter(table, index, len(bins)), bins, attribute, len(groups), sample.ratio)


def _power_scan(
    sample: Sample,
    t: ir.Table,
    key: ir.Value,
    attribute: Attribute | None,
    groups: Sequence[int],
) -> Scan:
    """:func:`bin_sums` of a plain sample from power sums (one more query where they cancel).

    A 0/1 metric's scan is grouped by ``y`` too and counts (:func:`count_aggs`).
    """
    flags = [None if sample.flags[g] is None else t[sample.flags[g]] for g in groups]
    x = t[X] if sample.ratio else None
    keys = {BIN: key}
    if sample.binary and x is None:
        table = arrow(t.group_by([ARM, HALF, Y], **keys).aggregate(**count_aggs(t, flags)))
        bins, index = _bins(table, attribute)
        column = binary_columns(_scatter(table, index, len(bins), by_y=True), len(groups))
    else:
        aggs = power_aggs(t, t[Y], x, flags, binary=sample.binary)
        table = arrow(t.group_by([ARM, HALF], **keys).aggregate(**aggs))
        bins, index = _bins(table, attribute)
        column = _scatter(table, index, len(bins))
    welford = None
    layout = {"joint": sample.ratio, "binary": sample.binary}
    bad = cancelling(column, len(groups), **layout)
    if bad:
        aggs = welford_aggs(t[Y], x, {i: flags[i] for i in bad})
        grouped = t.group_by([ARM, HALF], **keys).aggregate(**aggs)
        welford = _scatter(arrow(grouped), index, len(bins))
    found = read_power_sums(column, len(groups), **layout, welford=welford)
    sums = stack_sums(found, axis=-1)
    return Scan(attribute=attribute, bins=bins, control=sums[0], treatment=sums[1])


def _bins(table: Any, attribute: Attribute | None) -> tuple[tuple[Any, ...], dict[Any, int]]:
    """The bins of a scan (see :class:`Scan`) and each bin key's position."""
    bins: tuple[Any, ...]
    if attribute is None:
        bins = (0,)
    elif attribute.kind == "numeric":
        bins = tuple(range(len(attribute.edges) + 1))
    else:
        bins = tuple(sorted(set(table.column(BIN).to_pylist()), key=str))
    return bins, {b: k for k, b in enumerate(bins)}


def _scatter(table: Any, index: dict[Any, int], bins: int, *, by_y: bool = False) -> Any:
    """A reader of the GROUP BY's columns as ``(arm, half, bin)`` arrays (``nan``: no row).

    ``by_y``: the GROUP BY has a 0/1 ``y`` key too, read as a last axis of length 2.
    """
    arm = _values(table, ARM).astype(np.int64)
    half = _values(table, HALF).astype(np.int64)
    rows = np.array([index.get(k, -1) for k in table.column(BIN).to_pylist()], dtype=np.int64)
    keep = rows >= 0
    at: tuple[Any, ...] = (arm[keep], half[keep], rows[keep])
    shape: tuple[int, ...] = (2, 2, bins)
    if by_y:
        at, shape = (*at, _values(table, Y).astype(np.int64)[keep]), (*shape, 2)

    def column(name: str) -> NDArray[np.float64]:
        out = np.full(shape, np.nan)
        out[at] = _values(table, name)[keep]
        return out

    return column


def _values(table: Any, name: str) -> NDArray[np.float64]:
    """A result column as float64, nulls as ``nan``.

    Through Python values: PyArrow's ``to_numpy`` imports pandas (0.3 s), and a
    scan's result has a few hundred rows.
    """
    return np.array(table.column(name).to_pylist(), dtype=np.float64)


def _read(
    column: Any, bins: tuple[Any, ...], attribute: Attribute | None, groups: int, ratio: bool
) -> Scan:
    """The engine's moment columns of each group as ``(arm, half, bin, group)`` sums."""
    parts = []
    for i in range(groups):
        n = read_count(column, key=(i,))
        parts.append(read_sums(column, key=(i,), n=n, joint=ratio))
    sums = stack_sums(parts, axis=-1)
    return Scan(attribute=attribute, bins=bins, control=sums[0], treatment=sums[1])
