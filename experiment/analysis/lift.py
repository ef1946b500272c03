"""The analysis step: sufficient statistics in, typed results out.

Runs every (segment, metric, treatment arm) comparison at once per metric,
vectorised over segments, then corrects p-values for multiplicity and checks
the sample ratio. Reads no data: its input is :class:`experiment.engine.CellSums`.
"""

from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.analysis.quality import quality_checks
from experiment.plan import kind_plan
from experiment.results import (
    AnalysisResults,
    Heterogeneity,
    ResultRow,
    SegmentInfo,
    SegmentSrm,
    Srm,
    TimelinePoint,
)
from experiment.stats import (
    BayesResult,
    CupedResult,
    adjust_pvalues,
    bayes_beta_binomial,
    bayes_normal,
    cochran_q,
    cuped_ttest,
    mde_mean,
    ratio_ttest,
    sequential_interval,
    srm_test_many,
    welch_ttest,
)
from experiment.sums import JointSums, MeanSums

if TYPE_CHECKING:
    from experiment.config import ExperimentConfig, MetricSpec
    from experiment.engine import CellSums
    from experiment.stats import Alternative, LiftResult, SequentialResult
    from segments.definitions import SegmentSet

__all__ = ["analyze_cells", "arm_baselines"]


# Beta-Binomial read-outs: segments per thread below which a thread costs more than
# it saves, and the most threads.
_MIN_SLICE = 256
_MAX_WORKERS = 8


def _test(
    sums: MeanSums | JointSums, c: int, j: int, alpha: float, alternative: Alternative
) -> LiftResult:
    if isinstance(sums, JointSums):
        return ratio_ttest(sums[:, c], sums[:, j], alpha=alpha, alternative=alternative)
    return welch_ttest(sums[:, c], sums[:, j], alpha=alpha, alternative=alternative)


