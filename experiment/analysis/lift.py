"""The analysis step: sufficient statistics in, typed results out.

Runs every (segment, metric, treatment arm) comparison at once per metric,
vectorised over segments (:mod:`~experiment.analysis.compare`), then corrects
p-values for multiplicity, adds the Bayesian read-outs
(:mod:`~experiment.analysis.bayes`), the sequential intervals and the MDE, builds
the rows (:mod:`~experiment.analysis.rows`), adds what each lift is worth and
how long an underpowered row needs (:mod:`~experiment.analysis.impact`), checks
the sample ratio (:mod:`~experiment.analysis.srm`) and the pre-exposure covariate
balance (:mod:`~experiment.analysis.balance`) and withholds segments under the privacy floor
(:mod:`~experiment.analysis.privacy`). Reads no data: its input is
:class:`experiment.sums.CellSums`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from experiment.analysis.balance import balance_check
from experiment.analysis.bayes import bayes
from experiment.analysis.compare import compare, guardrail_breached
from experiment.analysis.families import correct_families
from experiment.analysis.impact import add_impact
from experiment.analysis.interaction import heterogeneity_tests
from experiment.analysis.mde import cell_mde
from experiment.analysis.privacy import hidden_segments, suppress
from experiment.analysis.quality import data_quality as quality_of
from experiment.analysis.rows import Comparison, method_label, result_rows
from experiment.analysis.shrinkage import add_shrinkage
from experiment.analysis.srm import srm
from experiment.analysis.timeline import timeline_points
from experiment.results import AnalysisResults, Heterogeneity, ResultRow, SegmentInfo
from experiment.stats import (
    CupedResult,
    adjusted_interval,
    arm_moments,
    cochran_q,
    sequential_interval,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from experiment.config import ExperimentConfig, MetricSpec
    from experiment.stats import LiftResult
    from experiment.sums import CellSums
    from segments.definitions import SegmentSet

__all__ = ["analyze_cells", "arm_baselines"]


def arm_baselines(
    cells: CellSums, arm: str
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Each metric's per-user mean and standard deviation in one arm, per segment.

    Ratio metrics give the ratio of means and the standard deviation of its
    delta-method linearisation (:func:`experiment.analysis.mde.arm_moments`).
    Capped metrics are already capped in the sums.
    """
    j = cells.arms.index(arm)
    out = {}
    for name in cells.metrics:
        mean, var = arm_moments(cells, name, j)
        out[name] = (mean, np.sqrt(var))
    return out


def analyze_cells(
    cells: CellSums, config: ExperimentConfig, segment_set: SegmentSet | None
) -> AnalysisResults:
    """Test every treatment arm against control in every segment and metric.

    The multiple-testing families follow the experiment's ``correction_scope``
    (:mod:`~experiment.analysis.families`); the segments the privacy floor withholds
    are counted in or excluded from them by ``correction_suppressed``.
    """
    data_quality = quality_of(cells, config)
    covariates = {m.name: m.cuped for m in config.metrics if m.name in cells.cuped and m.cuped}
    listed = {m.name: " + ".join(m.covariates or ()) for m in config.metrics}
    labels = covariates | {name: listed[name] for name in cells.regression if name in listed}
    segments = _segment_infos(cells, segment_set)
    floor = segment_set.min_size if segment_set is not None else 0
    hidden = hidden_segments(segments, floor)
    comparisons = _comparisons(cells, config, labels, hidden)
    rows = [
        row
        for comp in comparisons
        for row in result_rows(cells, comp, alpha=config.alpha, target_lift=config.target_lift)
    ]
    rows = add_impact(rows, cells, comparisons, config)
    exclusive = segment_set is not None and segment_set.exclusive
    rows = add_shrinkage(
        rows, comparisons, cells, exclusive=exclusive, hidden=hidden, alpha=config.alpha
    )
    pairs = suppress(
        _pair_rows(cells, config, covariates, hidden), segments, srm(cells, config), hidden
    )[0]
    rows, segments, checked = suppress(rows, segments, srm(cells, config), hidden)
    return AnalysisResults(
        experiment=config.name,
        control=config.control,
        srm=checked,
        notes=_notes(segment_set, len(hidden), floor),
        results=tuple(rows),
        alpha=config.alpha,
        correction=config.correction,
        correction_scope=config.correction_scope,
        correction_suppressed=config.correction_suppressed,
        relative_interval=config.relative_interval,
        arms=cells.arms,
        window_start=cells.window_start.isoformat(),
        window_end=cells.window_end.isoformat(),
        segments=segments,
        data_quality=data_quality,
        heterogeneity=_heterogeneity(comparisons, segment_set),
        timeline=timeline_points(cells, config, hidden),
        cuped_covariates=covariates,
        regression_covariates=dict(cells.regression_names),
        target_lift=config.target_lift,
        balance=balance_check(
            cells, control=config.control, threshold=config.srm_threshold, hidden=hidden
        ),
        arm_comparisons=tuple(pairs),
        heterogeneity_tests=heterogeneity_tests(
            cells,
            comparisons,
            config,
            exclusive=segment_set is not None and segment_set.exclusive,
            hidden=hidden,
        ),
    )


