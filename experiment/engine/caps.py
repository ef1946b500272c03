"""Caps of capped metrics: fixed values from the config, quantiles from the engine.

A metric's ``cap`` bounds each user's value before any sum (winsorising the top).
A fixed ``value`` is read off the config; a ``quantile`` is computed over the
analysed users of every arm, so it does not depend on the arm.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from experiment.engine.fetch import rows

if TYPE_CHECKING:
    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from experiment.engine.users import UserTable

__all__ = ["CAP", "cap_quantiles", "fixed_caps", "with_quantile_caps"]

CAP = "__cap__{}__"  # column of metric index's quantile cap


def fixed_caps(config: ExperimentConfig) -> dict[str, float]:
    """The caps given as a fixed ``value``."""
    return {
        m.name: float(m.cap.value)
        for m in config.metrics
        if m.cap is not None and m.cap.value is not None
    }


def cap_quantiles(users: UserTable, config: ExperimentConfig) -> ir.Table | None:
    """One row: the quantile cap of each quantile-capped metric, as column ``CAP.format(mi)``.

    ``None`` if no metric needs one (fixed caps and metrics already in ``users.caps``
    are left out). A cap is the exact quantile with linear interpolation (numpy's
    default ``np.quantile``; Ibis compiles it to DuckDB's ``quantile_cont``, Spark's
    ``percentile``, PostgreSQL's and Snowflake's ``percentile_cont``, never to an
    approximate quantile; BigQuery has none) of the raw per-user value over the analysed users of
    every arm (not those seen in two arms or with duplicate customer rows), so it
    does not depend on the arm. :func:`with_quantile_caps` runs it;
    :func:`experiment.engine.aggregate` cross joins it to the per-user table.
    """
    t, valid = users.table, users.valid()
    caps: dict[str, ir.FloatingScalar] = {}
    for mi, metric in enumerate(config.metrics):
        if metric.cap is None or metric.cap.quantile is None or metric.name in users.caps:
            continue
        raw = t[users.measure_cols[metric.measures[0]]].cast("float64")
        caps[CAP.format(mi)] = raw.quantile(metric.cap.quantile, where=valid)
    return t.aggregate(**caps) if caps else None


def with_quantile_caps(users: UserTable, config: ExperimentConfig) -> UserTable:
    """``users`` with its quantile caps filled in, all from one scalar query.

    :func:`experiment.engine.user_table` runs it by default; a caller that reads the
    per-user table more than once caches the table first and runs it on the cache,
    so that the cap query does not build the table again.
    """
    query = cap_quantiles(users, config)
    if query is None:
        return users
    names = {CAP.format(mi): m.name for mi, m in enumerate(config.metrics)}
    caps = dict(users.caps)
    for key, value in rows(query)[0].items():
        caps[names[key]] = math.nan if value is None else float(value)
    return replace(users, caps=caps)
