"""The Python API: one function per command, data first, options keyword-only.

The CLI calls only these functions (and ``reports`` to show and write what they
return), so a notebook gets exactly what ``exp`` computes (README, "Python API").
Heavy libraries (Ibis, DuckDB, pandas, scipy) load inside the functions:
``import experiment`` stays light.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiment.arguments import (
    SAMPLE,
    columns_arg,
    config_arg,
    data_arg,
    folder_arg,
    moment_arg,
    name_arg,
    names_arg,
    number_arg,
    power_args,
    segment_file_arg,
    segments_arg,
    sums_arg,
    validation_args,
)

if TYPE_CHECKING:
    from experiment.analysis.power import Traffic
    from experiment.config import ExperimentConfig
    from experiment.engine.dataset import Dataset
    from experiment.engine.source import DataSource
    from experiment.results import AnalysisResults
    from experiment.results.assignment import AssignmentSummary
    from experiment.results.power import PowerPlan
    from experiment.results.refinement import Refinement
    from experiment.results.validation import ValidationReport
    from experiment.sums import CellSums
    from segments.definitions import SegmentSet

    Source = str | Path | DataSource  # a dataset folder, or an engine and its tables
    Data = Source | Dataset  # or a dataset already open

__all__ = [
    "analyze",
    "analyze_sums",
    "assign_dataset",
    "compute_sums",
    "fit_segments",
    "plan_power",
    "refine",
    "show_segments",
    "validate_segments",
]


def compute_sums(
    dataset: Data,
    experiment: str | Path | ExperimentConfig,
    *,
    segments: str | Path | SegmentSet | None = None,
    memory_limit: str | None = None,
) -> CellSums:
    """Reduce a dataset to the sufficient statistics of every (segment, arm, metric).

    The engine's half of :func:`analyze`: keep the sums
    (:func:`experiment.results.sums.write_sums`) and re-run the statistics later
    with :func:`analyze_sums`, without the data.

    Args:
        dataset: A dataset folder, an engine source
            (:class:`~experiment.engine.source.DataSource`), or an opened dataset.
        experiment: The experiment YAML file, or its parsed config.
        segments: A segments file or set (default: the experiment's segments file).
        memory_limit: Cap DuckDB's memory, e.g. ``"1.5GB"`` (DuckDB only).

    Raises:
        SegliftError: bad input, or out of memory under ``memory_limit`` (one line).
    """
    from experiment.engine import aggregate
    from experiment.engine.dataset import memory_bound
    from experiment.engine.source import opened

    data_in = data_arg(dataset)
    config = config_arg(experiment)
    segment_set = segments_arg(segments, config)
    with memory_bound(memory_limit), opened(data_in, memory_limit=memory_limit) as data:
        return aggregate(data, config, segment_set)


def analyze(
    dataset: Data,
    experiment: str | Path | ExperimentConfig,
    *,
    segments: str | Path | SegmentSet | None = None,
    memory_limit: str | None = None,
) -> AnalysisResults:
    """Measure the lift of every treatment arm in every segment and metric.

    What ``exp analyze`` computes: :func:`compute_sums`, then :func:`analyze_sums`.

    Args:
        dataset: A dataset folder, an engine source
            (:class:`~experiment.engine.source.DataSource`), or an opened dataset.
        experiment: The experiment YAML file, or its parsed config.
        segments: A segments file or set (default: the experiment's segments file).
        memory_limit: Cap DuckDB's memory, e.g. ``"1.5GB"`` (DuckDB only).

    Returns:
        The typed results (``to_pandas()``, ``to_json()``; see README "results.json");
        ``.srm`` and ``.balance`` (pre-exposure covariates compared between arms) say
        whether the randomisation can be trusted.
    """
    from experiment.analysis import analyze_cells
    from experiment.analysis.lifecycle_run import with_lifecycle

    dataset = data_arg(dataset)
    config = config_arg(experiment)
    segment_set = segments_arg(segments, config)
    cells = compute_sums(dataset, config, segments=segment_set, memory_limit=memory_limit)
    results = analyze_cells(cells, config, segment_set)
    return with_lifecycle(results, dataset, config, segment_set, memory_limit=memory_limit)


def analyze_sums(
    sums: str | Path | CellSums,
    experiment: str | Path | ExperimentConfig,
    *,
    segments: str | Path | SegmentSet | None = None,
) -> AnalysisResults:
    """Re-run the statistics on kept sums: another alpha, correction or decision rule.

    Args:
        sums: :class:`~experiment.sums.CellSums`, or a sums.parquet path written by
            ``exp analyze --save-sums``.
        experiment: The experiment YAML file, or its parsed config; its metrics,
            arms and segments must be those of the sums.
        segments: A segments file or set (default: the experiment's segments file).

    Raises:
        DataError: the sums file is missing, not Parquet or not a seglift sums table.
        ConfigError: the experiment does not fit the sums (one line naming what differs).

    Examples:
        >>> import datetime as dt
        >>> import numpy as np
        >>> from experiment.config import ExperimentConfig
        >>> from experiment.sums import CellSums, MeanSums
        >>> config = ExperimentConfig(name="x", salt="s", metrics=[
        ...     {"name": "revenue", "kind": "mean", "event": "purchase", "value": "revenue"}])
        >>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        >>> cells = CellSums(segments=("all",), arms=("control", "treatment"),
        ...     units=np.array([[1000.0, 1000.0]]), window_start=t0, window_end=t0,
        ...     metrics={"revenue": MeanSums(n=[[1000.0, 1000.0]], mean=[[10.0, 11.0]],
        ...                                  m2=[[99900.0, 99900.0]])})
        >>> row = analyze_sums(cells, config).results[0]
        >>> round(row.lift_rel, 3), row.significant
        (0.1, True)
    """
    from experiment.analysis import analyze_cells
    from experiment.results.sums import read_sums
    from experiment.results.sums_fit import check_fit
    from segments.describe import measured_names

    sums = sums_arg(sums)
    source = sums if isinstance(sums, Path) else "sums"
    cells = read_sums(sums) if isinstance(sums, Path) else sums
    config = config_arg(experiment)
    segment_set = segments_arg(segments, config)
    # the segments the engine measures from this file, beside ``all`` (in sums order)
    names = (
        [] if segment_set is None else measured_names(segment_set, cells.segments, source=source)
    )
    check_fit(cells, config, names, source=source)
    return analyze_cells(cells, config, segment_set)


def plan_power(
    dataset: Data,
    experiment: str | Path | ExperimentConfig,
    *,
    segments: str | Path | SegmentSet | None = None,
    lift: float = 0.05,
    power: float = 0.8,
    days: int | None = None,
    users_per_day: float | None = None,
    traffic: Traffic | None = None,
) -> PowerPlan:
    """Plan an experiment: the smallest detectable lift and how long it must run.

    Baselines come from the control arm when the dataset has assignments for the
    experiment, else from all customers (pre-launch data may have none).

    Args:
        dataset: A dataset folder or source (assignments optional), or an opened dataset.
        experiment: The experiment YAML file, or its parsed config.
        segments: A segments file or set (default: the experiment's segments file).
        lift: The relative lift to detect, e.g. ``0.05`` for +5%.
        power: The probability of detecting it.
        days: The per-user measurement window (default: the experiment's).
        users_per_day: Users entering per day (default: from the assignments' span).
        traffic: ``"base"`` (a customer base assigned at once) or ``"daily"`` (arrivals);
            default: see :func:`experiment.analysis.power.traffic_model`.
    """
    from experiment.analysis.power import power_plan
    from experiment.engine.baseline import baseline_sums
    from experiment.engine.dataset import engine_errors

    dataset = data_arg(dataset)
    days = power_args(lift=lift, power=power, days=days, per_day=users_per_day, traffic=traffic)
    config = config_arg(experiment)
    if days is not None:
        config = config.model_copy(
            update={"window": config.window.model_copy(update={"days": days})}
        )
    segment_set = segments_arg(segments, config)
    with engine_errors():  # a damaged page, found mid-query, is one line
        base = baseline_sums(dataset, config, segment_set)
    rate = users_per_day
    return power_plan(base, config, lift=lift, power=power, users_per_day=rate, traffic=traffic)


def assign_dataset(
    dataset: str | Path | DataSource,
    experiment: str | Path | ExperimentConfig,
    *,
    now: dt.datetime | None = None,
) -> AssignmentSummary:
    """Assign every customer and replace this experiment's rows of ``assignments.parquet``.

    The same arms as :func:`experiment.assign` gives one user at request time.
    Users who keep their arm keep their ``assigned_at``; others get ``now``
    (default: the current time; without a zone, UTC). Other experiments' rows are kept.
    """
    from experiment.engine.assign import assign_customers
    from experiment.engine.dataset import engine_errors

    folder = folder_arg(dataset)
    when = moment_arg(now, "now") or dt.datetime.now(dt.UTC)
    config = config_arg(experiment)
    segment_set = segments_arg(None, config)
    with engine_errors():
        return assign_customers(folder, config, segment_set, now=when)


def refine(
    dataset: Data,
    experiment: str | Path | ExperimentConfig,
    *,
    metric: str | None = None,
    arm: str | None = None,
    attributes: Sequence[str] | None = None,
    seed: int = 0,
    min_size: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Refinement:
    """Propose better segment definitions from held-out lift evidence (``exp refine``).

    Wraps :func:`segments.refine.refine` (search on one half, measure on the other).

    Args:
        dataset: A dataset folder or source, or an opened dataset.
        experiment: The experiment YAML file, or its parsed config.
        metric: The metric to refine on (default: the experiment's first).
        arm: The treatment arm (default: the first treatment arm).
        attributes: Customer columns to split on (default: every usable column).
        seed: Salts the random discovery/estimation split.
        min_size: Smallest side of a cut (default: the segments file's min_size).
        progress: Called with (done, total, label) as attribute scans finish.
    """
    from experiment.engine.dataset import engine_errors
    from experiment.engine.source import opened
    from segments.refine import refine as run_refine

    dataset = data_arg(dataset)
    number_arg(seed, "seed", 0, whole=True)
    name_arg(metric, "metric"), name_arg(arm, "arm")
    attributes = None if attributes is None else names_arg(attributes, "attributes")
    config = config_arg(experiment)
    segment_set = segments_arg(None, config)
    with engine_errors(), opened(dataset) as data:
        return run_refine(
            data,
            config,
            segment_set,
            metric=metric,
            arm=arm,
            attributes=attributes,
            seed=seed,
            min_size=min_size,
            progress=progress,
        )


def validate_segments(
    segments: str | Path | SegmentSet,
    dataset: Source,
    *,
    experiment: str | Path | ExperimentConfig | None = None,
    metrics: dict[str, str] | None = None,
    as_of: dt.datetime | None = None,
    alpha: float | None = None,
    power: float = 0.8,
    target_lift: float = 0.10,
    traffic: float | None = None,
    cuped: dict[str, str] | None = None,
) -> ValidationReport:
    """Check a segments file against a dataset before rollout (``exp segments validate``).

    Args:
        segments: The segments file, or its parsed set.
        dataset: A dataset folder or source (customers at least).
        experiment: An experiment whose alpha, arms, traffic and control-arm
            baselines set the MDE.
        metrics: Pre-period metrics, name → a numeric column (mean) or a rule (proportion).
        as_of: Analysis start for ``days_since`` and lifecycle (default: the
            experiment's window start, else the first assignment).
        alpha: Significance level (default: the experiment's, else 0.05).
        power: Power for the MDE.
        target_lift: A segment is UNDERPOWERED when its relative MDE exceeds this.
        traffic: Share of customers expected to enter (default: the experiment's
            traffic × (1 − holdout), else 1); unset: an experiment's current arm sizes.
        cuped: CUPED covariate column per ``metrics`` name (the MDE shrinks by ``ρ²``).
    """
    from experiment.engine.baseline import analysis_start
    from experiment.engine.source import customers_of
    from segments.pre_period import baselines_from_cells
    from segments.validate import arm_shares, validate

    dataset = data_arg(dataset, opened_ok=False)
    as_of = moment_arg(as_of, "as_of")
    metrics, cuped = columns_arg(metrics, "metrics"), columns_arg(cuped, "cuped")
    validation_args(alpha=alpha, power=power, target_lift=target_lift, traffic=traffic)
    segment_set = segment_file_arg(segments)
    config = config_arg(experiment) if experiment is not None else None
    start = analysis_start(dataset, as_of, config)
    control, treatment, share = arm_shares(config, traffic)
    baselines = None
    if config is not None:  # the control arm's baselines, from the engine's sums
        cells = compute_sums(dataset, config, segments=segment_set)
        baselines = baselines_from_cells(cells, config, sizes=traffic is None)
    with customers_of(dataset) as customers:
        return validate(
            customers,
            segment_set,
            as_of=start,
            metrics=metrics or {},
            covariates=cuped,
            baselines=baselines,
            alpha=alpha if alpha is not None else (config.alpha if config else 0.05),
            power=power,
            target_lift=target_lift,
            control_share=control,
            treatment_share=treatment,
            traffic=share,
        )


def show_segments(
    segments: str | Path | SegmentSet,
    dataset: Source,
    *,
    as_of: dt.datetime | None = None,
    sample: int = 3,
) -> list[dict[str, Any]]:
    """Per segment: how many customers match and ``sample`` anonymised profiles.

    Profiles drop ``user_id`` and turn dates into days since ``as_of`` (default:
    the first assignment); segments under the file's ``min_size`` show neither.
    """
    from experiment.engine.baseline import analysis_start
    from experiment.engine.source import customers_of
    from segments.validate import segment_profiles

    dataset = data_arg(dataset, opened_ok=False)
    as_of = moment_arg(as_of, "as_of")
    sample = int(number_arg(sample, "sample", *SAMPLE, whole=True))
    segment_set = segment_file_arg(segments)
    start = analysis_start(dataset, as_of, None)
    with customers_of(dataset) as customers:
        return segment_profiles(customers, segment_set, as_of=start, sample=sample)


def fit_segments(
    segments: str | Path | SegmentSet, dataset: Source, *, as_of: dt.datetime | None = None
) -> dict[str, Any]:
    """Fit the cluster and predictive segments and save them beside the segments file.

    Returns the fitted models by segment name (empty when there are none).
    """
    from segments.validate import fit_in_folder

    dataset = data_arg(dataset, opened_ok=False)
    as_of = moment_arg(as_of, "as_of")
    return fit_in_folder(segment_file_arg(segments), dataset, as_of=as_of)
