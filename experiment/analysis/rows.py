"""The :class:`~experiment.results.ResultRow` objects of one metric and treatment arm."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from experiment.plan import kind_plan
from experiment.results import ResultRow
from experiment.stats import CupedResult

if TYPE_CHECKING:
    from collections.abc import Iterator

    from numpy.typing import NDArray

    from experiment.stats import (
        AdjustedInterval,
        Alternative,
        BayesResult,
        LiftResult,
        SequentialResult,
    )
    from experiment.sums import CellSums

__all__ = ["RELATIVE_CI", "Comparison", "method_label", "result_rows"]

# How ``ci_low``/``ci_high`` are built, per ``LiftResult.relative_interval``
# (``experiment.stats._relative``: ``lift_result`` and ``cuped_ttest``'s own branch).
RELATIVE_CI = {
    "fieller": "fieller relative CI",
    "log": "log-ratio relative CI",
    "delta": "delta-method relative CI",
}
_CORRECTION = {"holm": "holm", "bh": "bh", "none": "no correction"}


def method_label(
    kind: str,
    *,
    covariate: str | None,
    alternative: Alternative,
    correction: str,
    sequential: bool,
    relative_interval: str = "fieller",
) -> str:
    """The rows' ``method``: what ran, in the order it ran, comma-separated.

    The test (``welch-t``: ``welch_ttest``; ``delta-method welch-t``: ``ratio_ttest``;
    ``cuped(COLUMN) welch-t``: ``cuped_ttest`` on that covariate, ``cuped(A + B) …``:
    the regression adjustment, ``cuped(…) delta-method welch-t`` on a ratio), its alternative when
    one-sided, the relative interval's construction, the multiple-testing correction,
    and ``confidence sequence`` when ``sequential_interval`` ran.

    Examples:
        >>> method_label("ratio", covariate=None, alternative="two-sided", correction="holm",
        ...              sequential=False)
        'delta-method welch-t, fieller relative CI, holm'
        >>> method_label("mean", covariate="revenue_90d", alternative="greater",
        ...              correction="none", sequential=True, relative_interval="log")
        'cuped(revenue_90d) welch-t (greater), log-ratio relative CI, no correction, confidence sequence'
    """  # noqa: E501
    test = kind_plan(kind).method
    test = test if covariate is None else f"cuped({covariate}) {test}"
    if alternative != "two-sided":
        test += f" ({alternative})"
    parts = [test, RELATIVE_CI[relative_interval], _CORRECTION.get(correction, correction)]
    if sequential:
        parts.append("confidence sequence")
    return ", ".join(parts)


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """What the rows of one metric and treatment arm show, one element per segment.

    Attributes:
        metric: The metric's name.
        kind: The metric's kind.
        arm: The treatment arm.
        method: The rows' ``method`` label.
        c: The control arm's column in the cell sums.
        j: The treatment arm's column.
        lift: The test's result.
        p_value: Its p-values before correction.
        p_adjusted: After the experiment's multiple-testing correction.
        bayes: Chance to win and expected loss.
        seq: The confidence sequence (sequential experiments only).
        mde_rel: The relative MDE at each cell's size.
        reduction: CUPED's share of variance removed (CUPED metrics only).
        breached: The guardrail's verdict.
        higher_is_better: The metric's direction.
        family: Each row's multiple-testing family (``""``: in none).
        family_size: How many tests were corrected in that family.
        adjusted: The intervals adjusted for the multiple-testing family.
    """

    metric: str
    kind: str
    arm: str
    method: str
    c: int
    j: int
    lift: LiftResult
    p_value: NDArray[np.float64]
    p_adjusted: NDArray[np.float64]
    bayes: BayesResult
    seq: SequentialResult | None
    mde_rel: NDArray[np.float64]
    adjusted: AdjustedInterval | None = None
    reduction: NDArray[np.float64] | None
    breached: NDArray[np.bool_]
    higher_is_better: bool = True
    family: tuple[str, ...] = ()
    family_size: NDArray[np.int64] | None = None


def result_rows(
    cells: CellSums, comp: Comparison, *, alpha: float, target_lift: float
) -> list[ResultRow]:
    """One :class:`ResultRow` per segment, built from whole columns.

    Every array becomes a Python list once (``tolist``), not one numpy scalar per
    field and row, which would be most of the time spent building rows.
    """
    name, arm, method, kind = comp.metric, comp.arm, comp.method, comp.kind
    return [
        ResultRow(
            segment=segment,
            metric=name,
            arm=arm,
            n_control=n_c,
            n_treatment=n_t,
            mean_control=mean_c,
            mean_treatment=mean_t,
            lift_abs=lift_abs,
            lift_rel=lift_rel,
            ci_low=ci_low,
            ci_high=ci_high,
            ci_abs_low=ci_abs_low,
            ci_abs_high=ci_abs_high,
            p_value=p_value,
            p_adjusted=p_adjusted,
            significant=significant,
            method=method,
            metric_kind=kind,
            reason=reason,
            chance_to_win=chance,
            expected_loss=loss,
            seq_p_value=seq_p,
            seq_ci_low=seq_low,
            seq_ci_high=seq_high,
            ci_adj_low=adj_low,
            ci_adj_high=adj_high,
            ci_abs_adj_low=adj_abs_low,
            ci_abs_adj_high=adj_abs_high,
            mde_rel=mde,
            cuped_variance_reduction=cuped,
            mean_control_adj=adj_c,
            mean_treatment_adj=adj_t,
            underpowered=underpowered,
            guardrail_breached=breach,
            higher_is_better=comp.higher_is_better,
            family=family,
            family_size=family_size,
        )
        for (
            segment, n_c, n_t, mean_c, mean_t, lift_abs, lift_rel, ci_low, ci_high,
            ci_abs_low, ci_abs_high, p_value, p_adjusted, significant, reason, chance, loss,
            seq_p, seq_low, seq_high, mde, cuped, adj_c, adj_t, underpowered, breach,
            family, family_size,
            adj_low, adj_high, adj_abs_low, adj_abs_high,
        ) in _columns(cells, comp, alpha=alpha, target_lift=target_lift)
    ]  # fmt: skip


def _columns(
    cells: CellSums, comp: Comparison, *, alpha: float, target_lift: float
) -> Iterator[tuple[Any, ...]]:
    """The rows' values, column by column as Python lists, zipped into one tuple per segment."""
    nan = [math.nan] * len(cells.segments)
    res, bayes, seq, ci_adj = comp.lift, comp.bayes, comp.seq, comp.adjusted
    adjusted = res if isinstance(res, CupedResult) else None

    def floats(values: NDArray[np.float64] | None) -> list[float]:
        return nan if values is None else np.asarray(values, dtype=np.float64).tolist()

    return zip(
        cells.segments,
        cells.units[:, comp.c].astype(np.int64).tolist(),
        cells.units[:, comp.j].astype(np.int64).tolist(),
        floats(res.mean_control),
        floats(res.mean_treatment),
        floats(res.lift_abs),
        floats(res.lift_rel),
        floats(res.ci_low),
        floats(res.ci_high),
        floats(res.ci_abs_low),
        floats(res.ci_abs_high),
        floats(comp.p_value),
        floats(comp.p_adjusted),
        (comp.p_adjusted < alpha).tolist(),
        res.reason.tolist(),
        floats(bayes.chance_to_win),
        floats(bayes.expected_loss),
        floats(seq.seq_p_value if seq is not None else None),
        floats(seq.seq_ci_low if seq is not None else None),
        floats(seq.seq_ci_high if seq is not None else None),
        floats(comp.mde_rel),
        floats(comp.reduction),
        floats(adjusted.mean_control_adj if adjusted is not None else None),
        floats(adjusted.mean_treatment_adj if adjusted is not None else None),
        (~(comp.mde_rel <= target_lift)).tolist(),  # nan counts as underpowered
        np.asarray(comp.breached, dtype=bool).tolist(),
        list(comp.family) or [""] * len(cells.segments),
        [0] * len(cells.segments) if comp.family_size is None else comp.family_size.tolist(),
        floats(ci_adj.ci_adj_low if ci_adj is not None else None),
        floats(ci_adj.ci_adj_high if ci_adj is not None else None),
        floats(ci_adj.ci_abs_adj_low if ci_adj is not None else None),
        floats(ci_adj.ci_abs_adj_high if ci_adj is not None else None),
        strict=True,
    )
