"""Validation before rollout: size, share, overlap, coverage, MDE and the privacy floor.

One aggregate query on the customers table counts every segment, every pairwise
overlap and the coverage of the population, and gives the baseline mean and
standard deviation of every pre-period metric per segment (and, for a metric with
a CUPED covariate, the sums of their correlation). The minimum detectable effect
per (segment, metric) is :func:`experiment.stats.mde_cell`, the one ``exp
analyze`` and ``exp power`` report, with the experiment's alpha, power, traffic
and allocation, and the variance shrunk by the CUPED reduction ``ρ²``. A segment
fails a check when it is under the privacy floor ``min_size`` (its numbers are
then never shown), EMPTY (no customer matches; 0 reveals no one, so it is shown),
SHADOWED (exclusive files: every customer it matches is taken by an earlier
segment), DUPLICATE (the same members as an earlier segment), UNDERPOWERED
(its MDE exceeds the target lift) or NO_MDE (a metric with no spread or a zero
baseline in the segment, e.g. logins among dormant users: nothing to size an
MDE from, so its power is unknown). A rule constant no customer has
(``loyalty_tier in ['bronz']``) is a warning with a close match
(:func:`segments.membership.absent_categories`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from experiment.engine.dataset import engine_errors
from experiment.results.validation import SegmentCheck, ValidationReport
from segments.compile import compile_segments
from segments.membership import absent_categories, duplicates, fingerprints
from segments.pre_period import Baseline, baselines_from_columns

if TYPE_CHECKING:
    from pathlib import Path

    import ibis.expr.types as ir

    from experiment.config import ExperimentConfig
    from experiment.engine.source import DataSource
    from segments.definitions import SegmentSet

__all__ = [
    "Baseline",
    "SegmentCheck",
    "ValidationReport",
    "arm_shares",
    "baselines_from_columns",
    "fit_in_folder",
    "segment_profiles",
    "validate",
]

BELOW_MIN_SIZE = "BELOW_MIN_SIZE"
UNDERPOWERED = "UNDERPOWERED"
NO_MDE = "NO_MDE"
EMPTY = "EMPTY"
SHADOWED = "SHADOWED"
DUPLICATE = "DUPLICATE"
_MAX_OVERLAP = 80


@engine_errors()
def validate(
    table: ir.Table,
    segment_set: SegmentSet,
    *,
    as_of: dt.datetime | None,
    metrics: dict[str, str] | None = None,
    covariates: dict[str, str] | None = None,
    baselines: dict[str, Baseline] | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    target_lift: float = 0.10,
    control_share: float = 0.5,
    treatment_share: float = 0.5,
    traffic: float = 1.0,
) -> ValidationReport:
    """Check a segments file against a customers table.

    Args:
        table: The customers table.
        segment_set: The parsed segments file.
        as_of: The analysis start (for ``days_since`` and ``lifecycle``).
        metrics: Pre-period metrics, name → a numeric column (mean) or a rule (proportion).
        covariates: CUPED covariates of ``metrics``, name → a numeric column.
        baselines: Baselines computed elsewhere (e.g. from an experiment's control arm,
            with its CUPED reduction and arm sizes), aligned with the compiled segment names.
        alpha: Two-sided significance level of the planned test.
        power: Power at which the MDE is computed.
        target_lift: A segment is UNDERPOWERED when its relative MDE exceeds this.
        control_share: Share of a segment's users expected in control.
        treatment_share: Share expected in the (smallest) treatment arm.
        traffic: Share of customers expected to enter the experiment in its window.

    Raises:
        RuleError: a rule, metric or model does not fit the table.
    """
    masks, row = _compiled(table, segment_set, as_of)
    names = list(masks)
    twins, shadowed = duplicates(names, row), _shadowed(names, row)
    population = int(row["population"])
    sizes = np.array([int(row[f"n_{i}"] or 0) for i in range(len(names))], dtype=np.float64)
    all_baselines = dict(baselines or {})
    all_baselines.update(
        baselines_from_columns(table, masks, metrics or {}, as_of=as_of, covariates=covariates)
    )
    projected = (sizes * traffic * control_share, sizes * traffic * treatment_share)
    mdes = {m: b.mde(projected, alpha=alpha, power=power) for m, b in all_baselines.items()}
    cuped = {m: b.variance_reduction for m, b in all_baselines.items() if b.cuped}
    checks = tuple(
        _check(
            name,
            int(sizes[i]),
            population,
            floor=segment_set.min_size,
            target_lift=target_lift,
            mde_abs={m: float(v.mde_abs[i]) for m, v in mdes.items()},
            mde_rel={m: float(v.mde_rel[i]) for m, v in mdes.items()},
            baseline={m: float(b.mean[i]) for m, b in all_baselines.items()},
            reduction={m: float(r[i]) for m, r in cuped.items() if r is not None},
            shadowed=name in shadowed,
            duplicate=name in twins,
        )
        for i, name in enumerate(names)
    )
    warnings = _warnings(segment_set, twins, shadowed) + absent_categories(table, segment_set)
    return ValidationReport(
        source=segment_set.source,
        exclusive=segment_set.exclusive,
        min_size=segment_set.min_size,
        population=population,
        coverage=int(row.get("covered") or 0) / population if population else math.nan,
        segments=checks,
        overlap=_overlap(row, sizes, segment_set.min_size) if "o_0_1" in row else None,
        metrics=tuple(all_baselines),
        alpha=alpha,
        power=power,
        target_lift=target_lift,
        users_per_arm_share=traffic * min(control_share, treatment_share),
        warnings=warnings,
    )


def _shadowed(names: list[str], row: dict[str, Any]) -> list[str]:
    """Segments of an exclusive file whose rule matches customers that earlier ones took."""
    return [n for i, n in enumerate(names) if not row[f"n_{i}"] and row.get(f"r_{i}")]


def _compiled(
    table: ir.Table, segment_set: SegmentSet, as_of: dt.datetime | None
) -> tuple[dict[str, ir.BooleanValue], dict[str, Any]]:
    """The segments' masks and the row of the one counting query (:func:`_counts`)."""
    masks = compile_segments(segment_set, table, as_of=as_of)
    raw = masks
    if segment_set.exclusive:  # what each rule matches before earlier segments take theirs
        raw = compile_segments(replace(segment_set, exclusive=False), table, as_of=as_of)
    return masks, _counts(table, masks, raw)


