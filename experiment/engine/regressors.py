"""Regression covariates: the customers columns of ``cuped: [a, b, …]``, one-hot encoded.

A metric with a list of covariates is adjusted by all of them at once
(:func:`experiment.stats.regression_ttest`). Each listed customers column becomes
one or more per-user regressors on the per-user table: a numeric (or boolean, as
0/1) column as it is (null, NaN and ±inf count as 0, as for CUPED); any other
column one-hot encoded, one 0/1 indicator per level among its
:data:`MAX_LEVELS` most frequent, named ``column=level``. The reference level,
which gets no indicator, is ``other``: the rarer levels and null, when there are
any; otherwise the least frequent level. The levels come from one small
``value_counts`` query per categorical column over the whole customers table (pre-
treatment, so the choice cannot depend on the outcome).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from experiment.engine.fetch import rows
from experiment.engine.moments import as_float
from experiment.errors import ConfigError

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import MetricSpec

__all__ = ["MAX_LEVELS", "REG", "Regressors", "regressor_columns", "regressors"]

MAX_LEVELS = 20
"""Indicators per categorical column; rarer levels fold into the reference ``other``."""

REG = "__reg__{}__"  # per-user table column of regressor k

_Regressor = tuple[str, str, Any]  # (name, column, level or None for numeric)


@dataclass(frozen=True, kw_only=True)
class Regressors:
    """The regressors of every metric with a list of covariates.

    Attributes:
        specs: Per regressor ``(name, column, level)``; ``level`` is ``None`` for a
            numeric column.
        by_metric: Per metric name, the indices of its regressors, in list order.
    """

    specs: tuple[_Regressor, ...] = ()
    by_metric: dict[str, tuple[int, ...]] = field(default_factory=dict)
    shifts: tuple[float, ...] = ()

    def shift(self, k: int) -> float:
        """The constant subtracted from regressor ``k`` in the engine (0 for indicators)."""
        return self.shifts[k] if k < len(self.shifts) else 0.0

    def denominator(self, metric: int) -> int:
        """The index a ratio metric's denominator takes among the regressors' sums.

        A ratio adjusted by covariates needs their cross-moments with its numerator
        and its denominator (the delta method's linearisation): the denominator joins
        the sums as one more regressor, past the listed ones (no shift).
        """
        return len(self.specs) + metric

    @property
    def names(self) -> tuple[str, ...]:
        """The regressors' names: the column, or ``column=level`` for an indicator."""
        return tuple(name for name, _, _ in self.specs)


def regressors(customers: ir.Table, metrics: list[MetricSpec]) -> Regressors:
    """The regressors of the metrics' ``cuped`` lists (one query per categorical column).

    Raises:
        ConfigError: a listed column is not a customers column, or a categorical
            column has a single level (nothing to adjust by).
    """
    specs: list[_Regressor] = []
    of_column: dict[str, tuple[int, ...]] = {}
    by_metric: dict[str, tuple[int, ...]] = {}
    for metric in metrics:
        for col in metric.covariates or ():
            if col not in of_column:
                start = len(specs)
                specs += _expand(customers, metric.name, col)
                of_column[col] = tuple(range(start, len(specs)))
        if metric.covariates:
            by_metric[metric.name] = tuple(k for c in metric.covariates for k in of_column[c])
    return Regressors(specs=tuple(specs), by_metric=by_metric, shifts=_shifts(customers, specs))


def _shifts(customers: ir.Table, specs: list[_Regressor]) -> tuple[float, ...]:
    """Per regressor, its mean over the customers rounded to an integer (one query).

    The engine sums ``x - shift``: the cross-moments come from power sums, which
    cancel when a column's mean dwarfs its spread (a year, an id-like amount); shifted
    near 0 they do not, and an integer shift keeps integer data exact.
    """
    numeric = {k: col for k, (_, col, level) in enumerate(specs) if level is None}
    if not numeric:
        return tuple(0.0 for _ in specs)
    aggs = {f"m{k}": _clean(customers, col).mean() for k, col in numeric.items()}
    row = rows(customers.aggregate(**aggs))[0]
    out = []
    for k in range(len(specs)):
        mean = row.get(f"m{k}")
        out.append(float(round(mean)) if mean is not None and math.isfinite(mean) else 0.0)
    return tuple(out)


def _clean(customers: ir.Table, col: str) -> ir.FloatingValue:
    """A numeric column as float64, null, NaN and ±inf as 0 (as for CUPED)."""
    import ibis

    value = as_float(customers[col])
    clean: ir.FloatingValue = ibis.ifelse(value.isnan() | value.isinf(), 0.0, value).fill_null(0.0)
    return clean


def _expand(customers: ir.Table, metric: str, col: str) -> list[_Regressor]:
    """One regressor for a numeric column; one indicator per kept level otherwise."""
    if col not in customers.columns or col == "user_id":
        raise ConfigError(
            f"metric {metric!r}: field 'cuped': {col!r} is not a column of the customers "
            f"table; columns are: {', '.join(c for c in customers.columns if c != 'user_id')}"
        )
    dtype = customers[col].type()
    if dtype.is_numeric() or dtype.is_boolean():
        return [(col, col, None)]
    if not dtype.is_string():  # a time, a list, a struct: its levels would mean nothing
        raise ConfigError(
            f"metric {metric!r}: field 'cuped': column {col!r} is of type {dtype}; a covariate "
            "is a numeric, boolean or text (categorical) column, e.g. days since signup "
            "computed beforehand"
        )
    counts = rows(customers[col].value_counts())
    ranked = sorted(
        ((r[col], int(r[f"{col}_count"])) for r in counts if r[col] is not None),
        key=lambda level: (-level[1], str(level[0])),
    )
    has_null = any(r[col] is None for r in counts)
    if len(ranked) + has_null < 2:
        raise ConfigError(
            f"metric {metric!r}: field 'cuped': column {col!r} has a single value; "
            "a categorical covariate needs two or more levels"
        )
    kept = ranked[:MAX_LEVELS]
    if len(ranked) <= MAX_LEVELS and not has_null:
        kept = kept[:-1]  # the least frequent level is the reference
    return [(f"{col}={level}", col, level) for level, _ in kept]


def regressor_columns(customers: ir.Table, regs: Regressors) -> dict[str, ir.FloatingValue]:
    """The per-user regressor columns, ``REG.format(k)``: shifted values or 0/1 indicators.

    A user without a customers row has no value here; :mod:`experiment.engine.cells`
    fills in ``-shift`` (the value 0, shifted), as CUPED counts such a user as 0.
    """
    import ibis

    cols: dict[str, ir.FloatingValue] = {}
    for k, (_, col, level) in enumerate(regs.specs):
        if level is None:  # null, NaN and ±inf count as 0, as for CUPED; then shifted
            cols[REG.format(k)] = _clean(customers, col) - regs.shift(k)
        else:
            hit = (customers[col] == level).fill_null(False)
            cols[REG.format(k)] = ibis.ifelse(hit, 1.0, 0.0)
    return cols
