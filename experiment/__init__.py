"""Experiments: config, assignment, engine aggregation, the stats engine, results, the CLI.

The Python API (:mod:`experiment.api`), one function per command::

    analyze(dataset, experiment)          -> AnalysisResults   (exp analyze)
    compute_sums / analyze_sums           -> CellSums / AnalysisResults (--save-sums, --from-sums)
    plan_power(dataset, experiment)       -> PowerPlan         (exp power)
    assign_dataset(dataset, experiment)   -> AssignmentSummary (exp assign)
    refine(dataset, experiment)           -> Refinement        (exp refine)
    validate_segments(segments, dataset)  -> ValidationReport  (exp segments validate)

``experiment.assign(user_id, spec)`` gives one user's arm at request time. The
package imports nothing heavy (no Ibis, DuckDB, pandas or scipy) until a
function needs it.
"""

from experiment.api import (
    analyze,
    analyze_sums,
    assign_dataset,
    compute_sums,
    fit_segments,
    plan_power,
    refine,
    show_segments,
    validate_segments,
)
from experiment.assignment import AssignmentSpec, assign

__all__ = [
    "AssignmentSpec",
    "analyze",
    "analyze_sums",
    "assign",
    "assign_dataset",
    "compute_sums",
    "fit_segments",
    "plan_power",
    "refine",
    "show_segments",
    "validate_segments",
]
