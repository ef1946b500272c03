"""The main query's two forms: per user, and per membership pattern first.

Both return one row per (segment, arm) with the same columns (but the engine's
variances, which only the per-user form has): the moment columns of
:mod:`experiment.engine.moments`, the quality and stratum counts, the caps and
the assignment span. :mod:`experiment.engine.cells` runs them and reads the rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from experiment.engine.balance import balance_aggs
from experiment.engine.caps import CAP
from experiment.engine.moments import count_agg, merged_agg, moment_aggs, regression_aggs
from experiment.engine.quality import FINGERPRINT_SUMS, QUALITY_SUMS, quality_columns
from experiment.engine.regressors import REG
from experiment.engine.users import STRATUM

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig
    from experiment.engine.users import UserTable

__all__ = ["FIRST", "LAST", "SI", "cell_query", "pattern_query"]

SI = "__si__"  # the segment index a row counts for (-1: every assigned user)
FIRST, LAST = "__first__", "__last__"  # the first and last assignment time of a cell
_AT = "__assigned__"  # a user's first assignment time, for the assignment span
_VALID = "__valid__"  # whether a user is analysed (a key of the pattern query's groups)


def _user_columns(
    users: UserTable, config: ExperimentConfig
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The per-user columns the query sums, by name; and the quality columns.

    ``cap{mi}`` (the cap of metric ``mi``, where the table has ``CAP.format(mi)``),
    ``y{mi}``/``x{mi}`` (its per-user values, capped), ``balance{k}``, ``reg{k}``,
    ``stratum{k}`` (0/1); then :func:`~experiment.engine.quality.quality_columns`.
    """
    import ibis

    t, strata = users.table, users.strata
    cols: dict[str, Any] = {}
    for mi, metric in enumerate(config.metrics):
        values = users.metric_columns(metric, t)
        if CAP.format(mi) in t.columns:
            values[0] = ibis.least(values[0], t[CAP.format(mi)])
            cols[f"cap{mi}"] = t[CAP.format(mi)]
        for part, col in zip("yx", values, strict=False):
            cols[f"{part}{mi}"] = col
    for k, name in enumerate(users.balance):  # pre-exposure covariates (CUPED ones: above)
        if name not in users.covariates:
            cols[f"balance{k}"] = users.balance_value(k, t)
    for k in range(len(users.regressors.specs)):  # ``cuped: [a, b]`` lists; no row: 0
        cols[f"reg{k}"] = t[REG.format(k)].fill_null(-users.regressors.shift(k))
    one, zero = ibis.literal(1, type="int64"), ibis.literal(0, type="int64")
    for k in range(1, len(strata)):
        cols[f"stratum{k}"] = ibis.ifelse(t[STRATUM] == k, one, zero)
    return cols, quality_columns(users, t)


def _long_table(users: UserTable, config: ExperimentConfig) -> tuple[Any, dict[str, Any]]:
    """One row per (user, segment it counts for), with the per-user columns the query sums.

    Columns: ``arm``, the segment index, the assignment time and the columns of
    :func:`_user_columns`; and those columns but the quality ones, by name.
    """
    import ibis

    t = users.table
    cols, quality = _user_columns(users, config)
    valid = users.valid(t)
    member = [ibis.literal(-1, type="int16"), ibis.ifelse(valid, 0, None).cast("int16")]
    member += [
        ibis.ifelse(users.in_segment(si, t), si, None).cast("int16")
        for si in range(1, len(users.segments))
    ]
    long = t.select(
        "arm", **{SI: ibis.array(member).unnest(), _AT: t.assigned_at}, **cols, **quality
    )
    return long.filter(long[SI].notnull()), cols


def cell_query(users: UserTable, config: ExperimentConfig) -> Any:
    """The one-level main query as an Ibis table (one row per segment and arm).

    Each user's row is repeated once per segment it belongs to (an unnested list
    of segment indices: ``0`` for ``all``, ``-1`` for every assigned user, valid or
    not, which carries the quality counts), then one plain ``GROUP BY segment,
    arm`` computes count, means, variances and covariances: no per-segment
    ``FILTER`` re-evaluates the metric expressions. A column ``CAP.format(mi)`` of
    ``users.table``, where present, caps metric ``mi``.
    """
    long, cols = _long_table(users, config)
    return long.group_by([SI, "arm"]).aggregate(**_aggs(long, cols, users, config))


