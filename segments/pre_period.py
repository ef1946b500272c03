"""Pre-period baselines per segment for ``exp segments validate``, computed in the engine.

A metric is a numeric column (a mean) or a rule (a proportion) of the customers
table; with a CUPED covariate column, the sums of metric and covariate give the
variance reduction ``ρ²`` per segment. One aggregate query for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.errors import RuleError
from experiment.plan import kind_plan
from experiment.stats import arm_moments, cuped_reduction, cuped_variance_reduction, mde_cell
from segments.compile import Compiler
from segments.rules import Column, parse_rule

if TYPE_CHECKING:
    import datetime as dt

    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from experiment.stats import Alternative, MdeResult
    from experiment.sums import CellSums

__all__ = ["Baseline", "baselines_from_cells", "baselines_from_columns"]


@dataclass(frozen=True, kw_only=True)
class Baseline:
    """A metric's baseline per segment (aligned with the segment names).

    ``binary``: the per-user value is 0/1 (``sd`` is then ``√(p(1−p))`` from the
    mean). ``variance_reduction``: CUPED's ``ρ²`` with the metric's covariate (0
    without one). ``sizes``: the (control, smallest treatment) users per segment
    when the experiment is assigned, so the MDE is at the current split; ``None``
    projects them from the segment size, traffic and arm shares.
    """

    binary: bool
    mean: NDArray[np.float64]
    sd: NDArray[np.float64]
    alternative: Alternative = "two-sided"
    variance_reduction: NDArray[np.float64] | None = None
    sizes: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
    cuped: bool = False

    def mde(
        self,
        projected: tuple[NDArray[np.float64], NDArray[np.float64]],
        *,
        alpha: float,
        power: float,
    ) -> MdeResult:
        """The one MDE (:func:`experiment.stats.mde_cell`) per segment.

        At ``sizes`` when known, else at the ``projected`` (control, treatment) users.
        """
        n_c, n_t = self.sizes if self.sizes is not None else projected
        reduction = 0.0 if self.variance_reduction is None else self.variance_reduction
        return mde_cell(
            self.mean,
            self.sd**2,
            n_c,
            n_t,
            alpha=alpha,
            power=power,
            alternative=self.alternative,
            variance_reduction=reduction,
        )


def _metric_value(compiler: Compiler, text: str) -> tuple[bool, Any]:
    """Whether the metric is 0/1 per user, and its value.

    A numeric column gives a mean metric; a boolean column or a rule a proportion
    (the share where it holds).
    """
    name = text.strip()
    if name.isidentifier() and name not in ("lifecycle",):
        col = compiler.column(Column(name, 0))
        if col.type().is_boolean():
            return True, col.cast("float64")
        if not col.type().is_numeric():
            raise RuleError(f"metric column {name!r} is {col.type()}; use a numeric column")
        return False, col.cast("float64")
    return True, compiler.rule(parse_rule(text)).fill_null(False).cast("float64")


def _covariate_sums(
    flat: ir.Table, value: ir.FloatingValue, x: ir.FloatingValue, mask: ir.BooleanValue, key: str
) -> dict[str, Any]:
    """The sums ``n, Σy, Σx, Σy², Σx², Σxy`` of metric and covariate over a segment."""
    both = mask & value.notnull() & x.notnull()
    return {
        f"n_{key}": both.sum(),
        f"y_{key}": value.sum(where=both),
        f"x_{key}": x.sum(where=both),
        f"yy_{key}": (value * value).sum(where=both),
        f"xx_{key}": (x * x).sum(where=both),
        f"xy_{key}": (value * x).sum(where=both),
    }


def _reduction(row: dict[str, Any], key: str) -> float:
    """``ρ²`` from one segment's raw sums (centred here, in float64)."""
    n = float(row[f"n_{key}"] or 0)
    if n < 2:
        return 0.0
    sy, sx = float(row[f"y_{key}"]), float(row[f"x_{key}"])
    m2_y = float(row[f"yy_{key}"]) - sy * sy / n
    m2_x = float(row[f"xx_{key}"]) - sx * sx / n
    c_xy = float(row[f"xy_{key}"]) - sx * sy / n
    return float(cuped_variance_reduction(m2_y, m2_x, c_xy))