def arm_baselines(
    cells: CellSums, arm: str
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Each metric's per-user mean and standard deviation in one arm, per segment.

    Ratio metrics give the ratio of means and the standard deviation of its
    linearisation ``(y - r·x) / x̄`` (delta method), so one power formula serves
    every kind. Capped metrics are already capped in the sums.

    References:
        Deng, Knoblich & Lu (KDD 2018), "Applying the Delta Method in Metric
        Analytics": https://arxiv.org/abs/1803.06336
    """
    j = cells.arms.index(arm)
    out = {}
    for name, sums in cells.metrics.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            if isinstance(sums, JointSums):
                mean = sums.mean_y[:, j] / sums.mean_x[:, j]
                m2 = sums.m2_y[:, j] - 2 * mean * sums.c_xy[:, j] + mean**2 * sums.m2_x[:, j]
                var = np.maximum(m2, 0.0) / (sums.n[:, j] - 1) / sums.mean_x[:, j] ** 2
            else:
                mean, var = sums.mean[:, j], sums.var[:, j]
            out[name] = (mean, np.where(sums.n[:, j] >= 2, np.sqrt(var), np.nan))
    return out


def _lift(
    cells: CellSums,
    name: str,
    c: int,
    j: int,
    alpha: float,
    *,
    alternative: Alternative = "two-sided",
) -> LiftResult:
    """The lift of arm ``j`` over control ``c``: CUPED-adjusted when the metric has a covariate."""
    joint = cells.cuped.get(name)
    if joint is not None:
        return _cuped(joint, c, j, alpha, alternative)
    return _test(cells.metrics[name], c, j, alpha, alternative)


def _guardrail(
    cells: CellSums, metric: MetricSpec, c: int, j: int, alpha: float
) -> NDArray[np.bool_]:
    """Per segment: is ``lift_rel < -max_drop`` significant (one-sided, level ``alpha``)?

    Breached when the one-sided ``1 - alpha`` upper bound of ``lift_rel`` (the
    ``"less"`` test's ``ci_high``) is below ``-max_drop``; ``nan`` is not breached.
    """
    if metric.guardrail is None:
        return np.zeros(len(cells.segments), dtype=bool)
    upper = _lift(cells, metric.name, c, j, alpha, alternative="less").ci_high
    return np.nan_to_num(upper, nan=np.inf) < -metric.guardrail.max_drop


def _timeline(
    cells: CellSums, config: ExperimentConfig, hidden: set[str]
) -> tuple[TimelinePoint, ...]:
    """Cumulative relative lift and its confidence sequence per window day (sequential only).

    Each day runs the final analysis's test on the sums up to that day's end, so
    the last day's point is the final row's ``lift_rel``, ``seq_ci_low``,
    ``seq_ci_high``. Segments under the privacy floor are left out.
    """
    c = cells.arms.index(config.control)
    points = []
    for date, day in cells.timeline:
        for metric in config.metrics:
            for j, arm in enumerate(day.arms):
                if j == c:
                    continue
                res = _lift(day, metric.name, c, j, config.alpha)
                n_total = day.units[:, c] + day.units[:, j]
                seq = sequential_interval(
                    res, n_total, alpha=config.alpha, tuning=config.sequential_tuning
                )
                points += [
                    TimelinePoint(
                        date=date,
                        segment=segment,
                        metric=metric.name,
                        arm=arm,
                        lift_rel=float(res.lift_rel[si]),
                        ci_low=float(seq.seq_ci_low[si]),
                        ci_high=float(seq.seq_ci_high[si]),
                    )
                    for si, segment in enumerate(day.segments)
                    if segment not in hidden
                ]
    return tuple(points)


def _cuped(sums: JointSums, c: int, j: int, alpha: float, alternative: Alternative) -> CupedResult:
    return cuped_ttest(sums[:, c], sums[:, j], alpha=alpha, alternative=alternative)


def _bayes(
    sums: MeanSums | JointSums, kind: str, c: int, j: int, lift: LiftResult, *, cuped: bool
) -> BayesResult:
    """Chance to beat control and expected loss (absolute units, GrowthBook's risk).

    Proportions use Beta-Binomial posteriors; means, ratios and CUPED-adjusted
    lifts the normal approximation of the lift's sampling distribution under a
    flat prior.
    """
    if kind_plan(kind).bayes == "beta-binomial" and isinstance(sums, MeanSums) and not cuped:
        return _threaded_beta_binomial(sums[:, c], sums[:, j])
    return bayes_normal(lift)


def _threaded_beta_binomial(control: MeanSums, treatment: MeanSums) -> BayesResult:
    """:func:`bayes_beta_binomial` on one slice of segments per core, on threads.

    Its quadrature (Beta quantiles and incomplete beta functions) is most of the
    stats step's time at thousands of segments; the special functions release the
    GIL and each cell is computed on its own, so slicing changes nothing but the
    wall time.
    """
    size = control.n.size
    workers = min(os.cpu_count() or 1, _MAX_WORKERS, size // _MIN_SLICE)
    if workers <= 1:
        return bayes_beta_binomial(control, treatment)
    bounds = np.linspace(0, size, workers + 1).astype(int)
    slices = [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]

    def part(s: slice) -> BayesResult:
        return bayes_beta_binomial(control[s], treatment[s])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(part, slices))
    return BayesResult(
        **{f.name: np.concatenate([getattr(r, f.name) for r in parts]) for f in fields(BayesResult)}
    )


def _mde_rel(
    lift: LiftResult, n_c: NDArray[np.float64], n_t: NDArray[np.float64], config: ExperimentConfig
) -> NDArray[np.float64]:
    """Relative MDE of each cell at its own sample size and observed spread.

    The per-user standard deviation is backed out of the lift's standard error,
    ``sd = se / sqrt(1/n_c + 1/n_t)``, so one formula serves means, proportions and
    (linearised) ratios.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = lift.se_abs / np.sqrt(1.0 / n_c + 1.0 / n_t)
    mde = mde_mean(lift.mean_control, sd, n_c, n_t, alpha=config.alpha, power=config.power)
    return mde.mde_rel


def _heterogeneity(
    pending: list[tuple[str, str, str, int, LiftResult]], segment_set: SegmentSet | None
) -> tuple[Heterogeneity, ...]:
    """Cochran's Q across segments, per metric and arm, for exclusive segment sets only.

    Q assumes independent estimates: overlapping segments share users, so their
    lifts are correlated and Q would overstate heterogeneity. ``all`` (row 0) is
    never part of the family.
    """
    if segment_set is None or not segment_set.exclusive:
        return ()
    out = []
    for name, _kind, arm, _j, res in pending:
        q = cochran_q(res.lift_rel[1:], res.se_rel[1:])
        out.append(
            Heterogeneity(
                metric=name,
                q=float(q.q),
                p_value=float(q.p_value),
                i2=float(q.i2),
                arm=arm,
                segments=int(q.k),
            )
        )
    return tuple(out)


def _srm(cells: CellSums, config: ExperimentConfig) -> Srm:
    """SRM overall and per segment; expected shares mix the allocations by stratum size.

    A segment whose users were assigned under several allocations (a user's
    allocation is that of its highest-priority allocation segment) expects the
    mixture of their weights, weighted by the observed stratum sizes.
    """

    def shares(stratum: str) -> list[float]:
        alloc = config.allocation.get(stratum) if stratum else None
        weights = alloc.arms if alloc is not None and alloc.arms is not None else config.arms
        total = sum(weights.values())
        return [weights[a] / total for a in cells.arms]

    per_stratum = np.array([shares(s) for s in cells.strata])
    expected = np.broadcast_to(per_stratum[0], cells.units.shape).copy()
    if cells.strata_units is not None:
        mix = cells.strata_units.sum(axis=2) @ per_stratum
        total = mix.sum(axis=1, keepdims=True)
        expected = np.where(total > 0, mix / np.where(total > 0, total, 1), expected)
    res = srm_test_many(cells.units, expected, threshold=config.srm_threshold)
    observed = [dict(zip(cells.arms, n, strict=True)) for n in cells.units.astype(int).tolist()]
    p_values, flags = res.p_value.tolist(), res.flag.tolist()
    return Srm(
        p_value=p_values[0],
        observed=observed[0],
        expected={a: float(w) for a, w in zip(cells.arms, expected[0], strict=True)},
        flag=flags[0],
        threshold=config.srm_threshold,
        segments=tuple(
            SegmentSrm(segment=segment, p_value=p, observed=obs, flag=flag)
            for segment, p, obs, flag in zip(
                cells.segments[1:], p_values[1:], observed[1:], flags[1:], strict=True
            )
        ),
    )


def analyze_cells(
    cells: CellSums, config: ExperimentConfig, segment_set: SegmentSet | None
) -> AnalysisResults:
    """Test every treatment arm against control in every segment and metric.

    The multiple-testing family is one metric: all its segments (``all``
    included) and treatment arms, corrected with the experiment's method.
    """
    data_quality = quality_checks(cells.quality, invalid_threshold=config.invalid_revenue_threshold)
    c = cells.arms.index(config.control)
    pending: list[tuple[str, str, str, int, LiftResult]] = []
    for metric in config.metrics:
        for j, arm in enumerate(cells.arms):
            if j == c:
                continue
            res = _lift(cells, metric.name, c, j, config.alpha, alternative=metric.alternative)
            pending.append((metric.name, metric.kind, arm, j, res))
    covariates = {m.name: m.cuped for m in config.metrics if m.name in cells.cuped and m.cuped}

    p_raw = np.concatenate([res.p_value for *_, res in pending])
    groups = np.concatenate([[name] * len(res.p_value) for name, *_, res in pending])
    p_adj = adjust_pvalues(p_raw, method=config.correction, groups=groups)

    rows: list[ResultRow] = []
    offset = 0
    specs = {m.name: m for m in config.metrics}
    for name, kind, arm, j, res in pending:
        breached = _guardrail(cells, specs[name], c, j, config.alpha)
        bayes = _bayes(cells.metrics[name], kind, c, j, res, cuped=name in covariates)
        seq: SequentialResult | None = None
        if config.sequential:
            n_total = cells.units[:, c] + cells.units[:, j]
            seq = sequential_interval(
                res, n_total, alpha=config.alpha, tuning=config.sequential_tuning
            )
        mde_rel = _mde_rel(res, cells.units[:, c], cells.units[:, j], config)
        alternative = specs[name].alternative
        test = kind_plan(kind).method + ("" if alternative == "two-sided" else f" ({alternative})")
        method = f"{test}, {config.correction}"
        if name in covariates:
            method = f"cuped({covariates[name]}) {method}"
        reduction = res.variance_reduction if isinstance(res, CupedResult) else None
        if seq is not None:
            method += ", confidence sequence"
        rows += _rows(
            cells,
            config,
            res,
            where=(name, arm, c, j, offset),
            extra=(method, kind, bayes, seq, mde_rel, reduction, breached, p_raw, p_adj),
        )
        offset += len(cells.segments)

    defs = {s.name: s for s in segment_set.segments} if segment_set else {}
    segments = tuple(
        SegmentInfo(
            name=name,
            where=defs[name].where if name in defs else "",
            description=defs[name].description if name in defs else "all assigned users",
            users=users,
        )
        for name, users in zip(
            cells.segments, cells.units.sum(axis=1).astype(int).tolist(), strict=True
        )
    )
    floor = segment_set.min_size if segment_set is not None else 0
    hidden = {seg.name for seg in segments[1:] if seg.users < floor}  # [0] is `all`
    rows, segments, srm = _suppress(rows, segments, _srm(cells, config), hidden)
    notes: tuple[str, ...] = ()
    if segment_set is not None:
        notes = (
            "segments: exclusive (priority order, first match wins, plus rest)"
            if segment_set.exclusive
            else "segments: overlapping (each segment analysed on its own)",
        )
        if hidden:
            notes += (f"{len(hidden)} segment(s) below {floor} users withheld (privacy floor)",)
    return AnalysisResults(
        experiment=config.name,
        control=config.control,
        srm=srm,
        notes=notes,
        results=tuple(rows),
        alpha=config.alpha,
        correction=config.correction,
        arms=cells.arms,
        window_start=cells.window_start.isoformat(),
        window_end=cells.window_end.isoformat(),
        segments=segments,
        data_quality=data_quality,
        heterogeneity=_heterogeneity(pending, segment_set),
        timeline=_timeline(cells, config, hidden),
        cuped_covariates=covariates,
    )


def _rows(
    cells: CellSums,
    config: ExperimentConfig,
    res: LiftResult,
    *,
    where: tuple[str, str, int, int, int],
    extra: tuple[Any, ...],
) -> list[ResultRow]:
    """One metric and arm's :class:`ResultRow` per segment, built from whole columns.

    ``where`` is (metric, arm, control column, arm column, offset into the p-values);
    ``extra`` the per-segment results of the other methods. Every array becomes a
    Python list once (``tolist``), not one numpy scalar per field and row: at
    10,000 cells that is most of the time spent building rows.
    """
    name, arm, c, j, offset = where
    method, kind, bayes, seq, mde_rel, reduction, breached, p_raw, p_adj = extra
    size = len(cells.segments)
    nan = [math.nan] * size
    part = slice(offset, offset + size)

    def floats(values: NDArray[np.float64] | None) -> list[float]:
        return nan if values is None else np.asarray(values, dtype=np.float64).tolist()

    columns = zip(
        cells.segments,
        cells.units[:, c].astype(np.int64).tolist(),
        cells.units[:, j].astype(np.int64).tolist(),
        floats(res.mean_control),
        floats(res.mean_treatment),
        floats(res.lift_abs),
        floats(res.lift_rel),
        floats(res.ci_low),
        floats(res.ci_high),
        floats(res.ci_abs_low),
        floats(res.ci_abs_high),
        floats(p_raw[part]),
        floats(p_adj[part]),
        (p_adj[part] < config.alpha).tolist(),
        res.reason.tolist(),
        floats(bayes.chance_to_win),
        floats(bayes.expected_loss),
        floats(seq.seq_p_value if seq is not None else None),
        floats(seq.seq_ci_low if seq is not None else None),
        floats(seq.seq_ci_high if seq is not None else None),
        floats(mde_rel),
        floats(reduction),
        (~(mde_rel <= config.target_lift)).tolist(),  # nan counts as underpowered
        np.asarray(breached, dtype=bool).tolist(),
        strict=True,
    )
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
            mde_rel=mde,
            cuped_variance_reduction=cuped,
            underpowered=underpowered,
            guardrail_breached=breach,
        )
        for (
            segment, n_c, n_t, mean_c, mean_t, lift_abs, lift_rel, ci_low, ci_high,
            ci_abs_low, ci_abs_high, p_value, p_adjusted, significant, reason, chance, loss,
            seq_p, seq_low, seq_high, mde, cuped, underpowered, breach,
        ) in columns
    ]  # fmt: skip


_WITHHELD = (
    "mean_control", "mean_treatment", "lift_abs", "lift_rel", "ci_low", "ci_high",
    "ci_abs_low", "ci_abs_high", "p_value", "p_adjusted", "cuped_variance_reduction",
    "chance_to_win", "expected_loss", "seq_p_value", "seq_ci_low", "seq_ci_high", "mde_rel",
)  # fmt: skip


def _suppress(
    rows: list[ResultRow], segments: tuple[SegmentInfo, ...], srm: Srm, hidden: set[str]
) -> tuple[list[ResultRow], tuple[SegmentInfo, ...], Srm]:
    """Withhold every number of segments under the privacy floor (``min_size`` users).

    Their rows keep segment, metric and arm, get ``suppressed=True`` and ``nan``
    numbers (``null`` in results.json); their sizes and per-segment SRM are dropped.
    """
    if not hidden:
        return rows, segments, srm
    nan: dict[str, Any] = {name: math.nan for name in _WITHHELD}
    rows = [
        replace(
            r,
            **nan,
            n_control=0,
            n_treatment=0,
            significant=False,
            guardrail_breached=False,
            suppressed=True,
        )
        if r.segment in hidden
        else r
        for r in rows
    ]
    segments = tuple(
        replace(s, users=0, suppressed=True) if s.name in hidden else s for s in segments
    )
    srm = replace(srm, segments=tuple(s for s in srm.segments if s.segment not in hidden))
    return rows, segments, srm
