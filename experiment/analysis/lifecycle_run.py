"""The lifecycle analysis as one step after the main analysis (``exp analyze``'s hook).

Opt-in through the experiment file's ``lifecycle_analysis:`` block, because it
reads the login and purchase events once more, builds and caches a per-user table
and runs a few small queries (README "Benchmarks": at 1M users it adds about 50%
to ``exp analyze``'s CPU time); without the block the results come back unchanged
and nothing is read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING

from experiment.analysis.lifecycle import analyze_lifecycle

if TYPE_CHECKING:
    from pathlib import Path

    from experiment.config import ExperimentConfig
    from experiment.engine.dataset import Dataset
    from experiment.engine.source import DataSource
    from experiment.results.analysis import AnalysisResults
    from segments.definitions import SegmentSet

__all__ = ["with_lifecycle"]


def with_lifecycle(
    results: AnalysisResults,
    dataset: str | Path | DataSource | Dataset,
    config: ExperimentConfig,
    segment_set: SegmentSet | None = None,
    *,
    memory_limit: str | None = None,
) -> AnalysisResults:
    """``results`` with its ``lifecycle`` block when the experiment asks for one.

    The window start is the main analysis's (``results.window_start``), so both
    read the same "as of". ``segment_set`` defaults to the experiment's segments file.

    Raises:
        SegliftError: bad input (e.g. a ``value`` column the events table lacks).
    """
    spec = config.lifecycle_analysis
    if spec is None:
        return results
    from experiment.engine.dataset import engine_errors, memory_bound
    from experiment.engine.lifecycle import lifecycle_counts
    from experiment.engine.source import opened

    if segment_set is None and config.segments is not None:
        from segments.definitions import load_segments

        segment_set = load_segments(config.segments)
    start = dt.datetime.fromisoformat(results.window_start)
    with (
        memory_bound(memory_limit),
        opened(dataset, memory_limit=memory_limit) as data,
        engine_errors(),
    ):
        counts = lifecycle_counts(data, config, segment_set, start=start)
    block = analyze_lifecycle(
        counts,
        control=config.control,
        alpha=config.alpha,
        correction=config.correction,
        retention_days=spec.retention_days,
        horizons=spec.ltv_horizons,
    )
    return dataclasses.replace(results, lifecycle=block)