def baselines_from_columns(
    table: ir.Table,
    masks: dict[str, ir.BooleanValue],
    metrics: dict[str, str],
    *,
    as_of: dt.datetime | None,
    covariates: dict[str, str] | None = None,
) -> dict[str, Baseline]:
    """Per-segment baselines of pre-period metrics given as a column or a rule.

    ``covariates`` maps a metric to a numeric CUPED covariate column; its variance
    reduction ``ρ²`` is measured per segment from sums computed in the engine.

    Raises:
        RuleError: a metric or covariate names an unknown column or is not a valid rule.
    """
    if not metrics or not masks:
        return {}
    compiler = Compiler(table, as_of=as_of)
    values: dict[str, tuple[bool, Any]] = {}
    for name, text in {**metrics, **{f"~{k}": v for k, v in (covariates or {}).items()}}.items():
        try:
            values[name] = _metric_value(compiler, text)
        except RuleError as exc:
            raise RuleError(
                f"{'cuped' if name[0] == '~' else 'metric'} {name.lstrip('~')!r}: {exc}"
            ) from None
    cols = {f"s{i}": m for i, m in enumerate(masks.values())}
    cols.update({f"v{i}": v for i, (_, v) in enumerate(values.values())})
    flat = table.select(**cols)  # each rule and metric evaluated once per row
    index = {name: i for i, name in enumerate(values)}
    aggs: dict[str, Any] = {}
    for si in range(len(masks)):
        for name in metrics:
            value, mask, mi = flat[f"v{index[name]}"], flat[f"s{si}"], index[name]
            aggs[f"m_{si}_{mi}"] = value.mean(where=mask)
            aggs[f"s_{si}_{mi}"] = value.std(how="sample", where=mask)
            if f"~{name}" in index:
                x = flat[f"v{index[f'~{name}']}"]
                aggs |= _covariate_sums(flat, value, x, mask, f"{si}_{mi}")
    row = flat.aggregate(**aggs).to_pyarrow().to_pylist()[0]

    def grid(prefix: str, mi: int) -> NDArray[np.float64]:
        got = [row[f"{prefix}_{si}_{mi}"] for si in range(len(masks))]
        return np.array([np.nan if v is None else v for v in got], dtype=np.float64)

    out = {}
    for name in metrics:
        mi, binary = index[name], values[name][0]
        mean = grid("m", mi)
        sd = np.sqrt(mean * (1 - mean)) if binary else grid("s", mi)
        cuped = f"~{name}" in index
        reduction = [_reduction(row, f"{si}_{mi}") if cuped else 0.0 for si in range(len(masks))]
        out[name] = Baseline(
            binary=binary, mean=mean, sd=sd, variance_reduction=np.array(reduction), cuped=cuped
        )
    return out


def baselines_from_cells(
    cells: CellSums, config: ExperimentConfig, *, sizes: bool
) -> dict[str, Baseline]:
    """Each metric's control-arm mean, sd and CUPED ``ρ²`` per segment (``all`` dropped).

    The same inputs ``exp analyze`` and ``exp power`` hand the MDE. With ``sizes``,
    also the (control, smallest treatment) users per segment, so the MDE is the
    one ``exp analyze`` reports for the same cell.
    """
    c = cells.arms.index(config.control)
    n_t = np.delete(cells.units, c, axis=1).min(axis=1)
    out: dict[str, Baseline] = {}
    for metric in config.metrics:
        mean, var = arm_moments(cells, metric.name, c)  # [0] is `all`
        out[metric.name] = Baseline(
            binary=kind_plan(metric.kind).binary,
            mean=mean[1:],
            sd=np.sqrt(var[1:]),
            alternative=metric.alternative,
            variance_reduction=cuped_reduction(cells, metric.name, c)[1:],
            sizes=(cells.units[1:, c], n_t[1:]) if sizes else None,
            cuped=metric.name in cells.cuped or metric.name in cells.regression,
        )
    return out
