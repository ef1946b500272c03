"""``refine()``: search refinements on the discovery half, test them on the estimation half."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from experiment.engine import cap_quantiles, with_quantile_caps
from experiment.errors import ConfigError
from experiment.plan import kind_plan
from experiment.results.refinement import Refinement
from segments.definitions import DEFAULT_MIN_SIZE
from segments.halves import check_users_per_half
from segments.refine.build import (
    Context,
    finish,
    merge_proposals,
    split_proposal,
    threshold_proposal,
)
from segments.refine.candidates import attribute_kinds, attributes_of, same_cut
from segments.refine.carried import carried_users, searched_bases
from segments.refine.choose import Best, Window, best_cuts
from segments.refine.distinct import distinct
from segments.refine.propose import parent_rules, rule_families, unparse
from segments.refine.search import bin_sums, sample_table

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig, MetricSpec
    from experiment.engine import Dataset, UserTable
    from experiment.results.refinement import Proposal
    from segments.definitions import SegmentSet
    from segments.refine.candidates import ThresholdBase
    from segments.refine.search import Attribute, Sample, Scan

__all__ = ["MIN_EVENTS", "cached_sample", "metric_spec", "refine"]

MIN_EVENTS = 20.0
"""Fewest events (conversions, a ratio's numerator) per arm and side on the discovery
half for a cut to be a candidate; mean metrics have no floor."""


def metric_spec(config: ExperimentConfig, metric: str | None) -> MetricSpec:
    """The experiment's metric called ``metric`` (default: its first); ConfigError if none."""
    if metric is None:
        return config.metrics[0]
    for spec in config.metrics:
        if spec.name == metric:
            return spec
    names = ", ".join(m.name for m in config.metrics)
    raise ConfigError(f"metric {metric!r} is not in experiment {config.name!r}; metrics: {names}")


def _min_size(min_size: int | None, segment_set: SegmentSet | None) -> int:
    """The smallest side in users: ``min_size``, else the segments file's, else the default."""
    if min_size is not None and min_size < 1:
        raise ConfigError(f"min_size must be at least 1, not {min_size}")
    return min_size or (segment_set.min_size if segment_set else DEFAULT_MIN_SIZE)


def _arm(config: ExperimentConfig, arm: str | None) -> str:
    if arm is None:
        return config.treatments[0]
    if arm not in config.treatments:
        arms = ", ".join(config.treatments)
        raise ConfigError(
            f"arm {arm!r} is not a treatment arm of experiment {config.name!r}; "
            f"treatment arms: {arms}"
        )
    return arm


def refine(
    dataset: Dataset,
    config: ExperimentConfig,
    segment_set: SegmentSet | None,
    *,
    metric: str | None = None,
    arm: str | None = None,
    attributes: Sequence[str] | None = None,
    seed: int = 0,
    min_size: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Refinement:
    """Search and test refinements of the experiment's segments for one metric and arm.

    Users are split by a hash (salted with the experiment's salt and ``seed``)
    into a discovery and an estimation half. On the discovery half, every
    segment's best split (the attribute and cut-off or grouping with the largest
    interaction ``|z|`` of the relative lifts, both sides at least ``min_size``
    users), every rule threshold's best cut-off and every segment's nearest
    neighbour by lift are chosen. Only the estimation half measures them:
    each side's lift and CI, the interaction p-value (adjusted over the split and
    threshold proposals by the experiment's correction) and, for merges, the
    equivalence p-value within ``config.target_lift`` (adjusted over the merges).

    Args:
        dataset: The dataset (``experiment.engine.dataset.open_dataset``).
        config: The experiment.
        segment_set: Its segments file, or ``None`` (only ``all`` is refined).
        metric: The metric refined (default: the experiment's first).
        arm: The treatment arm (default: the first treatment arm).
        attributes: Customers columns to cut (default: every numeric column and
            every string/boolean column with at most 30 values, but ``user_id``).
            The column of a rule threshold is scanned for the threshold kind
            whether listed or not.
        seed: Salts the discovery/estimation split.
        min_size: Smallest side in users (default: the segments file's ``min_size``).
        progress: Called with (steps done, steps total, label) after each scan.

    Returns:
        The proposals with their held-out evidence.

    Raises:
        ConfigError: unknown metric, arm or attribute, or an attribute that cannot be cut.
        RuleError: a segment rule does not fit the customers table.
        DataError: no assignments for the experiment, or an arm with fewer than 2
            users in a half (:func:`segments.halves.check_users_per_half`).
    """
    spec = _refined_spec(config, metric)
    arm = _arm(config, arm)
    size = _min_size(min_size, segment_set)
    plain = config.model_copy(update={"metrics": [spec]})
    kinds = attribute_kinds(dataset.customers, attributes)
    every = attribute_kinds(dataset.customers, None)
    carried = carried_users(dataset, plain, segment_set, kinds=kinds, every=every)
    users = carried.users
    parents = parent_rules(segment_set, users.segments)
    searched = [i for i, s in enumerate(users.segments) if s in parents]
    bases, flags = searched_bases(carried, parents)
    scan_kinds = {**kinds, **{b.column: every[b.column] for b in bases.values()}}
    sample = cached_sample(
        dataset,
        users,
        plain,
        arm=arm,
        seed=seed,
        attributes=tuple(scan_kinds),
        base=flags,
        carried=carried.columns,
    )
    try:
        attrs, totals, best = _discover(
            sample,
            kinds,
            scan_kinds,
            groups=searched,
            bases=bases,
            explicit=attributes is not None,
            size=size,
            min_events=MIN_EVENTS if kind_plan(spec.kind).event_floor else 0.0,
            progress=progress,
        )
    finally:
        sample.table.release()
    _check_halves(totals, config.control, arm)
    ctx = _context(config, spec, arm, segment_set, users.segments)
    proposals = _proposals(
        best,
        totals,
        groups={g: users.segments[g] for g in searched},
        bases=bases,
        parents=parents,
        ctx=ctx,
    )
    scanned = tuple(a.name for a in attrs if a.name in kinds)
    return _refinement(ctx, seed=seed, totals=totals, attributes=scanned, proposals=proposals)


def _check_halves(totals: Scan, control: str, arm: str) -> None:
    """Both arms need two users or more in each half, or no lift has a variance."""
    check_users_per_half(
        (
            (name, label, float(sums.n[half, 0, 0]))
            for name, sums in ((control, totals.control), (arm, totals.treatment))
            for half, label in enumerate(("discovery", "estimation"))
        ),
        command="exp refine",
        purpose="measure a lift",
    )


def _proposals(
    best: dict[int, Best],
    totals: Scan,
    *,
    groups: dict[int, str],
    bases: dict[int, ThresholdBase],
    parents: dict[str, str],
    ctx: Context,
) -> list[Proposal]:
    """Splits of the searched ``groups`` (index: name), moved thresholds, then merges.

    A cut proposed both as a split and as a moved threshold is kept once
    (:func:`segments.refine.distinct.distinct`).
    """
    proposals = [
        split_proposal(name, parents[name], best[g], ctx) for g, name in groups.items() if g in best
    ]
    proposals += [threshold_proposal(b, best[g], ctx) for g, b in bases.items() if g in best]
    rests = {(b.segment, b.column): unparse(b.rest) if b.rest else "" for b in bases.values()}

    def base_of(p: Proposal) -> str:
        if p.kind == "split":
            return parents[p.segment]
        return rests.get((p.segment, p.attribute or ""), "\0")

    proposals = distinct(proposals, base_of)
    return proposals + merge_proposals(totals, list(groups), groups, parents, ctx)


def _discover(
    sample: Sample,
    kinds: dict[str, str],
    scan_kinds: dict[str, str],
    *,
    groups: list[int],
    bases: dict[int, ThresholdBase],
    explicit: bool,
    size: int,
    min_events: float,
    progress: Callable[[int, int, str], None] | None,
) -> tuple[tuple[Attribute, ...], Scan, dict[int, Best]]:
    """The attributes scanned, the groups' totals per half, and each group's best cut.

    ``groups`` are the searched segments, cut on the requested attributes
    (``kinds``); ``bases`` the threshold groups (by group index), each cut on its
    own column only. ``scan_kinds`` holds the kinds of every attribute scanned.
    """
    attrs = attributes_of(sample.table, scan_kinds, explicit=explicit)
    totals = bin_sums(sample, None, groups)
    if progress is not None:
        progress(1, len(attrs) + 1, "totals")
    plan = {
        a.name: [g for g in groups if a.name in kinds]
        + [g for g, b in bases.items() if b.column == a.name]
        for a in attrs
    }
    skip = {g: same_cut(b, scan_kinds[b.column]) for g, b in bases.items()}
    windows = {g: Window(b.value, b.keeps_high, b.fence) for g, b in bases.items()}
    best = _search(
        sample,
        attrs,
        plan,
        size=size,
        cuts=(skip, windows),
        min_events=min_events,
        progress=progress,
    )
    return attrs, totals, best


def cached_sample(
    dataset: Dataset,
    users: UserTable,
    plain: ExperimentConfig,
    *,
    arm: str,
    seed: int,
    attributes: tuple[str, ...],
    base: Mapping[int, ir.BooleanValue | str | None],
    carried: Mapping[str, str] | None = None,
) -> Sample:
    """The cached sample table of the one metric of ``plain`` (see :func:`sample_table`).

    The sample is cached; a quantile cap's own query would build the per-user table
    once more, so with one the table is cached first and both read the cache.
    """
    full = users.table.cache() if cap_quantiles(users, plain) is not None else None
    try:
        capped = users if full is None else with_quantile_caps(replace(users, table=full), plain)
        return sample_table(
            capped,
            dataset.customers,
            plain.metrics[0],
            control=plain.control,
            arm=arm,
            salt=plain.assignment_salt,
            seed=seed,
            attributes=attributes,
            base=base,
            carried=carried,
        )
    finally:
        if full is not None:
            full.release()


def _refinement(
    ctx: Context,
    *,
    seed: int,
    totals: Scan,
    attributes: tuple[str, ...],
    proposals: list[Proposal],
) -> Refinement:
    """The result: the proposals, adjusted and summarised, with the sample's sizes."""
    config = ctx.config
    n_all = totals.control.n[:, 0, 0] + totals.treatment.n[:, 0, 0]
    return Refinement(
        experiment=config.name,
        metric=ctx.metric,
        arm=ctx.arm,
        control=config.control,
        alpha=config.alpha,
        correction=config.correction,
        seed=seed,
        discovery_users=int(n_all[0]),
        estimation_users=int(n_all[1]),
        attributes=attributes,
        candidates=sum(p.candidates for p in proposals),
        proposals=finish(proposals, config),
    )


def _search(
    sample: Sample,
    attrs: tuple[Attribute, ...],
    plan: dict[str, list[int]],
    *,
    size: int,
    cuts: tuple[dict[int, set[float]], dict[int, Window]],
    min_events: float,
    progress: Callable[[int, int, str], None] | None,
) -> dict[int, Best]:
    """One scan per attribute; per group, the best cut over all attributes.

    ``plan`` maps each attribute to the groups cut on it; ``cuts`` the threshold
    groups' forbidden cut-offs and windows. A group's ``candidates`` become its
    total over every attribute scanned.
    """
    skip, windows = cuts
    best: dict[int, Best] = {}
    counts: dict[int, int] = {}
    for step, attribute in enumerate(attrs, start=2):
        groups = plan[attribute.name]
        if groups:
            scan = bin_sums(sample, attribute, groups)
            found_cuts = best_cuts(
                scan,
                groups,
                size,
                skip=skip,
                min_events=min_events,
                windows=windows,
                cuped=sample.cuped,
            )
            for g, found in found_cuts.items():
                counts[g] = counts.get(g, 0) + found.candidates
                if g not in best or abs(found.z) > abs(best[g].z):
                    best[g] = found
        if progress is not None:
            progress(step, len(attrs) + 1, attribute.name)
    return {g: replace(b, candidates=counts[g]) for g, b in best.items()}


def _refined_spec(config: ExperimentConfig, metric: str | None) -> MetricSpec:
    """The metric refined, with its one CUPED column (a regression list is left out)."""
    spec = metric_spec(config, metric)
    if spec.covariates:
        spec = spec.model_copy(update={"cuped": None, "covariates": None})
    return spec


def _context(
    config: ExperimentConfig,
    spec: MetricSpec,
    arm: str,
    segment_set: SegmentSet | None,
    segments: tuple[str, ...],
) -> Context:
    """What the proposal builders share (names in use, the rule segments' families)."""
    used = _names(segment_set, segments)
    families = rule_families(segment_set)
    cuped = spec.cuped is not None
    return Context(
        config=config, metric=spec.name, arm=arm, used=used, families=families, cuped=cuped
    )


def _names(segment_set: SegmentSet | None, segments: tuple[str, ...]) -> set[str]:
    """Names a new segment may not take: the file's entries, the expanded segments, reserved."""
    used = {*segments, "all", "rest"}
    if segment_set is not None:
        used |= set(segment_set.names)
    return used