def _comparisons(
    cells: CellSums, config: ExperimentConfig, covariates: dict[str, str], hidden: set[str]
) -> list[Comparison]:
    """Every (metric, treatment arm), its p-values corrected within the scope's families."""
    c = cells.arms.index(config.control)
    lifts = [
        (
            metric,
            j,
            compare(
                cells,
                metric.name,
                c,
                j,
                config.alpha,
                alternative=metric.alternative,
                relative_interval=config.relative_interval,
            ),
        )
        for metric in config.metrics
        for j in range(len(cells.arms))
        if j != c
    ]
    p_raw = np.concatenate([res.p_value for *_, res in lifts])
    fam = correct_families(
        p_raw,
        segments=cells.segments,
        tests=[(metric.name, cells.arms[j]) for metric, j, _ in lifts],
        method=config.correction,
        scope=config.correction_scope,
        suppressed=config.correction_suppressed,
        hidden=hidden,
    )
    p_adj, size = fam.p_adjusted, len(cells.segments)
    return [
        replace(
            _comparison(
                cells,
                config,
                metric,
                (c, j),
                res,
                p_values=(p_raw[k * size : (k + 1) * size], p_adj[k * size : (k + 1) * size]),
                covariate=covariates.get(metric.name),
            ),
            family=fam.family[k * size : (k + 1) * size],
            family_size=fam.family_size[k * size : (k + 1) * size],
        )
        for k, (metric, j, res) in enumerate(lifts)
    ]


def _pair_rows(
    cells: CellSums, config: ExperimentConfig, covariates: dict[str, str], hidden: set[str]
) -> list[ResultRow]:
    """Treatment against treatment (``comparisons``): rows with ``baseline_arm``.

    The same tests as against control, the baseline arm in the control's place; their
    p-values are corrected in their own families (``pairs:`` + the scope's family of
    the pair, :func:`~experiment.analysis.families.family_name`), so the rows against
    control keep their adjusted p-values.
    """
    pairs = [(cells.arms.index(a), cells.arms.index(b)) for a, b in config.arm_pairs()]
    lifts = [
        (metric, c, j, compare(cells, metric.name, c, j, config.alpha,
                               alternative=metric.alternative,
                               relative_interval=config.relative_interval))
        for metric in config.metrics
        for c, j in pairs
    ]  # fmt: skip
    if not lifts:
        return []
    p_raw = np.concatenate([res.p_value for *_, res in lifts])
    fam = correct_families(
        p_raw,
        segments=cells.segments,
        tests=[(m.name, f"{cells.arms[j]}-vs-{cells.arms[c]}") for m, c, j, _ in lifts],
        method=config.correction,
        scope=config.correction_scope,
        suppressed=config.correction_suppressed,
        hidden=hidden,
    )
    size, rows = len(cells.segments), []
    for k, (metric, c, j, res) in enumerate(lifts):
        block = slice(k * size, (k + 1) * size)
        comp = replace(
            _comparison(cells, config, metric, (c, j), res,
                        p_values=(p_raw[block], fam.p_adjusted[block]),
                        covariate=covariates.get(metric.name)),
            family=tuple(f"pairs:{f}" if f else "" for f in fam.family[block]),
            family_size=fam.family_size[block],
        )  # fmt: skip
        rows += [
            replace(r, baseline_arm=cells.arms[c])
            for r in result_rows(cells, comp, alpha=config.alpha, target_lift=config.target_lift)
        ]
    return rows


