"""``target()``: learn a rollout policy on the discovery half, value it on the held-out half.

It reuses ``exp refine``'s machinery (:mod:`segments.refine`): the same hashed
halves (salted with the experiment's salt and ``seed``), the same cached sample
table and one GROUP BY per attribute. The steps:

1. Cells: the segments made exclusive (:mod:`segments.target.cells`).
2. Refined cells (discovery half only): each cell's best cut over the attributes,
   for the arm best overall on discovery, kept when its discovery interaction
   ``|z|`` passes the Bonferroni critical value over the cuts searched for the cell.
3. Per metric and arm, one sample over the final cells: per-half sums per cell.
4. The learner (:func:`segments.target.learn.learn`) reads the primary metric's
   discovery sums; every value (learned, treat-all, the difference, the gain curve,
   each guardrail) reads only the estimation half's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from experiment.engine import user_table
from experiment.errors import ConfigError, DataError
from experiment.plan import kind_plan
from segments.definitions import DEFAULT_MIN_SIZE
from segments.halves import check_users_per_half
from segments.refine.candidates import attribute_kinds, attributes_of
from segments.refine.choose import best_cuts
from segments.refine.core import MIN_EVENTS, cached_sample, metric_spec
from segments.refine.propose import condition, safe_name, token
from segments.refine.search import bin_sums
from segments.target.cells import Cell, cell_exprs, exclusive_cells, inline, split_cell
from segments.target.evaluate import Sampled, build_targeting, moments

if TYPE_CHECKING:
    from collections.abc import Sequence

    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from experiment.engine import Dataset, UserTable
    from experiment.results.targeting import Targeting
    from segments.definitions import SegmentSet
    from segments.refine.choose import Best

__all__ = ["target"]


def _check(cost: float, budget: float) -> None:
    if not np.isfinite(cost) or cost < 0:
        raise ConfigError(f"cost must be a number >= 0 (per treated customer), not {cost}")
    if not (0 < budget <= 1):
        raise ConfigError(f"budget must be a share of customers in (0, 1], not {budget}")


def target(
    dataset: Dataset,
    config: ExperimentConfig,
    segment_set: SegmentSet | None,
    *,
    metric: str | None = None,
    attributes: Sequence[str] | None = None,
    seed: int = 0,
    min_size: int | None = None,
    cost: float = 0.0,
    budget: float = 1.0,
    progress: Callable[[int, int, str], None] | None = None,
) -> Targeting:
    """Learn which cells get which arm on the discovery half; value the policy held out.

    Args:
        dataset: The dataset (``experiment.engine.dataset.open_dataset``).
        config: The experiment (every treatment arm is a candidate).
        segment_set: Its segments file (made exclusive), or ``None`` (one cell).
        metric: The metric the policy maximises (default: the experiment's first);
            the others are valued as guardrails.
        attributes: Customers columns a cell may be refined on (default: every
            usable column; ``[]``: no refined cells).
        seed: Salts the discovery/estimation split (the same halves as ``exp refine``).
        min_size: Smallest refined side in users (default: the segments file's).
        cost: Cost of treating one customer, in the primary metric's units.
        budget: Largest share of customers treated (1: no budget).
        progress: Called with (steps done, steps total, label).

    Returns:
        The policy, its held-out values and the gain curve.

    Raises:
        ConfigError: unknown metric or attribute, or a bad cost or budget.
        RuleError: a segment rule does not fit the customers table.
        DataError: no assignments for the experiment, or an arm with fewer than 2
            users in a half (:func:`segments.halves.check_users_per_half`).
    """
    _check(cost, budget)
    spec = metric_spec(config, metric)
    strip = {"cuped": None, "covariates": None}
    plain = config.model_copy(
        update={"metrics": [m.model_copy(update=strip) for m in config.metrics]}
    )
    opts = _Options(
        size=min_size or (segment_set.min_size if segment_set else DEFAULT_MIN_SIZE),
        kinds=attribute_kinds(dataset.customers, attributes),
        seed=seed,
        cost=cost,
        budget=budget,
        report=progress or (lambda done, total, label: None),
    )
    built = user_table(dataset, plain, segment_set, quantile_caps=False, counts=False)
    full = built.table.cache()  # every sample below reads the per-user table once built
    try:
        return _target(
            dataset, plain, spec.name, segment_set, replace(built, table=full), opts=opts
        )
    finally:
        full.release()


def _check_halves(primary: Sampled, control: str) -> None:
    """Every arm needs two users or more in each half: one cannot show a variance."""
    check_users_per_half(
        (
            (arm, name, float(n))
            for half, name in enumerate(("discovery", "held-out"))
            for arm, n in zip(
                (control, *primary.arms), primary.moments.arm_users[half], strict=True
            )
        ),
        command="exp target",
        purpose="learn and value a policy",
    )


def _check_finite(metric: Sampled) -> None:
    """Each arm's discovery mean and its variance must be numbers: else every value is noise.

    Raises:
        DataError: names the metric and the likely causes.
    """
    overall = metric.moments.discovery_overall
    if not (np.isfinite(overall.mean).all() and np.isfinite(overall.var_mean).all()):
        raise DataError(
            f"events: metric {metric.metric.name!r}: an arm's mean or variance is not finite "
            "(values too large to add up, e.g. 1e308, or a ratio whose denominator is 0 in "
            "an arm); values must be finite numbers in a summable range"
        )


@dataclass(frozen=True)
class _Options:
    size: int
    kinds: dict[str, str]
    seed: int
    cost: float
    budget: float
    report: Callable[[int, int, str], None]


def _target(
    dataset: Dataset,
    plain: ExperimentConfig,
    name: str,
    segment_set: SegmentSet | None,
    users: UserTable,
    *,
    opts: _Options,
) -> Targeting:
    """The steps of :func:`target` on the cached per-user table."""
    cells = exclusive_cells(segment_set)
    primary = next(m for m in plain.metrics if m.name == name)
    one = plain.model_copy(update={"metrics": [primary]})
    scanned: tuple[str, ...] = ()
    if opts.kinds:
        cells, scanned = _refined(dataset, users, one, segment_set, cells, opts=opts)
    sampled = [
        _sampled(
            dataset, users, plain, m.name, segment_set=segment_set, cells=cells, seed=opts.seed
        )
        for m in [primary, *(m for m in plain.metrics if m.name != name)]
    ]
    _check_halves(sampled[0], plain.control)
    for s in sampled:
        _check_finite(s)
    opts.report(1, 1, "valued")
    written = tuple(Cell(c.name, inline(c.rule, segment_set), c.parent) for c in cells)
    return build_targeting(
        plain,
        sampled,
        written,
        seed=opts.seed,
        cost=opts.cost,
        budget=opts.budget,
        attributes=scanned,
    )


def _base(
    dataset: Dataset, users: UserTable, segment_set: SegmentSet | None, cells: tuple[Cell, ...]
) -> dict[int, ir.BooleanValue]:
    first = len(users.segments)
    exprs = cell_exprs(cells, dataset.customers, segment_set, users.start)
    return {first + k: e for k, e in enumerate(exprs)}


def _sampled(
    dataset: Dataset,
    users: UserTable,
    plain: ExperimentConfig,
    name: str,
    *,
    segment_set: SegmentSet | None,
    cells: tuple[Cell, ...],
    seed: int,
) -> Sampled:
    """One metric's per-half sums of every cell and of everyone, control and each arm."""
    one = plain.model_copy(update={"metrics": [m for m in plain.metrics if m.name == name]})
    base = _base(dataset, users, segment_set, cells)
    groups = [0, *base]
    scans = []
    for arm in plain.treatments:
        sample = cached_sample(
            dataset,
            users,
            one,
            arm=arm,
            seed=seed,
            attributes=(),
            base=base,
        )
        try:
            scans.append(bin_sums(sample, None, groups))
        finally:
            sample.table.release()
    return Sampled(metric=one.metrics[0], arms=tuple(plain.treatments), moments=moments(scans))


def _refined(
    dataset: Dataset,
    users: UserTable,
    one: ExperimentConfig,
    segment_set: SegmentSet | None,
    cells: tuple[Cell, ...],
    *,
    opts: _Options,
) -> tuple[tuple[Cell, ...], tuple[str, ...]]:
    """The cells, each cut in two where discovery shows a significant interaction."""
    from scipy.stats import norm

    base = _base(dataset, users, segment_set, cells)
    kinds, size, report = opts.kinds, opts.size, opts.report
    arm = _best_arm(dataset, users, one, segment_set, cells, seed=opts.seed)
    sample = cached_sample(
        dataset,
        users,
        one,
        arm=arm,
        seed=opts.seed,
        attributes=tuple(kinds),
        base=base,
    )
    floor = MIN_EVENTS if kind_plan(one.metrics[0].kind).event_floor else 0.0
    groups = list(base)
    best: dict[int, Best] = {}
    counts: dict[int, int] = {}
    try:
        attrs = attributes_of(sample.table, kinds, explicit=False)
        for step, attribute in enumerate(attrs, start=1):
            scan = bin_sums(sample, attribute, groups)
            for g, found in best_cuts(scan, groups, size, min_events=floor).items():
                counts[g] = counts.get(g, 0) + found.candidates
                if g not in best or abs(found.z) > abs(best[g].z):
                    best[g] = found
            report(step, len(attrs) + 1, attribute.name)
    finally:
        sample.table.release()
    out: list[Cell] = []
    used = {c.name for c in cells} | set(segment_set.names if segment_set else ())
    for g, cell in zip(groups, cells, strict=True):
        chosen = best.get(g)
        crit = float(norm.isf(one.alpha / (2 * counts.get(g, 1))))
        if chosen is None or abs(chosen.z) < crit:
            out.append(cell)
            continue
        out.extend(_split(cell, chosen, used))
    return tuple(out), tuple(a.name for a in attrs)


def _split(cell: Cell, found: Best, used: set[str]) -> tuple[Cell, Cell]:
    """``cell`` cut at ``found`` (nulls of the attribute go with the low side)."""
    a = found.attribute
    if a.kind == "numeric":
        cut = a.edges[found.cut - 1]
        low, high = condition(a.name, "<", cut), condition(a.name, ">=", cut)
        tags = (f"lt_{token(cut)}", f"ge_{token(cut)}")
    else:
        lows = tuple(found.bins[i] for i in found.order[: found.cut])
        highs = tuple(found.bins[i] for i in found.order[found.cut :])
        low, high = condition(a.name, "in", lows), condition(a.name, "in", highs)
        tags = ("_".join(map(str, lows)), "_".join(map(str, highs)))
    low = f"{low} or is_null({a.name})"
    names = tuple(safe_name([cell.name, a.name, t], used) for t in tags)
    return split_cell(cell, (f"({low})", high), (names[0], names[1]))


def _best_arm(
    dataset: Dataset,
    users: UserTable,
    one: ExperimentConfig,
    segment_set: SegmentSet | None,
    cells: tuple[Cell, ...],
    *,
    seed: int,
) -> str:
    """The treatment arm with the largest overall discovery gain (the first when alone)."""
    arms = one.treatments
    if len(arms) == 1:
        return arms[0]
    found = _sampled(
        dataset, users, one, one.metrics[0].name, segment_set=segment_set, cells=cells, seed=seed
    )
    overall = found.moments.discovery_overall
    sign = 1.0 if one.metrics[0].higher_is_better else -1.0
    gain = sign * (overall.mean[1:, 0] - overall.mean[0, 0])
    return arms[int(np.nanargmax(gain))]
