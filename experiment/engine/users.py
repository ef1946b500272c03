"""The per-user table: one row per assigned user, the input of every engine aggregate.

Each row holds the user's arm (and whether it was seen in several), its customer
row count, its segment memberships (bits of a few ``int64`` masks), the allocation
stratum, CUPED covariates and the user's post-exposure, in-window measures (event
counts and value sums). The
analysis (:mod:`experiment.engine`) groups it by arm; ``exp refine`` groups it by
arm, sample half and attribute bin. Everything stays an Ibis expression, so the
engine does the work and nothing here touches a row in Python.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from experiment.config import check_allocation
from experiment.engine.balance import balance_columns
from experiment.engine.caps import fixed_caps, with_quantile_caps
from experiment.engine.exposed import UID, exposed_events, key_of, per_user_measures
from experiment.engine.moments import as_float
from experiment.engine.quality import NCUST, QUALITY_COLUMNS, table_checks
from experiment.engine.regressors import Regressors, regressor_columns, regressors
from experiment.engine.window import analysis_window
from experiment.errors import ConfigError
from experiment.plan import kind_plan
from segments.compile import compile_segments
from segments.membership import fingerprint_hashes

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig, Measure, MetricSpec
    from experiment.engine.dataset import Dataset
    from segments.definitions import SegmentSet

__all__ = ["ALL", "STRATUM", "UID", "UserTable", "mask_names", "segment_bit", "user_table"]

ALL = "all"

# Column names of the per-user table (dunder names cannot clash with a user's columns).
MASK = "__mask{}__"  # segment bit mask number k (see :func:`segment_bit`)
BITS = 62  # segments per mask (int64, sign bit unused)
STRATUM = "__stratum__"
COVARIATE = "__covariate__{}__"  # index into the covariate columns
BALANCE = "__balance__{}__"  # index into the balance columns (those not CUPED covariates)


@dataclass(frozen=True, kw_only=True)
class UserTable:
    """The per-user table and what is needed to read metrics and segments off it.

    ``segments[0]`` is ``"all"``; segment ``i > 0`` is a bit of a mask column
    (:func:`segment_bit`). ``members`` is the customers side (masks, stratum,
    covariates), kept for the sequential timeline, which joins it to per-(user,
    day) rows. ``outside`` and
    ``surplus`` are the events outside the window and the surplus customer rows;
    ``invalid_values`` and ``values`` the invalid and the non-null metric values
    among the window's events.
    """

    table: ir.Table
    units: ir.Table
    members: ir.Table
    segments: tuple[str, ...]
    strata: tuple[str, ...]
    measure_cols: dict[Measure, str]
    value_columns: tuple[str, ...]
    covariates: tuple[str, ...]
    caps: dict[str, float]
    start: dt.datetime
    end: dt.datetime
    outside: int
    surplus: int
    invalid_values: int
    values: int
    balance: tuple[str, ...] = ()
    events: int = 0  # every row of the events table (the share outside the window)
    before_window: int = 0  # of ``outside``, the events before the window
    segment_warnings: tuple[str, ...] = ()  # duplicate segments, rule values absent
    regressors: Regressors = field(
        default_factory=Regressors
    )  # the covariates of ``cuped: [a, b]`` lists
    exposed: ir.Table | None = None  # the units' in-window metric events, written (``written``)

    def valid(self, t: ir.Table | None = None) -> ir.BooleanValue:
        """Users analysed: seen in one arm, with at most one customer row."""
        t = self.table if t is None else t
        ok: ir.BooleanValue = (t.arms_seen == 1) & (t[NCUST].fill_null(0) <= 1)
        return ok

    def in_segment(self, si: int, t: ir.Table | None = None) -> ir.BooleanValue:
        """Analysed users of segment ``si`` (0 is ``all``)."""
        t = self.table if t is None else t
        return self.valid(t) if si == 0 else self.valid(t) & self.member(si, t)

    def member(self, si: int, t: ir.Table | None = None) -> ir.BooleanValue:
        """Users whose customer row matches segment ``si``, analysed or not (0: everyone).

        A duplicated customer id (never analysed) has the masks of one of its rows.
        """
        import ibis

        t = self.table if t is None else t
        if si == 0:
            return ibis.literal(True)
        name, bit = segment_bit(si)
        flag: ir.BooleanValue = (t[name] & ibis.literal(1 << bit, type="int64")) != 0
        return flag.fill_null(False)

    def masks(self, t: ir.Table | None = None) -> dict[str, ir.IntegerValue]:
        """The segment bit masks per user, by column name (no customer row: 0)."""
        t = self.table if t is None else t
        return {name: t[name].fill_null(0) for name in mask_names(len(self.segments))}

    def metric_columns(
        self, metric: MetricSpec, t: ir.Table | None = None
    ) -> list[ir.NumericColumn]:
        """``[y]``, ``[y, x]`` (ratio) or ``[y, covariate]`` (CUPED) of one metric, per user."""
        t = self.table if t is None else t
        return _values(t, metric, self.measure_cols, self.caps, self.covariates)

    def balance_value(self, k: int, t: ir.Table | None = None) -> ir.NumericColumn:
        """Balance covariate ``k`` per user, as a CUPED covariate reads (missing: 0)."""
        t = self.table if t is None else t
        name = self.balance[k]
        col = COVARIATE.format(self.covariates.index(name)) if name in self.covariates else None
        value: ir.NumericColumn = t[col or BALANCE.format(k)].fill_null(0.0)
        return value


def segment_bit(si: int) -> tuple[str, int]:
    """The mask column and bit of segment ``si > 0``.

    Segment ``si`` is bit ``(si - 1) % 62`` of mask ``(si - 1) // 62``.
    """
    k, bit = divmod(si - 1, BITS)
    return MASK.format(k), bit


def mask_names(n_segments: int) -> list[str]:
    """The mask columns of ``n_segments`` segments, ``all`` (index 0, no bit) included."""
    return [MASK.format(k) for k in range((n_segments - 1 + BITS - 1) // BITS)]


def user_table(
    dataset: Dataset,
    config: ExperimentConfig,
    segment_set: SegmentSet | None,
    *,
    quantile_caps: bool = True,
    counts: bool = True,
    customer_columns: Callable[[dt.datetime], Mapping[str, ir.Value]] | None = None,
    written: Callable[[ir.Table], ir.Table] | None = None,
) -> UserTable:
    """Build the per-user table of an experiment (one scalar query for quantile caps).

    ``quantile_caps=False`` skips that query and leaves quantile caps out of
    ``caps`` (fixed caps stay): the caller joins
    :func:`~experiment.engine.caps.cap_quantiles` into its own query, as
    :func:`experiment.engine.aggregate` does. ``counts=False`` skips the
    data-quality counts that only the analysis reports (see
    :func:`~experiment.engine.quality.table_checks`): ``outside``, ``invalid_values``,
    ``values``, ``events``, ``before_window`` are then 0 and ``segment_warnings``
    empty; ``surplus`` and the checks that raise stay. ``customer_columns`` gives,
    from the window's start (the as-of time of segment rules), more columns of
    ``dataset.customers`` (dunder names) that the per-user table carries from the
    same join as the segment flags (null without a customer row, any row's value
    for a duplicated id): ``exp refine``'s attributes, without a second join.
    ``written`` writes a table once and returns it (a temporary table the caller
    drops): the units are then written with a key ``__uid__`` (their row id, which
    the per-user table carries), and so are their in-window metric events
    (``exposed``), which the per-user measures are summed from and which the
    sequential timeline reads again instead of scanning and joining the events a
    second time (about 2 s of CPU at 1M users).

    Raises:
        DataError: no assignments for the experiment.
        RuleError: a segment rule does not fit the customers table.
        ConfigError: a metric names a column the events table lacks, a CUPED
            covariate that is not a numeric customers column, or an allocation
            names a segment the segments file lacks.
    """
    units = _units(dataset, config, written)
    start, end = analysis_window(units, dataset, config)
    exposed, measure_cols, value_columns = exposed_events(
        dataset, units, config.metrics, (start, end), written
    )
    per_user = per_user_measures(exposed, measure_cols, config.metrics)
    seg_exprs = compile_segments(segment_set, dataset.customers, as_of=start) if segment_set else {}
    check_allocation(config, list(seg_exprs))
    strata = ("", *(s for s in seg_exprs if s in config.allocation))
    checked = table_checks(dataset, config, start, end, segment_set, counts=counts)
    covariates = _covariates(dataset.customers, config.metrics)
    balance = balance_columns(dataset.customers, config, segment_set)
    extra = {k: c for k, c in enumerate(balance) if c not in covariates}
    regs = regressors(dataset.customers, config.metrics)
    members = _members(
        dataset.customers,
        seg_exprs,
        strata,
        duplicates=checked.surplus > 0,
        covariates=covariates,
        balance=extra,
        regressors=regressor_columns(dataset.customers, regs),
        extra=customer_columns(start) if customer_columns is not None else None,
    )
    joined = _joined(units, per_user, members, measure_cols, hashed=counts and len(seg_exprs) > 1)
    users = UserTable(
        table=joined,
        units=units,
        members=members,
        segments=(ALL, *seg_exprs),
        strata=strata,
        measure_cols=measure_cols,
        value_columns=value_columns,
        covariates=covariates,
        caps=fixed_caps(config),
        start=start,
        end=end,
        outside=checked.outside,
        surplus=checked.surplus,
        invalid_values=checked.bad,
        values=checked.seen,
        events=checked.events,
        before_window=checked.before_window,
        segment_warnings=checked.segment_warnings,
        balance=balance,
        regressors=regs,
        exposed=exposed if written is not None else None,
    )
    return with_quantile_caps(users, config) if quantile_caps else users


def _joined(
    units: ir.Table,
    per_user: ir.Table,
    members: ir.Table,
    measure_cols: dict[Measure, str],
    *,
    hashed: bool = False,
) -> ir.Table:
    """Every unit with its measures (0 without events) and its segment memberships.

    ``hashed`` adds the two id hashes whose sums per segment tell segments with the
    same analysed users apart (:func:`~experiment.engine.quality.quality_columns`).
    """
    import ibis

    measures = (*measure_cols.values(), *QUALITY_COLUMNS)
    key = key_of(units)
    t = units.left_join(per_user, units[key] == per_user[key]).select(
        "user_id",
        "arm",
        "arms_seen",
        "assigned_at",
        *([UID] if UID in units.columns else []),
        *[ibis.coalesce(per_user[c], 0).name(c) for c in measures],
        **(fingerprint_hashes(units) if hashed else {}),
    )
    return t.left_join(members, t.user_id == members.user_id).drop("user_id_right")


def _units(
    dataset: Dataset,
    config: ExperimentConfig,
    written: Callable[[ir.Table], ir.Table] | None = None,
) -> ir.Table:
    """One row per user of this experiment: arm, number of arms seen, first assignment.

    ``written`` writes them once, keyed by their row id (``__uid__``), which the
    per-user table then carries.

    Users seen in several arms stay in the table (``arms_seen > 1``) so that the
    main query counts them; every aggregate excludes them. ``arms_seen`` is 1 or
    2 ("more than one"): min and max of the arm tell that without the second
    hash aggregate a ``COUNT(DISTINCT arm)`` costs.
    """
    import ibis

    a = dataset.assignments
    a = a.filter((a.experiment == config.name) & a.arm.isin(list(config.arms)))
    per_user = a.group_by("user_id").aggregate(
        arm=a.arm.min(), last_arm=a.arm.max(), assigned_at=a.assigned_at.min()
    )
    units = per_user.select(
        user_id=per_user.user_id.cast("string"),
        arm=per_user.arm,
        arms_seen=ibis.ifelse(per_user.arm == per_user.last_arm, 1, 2),
        assigned_at=per_user.assigned_at,
    )
    if written is None:
        return units
    units = written(units)
    return units.mutate(**{UID: units.rowid()})


def _covariates(customers: ir.Table, metrics: list[MetricSpec]) -> tuple[str, ...]:
    """The customers columns used as CUPED covariates, each checked to be numeric.

    Raises:
        ConfigError: a metric's ``cuped`` column is missing or not numeric.
    """
    out: list[str] = []
    for metric in metrics:
        if metric.cuped is None:
            continue
        col = metric.cuped
        if col not in customers.columns or not customers[col].type().is_numeric():
            numeric = [c for c in customers.columns if customers[c].type().is_numeric()]
            what = "is not numeric" if col in customers.columns else "is not a column"
            raise ConfigError(
                f"metric {metric.name!r}: field 'cuped': {col!r} {what} of the customers "
                f"table; numeric columns are: {', '.join(numeric) or 'none'}"
            )
        out += [col] if col not in out else []
    return tuple(out)


def _members(
    customers: ir.Table,
    seg_exprs: dict[str, ir.BooleanValue],
    strata: tuple[str, ...],
    *,
    duplicates: bool,
    covariates: tuple[str, ...] = (),
    balance: dict[int, str] | None = None,
    regressors: dict[str, Any] | None = None,
    extra: Mapping[str, ir.Value] | None = None,
) -> ir.Table:
    """One row per customer id: rows per id, segment masks, allocation stratum, covariates.

    Segment memberships are bits of a few ``int64`` masks (:func:`segment_bit`),
    not a flag column each: at 1M users and 100 segments the per-user table then
    carries 2 columns instead of 100 and the pattern query groups by them
    (``CREATE TABLE`` of the per-user table 4.7-5.3 s -> 4.1-4.3 s of CPU; its
    ``GROUP BY`` 0.32 -> 0.04 s). ``balance`` names the balance covariates that
    are not CUPED covariates, by index; ``extra`` holds more columns (any row's
    value for a duplicated id).
    """
    import ibis

    cols: dict[str, Any] = {}
    zero = ibis.literal(0, type="int64")
    for si, expr in enumerate(seg_exprs.values(), start=1):  # a null rule value: not a member
        name, bit = segment_bit(si)
        term = ibis.ifelse(expr, ibis.literal(1 << bit, type="int64"), zero)
        cols[name] = cols[name] + term if name in cols else term
    if len(strata) > 1:
        branches = [(seg_exprs[name], k) for k, name in enumerate(strata) if k > 0]
        cols[STRATUM] = ibis.cases(*branches, else_=0)
    named = [(COVARIATE.format(k), c) for k, c in enumerate(covariates)]
    named += [(BALANCE.format(k), c) for k, c in (balance or {}).items()]
    for name, col in named:  # null, NaN and ±inf count as no history: 0
        value = as_float(customers[col])
        cols[name] = ibis.ifelse(value.isnan() | value.isinf(), 0.0, value)
    cols.update(regressors or {})
    cols.update(extra or {})
    m = customers.select(user_id=customers.user_id.cast("string"), **cols)
    if not duplicates:  # the common case: no GROUP BY over the customers
        return m.mutate(**{NCUST: ibis.literal(1)})
    aggs: dict[str, Any] = {NCUST: m.count()}
    for name in cols:
        # duplicated customers are excluded from every aggregate; any value will do
        if extra and name in extra:
            aggs[name] = m[name].arbitrary()
            continue
        aggs[name] = m[name].max()  # masks too: Ibis compiles no BIT_OR for Spark
    return m.group_by("user_id").aggregate(**aggs)


def _values(
    t: ir.Table,
    metric: MetricSpec,
    measure_cols: dict[Measure, str],
    caps: dict[str, float],
    covariates: tuple[str, ...],
) -> list[ir.NumericColumn]:
    """The per-user columns of one metric: ``[y]``, ``[y, x]`` (ratio) or ``[y, covariate]``."""
    import ibis

    cols = [t[measure_cols[m]].cast("float64") for m in metric.measures]
    if kind_plan(metric.kind).binary:
        # 1/0 as integers, then float64: PostgreSQL casts no boolean to float, and its
        # bare 1.0 is NUMERIC (whose sums come back as Decimal)
        cols = [ibis.ifelse(cols[0] > 0, 1, 0).cast("float64")]
    if metric.name in caps and math.isfinite(caps[metric.name]):
        cols = [ibis.least(cols[0], ibis.literal(caps[metric.name], type="float64"))]
    if metric.cuped is not None:  # covariate of users without a customer row: 0
        covariate = t[COVARIATE.format(covariates.index(metric.cuped))]
        cols.append(covariate.fill_null(0.0))
    return cols
