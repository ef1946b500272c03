"""The stats engine: pure functions from sufficient statistics to result arrays.

Every function works on all cells at once (one element per cell) and imports only
numpy, scipy and ``experiment.sums``. Degenerate cells give ``nan`` and a reason code
from ``experiment.stats.messages``; caller mistakes raise ``TypeError``/``ValueError``.
"""

from __future__ import annotations

from experiment.stats.multiplicity import Correction, adjust_pvalues
from experiment.stats.ratio import ratio_ttest
from experiment.stats.srm import SrmResult, srm_test
from experiment.stats.ttest import Alternative, LiftResult, welch_ttest

__all__ = [
    "Alternative",
    "Correction",
    "LiftResult",
    "SrmResult",
    "adjust_pvalues",
    "ratio_ttest",
    "srm_test",
    "welch_ttest",
]