def pattern_query(users: UserTable, config: ExperimentConfig) -> Any:
    """The main query summed per membership pattern first (one row per segment and arm).

    Users with the same arm, validity and segments (their segment masks, the keys of
    a ``GROUP BY``) share a group, whose counts and compensated sums are one row:
    some thousands of rows instead of a row per user and segment. Each group of
    analysed users is then repeated once per segment it belongs to (and every group
    as ``-1``, every assigned user) and its sums summed per (segment, arm), as
    :func:`cell_query` does per user, without the variance columns. Counts and
    integer sums are exact either way; a float sum is the sum of its groups'
    compensated sums (equal to :func:`cell_query`'s within a few roundings).

    The keys are the per-user table's segment bit masks (one ``int64`` per 62
    segments, built in the customers' scan, :func:`~experiment.engine.users.segment_bit`),
    so a group is found by hashing 1-2 integers, not a flag per segment.
    """
    import ibis

    t = users.table
    cols, quality = _user_columns(users, config)
    masks = users.masks(t)
    wide = t.select(
        "arm", **{_VALID: users.valid(t), _AT: t.assigned_at}, **masks, **cols, **quality
    )
    first = _aggs(wide, cols, users, config, welford=False)
    g = wide.group_by(["arm", _VALID, *masks]).aggregate(**first)
    segs = [ibis.literal(-1, type="int16"), ibis.ifelse(g[_VALID], 0, None).cast("int16")]
    for si in range(1, len(users.segments)):
        segs.append(ibis.ifelse(g[_VALID] & users.member(si, g), si, None).cast("int16"))
    long = g.select("arm", *first, **{SI: ibis.array(segs).unnest()})
    long = long.filter(long[SI].notnull())
    return long.group_by([SI, "arm"]).aggregate(**{c: _merged(c, long[c]) for c in first})


def _merged(name: str, col: Any) -> Any:
    """The aggregate of groups' partial aggregates: min, max, or an exact/compensated sum."""
    if name == FIRST:
        return col.min()
    if name == LAST or name.startswith("cap"):
        return col.max()
    return merged_agg(name, col)


def _aggs(
    long: Any,
    cols: dict[str, Any],
    users: UserTable,
    config: ExperimentConfig,
    *,
    welford: bool = True,
) -> dict[str, Any]:
    """Every aggregate of the main query over the rows of ``long`` (per user or group).

    ``welford=False`` leaves out the engine's variances and covariances
    (:func:`~experiment.engine.moments.moment_aggs`).
    """
    aggs: dict[str, Any] = count_agg(long, key=())
    for mi in range(len(config.metrics)):
        x = long[f"x{mi}"] if f"x{mi}" in cols else None
        aggs.update(moment_aggs(long[f"y{mi}"], x, key=(mi,), welford=welford))
    balance = {int(c[len("balance") :]): long[c] for c in cols if c.startswith("balance")}
    aggs.update(balance_aggs(balance, welford=welford))
    regs = {int(c[len("reg") :]): long[c] for c in cols if c.startswith("reg")}
    listed = {}
    for mi, m in enumerate(config.metrics):
        if m.name in users.regressors.by_metric:
            ks = users.regressors.by_metric[m.name]
            if f"x{mi}" in cols:  # a ratio: its denominator is one more regressor, last
                regs[users.regressors.denominator(mi)] = long[f"x{mi}"]
                ks = (*ks, users.regressors.denominator(mi))
            listed[mi] = (long[f"y{mi}"], ks)
    aggs.update(regression_aggs(regs, listed))
    aggs.update({c: long[c].sum() for c in (*QUALITY_SUMS, *FINGERPRINT_SUMS) if c in long.columns})
    aggs.update({c: long[c].sum() for c in cols if c.startswith("stratum")})
    aggs.update({c: long[c].max() for c in cols if c.startswith("cap")})
    aggs.update({FIRST: long[_AT].min(), LAST: long[_AT].max()})
    return aggs
