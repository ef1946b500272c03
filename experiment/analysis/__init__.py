"""The analysis stage: sufficient statistics in, typed results out (numpy only, no data).

:func:`analyze_cells` turns :class:`experiment.sums.CellSums` into
:class:`experiment.results.AnalysisResults`: lifts, intervals, multiplicity,
SRM, the privacy floor, the sequential timeline and the data-quality section.
"""

from experiment.analysis.lift import analyze_cells, arm_baselines

__all__ = ["analyze_cells", "arm_baselines"]