def _warnings(
    segment_set: SegmentSet, twins: dict[str, str], shadowed: list[str]
) -> tuple[str, ...]:
    source = segment_set.source
    return (
        *(
            f"{source}: segment {name!r} has exactly the members of {first!r} (a duplicate "
            "under another name)"
            for name, first in twins.items()
        ),
        *(
            f"{source}: segment {name!r} is empty: every customer it matches is taken by an "
            "earlier segment (exclusive file: first match wins)"
            for name in shadowed
        ),
    )


def _counts(
    table: ir.Table, masks: dict[str, ir.BooleanValue], raw: dict[str, ir.BooleanValue]
) -> dict[str, Any]:
    """One query: population, sizes, raw sizes, fingerprints, pairwise overlaps, coverage."""
    # project the masks once, so the engine evaluates each rule once per row
    cols = {f"s{i}": m for i, m in enumerate(masks.values())}
    if raw is not masks:
        cols |= {f"r{i}": raw[name] for i, name in enumerate(masks) if name in raw}
    ids = ["user_id"] if "user_id" in table.columns else []
    flags = table.select(*ids, **cols) if masks else table
    exprs = [flags[f"s{i}"] for i in range(len(masks))]
    aggs: dict[str, Any] = {"population": flags.count()}
    if ids:
        aggs |= fingerprints(flags, dict(zip(masks, exprs, strict=True)))
    for i, mask in enumerate(exprs):
        aggs[f"n_{i}"] = mask.sum()
        if f"r{i}" in cols:
            aggs[f"r_{i}"] = flags[f"r{i}"].sum()
    if len(exprs) <= _MAX_OVERLAP:
        for i in range(len(exprs)):
            for j in range(i + 1, len(exprs)):
                aggs[f"o_{i}_{j}"] = (exprs[i] & exprs[j]).sum()
    if exprs:
        covered = exprs[0]
        for e in exprs[1:]:
            covered = covered | e
        aggs["covered"] = covered.sum()
    row: dict[str, Any] = flags.aggregate(**aggs).to_pyarrow().to_pylist()[0]
    return row


def _overlap(
    row: dict[str, Any], sizes: NDArray[np.float64], floor: int
) -> tuple[tuple[int | None, ...], ...]:
    """Users in both segments; counts under the privacy floor are hidden (``None``)."""
    matrix = []
    for i in range(len(sizes)):
        cells: list[int | None] = []
        for j in range(len(sizes)):
            k = int(sizes[i]) if i == j else int(row[f"o_{min(i, j)}_{max(i, j)}"] or 0)
            cells.append(None if 0 < k < floor else k)
        matrix.append(tuple(cells))
    return tuple(matrix)