def _comparison(
    cells: CellSums,
    config: ExperimentConfig,
    metric: MetricSpec,
    arms: tuple[int, int],
    res: LiftResult,
    *,
    p_values: tuple[NDArray[np.float64], NDArray[np.float64]],
    covariate: str | None,
) -> Comparison:
    """The other methods' results for one comparison, and its method label."""
    c, j = arms
    name, kind, better = metric.name, metric.kind, metric.higher_is_better
    breached = guardrail_breached(
        cells, metric, c, j, config.alpha, relative_interval=config.relative_interval
    )
    read_out = bayes(
        cells.metrics[name], kind, c, j, res, cuped=covariate is not None, higher_is_better=better
    )
    seq = None
    if config.sequential:
        n_total = cells.units[:, c] + cells.units[:, j]
        seq = sequential_interval(res, n_total, alpha=config.alpha, tuning=config.sequential_tuning)
    return Comparison(
        metric=name,
        kind=kind,
        arm=cells.arms[j],
        method=method_label(
            kind,
            covariate=covariate,
            alternative=metric.alternative,
            correction=config.correction,
            sequential=seq is not None,
            relative_interval=res.relative_interval,
        ),
        c=c,
        j=j,
        lift=res,
        p_value=p_values[0],
        p_adjusted=p_values[1],
        adjusted=adjusted_interval(
            res, p_values[1], alpha=config.alpha, alternative=metric.alternative
        ),
        bayes=read_out,
        seq=seq,
        mde_rel=cell_mde(cells, metric, config, (cells.units[:, c], cells.units[:, j])).mde_rel,
        reduction=res.variance_reduction if isinstance(res, CupedResult) else None,
        breached=breached,
        higher_is_better=better,
    )


def _segment_infos(cells: CellSums, segment_set: SegmentSet | None) -> tuple[SegmentInfo, ...]:
    """Each segment's rule, definition in words, description and users (every arm)."""
    from segments.describe import EVERYONE, Described, describe_segments

    defs = {s.name: s for s in segment_set.segments} if segment_set else {}
    words = describe_segments(segment_set, cells.segments) if segment_set else {"all": EVERYONE}
    infos = []
    for name, users in zip(
        cells.segments, cells.units.sum(axis=1).astype(int).tolist(), strict=True
    ):
        text = words.get(name, Described(definition=""))
        infos.append(
            SegmentInfo(
                name=name,
                where=defs[name].where if name in defs else "",
                definition=text.definition,
                description=text.description,
                users=users,
            )
        )
    return tuple(infos)


def _notes(segment_set: SegmentSet | None, hidden: int, floor: int) -> tuple[str, ...]:
    """How the segments were analysed, and how many the privacy floor withheld."""
    if segment_set is None:
        return ()
    notes: tuple[str, ...] = (
        "segments: exclusive (priority order, first match wins, plus rest)"
        if segment_set.exclusive
        else "segments: overlapping (each segment analysed on its own)",
    )
    if hidden:
        notes += (f"{hidden} segment(s) below {floor} users withheld (privacy floor)",)
    return notes


def _heterogeneity(
    comparisons: list[Comparison], segment_set: SegmentSet | None
) -> tuple[Heterogeneity, ...]:
    """Cochran's Q across segments, per metric and arm, for exclusive segment sets only.

    Q assumes independent estimates: overlapping segments share users, so their
    lifts are correlated and Q would overstate heterogeneity. ``all`` (row 0) is
    never part of the family.
    """
    if segment_set is None or not segment_set.exclusive:
        return ()
    out = []
    for comp in comparisons:
        q = cochran_q(comp.lift.lift_rel[1:], comp.lift.se_rel[1:])
        out.append(
            Heterogeneity(
                metric=comp.metric,
                q=float(q.q),
                p_value=float(q.p_value),
                i2=float(q.i2),
                arm=comp.arm,
                segments=int(q.k),
            )
        )
    return tuple(out)