def _check(
    name: str,
    size: int,
    population: int,
    *,
    floor: int,
    target_lift: float,
    mde_abs: dict[str, float],
    mde_rel: dict[str, float],
    baseline: dict[str, float],
    reduction: dict[str, float],
    shadowed: bool = False,
    duplicate: bool = False,
) -> SegmentCheck:
    suppressed = 0 < size < floor  # an empty segment reveals no one: it shows as empty
    flags: list[str] = []
    if size == 0:
        flags.append(SHADOWED if shadowed else EMPTY)
    if duplicate:
        flags.append(DUPLICATE)
    if size == 0:
        pass  # no MDE to speak of: the segment cannot run
    elif suppressed:
        flags.append(BELOW_MIN_SIZE)
    else:
        known = [r for r in mde_rel.values() if not math.isnan(r)]
        if len(known) < len(mde_rel):  # no MDE: its power is unknown, not shown as enough
            flags.append(NO_MDE)
        if any(r > target_lift for r in known):
            flags.append(UNDERPOWERED)

    def hide(values: dict[str, float]) -> dict[str, float | None]:
        return {k: (None if suppressed else v) for k, v in values.items()}

    return SegmentCheck(
        name=name,
        size=None if suppressed else size,
        share=None if suppressed or population == 0 else size / population,
        suppressed=suppressed,
        flags=tuple(flags),
        mde_rel=hide(mde_rel),
        mde_abs=hide(mde_abs),
        baseline=hide(baseline),
        cuped_variance_reduction=hide(reduction),
    )


def _profiles(
    table: ir.Table, mask: Any, n: int, as_of: dt.datetime | None
) -> list[dict[str, Any]]:
    """``n`` members in a fixed pseudo-random order, without user_id, dates as days since."""
    from segments.lifecycle import days_since

    cols: dict[str, Any] = {}
    for name in table.columns:
        dtype = table[name].type()
        if name == "user_id":
            continue
        if dtype.is_timestamp() or dtype.is_date():
            if as_of is not None:
                cols[f"days_since_{name}"] = days_since(table[name], as_of)
            continue
        cols[name] = table[name]
    members = table.filter(mask)
    order = members.user_id.cast("string").hexdigest("md5") if "user_id" in table.columns else None
    picked = members.order_by(order) if order is not None else members
    rows: list[dict[str, Any]] = picked.select(**cols).limit(n).to_pyarrow().to_pylist()
    return rows


@engine_errors()
def segment_profiles(
    table: ir.Table, segment_set: SegmentSet, *, as_of: dt.datetime | None, sample: int
) -> list[dict[str, Any]]:
    """Per segment its size and ``sample`` anonymised member profiles (``exp segments show``).

    Segments under the file's ``min_size`` show neither (``users`` is ``None``);
    an empty segment shows its 0.
    """
    masks = compile_segments(segment_set, table, as_of=as_of)
    counts = (
        table.aggregate(**{f"n_{i}": m.sum() for i, m in enumerate(masks.values())})
        .to_pyarrow()
        .to_pylist()[0]
        if masks
        else {}
    )
    result: list[dict[str, Any]] = []
    for i, (name, mask) in enumerate(masks.items()):
        size = int(counts[f"n_{i}"] or 0)
        hidden = 0 < size < segment_set.min_size  # an empty segment reveals no one
        result.append(
            {
                "segment": name,
                "users": None if hidden else size,
                "suppressed": hidden,
                "profiles": [] if hidden or sample == 0 else _profiles(table, mask, sample, as_of),
            }
        )
    return result


def arm_shares(
    config: ExperimentConfig | None, traffic: float | None
) -> tuple[float, float, float]:
    """Control share, smallest treatment share and the traffic entering, for the MDE.

    Without an experiment: half and half, and ``traffic`` (default 1); with one,
    its weights and ``traffic`` (default: its traffic × (1 − holdout)).
    """
    if config is None:
        return 0.5, 0.5, 1.0 if traffic is None else traffic
    total = sum(config.arms.values())
    control = config.arms[config.control] / total
    treatment = min(w for a, w in config.arms.items() if a != config.control) / total
    share = traffic if traffic is not None else config.traffic * (1 - config.holdout)
    return control, treatment, share


@engine_errors()
def fit_in_folder(
    segment_set: SegmentSet, folder: str | Path | DataSource, *, as_of: dt.datetime | None
) -> dict[str, Any]:
    """Fit the set's cluster and predictive segments on a dataset, save the sidecar.

    ``folder`` is a dataset folder or any :class:`~experiment.engine.source.DataSource`.
    Event targets are labelled from the dataset's events (and control-arm
    assignments) when there are any.
    """
    from experiment.engine.baseline import analysis_start
    from experiment.engine.source import customers_of, open_source_events
    from segments.models import EventTables, fit_models

    start = analysis_start(folder, as_of, None)
    with customers_of(folder) as customers:
        found = open_source_events(folder, customers)
        events = EventTables(found[0], found[1]) if found is not None else None
        models: dict[str, Any] = fit_models(segment_set, customers, as_of=start, events=events)
    return models
